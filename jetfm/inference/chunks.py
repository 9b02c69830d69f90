"""Input chunks for prediction: read, turned into model features, and mapped back.

A :class:`PreparedChunk` holds one entry range's normalised features plus the mapping from the
model's (pT-sorted, truncated) particle slots back to the input's own particle order, so
per-particle outputs can be written aligned with the input. Chunks come from files
(:func:`iter_prepared`, optionally in DataLoader worker processes) or from in-memory arrays
(:func:`iter_arrays`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import awkward as ak
import numpy as np
import torch

from jetfm.data.features import FeatureChunk
from jetfm.data.input_plan import InputFile, read_copied
from jetfm.data.processor import JetProcessor
from jetfm.data.reading import (
    KeyList,
    RawChunk,
    ReadSpec,
    TreeReader,
    WorkUnit,
    plan_branches,
    read_unit,
    validate_arrays,
)
from jetfm.errors import DataError


@dataclasses.dataclass
class PreparedChunk:
    """One chunk ready for the model: normalised features plus what maps outputs back.

    ``original_index`` gives, for every particle the model sees (row-major over the chunk's
    ``(jet, slot)`` layout where ``mask`` is True), its position in the chunk's flattened
    *input* particle arrays; ``counts_all`` are the input particle counts per jet.
    """

    chunk: FeatureChunk
    original_index: np.ndarray
    counts_all: np.ndarray
    copied: dict[str, Any]
    path: str
    file_index: int
    entry_start: int


def prepare(
    raw: RawChunk, processor: JetProcessor, spec: ReadSpec, copied: dict[str, Any] | None = None
) -> PreparedChunk:
    """Features of a validated chunk, plus the sorted → original particle mapping."""
    chunk = processor.process(raw, spec, normalise=True)
    counts_all = chunk.counts + chunk.n_truncated
    starts = np.cumsum(counts_all) - counts_all
    original = np.repeat(starts, chunk.counts) + chunk.particle_order
    return PreparedChunk(
        chunk, original, counts_all, copied or {}, raw.source, raw.file_index, raw.entry_start
    )


def to_original(
    padded: np.ndarray, prepared: PreparedChunk, fill: float | int, dtype: Any
) -> ak.Array:
    """Padded sorted-layout per-particle values → jagged array in the input particle order."""
    chunk = prepared.chunk
    total = int(prepared.counts_all.sum())
    flat = np.full((total,) + padded.shape[2:], fill, dtype=dtype)
    if len(chunk) and padded.shape[1]:
        flat[prepared.original_index] = padded[chunk.mask]
    return ak.unflatten(flat, prepared.counts_all)


class ChunkReader(torch.utils.data.Dataset):
    """Map-style dataset of work units → :class:`PreparedChunk` (runs in DataLoader workers,
    which read and compute features while the main process runs the model)."""

    def __init__(
        self,
        units: Sequence[WorkUnit],
        files: Sequence[InputFile],
        processor: JetProcessor,
        spec: ReadSpec,
    ):
        self.units = list(units)
        self.files = {f.file_index: f for f in files}
        self.processor = processor
        self.spec = spec
        self._reader: TreeReader | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_reader": None}  # open files stay in their process

    def __len__(self) -> int:
        return len(self.units)

    def __getitem__(self, i: int) -> PreparedChunk:
        unit = self.units[i]
        if self._reader is None:
            self._reader = TreeReader(self.spec.mapping)
        raw = read_unit(self._reader, unit, self.spec)
        copied = read_copied(self._reader, self.files[unit.file_index], unit)
        return prepare(raw, self.processor, self.spec, copied)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


def _identity(x: Any) -> Any:
    return x


def iter_prepared(
    units: Sequence[WorkUnit],
    files: Sequence[InputFile],
    processor: JetProcessor,
    spec: ReadSpec,
    workers: int = 0,
) -> Iterator[PreparedChunk]:
    """The units' chunks in order, read in the main process or in ``workers`` processes."""
    dataset = ChunkReader(units, files, processor, spec)
    if workers <= 0:
        try:
            for i in range(len(dataset)):
                yield dataset[i]
        finally:
            dataset.close()
        return
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, shuffle=False, num_workers=workers, collate_fn=_identity
    )
    yield from loader  # in unit order: the DataLoader returns items in index order


def iter_arrays(
    arrays: Any,
    processor: JetProcessor,
    spec: ReadSpec,
    copy: str | Sequence[str] | None,
    step: int,
    taken: Sequence[str] = (),
) -> Iterator[PreparedChunk]:
    keys = list(arrays.fields) if isinstance(arrays, ak.Array) else list(arrays.keys())
    source = "<in-memory arrays>"
    plan = plan_branches(KeyList(keys), source, spec)
    if copy in (None, "none", ()):
        copy_names: list[str] = []
    elif copy == "all":
        copy_names = [k for k in keys if k not in taken]
    else:
        copy_names = [copy] if isinstance(copy, str) else list(copy)
        missing = [k for k in copy_names if k not in keys]
        if missing:
            raise DataError(f"{source}: fields {missing} to copy are missing; present: {keys}")
    n = len(arrays) if isinstance(arrays, ak.Array) else len(arrays[plan["px"]])
    for start in range(0, max(n, 1), step):
        stop = min(start + step, n)
        part = (
            arrays[start:stop]
            if isinstance(arrays, ak.Array)
            else {k: v[start:stop] for k, v in arrays.items()}
        )
        raw = validate_arrays(part, plan, spec, source, start)
        yield prepare(raw, processor, spec, {k: part[k] for k in copy_names})


__all__ = ["ChunkReader", "PreparedChunk", "iter_arrays", "iter_prepared", "prepare", "to_original"]
