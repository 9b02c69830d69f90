"""Data path: ROOT / parquet / HDF5 files → awkward arrays → feature groups → normalised,
padded batches.

Public API::

    from jetfm.data import JetProcessor, JetDataset, StreamingJetDataset, JetCollator

    processor = JetProcessor().fit("train/*.root")           # one streaming pass
    train = StreamingJetDataset("train/*.root", processor, targets=("labels",))
    loader = DataLoader(train, batch_size=256, collate_fn=JetCollator(targets=("labels",)))
"""

from jetfm.data.batching import JetCollator, chunk_to_batch, dataset_to_batch, pad_flat
from jetfm.data.datasets import JetDataset, StreamingJetDataset, distributed_rank_world
from jetfm.data.features import FeatureChunk, compute_features, wrap_phi
from jetfm.data.formats import FORMATS, detect_format
from jetfm.data.processor import JetProcessor
from jetfm.data.reading import (
    DEFAULT_FEATURE_GROUPS,
    NAN_POLICIES,
    OTHER_CLASS_POLICIES,
    TARGETS,
    RawChunk,
    ReadSpec,
    WorkUnit,
    detect_feature_groups,
    expand_paths,
    groups_for_files,
    iter_raw_chunks,
    open_file,
    plan_work,
    read_unit,
    resolve_label_names,
)
from jetfm.data.schema import (
    FEATURE_GROUPS,
    IGNORE_INDEX,
    JETCLASS_LABELS,
    NORMALISED_GROUPS,
    REQUIRED_GROUP,
    TRACK_ORIGINS,
    BranchMapping,
)

__all__ = [
    "BranchMapping",
    "DEFAULT_FEATURE_GROUPS",
    "FEATURE_GROUPS",
    "FORMATS",
    "FeatureChunk",
    "IGNORE_INDEX",
    "JETCLASS_LABELS",
    "JetCollator",
    "JetDataset",
    "JetProcessor",
    "NAN_POLICIES",
    "OTHER_CLASS_POLICIES",
    "NORMALISED_GROUPS",
    "REQUIRED_GROUP",
    "RawChunk",
    "ReadSpec",
    "StreamingJetDataset",
    "TARGETS",
    "TRACK_ORIGINS",
    "WorkUnit",
    "chunk_to_batch",
    "compute_features",
    "dataset_to_batch",
    "detect_feature_groups",
    "detect_format",
    "distributed_rank_world",
    "expand_paths",
    "groups_for_files",
    "iter_raw_chunks",
    "open_file",
    "pad_flat",
    "plan_work",
    "read_unit",
    "resolve_label_names",
    "wrap_phi",
]
