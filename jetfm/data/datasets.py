"""Torch datasets over jet files (ROOT, parquet, HDF5): eager (in memory) and streaming.

Both yield the same per-jet dicts of *unpadded* numpy arrays (``kinematics`` ``(n_i, 7)``,
``pid``, ``tracks``, and the requested targets), in file/entry order, dropping invalid jets
(0 constituents, NaN/inf under ``nan_policy="skip"``, or jets of none of the classes in use
under ``other_classes="skip"``) with a counted log message. Pad them
with :class:`~jetfm.data.batching.JetCollator`.

* :class:`JetDataset` reads everything once into flat arrays (map-style, random access).
* :class:`StreamingJetDataset` is a torch ``IterableDataset`` reading ``step_size`` jets at a
  time. The files are split into ``(file, entry_start, entry_stop)`` work units which are dealt
  round-robin to *global* workers (``rank × num_workers + worker_id``), so every jet is read
  exactly once across DataLoader workers and distributed ranks; memory is bounded by the
  chunk, not the file.

Both take a :class:`~jetfm.data.processor.JetProcessor`: a fitted one gives normalised
features, an unfitted one (or ``processor=None`` plus the reading options) raw features.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from jetfm.data.features import FeatureChunk
from jetfm.data.processor import JetProcessor
from jetfm.data.reading import (
    JET_TARGETS,
    FilePlan,
    PathsLike,
    ReadSpec,
    WorkUnit,
    iter_raw_chunks,
    plan_work,
)
from jetfm.data.schema import BranchMapping
from jetfm.errors import DataError, JetFMError

logger = logging.getLogger(__name__)


def _make_processor(
    processor: JetProcessor | None,
    feature_groups: Sequence[str] | None,
    max_particles: int | None,
    mapping: BranchMapping | Mapping[str, Any] | str | None,
    nan_policy: str | None,
) -> JetProcessor:
    if processor is None:
        kwargs: dict[str, Any] = {"branch_mapping": mapping}
        if feature_groups is not None:
            kwargs["feature_groups"] = tuple(feature_groups)
        if max_particles is not None:
            kwargs["max_particles"] = max_particles
        if nan_policy is not None:
            kwargs["nan_policy"] = nan_policy
        return JetProcessor(**kwargs)
    clash = [
        name
        for name, value in (
            ("max_particles", max_particles),
            ("mapping", mapping),
            ("nan_policy", nan_policy),
        )
        if value is not None
    ]
    if clash:
        raise JetFMError(f"{clash} come from the processor; pass them to JetProcessor(...) instead")
    return processor


class _JetSource:
    """Shared set-up: processor, read spec and the work plan over the files."""

    def _setup(
        self,
        paths: PathsLike,
        processor: JetProcessor | None,
        targets: Sequence[str],
        feature_groups: Sequence[str] | None,
        max_particles: int | None,
        mapping: BranchMapping | Mapping[str, Any] | str | None,
        nan_policy: str | None,
        step_size: int,
        other_classes: str = "raise",
    ) -> None:
        self.processor = _make_processor(
            processor, feature_groups, max_particles, mapping, nan_policy
        )
        if "labels" in targets:
            self.processor.resolve_labels(paths)
        groups = feature_groups if processor is not None else None
        spec = self.processor.read_spec(targets, groups)
        # a choice per dataset (which jets to learn from), not a processor setting
        self.spec: ReadSpec = dataclasses.replace(spec, other_classes=other_classes)
        self.targets: tuple[str, ...] = self.spec.targets
        self.feature_groups: tuple[str, ...] = self.spec.feature_groups
        self.plan: FilePlan = plan_work(paths, self.spec, step_size)
        self.step_size = step_size
        if not self.processor.is_fitted:
            logger.info("processor not fitted: the dataset yields raw (unnormalised) features")

    @property
    def paths(self) -> list[str]:
        return list(self.plan.paths)

    @property
    def num_entries(self) -> int:
        """Entries in all files (before dropping invalid jets)."""
        return self.plan.num_entries

    def _chunks(self, units: Sequence[WorkUnit]) -> Iterator[FeatureChunk]:
        for raw in iter_raw_chunks(units, self.spec):
            yield self.processor.process(raw, self.spec)


class _Counter:
    """Counts of dropped jets / truncated particles, logged once per pass."""

    def __init__(self) -> None:
        self.jets = self.empty = self.nonfinite = self.truncated = self.truncated_jets = 0
        self.other_class = 0

    def add(self, chunk: FeatureChunk) -> None:
        skipped = chunk.skipped
        self.jets += int(chunk.valid.sum())
        self.empty += skipped["empty"]
        self.nonfinite += skipped["nonfinite"]
        self.other_class += skipped["other_class"]
        dropped = chunk.n_truncated[chunk.valid]
        self.truncated += int(dropped.sum())
        self.truncated_jets += int(np.count_nonzero(dropped))

    def as_dict(self) -> dict[str, int]:
        return dict(
            jets=self.jets,
            skipped_empty=self.empty,
            skipped_nonfinite=self.nonfinite,
            skipped_other_class=self.other_class,
            truncated_particles=self.truncated,
            truncated_jets=self.truncated_jets,
        )

    def log(self, what: str, max_particles: int) -> None:
        if self.empty or self.nonfinite:
            logger.warning(
                "%s: skipped %d jets with 0 constituents and %d with NaN/inf values",
                what,
                self.empty,
                self.nonfinite,
            )
        if self.other_class:
            logger.info(
                "%s: skipped %d jets of none of the classes in use (other_classes='skip')",
                what,
                self.other_class,
            )
        if self.truncated:
            logger.info(
                "%s: dropped %d particles beyond max_particles=%d in %d jets",
                what,
                self.truncated,
                max_particles,
                self.truncated_jets,
            )


class JetDataset(_JetSource, Dataset):
    """All jets of the files in memory (flat arrays + offsets), map-style.

    Args:
        paths: file, glob, directory or list of those.
        processor: settings and statistics; ``None`` → an unfitted processor from the
            options below (raw features).
        targets: any of ``labels``, ``parton_labels``, ``track_labels``,
            ``vertex_labels``; DataError if a file lacks the branch (e.g. ``part_origin``
            for ``track_labels``).
        feature_groups: subset of the processor's groups to yield (default: all of them).
        max_particles / mapping / nan_policy: only without ``processor``.
        other_classes: with the ``labels`` target and a processor whose ``label_names`` are
            some of the files' classes: ``"raise"`` (default) on a jet of another class, or
            ``"skip"`` it (counted in ``stats["skipped_other_class"]``).
        step_size: jets read per chunk while loading.
        return_index: also yield ``file_index`` and ``entry`` per jet.

    Attributes ``stats`` (counts of skipped/truncated), ``file_index`` and ``entry`` (per jet,
    aligning jets with file entries) are set after loading.
    """

    def __init__(
        self,
        paths: PathsLike,
        processor: JetProcessor | None = None,
        targets: Sequence[str] = ("labels",),
        *,
        feature_groups: Sequence[str] | None = None,
        max_particles: int | None = None,
        mapping: BranchMapping | Mapping[str, Any] | str | None = None,
        nan_policy: str | None = None,
        step_size: int = 50_000,
        return_index: bool = False,
        other_classes: str = "raise",
    ):
        self._setup(paths, processor, targets, feature_groups, max_particles, mapping,
                    nan_policy, step_size, other_classes)  # fmt: skip
        self.return_index = return_index
        parts: dict[str, list[np.ndarray]] = {}
        counter = _Counter()
        for chunk in self._chunks(self.plan.units):
            counter.add(chunk)
            valid = chunk.valid
            parts.setdefault("counts", []).append(chunk.counts[valid])
            parts.setdefault("file_index", []).append(np.full(valid.sum(), chunk.file_index))
            parts.setdefault("entry", []).append(chunk.entries[valid])
            for key in list(chunk.features) + [t for t in chunk.targets if t not in JET_TARGETS]:
                parts.setdefault(key, []).append(chunk.flat(key))
            for key in [t for t in chunk.targets if t in JET_TARGETS]:
                parts.setdefault(key, []).append(chunk.targets[key][valid])
        arrays = {k: np.concatenate(v) for k, v in parts.items()}
        self.counts = arrays.pop("counts").astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)])
        self.file_index = arrays.pop("file_index").astype(np.int64)
        self.entry = arrays.pop("entry")
        #: per-jet targets (``labels``, ``parton_labels``), ``(jets,)`` each
        self.jet_targets = {t: arrays.pop(t) for t in JET_TARGETS if t in arrays}
        self.labels = self.jet_targets.get("labels")
        self._flat = arrays  # feature groups and per-particle targets, jets concatenated
        self.stats = counter.as_dict()
        counter.log(f"JetDataset({len(self.plan.paths)} files)", self.processor.max_particles)
        if len(self) == 0:
            raise DataError(f"no valid jets in {self.plan.paths}")

    def __len__(self) -> int:
        return len(self.counts)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"jet {index} out of range for {len(self)} jets")
        lo, hi = self.offsets[index], self.offsets[index + 1]
        jet = {k: v[lo:hi] for k, v in self._flat.items()}
        for key, values in self.jet_targets.items():
            jet[key] = values[index]
        if self.return_index:
            jet["file_index"] = self.file_index[index]
            jet["entry"] = self.entry[index]
        return jet

    def flat_arrays(
        self, indices: Sequence[int] | np.ndarray | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
        """``(flat per-particle arrays, counts, labels)`` of all jets or of ``indices``."""
        if indices is None:
            return dict(self._flat), self.counts, self.labels
        idx = np.asarray(indices, dtype=np.int64)
        counts = self.counts[idx]
        starts = self.offsets[idx]
        rows = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
        flat = {k: v[rows] for k, v in self._flat.items()}
        return flat, counts, self.labels[idx] if self.labels is not None else None

    def jet_arrays(
        self, indices: Sequence[int] | np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """The per-jet targets (``labels``, ``parton_labels``) of all jets or of ``indices``."""
        if indices is None:
            return dict(self.jet_targets)
        idx = np.asarray(indices, dtype=np.int64)
        return {k: v[idx] for k, v in self.jet_targets.items()}


def distributed_rank_world() -> tuple[int, int]:
    """(rank, world size): torch.distributed if initialised, else env RANK/WORLD_SIZE."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    try:
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    except ValueError as err:
        raise JetFMError(f"RANK/WORLD_SIZE must be integers: {err}") from err


