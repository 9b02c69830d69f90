"""Atomic, chunked writing of JetClass-layout ROOT files and the dataset manifest.

Files are TTrees (``uproot.WritableDirectory.mktree``; uproot ≥ 5.7 would otherwise write
an RNTuple) named ``tree``. The ``part_*`` columns are written as one record so they share
a single counter branch ``npart``, as in JetClass. Batches are appended with
``TTree.extend`` whenever enough jets are buffered, so memory stays flat however large the
file. Everything is written under a temporary name in the same directory and renamed
into place only when complete: an interrupted run never leaves a truncated file behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from jetfm.atomic import AtomicFile, write_text

TREE = "tree"
_PREFIX = "part_"


def to_branches(cols: dict[str, Any]) -> dict[str, Any]:
    """Group ``part_*`` columns into one ``part`` record (→ branches ``part_*`` + ``npart``)."""
    part = {k[len(_PREFIX) :]: v for k, v in cols.items() if k.startswith(_PREFIX)}
    out: dict[str, Any] = {k: v for k, v in cols.items() if not k.startswith(_PREFIX)}
    if part:
        out = {"part": ak.zip(part), **out}
    return out


class RootWriter:
    """Append column batches to a ROOT TTree; the file appears at ``path`` on close.

    Use as a context manager; on an exception the temporary file is removed.
    """

    def __init__(self, path: str | Path, flush_jets: int = 2000, tree: str = TREE) -> None:
        self.path = Path(path)
        self.flush_jets = flush_jets
        self.tree_name = tree
        self._pending: AtomicFile | None = None
        self._file = None
        self._tree = None
        self._buffer: list[dict[str, Any]] = []
        self._buffered = 0
        self.n_jets = 0

    def __enter__(self) -> RootWriter:
        import uproot

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pending = AtomicFile(self.path)
        try:
            self._file = uproot.recreate(self._pending.tmp)
        except BaseException:
            self._pending.abort()
            raise
        return self

    def write(self, cols: dict[str, Any]) -> None:
        """Buffer one batch of columns (same fields every time); flush when large enough."""
        n = len(next(iter(cols.values())))
        if n == 0:
            return
        self._buffer.append(cols)
        self._buffered += n
        if self._buffered >= self.flush_jets:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        keys = self._buffer[0].keys()
        cols = {k: _concat([b[k] for b in self._buffer]) for k in keys}
        data = to_branches(cols)
        if self._tree is None:
            types = {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in data.items()}
            self._tree = self._file.mktree(self.tree_name, types)
        self._tree.extend(data)
        self.n_jets += self._buffered
        self._buffer, self._buffered = [], 0

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            try:
                if exc_type is None:
                    self._flush()
            finally:
                self._file.close()
        except BaseException:
            self._pending.abort()
            raise
        if exc_type is None:
            self._pending.commit()
        else:
            self._pending.abort()


def _concat(parts: list[Any]) -> Any:
    if isinstance(parts[0], ak.Array):
        return ak.concatenate(parts) if len(parts) > 1 else parts[0]
    return np.concatenate(parts)


def write_json_atomic(path: str | Path, data: dict[str, Any]) -> None:
    """Write JSON to a temporary file next to ``path`` and rename it into place."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
