"""Planning a run over input files: what each file holds and which branches travel along.

Used by ``jetfm predict``: every input file is opened once before any output is written
(:func:`plan_inputs`: tree, branches, the branches copied into the output), then cut into
:class:`~jetfm.data.reading.WorkUnit` entry ranges (:func:`work_units`) read with
:func:`~jetfm.data.reading.read_unit`, like the streaming datasets.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from typing import Any

from jetfm.data.formats import is_table
from jetfm.data.reading import (
    PathsLike,
    ReadSpec,
    TreeReader,
    WorkUnit,
    expand_paths,
    plan_branches,
)
from jetfm.errors import DataError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class InputFile:
    """One input file: its entries, output name and the branches copied through."""

    path: str
    file_index: int
    num_entries: int
    tree: str
    copy: tuple[str, ...]
    #: copied jagged ``part_*`` branches sharing the particle counter (written with it)
    particle_group: tuple[str, ...]
    #: ``root``, ``parquet``, ``hdf5`` or ``npz``: the output is written in the same format
    #: (HDF5 for ``npz``)
    format: str = "root"
    #: particle slots per jet of a padded input (per-particle outputs of HDF5 are padded too)
    width: int | None = None


def copy_plan(
    tree: Any, path: str, spec: ReadSpec, copy: str | Sequence[str] | None, taken: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(branches to copy, those of them sharing the particles' counter and named ``part_*``)."""
    keys = list(tree.keys())
    table = is_table(tree)
    counters = set()
    for key in [] if table else keys:
        count = getattr(tree[key], "count_branch", None)
        if count is not None:
            counters.add(count.name)
    if copy in (None, "none", ()):
        names: list[str] = []
    elif copy == "all":
        # counters are re-created by the writer; a table's stored columns, not its views
        names = list(tree.columns) if table else [k for k in keys if k not in counters]
    else:
        names = [copy] if isinstance(copy, str) else list(copy)
        missing = [b for b in names if b not in keys]
        if missing:
            raise DataError(
                f"{path}: branches {missing} to copy are not in tree {spec.mapping.tree!r}; "
                f"branches present: {sorted(keys)}"
            )
    clash = [b for b in names if b in taken]
    if clash:
        logger.warning("%s: not copying %s: the predictions use these names", path, clash)
        names = [b for b in names if b not in taken]
    if table:  # no counters in columnar files: each column is written as it is
        return tuple(names), ()
    first = spec.mapping.branches_for(["kinematics"])
    px = getattr(tree[next(iter(first.values()))], "count_branch", None)
    group = tuple(
        b
        for b in names
        if b.startswith("part_")
        and px is not None
        and getattr(tree[b], "count_branch", None) is not None
        and tree[b].count_branch.name == px.name
    )
    return tuple(names), group


def plan_inputs(
    paths: PathsLike,
    spec: ReadSpec,
    copy_branches: str | Sequence[str] | None = None,
    taken: Sequence[str] = (),
) -> list[InputFile]:
    """Open every file once up front: tree, branches, copy plan (fail before any output)."""
    files = [os.fspath(p) for p in expand_paths(paths)]
    out = []
    with TreeReader(spec.mapping) as reader:
        for index, path in enumerate(files):
            tree = reader.tree(path)
            plan_branches(tree, path, spec)
            copy, group = copy_plan(tree, path, spec, copy_branches, taken)
            fmt = tree.format if is_table(tree) else "root"
            first = next(iter(spec.mapping.branches_for(["kinematics"]).values()))
            width = tree.particle_width(first) if is_table(tree) else None
            out.append(
                InputFile(
                    path, index, int(tree.num_entries), spec.mapping.tree, copy, group, fmt, width
                )  # fmt: skip
            )
            reader.close()
    return out


def work_units(files: Sequence[InputFile], step_size: int) -> list[WorkUnit]:
    """The files' entries cut into ranges of ``step_size``, in file order (an empty file
    gets one empty unit, so its empty output is still written)."""
    units = []
    for f in files:
        starts = range(0, f.num_entries, step_size) if f.num_entries else [0]
        units.extend(
            WorkUnit(f.path, f.file_index, s, min(s + step_size, f.num_entries)) for s in starts
        )
    return units


def read_copied(reader: TreeReader, file: InputFile, unit: WorkUnit) -> dict[str, Any]:
    """The branches of ``file`` copied into the output, for the entries of ``unit``."""
    if not file.copy:
        return {}
    tree = reader.tree(file.path)
    try:
        arrays = tree.arrays(
            list(file.copy), entry_start=unit.entry_start, entry_stop=unit.entry_stop,
            library="ak", array_cache=None,
        )  # fmt: skip
    except Exception as err:
        raise DataError(
            f"{file.path}: cannot read the branches to copy {list(file.copy)} "
            f"({type(err).__name__}: {err})"
        ) from err
    return {name: arrays[name] for name in file.copy}


__all__ = ["InputFile", "copy_plan", "plan_inputs", "read_copied", "work_units"]
