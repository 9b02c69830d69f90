"""Data path: ROOT / parquet / HDF5 files → awkward arrays → feature groups → normalised,
padded batches.

Public API::

    from jetfm.data import JetProcessor, JetDataset, StreamingJetDataset, JetCollator

    processor = JetProcessor().fit("train/*.root")           # one streaming pass
    train = StreamingJetDataset("train/*.root", processor, targets=("labels",))
    loader = DataLoader(train, batch_size=256, collate_fn=JetCollator(targets=("labels",)))

The names are imported on first use (PEP 562), so that importing one light submodule (the
input convention of :mod:`jetfm.data.schema`, which the command line reads to build its
``--help``) does not load awkward, torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> submodule that defines it
_LAZY: dict[str, str] = {
    "JetCollator": "jetfm.data.batching",
    "chunk_to_batch": "jetfm.data.batching",
    "dataset_to_batch": "jetfm.data.batching",
    "pad_flat": "jetfm.data.batching",
    "JetDataset": "jetfm.data.datasets",
    "StreamingJetDataset": "jetfm.data.datasets",
    "distributed_rank_world": "jetfm.data.datasets",
    "FeatureChunk": "jetfm.data.features",
    "compute_features": "jetfm.data.features",
    "wrap_phi": "jetfm.data.features",
    "FORMATS": "jetfm.data.formats",
    "detect_format": "jetfm.data.formats",
    "JetProcessor": "jetfm.data.processor",
    "DEFAULT_FEATURE_GROUPS": "jetfm.data.reading",
    "NAN_POLICIES": "jetfm.data.reading",
    "OTHER_CLASS_POLICIES": "jetfm.data.reading",
    "RawChunk": "jetfm.data.reading",
    "ReadSpec": "jetfm.data.reading",
    "TARGETS": "jetfm.data.reading",
    "WorkUnit": "jetfm.data.reading",
    "detect_feature_groups": "jetfm.data.reading",
    "expand_paths": "jetfm.data.reading",
    "groups_for_files": "jetfm.data.reading",
    "iter_raw_chunks": "jetfm.data.reading",
    "open_file": "jetfm.data.reading",
    "plan_work": "jetfm.data.reading",
    "read_unit": "jetfm.data.reading",
    "resolve_label_names": "jetfm.data.reading",
    "BranchMapping": "jetfm.data.schema",
    "FEATURE_GROUPS": "jetfm.data.schema",
    "IGNORE_INDEX": "jetfm.data.schema",
    "JETCLASS_LABELS": "jetfm.data.schema",
    "NORMALISED_GROUPS": "jetfm.data.schema",
    "REQUIRED_GROUP": "jetfm.data.schema",
    "TRACK_ORIGINS": "jetfm.data.schema",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jetfm.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
