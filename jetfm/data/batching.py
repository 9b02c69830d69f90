"""Padding per-jet dicts into the batch contract the models take.

Batch contract (keyword arguments of every jetfm model): ``kinematics`` float32 ``(B, N, 7)``,
``pid`` float32 ``(B, N, 6)`` and ``tracks`` float32 ``(B, N, 4)`` when present, ``mask`` bool
``(B, N)`` (True = real particle), and only the targets asked for: ``labels`` and
``parton_labels`` long ``(B,)``, ``track_labels`` / ``vertex_labels`` long ``(B, N)`` with
:data:`~jetfm.data.schema.IGNORE_INDEX` on neutrals and padding.

Padding is vectorised: the jets' particles are concatenated once and scattered into the
padded tensor with one fancy-indexing assignment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from jetfm.data.reading import JET_TARGETS, TARGETS
from jetfm.data.schema import FEATURE_GROUPS, IGNORE_INDEX
from jetfm.errors import DataError

if TYPE_CHECKING:
    from jetfm.data.datasets import JetDataset
    from jetfm.data.features import FeatureChunk

PER_PARTICLE_TARGETS = ("track_labels", "vertex_labels")


def _check_targets(targets: Sequence[str]) -> tuple[str, ...]:
    bad = [t for t in targets if t not in TARGETS]
    if bad:
        raise DataError(f"unknown target(s) {bad}; choose from {list(TARGETS)}")
    return tuple(targets)


#: padded lengths are multiples of this (kernels like aligned sizes)
BUCKET_MULTIPLE = 8
#: default number of buckets fitted to a data set's multiplicities (one compiled graph each)
NUM_BUCKETS = 4


def default_buckets(
    max_particles: int,
    counts: np.ndarray | None = None,
    num_buckets: int = NUM_BUCKETS,
    multiple: int = BUCKET_MULTIPLE,
) -> tuple[int, ...]:
    """Padded lengths for static-shape batches (one compiled graph per length).

    With the data set's particle ``counts``: lengths at its multiplicity quantiles
    (``1/num_buckets``, ``2/num_buckets``, …, the longest jet), rounded up to ``multiple``,
    so each bucket holds about as many jets and pads them little. Without: evenly spaced up
    to ``max_particles``. ``max_particles`` is always the last length, so any jet fits.
    """
    if max_particles < 1:
        raise ValueError(f"max_particles must be >= 1, got {max_particles}")
    if counts is not None and len(counts):
        qs = np.quantile(np.asarray(counts), np.arange(1, num_buckets + 1) / num_buckets)
    else:
        qs = np.arange(1, num_buckets + 1) * max_particles / num_buckets
    lengths = {int(min(max_particles, max(multiple, -(-int(np.ceil(q)) // multiple) * multiple)))
               for q in qs}  # fmt: skip
    return tuple(sorted(lengths | {int(max_particles)}))


def bucket_length(longest: int, buckets: Sequence[int]) -> int:
    """The smallest bucket that holds ``longest`` particles (DataError past the last one)."""
    for length in sorted(buckets):
        if longest <= length:
            return int(length)
    raise DataError(f"a jet has {longest} particles, more than the longest bucket {max(buckets)}")


def pad_flat(
    flat: Mapping[str, np.ndarray],
    counts: np.ndarray,
    labels: np.ndarray | None = None,
    pad_to: int | None = None,
    jet_targets: Mapping[str, np.ndarray] | None = None,
) -> dict[str, torch.Tensor]:
    """Batch dict from particles concatenated over jets.

    Args:
        flat: ``{feature group: (total, F)}`` and/or ``{per-particle target: (total,)}``.
        counts: particles per jet ``(B,)``; ``sum(counts) == total``.
        labels: per-jet class ``(B,)`` (emitted as ``labels``) or None.
        pad_to: pad to this length instead of the longest jet (DataError if a jet is longer).
        jet_targets: other per-jet targets ``{name: (B,)}`` (e.g. ``parton_labels``).
    """
    counts = np.asarray(counts, dtype=np.int64)
    batch = len(counts)
    longest = int(counts.max()) if batch else 0
    width = longest if pad_to is None else int(pad_to)
    if longest > width:
        raise DataError(f"a jet has {longest} particles, more than pad_to={pad_to}")
    jet = np.repeat(np.arange(batch), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(jet.size) - np.repeat(starts, counts)
    out: dict[str, torch.Tensor] = {}
    for key, values in flat.items():
        values = np.asarray(values)
        if len(values) != jet.size:
            raise DataError(
                f"{key!r} has {len(values)} particle rows but the jets have {jet.size} particles"
            )
        if key in FEATURE_GROUPS:
            padded = np.zeros((batch, width, values.shape[-1]), dtype=np.float32)
        else:
            padded = np.full((batch, width), IGNORE_INDEX, dtype=np.int64)
        padded[jet, pos] = values
        out[key] = torch.from_numpy(padded)
    mask = np.zeros((batch, width), dtype=bool)
    mask[jet, pos] = True
    out["mask"] = torch.from_numpy(mask)
    if labels is not None:
        out["labels"] = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    for key, values in (jet_targets or {}).items():
        out[key] = torch.as_tensor(np.asarray(values, dtype=np.int64))
    return out


class JetCollator:
    """``DataLoader`` ``collate_fn``: list of per-jet dicts → padded batch of torch tensors.

    Args:
        targets: target keys to emit, any of ``labels``, ``parton_labels``,
            ``track_labels``, ``vertex_labels`` (``()`` for prediction and pure-MPM
            pre-training).
        pad_to: pad to this fixed length (e.g. for ONNX export / static shapes) instead of the
            longest jet in the batch.
        feature_groups: groups to emit; default every group present in the jets.
        buckets: pad to the smallest of these lengths that holds the longest jet (a few
            batch shapes for a compiled model; see :func:`default_buckets`).
        optional_targets: emit those of ``targets`` the jets carry and skip the others
            (e.g. validation files without the truth of the training files) instead of
            raising.

    Each jet dict holds unpadded arrays: ``kinematics`` ``(n_i, 7)`` etc., ``labels`` a scalar,
    per-particle targets ``(n_i,)``. Other keys (``entry``, ``file_index``) are ignored.
    """

    def __init__(
        self,
        targets: Sequence[str] = ("labels",),
        pad_to: int | None = None,
        feature_groups: Sequence[str] | None = None,
        buckets: Sequence[int] | None = None,
        optional_targets: bool = False,
    ):
        self.targets = _check_targets(targets)
        self.optional_targets = bool(optional_targets)
        self.pad_to = pad_to
        self.buckets = tuple(sorted(buckets)) if buckets else None
        if feature_groups is not None:
            unknown = [g for g in feature_groups if g not in FEATURE_GROUPS]
            if unknown:
                raise DataError(f"unknown feature group(s) {unknown}; known {list(FEATURE_GROUPS)}")
        self.feature_groups = tuple(feature_groups) if feature_groups is not None else None

    def __call__(self, jets: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if not jets:
            raise DataError("cannot collate an empty list of jets")
        first = jets[0]
        groups = self.feature_groups or tuple(g for g in FEATURE_GROUPS if g in first)
        targets = self.targets
        if self.optional_targets:
            targets = tuple(t for t in targets if t in first)
        needed = list(groups) + list(targets)
        for key in needed:
            if key not in first:
                raise DataError(
                    f"the jets carry no {key!r} (keys: {sorted(first)}); build the dataset with "
                    f"targets={tuple(self.targets)} / the matching feature groups"
                )
        counts = np.fromiter((len(j["kinematics"]) for j in jets), np.int64, len(jets))
        try:
            flat = {
                k: np.concatenate([j[k] for j in jets])
                for k in list(groups) + [t for t in targets if t in PER_PARTICLE_TARGETS]
            }
        except KeyError as err:
            raise DataError(f"a jet in the batch lacks {err.args[0]!r}") from err
        per_jet = {
            t: np.fromiter((j[t] for j in jets), np.int64, len(jets))
            for t in targets
            if t in JET_TARGETS
        }
        labels = per_jet.pop("labels", None)
        pad_to = self.pad_to
        if self.buckets is not None and pad_to is None:
            pad_to = bucket_length(int(counts.max()), self.buckets)
        return pad_flat(flat, counts, labels, pad_to, per_jet)


def dataset_to_batch(
    dataset: JetDataset,
    targets: Sequence[str] | None = None,
    pad_to: int | None = None,
    indices: Sequence[int] | np.ndarray | None = None,
) -> dict[str, torch.Tensor]:
    """The whole eager dataset (or ``indices`` of it) as one padded batch dict.

    ``targets`` defaults to the dataset's own targets. Uses the dataset's flat storage (no
    per-jet Python work), so it is fast for evaluation / prediction.
    """
    targets = _check_targets(dataset.targets if targets is None else targets)
    missing = [t for t in targets if t not in dataset.targets]
    if missing:
        raise DataError(f"the dataset was built without targets {missing}")
    flat, counts, labels = dataset.flat_arrays(indices)
    keep = {k: v for k, v in flat.items() if k in FEATURE_GROUPS or k in targets}
    per_jet = {k: v for k, v in dataset.jet_arrays(indices).items()
               if k in targets and k != "labels"}  # fmt: skip
    return pad_flat(keep, counts, labels if "labels" in targets else None, pad_to, per_jet)


def chunk_to_batch(
    chunk: FeatureChunk,
    targets: Sequence[str] = (),
    only_valid: bool = True,
    pad_to: int | None = None,
) -> dict[str, torch.Tensor]:
    """Batch dict of a :class:`~jetfm.data.features.FeatureChunk` (e.g. for ``predict``).

    ``only_valid=False`` keeps invalid jets (all-False ``mask`` rows for empty jets, zero
    features) so outputs stay aligned with the file's entries; use ``chunk.valid`` to blank
    their predictions.
    """
    targets = _check_targets(targets)
    rows = np.flatnonzero(chunk.valid) if only_valid else np.arange(len(chunk))
    counts = chunk.counts[rows]
    mask = chunk.mask[rows]
    flat: dict[str, np.ndarray] = {g: a[rows][mask] for g, a in chunk.features.items()}
    for t in targets:
        if t not in chunk.targets:
            raise DataError(f"the chunk was computed without target {t!r}")
        if t in PER_PARTICLE_TARGETS:
            flat[t] = chunk.targets[t][rows][mask]
    labels = chunk.targets["labels"][rows] if "labels" in targets else None
    per_jet = {t: chunk.targets[t][rows] for t in targets if t in JET_TARGETS and t != "labels"}
    return pad_flat(flat, counts, labels, pad_to, per_jet)