class StreamingJetDataset(_JetSource, IterableDataset):
    """Jets streamed chunk by chunk from many/large files, sharded without duplicates.

    Args:
        paths: and likewise processor, targets, feature_groups, max_particles, mapping,
            nan_policy, return_index and other_classes: as :class:`JetDataset`.
        step_size: jets per work unit / read (bounds memory).
        shuffle: shuffle the order of work units (same permutation on every rank, so the
            sharding stays exact) and the jets inside each chunk, reseeded by
            :meth:`set_epoch`.
        seed: base seed for shuffling.
        rank / world_size: override the distributed position (default:
            :func:`distributed_rank_world`, read when iteration starts).
        shard_across_ranks: split the units over distributed ranks (default). Set False
            when something else splits the stream per rank — e.g. the HF ``Trainer`` /
            accelerate, which either reads on rank 0 and dispatches batches
            (``dispatch_batches=True``, its default for iterable datasets) or wraps the
            dataset in ``IterableDatasetShard``; both expect every rank to see the full stream.
            DataLoader workers are always sharded.

    Work units go round-robin to global worker ``rank * num_workers + worker_id``, so ranks
    may get slightly different numbers of jets; with DDP use a fixed ``max_steps``.
    """

    def __init__(
        self,
        paths: PathsLike,
        processor: JetProcessor | None = None,
        targets: Sequence[str] = ("labels",),
        *,
        feature_groups: Sequence[str] | None = None,
        max_particles: int | None = None,
        mapping: BranchMapping | Mapping[str, Any] | str | None = None,
        nan_policy: str | None = None,
        step_size: int = 10_000,
        shuffle: bool = False,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        shard_across_ranks: bool = True,
        return_index: bool = False,
        other_classes: str = "raise",
    ):
        self._setup(paths, processor, targets, feature_groups, max_particles, mapping,
                    nan_policy, step_size, other_classes)  # fmt: skip
        self.shard_across_ranks = shard_across_ranks
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.rank = rank
        self.world_size = world_size
        self.return_index = return_index
        self.stats: dict[str, int] = {}

    def set_epoch(self, epoch: int) -> None:
        """Reseed shuffling (call before each epoch, as with ``DistributedSampler``)."""
        self.epoch = int(epoch)

    def shard(self, global_worker: int, num_global_workers: int) -> list[WorkUnit]:
        """The work units of one global worker (round-robin over the, maybe shuffled, plan)."""
        if not 0 <= global_worker < num_global_workers:
            raise JetFMError(f"worker {global_worker} out of range 0..{num_global_workers - 1}")
        units = list(self.plan.units)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(units))
            units = [units[i] for i in order]
        return units[global_worker::num_global_workers]

    def _position(self) -> tuple[int, int]:
        rank, world = distributed_rank_world() if self.shard_across_ranks else (0, 1)
        rank = rank if self.rank is None else self.rank
        world = world if self.world_size is None else self.world_size
        if not 0 <= rank < world:
            raise JetFMError(f"rank {rank} out of range for world size {world}")
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        return rank * workers + worker, world * workers

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        global_worker, total = self._position()
        units = self.shard(global_worker, total)
        counter = _Counter()
        for chunk in self._chunks(units):
            counter.add(chunk)
            jets = chunk.iter_jets(self.return_index)
            if self.shuffle:
                jets = list(jets)
                rng = np.random.default_rng(
                    [self.seed, self.epoch, chunk.file_index, chunk.entry_start]
                )
                jets = [jets[i] for i in rng.permutation(len(jets))]
            yield from jets
        self.stats = counter.as_dict()
        counter.log(
            f"StreamingJetDataset worker {global_worker}/{total}", self.processor.max_particles
        )
