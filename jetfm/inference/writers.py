"""Prediction output files, one per input file, in the input's format.

ROOT (a tree that is a friend of the input's, per-particle columns sharing one ``npart``
counter), parquet (one row group per chunk) or HDF5 (one dataset per column, padded per
particle). Each is written under a temporary name beside its final one and renamed when
complete, so a file with its final name is always whole and a restarted run skips it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from jetfm.atomic import AtomicFile, remove_leftovers
from jetfm.data.input_plan import InputFile
from jetfm.errors import DataError

logger = logging.getLogger(__name__)

#: suffix of an output file being written
PARTIAL_SUFFIX = ".partial"


def _pack(columns: Mapping[str, Any], particle_names: Sequence[str]) -> dict[str, Any]:
    """Columns for ``uproot`` ``mktree/extend``: particle-level ones zipped under ``part`` so
    they share one ``npart`` counter (the JetClass layout)."""
    packed = {k: v for k, v in columns.items() if k not in particle_names}
    if particle_names:
        packed["part"] = ak.zip({k[len("part_") :]: columns[k] for k in particle_names})
    return packed


def _types(packed: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: (v.type.content if isinstance(v, ak.Array) else np.asarray(v).dtype)
        for k, v in packed.items()
    }


class PartialOutput:
    """An output file written under a temporary name beside its final one and renamed when
    complete, so a file with its final name is always whole."""

    def __init__(self, final: Path):
        self.final = final
        self._file = AtomicFile(final, suffix=PARTIAL_SUFFIX)
        self.tmp = self._file.tmp
        self.entries = 0

    def extend(self, columns: Mapping[str, Any]) -> None:
        """Append one chunk's entry-aligned columns."""
        try:
            self._write(columns)
        except (TypeError, ValueError, NotImplementedError) as err:
            raise DataError(
                f"{self.final}: cannot write the output columns {list(columns)} "
                f"({type(err).__name__}: {err}); copy fewer branches (--copy-branches)"
            ) from err
        self.entries += len(next(iter(columns.values())))

    def commit(self) -> None:
        try:
            self._close()
        except BaseException:
            self._file.abort()
            raise
        self._file.commit()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._close()
        self._file.abort()

    def _write(self, columns: Mapping[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class _OutputFile(PartialOutput):
    """A ROOT output file: one TTree (a friend of the input's), particle columns sharing the
    ``npart`` counter."""

    def __init__(self, final: Path, tree: str, particle_names: Sequence[str]):
        super().__init__(final)
        self.tree_name = tree
        self.particle_names = list(particle_names)
        import uproot

        self.file = uproot.recreate(self.tmp)
        self.tree: Any = None

    def _write(self, columns: Mapping[str, Any]) -> None:
        packed = _pack(columns, self.particle_names)
        if self.tree is None:
            self.tree = self.file.mktree(self.tree_name, _types(packed))
        if len(next(iter(columns.values()))):
            self.tree.extend(packed)

    def _close(self) -> None:
        self.file.close()


class _ParquetOutput(PartialOutput):
    """A parquet output file, one row group per chunk, rows aligned with the input's."""

    def __init__(self, final: Path):
        super().__init__(final)
        self.writer: Any = None

    def _write(self, columns: Mapping[str, Any]) -> None:
        import pyarrow.parquet as pq

        # score columns are strided views of one (n, classes) array; arrow wants them whole
        plain = {
            k: np.ascontiguousarray(v) if isinstance(v, np.ndarray) else v
            for k, v in columns.items()
        }
        table = ak.to_arrow_table(ak.zip(plain, depth_limit=1), extensionarray=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema)
        self.writer.write_table(table)

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _HDF5Output(PartialOutput):
    """An HDF5 output file: one dataset per output column, row ``i`` for input jet ``i``.

    Per-particle outputs are ``(n_jets, width)`` arrays padded with NaN / −1, the input's
    real particles first (aligned with its slots when the padding comes last, the usual
    convention).
    """

    def __init__(self, final: Path, num_entries: int, width: int | None):
        super().__init__(final)
        import h5py

        self.file = h5py.File(self.tmp, "w")
        self.num_entries = int(num_entries)
        self.width = width

    def _padded(self, values: ak.Array) -> np.ndarray:
        width = self.width or int(ak.max(ak.num(values, axis=1), initial=0))
        flat = ak.flatten(values, axis=None)
        fill = -1 if np.asarray(flat).dtype.kind in "iu" else np.nan
        return ak.to_numpy(ak.fill_none(ak.pad_none(values, width, axis=1, clip=True), fill))

    def _write(self, columns: Mapping[str, Any]) -> None:
        start = self.entries
        for name, values in columns.items():
            if isinstance(values, ak.Array) and values.ndim == 2:
                values = self._padded(values)
            values = np.asarray(ak.to_numpy(values) if isinstance(values, ak.Array) else values)
            if name not in self.file:
                self.file.create_dataset(
                    name, shape=(self.num_entries, *values.shape[1:]), dtype=values.dtype
                )
            self.file[name][start : start + len(values)] = values

    def _close(self) -> None:
        self.file.close()


def open_output(final: Path, source: InputFile, particle_names: Sequence[str]) -> PartialOutput:
    """The writer of the predictions of ``source``, in its format."""
    if source.format == "parquet":
        return _ParquetOutput(final)
    if source.format in ("hdf5", "npz"):  # .npz inputs get HDF5 outputs (written by chunk)
        return _HDF5Output(final, source.num_entries, source.width)
    return _OutputFile(final, source.tree, particle_names)


def remove_stale_partials(final: Path) -> None:
    """Temporary files a killed earlier run left for this output."""
    remove_leftovers(final, suffix=PARTIAL_SUFFIX)


def output_paths(files: Sequence[InputFile], out_dir: Path) -> dict[str, Path]:
    outputs: dict[str, Path] = {}
    seen: dict[Path, str] = {}
    for f in files:
        target = out_dir / Path(f.path).name
        if f.format == "npz":
            target = target.with_suffix(".h5")
        if target in seen:
            raise DataError(
                f"input files {seen[target]!r} and {f.path!r} have the same name; their "
                f"predictions would both be written to {str(target)!r} (predict them separately)"
            )
        if target.resolve() == Path(f.path).resolve():
            raise DataError(
                f"the output directory {str(out_dir)!r} holds the input file {f.path!r}; "
                "choose another --out so the input is not overwritten"
            )
        seen[target] = f.path
        outputs[f.path] = target
    return outputs


__all__ = [
    "PARTIAL_SUFFIX",
    "PartialOutput",
    "open_output",
    "output_paths",
    "remove_stale_partials",
]
