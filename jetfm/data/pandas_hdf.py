"""A pandas DataFrame stored in HDF5 by ``DataFrame.to_hdf`` (PyTables), read with h5py.

The top-tagging reference set is published this way: key ``table``, one row per jet, columns
``E_0, PX_0, PY_0, PZ_0, ..., PZ_199, truthE, ..., ttv, is_signal_new``. pandas writes two
kinds of frame, both read here slice by slice without pandas or PyTables:

* ``format="table"`` (``pandas_type`` ``frame_table``): a compound dataset ``<key>/table``
  whose fields ``values_block_<k>`` hold the columns of one dtype side by side (or one field
  per column for ``data_columns``); the column names of a block are the attribute
  ``values_block_<k>_kind``, a pickled list of strings;
* ``format="fixed"`` (``pandas_type`` ``frame``): ``block<k>_values`` ``(n_rows, n_cols)``
  datasets with their names in ``block<k>_items``.

Nothing is unpickled: the name lists are read by walking the pickle's opcodes
(:mod:`pickletools`), accepting only the opcodes of a flat list of strings, so a crafted file
cannot run code.
"""

from __future__ import annotations

import pickletools
from collections.abc import Sequence
from typing import Any

import numpy as np

from jetfm.errors import DataError

#: opcodes of a pickled flat list of strings (anything else is refused)
_LIST_OPS = {
    "PROTO", "FRAME", "MARK", "LIST", "EMPTY_LIST", "APPEND", "APPENDS", "PUT", "BINPUT",
    "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET", "STOP",
}  # fmt: skip
_STRING_OPS = {
    "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "STRING", "BINSTRING",
    "SHORT_BINSTRING",
}  # fmt: skip


def pickled_names(data: bytes, where: str) -> list[str]:
    """The strings of a pickled flat list of strings, read without unpickling."""
    names: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(bytes(data)):
            if op.name in _STRING_OPS:
                names.append(arg.decode() if isinstance(arg, bytes) else str(arg))
            elif op.name not in _LIST_OPS:
                raise DataError(
                    f"{where}: the column names are not a plain list of strings (pickle "
                    f"opcode {op.name}); jetfm does not unpickle file contents"
                )
    except DataError:
        raise
    except Exception as err:  # a truncated / corrupt attribute
        raise DataError(f"{where}: the column names cannot be read ({err})") from err
    return names


def is_pandas_frame(group: Any) -> bool:
    """True for the HDF5 group of a DataFrame written by ``DataFrame.to_hdf``."""
    kind = group.attrs.get("pandas_type")
    kind = kind.decode() if isinstance(kind, bytes) else kind
    return kind in ("frame", "frame_table")


class PandasFrame:
    """The columns of one stored DataFrame: ``columns`` (name → (shape after the row axis,
    dtype kind)), ``num_rows`` and :meth:`read`."""

    def __init__(self, group: Any, path: str):
        self.path = path
        kind = group.attrs.get("pandas_type")
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        where = f"{path}: pandas frame {group.name!r}"
        #: column name → (dataset, compound field or None, column index or None)
        self._where: dict[str, tuple[Any, str | None, int | None]] = {}
        self.columns: dict[str, tuple[tuple[int, ...], str]] = {}
        if kind == "frame_table":
            table = group.get("table")
            if table is None or table.dtype.names is None:
                raise DataError(f"{where} has no compound 'table' dataset (a damaged file?)")
            self.num_rows = int(table.shape[0])
            for field in table.dtype.names:
                if field == "index":
                    continue
                dtype = table.dtype.fields[field][0]
                width = dtype.shape[0] if dtype.shape else None
                if width is None:  # a data column: one field per column
                    self._add(field, table, field, None, dtype.kind)
                    continue
                attr = table.attrs.get(f"{field}_kind")
                if attr is None:
                    raise DataError(f"{where}: no column names for {field!r}")
                names = pickled_names(np.asarray(attr).tobytes(), where)
                if len(names) != width:
                    raise DataError(
                        f"{where}: {field!r} has {width} columns but {len(names)} names"
                    )
                for i, name in enumerate(names):
                    self._add(name, table, field, i, dtype.base.kind)
        else:
            blocks = int(np.asarray(group.attrs.get("nblocks", 0)))
            self.num_rows = int(group["axis1"].shape[0]) if "axis1" in group else 0
            for b in range(blocks):
                values, items = group.get(f"block{b}_values"), group.get(f"block{b}_items")
                if values is None or items is None or values.ndim != 2:
                    raise DataError(f"{where}: block {b} is missing or not 2-dimensional")
                for i, name in enumerate(items[()].astype(str).tolist()):
                    self._add(name, values, None, i, values.dtype.kind)
        self._cache: tuple[tuple[str, str | None, int, int], np.ndarray] | None = None

    def _add(self, name: str, dataset: Any, field: str | None, index: int | None, kind: str):
        self._where[name] = (dataset, field, index)
        self.columns[name] = ((), kind)

    def _block(self, dataset: Any, field: str | None, start: int, stop: int) -> np.ndarray:
        key = (dataset.name, field, start, stop)
        if self._cache is None or self._cache[0] != key:
            data = dataset.fields(field)[start:stop] if field else dataset[start:stop]
            self._cache = (key, np.asarray(data))
        return self._cache[1]

    def read(self, names: Sequence[str], start: int, stop: int) -> dict[str, np.ndarray]:
        """Rows ``[start, stop)`` of the named columns (each block read once)."""
        out = {}
        for name in names:
            dataset, field, index = self._where[name]
            block = self._block(dataset, field, start, stop)
            out[name] = block if index is None else block[:, index]
        return out

    def close(self) -> None:
        self._cache = None


__all__ = ["PandasFrame", "is_pandas_frame", "pickled_names"]
