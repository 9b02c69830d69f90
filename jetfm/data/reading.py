"""Reading JetClass-layout files: paths, opening, branch checks, validation, chunks.

ROOT files (TTree or RNTuple) are read with uproot; parquet and HDF5 files through the
tables of :mod:`jetfm.data.formats`, which present their columns like a tree's branches, so
everything below (work units, checks, validation) is the same for every format.

Everything a user can get wrong about their files is caught here and raised as a
:class:`~jetfm.errors.DataError` naming the file and the tree/branch/entry, so nothing fails
later deep inside numpy or torch:

* a glob matching nothing, a missing file, a file that is not ROOT or is truncated/corrupt;
* a wrong tree name (the trees present are listed) or missing branches (the branches present,
  and the feature groups this file *can* feed, are listed);
* ``part_*`` branches of different lengths (both branches and the first bad entry are named);
* labels that are not one-hot (the entry is named); a jet of none of the classes in use is an
  error too unless ``other_classes="skip"`` (learning some classes of mixed files), which
  drops it, counted;
* NaN/inf values, by ``nan_policy``: ``"raise"`` (the default: a NaN in physics inputs is
  almost always an upstream bug, and :meth:`JetProcessor.fit` reads every file once before
  training, so it surfaces early) or ``"skip"`` (the jet is marked invalid and dropped, counted).

Files with 0 entries are skipped with a warning and counted (a glob over a production
directory often catches an empty job output); only when *every* file is empty is it an error.
Jets with 0 constituents are marked invalid in :mod:`jetfm.data.features` and dropped by the
datasets, counted and logged.

:func:`validate_arrays` also turns particles stored in other coordinate systems (pT/η/φ,
rapidity, coordinates relative to the jet, PDG ids) into the Cartesian four-vectors and
``pid`` flags the features use, once (:mod:`jetfm.data.coordinates`), and rejects
four-vectors that mark a wrong layout (negative energies, E well below |p|, pT and angles
read as momenta, chunks of jets without a particle).

Files are read through uproot's plain file source (no memory map) with its array cache off,
so memory while iterating is bounded by the chunk size, not the file size.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from jetfm.data.coordinates import check_four_vectors, to_cartesian
from jetfm.data.formats import EXTENSIONS, detect_format, is_table, open_table, short_message
from jetfm.data.schema import FEATURE_GROUPS, JETCLASS_LABELS, REQUIRED_GROUP, BranchMapping
from jetfm.errors import DataError

logger = logging.getLogger(__name__)

DEFAULT_FEATURE_GROUPS: tuple[str, ...] = ("kinematics", "pid", "tracks")
TARGETS: tuple[str, ...] = ("labels", "parton_labels", "track_labels", "vertex_labels")
#: targets with one value per jet (the others have one per particle)
JET_TARGETS: tuple[str, ...] = ("labels", "parton_labels")
NAN_POLICIES: tuple[str, ...] = ("raise", "skip")
#: what to do with a jet of none of the classes in use (``label_names`` picks some classes)
OTHER_CLASS_POLICIES: tuple[str, ...] = ("raise", "skip")
#: mapping field read for each per-particle target
TARGET_FIELDS = {"track_labels": "origin", "vertex_labels": "vertex"}
#: mapping field read for each per-jet target besides ``labels`` (one value per jet)
JET_TARGET_FIELDS = {"parton_labels": "parton"}

PathsLike = str | os.PathLike | Sequence[str | os.PathLike]


# --- what to read ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ReadSpec:
    """What to read from each file and how strictly.

    Args:
        mapping: branch and tree names.
        feature_groups: groups of :data:`~jetfm.data.schema.FEATURE_GROUPS` to read
            (``kinematics`` is always required).
        targets: any of ``labels``, ``parton_labels`` (the flavour of a QCD jet's hard
            parton, see :mod:`jetfm.data.truth`), ``track_labels``, ``vertex_labels``.
        label_names: class names, in output order (``label_prefix + name`` branches); needed
            when ``labels`` is a target.
        nan_policy: ``"raise"`` or ``"skip"`` for NaN/inf inputs.
        other_classes: ``"raise"`` (default) or ``"skip"`` for a jet whose labels are all 0
            among ``label_names``, i.e. of another class of mixed files; only with ``labels``.
    """

    mapping: BranchMapping = dataclasses.field(default_factory=BranchMapping)
    feature_groups: tuple[str, ...] = DEFAULT_FEATURE_GROUPS
    targets: tuple[str, ...] = ()
    label_names: tuple[str, ...] | None = None
    nan_policy: str = "raise"
    other_classes: str = "raise"

    def __post_init__(self) -> None:
        groups = tuple(self.feature_groups)
        unknown = [g for g in groups if g not in FEATURE_GROUPS]
        if unknown:
            raise DataError(f"unknown feature group(s) {unknown}; known: {list(FEATURE_GROUPS)}")
        if REQUIRED_GROUP not in groups:
            raise DataError(f"feature_groups must include {REQUIRED_GROUP!r}; got {list(groups)}")
        # canonical order, so ("tracks", "kinematics") and ("kinematics", "tracks") agree
        object.__setattr__(self, "feature_groups", tuple(g for g in FEATURE_GROUPS if g in groups))
        bad = [t for t in self.targets if t not in TARGETS]
        if bad:
            raise DataError(f"unknown target(s) {bad}; choose from {list(TARGETS)}")
        object.__setattr__(self, "targets", tuple(t for t in TARGETS if t in self.targets))
        if self.nan_policy not in NAN_POLICIES:
            raise DataError(f"nan_policy must be one of {NAN_POLICIES}; got {self.nan_policy!r}")
        if self.other_classes not in OTHER_CLASS_POLICIES:
            raise DataError(
                f"other_classes must be one of {OTHER_CLASS_POLICIES}; got {self.other_classes!r}"
            )
        if self.label_names is not None:
            object.__setattr__(self, "label_names", tuple(self.label_names))
        if "labels" in self.targets and not self.label_names:
            raise DataError("targets include 'labels' but no label names are known")


@dataclasses.dataclass(frozen=True)
class WorkUnit:
    """One piece of streaming work: entries ``[entry_start, entry_stop)`` of one file."""

    path: str
    file_index: int
    entry_start: int
    entry_stop: int


@dataclasses.dataclass
class RawChunk:
    """Validated arrays of one entry range, keyed by mapping field (``px``, ``jet_pt``, ...).

    ``fields["labels"]`` (if read) is the class index of each jet in label order (int64);
    jagged fields are awkward arrays. ``nonfinite`` marks jets with NaN/inf inputs (only
    possible under ``nan_policy="skip"``); ``other_class`` marks jets of none of the classes
    in use (only under ``other_classes="skip"``; their label is -1).
    """

    fields: dict[str, Any]
    nonfinite: np.ndarray
    other_class: np.ndarray
    source: str
    entry_start: int
    file_index: int = 0

    def __len__(self) -> int:
        return len(self.nonfinite)


# --- paths -----------------------------------------------------------------------------------
def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def expand_paths(paths: PathsLike) -> list[Path]:
    """Files named by a path, a glob, a directory (its ``*.root``, ``*.parquet``, ``*.h5``
    ... files) or a list of those.

    Raises DataError for an empty glob (naming the pattern) or a missing file. Order is kept
    (globs sorted) and duplicates dropped.
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise DataError("no input files given")
    out: list[Path] = []
    for item in items:
        text = os.path.expanduser(os.fspath(item))
        if _has_magic(text):
            found = sorted(glob.glob(text, recursive=True))
            if not found:
                raise DataError(f"no files match the pattern {text!r}")
            out.extend(Path(f) for f in found)
        elif os.path.isdir(text):
            endings = tuple(e for ends in EXTENSIONS.values() for e in ends)
            found = sorted(f for f in glob.glob(os.path.join(text, "*")) if f.endswith(endings))
            if not found:
                raise DataError(
                    f"directory {text!r} contains no *.root files (nor {list(endings[1:])})"
                )
            out.extend(Path(f) for f in found)
        elif os.path.isfile(text):
            out.append(Path(text))
        else:
            raise DataError(f"input file {text!r} does not exist")
    return list(dict.fromkeys(out))


# --- opening ---------------------------------------------------------------------------------
def open_file(path: str | os.PathLike) -> Any:
    """Open a ROOT file with uproot (no memory map, no array cache); DataError if unreadable."""
    import uproot

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"input file {path!r} does not exist")
    try:
        return uproot.open(
            path,
            handler=uproot.source.file.MultithreadedFileSource,
            array_cache=None,
            object_cache=None,
            num_workers=1,
        )
    except Exception as err:  # uproot raises many types for bad files; name the file
        raise DataError(
            f"{path}: cannot be read as a ROOT file ({type(err).__name__}: "
            f"{short_message(err)}); is it truncated, corrupt or not a ROOT file?"
        ) from err


_TREE_CLASSES = ("TTree", "TNtuple", "ROOT::RNTuple")


def get_tree(file: Any, path: str | os.PathLike, tree_name: str) -> Any:
    """The TTree or RNTuple ``tree_name`` of an open file; DataError listing those present."""
    import uproot

    try:
        classnames = file.classnames()
    except Exception as err:
        raise DataError(
            f"{path}: the file's directory cannot be read ({type(err).__name__}: "
            f"{short_message(err)}); is it truncated or corrupt?"
        ) from err
    trees = sorted({k.split(";")[0] for k, v in classnames.items() if v in _TREE_CLASSES})
    if tree_name not in {k.split(";")[0] for k in classnames}:
        raise DataError(
            f"{path}: no tree {tree_name!r}; trees present: {trees or 'none'} "
            "(set BranchMapping(tree=...))"
        )
    try:
        obj = file[tree_name]
    except Exception as err:
        raise DataError(
            f"{path}: tree {tree_name!r} cannot be read ({type(err).__name__}: "
            f"{short_message(err)}); is the file truncated or corrupt?"
        ) from err
    if not isinstance(obj, (uproot.behaviors.TTree.TTree, uproot.behaviors.RNTuple.RNTuple)):
        raise DataError(
            f"{path}: {tree_name!r} is a {type(obj).__name__}, not a TTree or RNTuple; trees "
            f"present: {trees or 'none'}"
        )
    return obj


def open_tree(path: str | os.PathLike, mapping: BranchMapping) -> tuple[Any, Any]:
    """(handle to close, tree-like table) of a ROOT, parquet or HDF5 file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"input file {path!r} does not exist")
    fmt = detect_format(path)
    if fmt == "root":
        file = open_file(path)
        try:
            return file, get_tree(file, path, mapping.tree)
        except BaseException:
            file.close()
            raise
    table = open_table(path, mapping, fmt)
    return table, table


class TreeReader:
    """Keeps one file open at a time (a worker walks its units file by file).

    ``mapping`` (or just a tree name) says which tree of a ROOT file to read and, for parquet
    and HDF5 files, how their columns are laid out.
    """

    def __init__(self, mapping: BranchMapping | str):
        self.mapping = (
            mapping if isinstance(mapping, BranchMapping) else BranchMapping(tree=mapping)
        )
        self.tree_name = self.mapping.tree
        self._path: str | None = None
        self._file: Any = None
        self._tree: Any = None

    def tree(self, path: str) -> Any:
        if path != self._path:
            self.close()
            self._file, self._tree = open_tree(path, self.mapping)
            self._path = path
        return self._tree

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._path = self._file = self._tree = None

    def __enter__(self) -> TreeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- branches --------------------------------------------------------------------------------
def _order_labels(names: Sequence[str]) -> tuple[str, ...]:
    known = [n for n in JETCLASS_LABELS if n in names]
    return tuple(known + sorted(n for n in names if n not in JETCLASS_LABELS))


def label_names_in(keys: Sequence[str], mapping: BranchMapping) -> tuple[str, ...]:
    """Class names of the ``label_prefix*`` branches among ``keys``, in JetClass order."""
    prefix = mapping.label_prefix
    return _order_labels([k[len(prefix) :] for k in keys if k.startswith(prefix) and k != prefix])


def available_groups(keys: Sequence[str], mapping: BranchMapping) -> tuple[str, ...]:
    """Feature groups whose every branch is among ``keys`` (canonical order)."""
    present = set(keys)
    return tuple(
        g for g in FEATURE_GROUPS if all(b in present for b in mapping.branches_for([g]).values())
    )


def _with_tree(path: str | os.PathLike, mapping: BranchMapping, fn: Any) -> Any:
    with TreeReader(mapping) as reader:
        return fn(reader.tree(os.fspath(path)))


def detect_feature_groups(
    paths: PathsLike, mapping: BranchMapping | None = None
) -> tuple[str, ...]:
    """Feature groups every given file can feed (e.g. ``("kinematics",)`` for 4-vectors only).

    Raises DataError if even ``kinematics`` is not available in some file.
    """
    mapping = mapping or BranchMapping()
    common: tuple[str, ...] | None = None
    for path in expand_paths(paths):
        keys = _with_tree(path, mapping, lambda t: list(t.keys()))
        groups = available_groups(keys, mapping)
        if REQUIRED_GROUP not in groups:
            need = list(mapping.branches_for([REQUIRED_GROUP]).values())
            raise DataError(
                f"{path}: tree {mapping.tree!r} lacks the 4-vector branches {need} needed for "
                f"any input; branches present: {sorted(keys)}"
            )
        common = groups if common is None else tuple(g for g in common if g in groups)
    return common or (REQUIRED_GROUP,)


def groups_for_files(
    paths: Sequence[PathsLike],
    groups: Sequence[str],
    mapping: BranchMapping | None = None,
    what: str = "the model",
) -> tuple[str, ...]:
    """The ``groups`` every file of every entry of ``paths`` has (e.g. train and validation).

    Used when a checkpoint knows more groups than the files provide (a model pre-trained
    with particle ID, fine-tuned on four-vectors only): the missing groups are left out and
    that is logged once, instead of a missing-branch error.
    """
    present = set(FEATURE_GROUPS)
    for item in paths:
        present &= set(detect_feature_groups(item, mapping))
    usable = tuple(g for g in groups if g in present)
    dropped = [g for g in groups if g not in present]
    if dropped:
        logger.info(
            "%s reads feature groups %s; the files have only %s, so %s are left out "
            "(choose with --feature-groups / feature_groups=)",
            what,
            list(groups),
            list(usable),
            dropped,
        )
    return usable


def resolve_label_names(paths: PathsLike, mapping: BranchMapping | None = None) -> tuple[str, ...]:
    """``mapping.labels`` if set, else every ``label_*`` branch of the first file (JetClass
    order: :data:`~jetfm.data.schema.JETCLASS_LABELS` first, then the others sorted)."""
    mapping = mapping or BranchMapping()
    if mapping.labels:
        return tuple(mapping.labels)
    first = expand_paths(paths)[0]

    def names(tree: Any) -> tuple[str, ...]:
        if is_table(tree) and tree.label_column is not None:
            return tree.label_names  # a class-index column: index order
        return label_names_in(list(tree.keys()), mapping)

    return _with_tree(first, mapping, names)


class KeyList:
    """The ``keys()`` of in-memory arrays, so :func:`plan_branches` checks them like a tree."""

    def __init__(self, keys: Sequence[str]):
        self._keys = list(keys)

    def keys(self) -> list[str]:
        return self._keys


def plan_branches(tree: Any, path: str | os.PathLike, spec: ReadSpec) -> dict[str, str]:
    """``{field: branch}`` to read from this tree; DataError naming what is missing.

    The jet-axis branches are optional: read if all four exist (else the axis is the sum of
    the constituents).
    """
    mapping = spec.mapping
    keys = list(tree.keys())
    present = set(keys)
    plan: dict[str, str] = {}
    problems: list[str] = []
    for group in spec.feature_groups:
        fields = mapping.branches_for([group])
        missing = [b for b in fields.values() if b not in present]
        if missing:
            problems.append(f"feature group {group!r} needs {missing}")
        plan.update(fields)
    for target in spec.targets:
        if target == "labels":
            branches = {f"label:{n}": f"{mapping.label_prefix}{n}" for n in spec.label_names or ()}
        else:
            field = TARGET_FIELDS.get(target) or JET_TARGET_FIELDS[target]
            branches = {field: getattr(mapping, field)}
        missing = [b for b in branches.values() if b not in present]
        if missing:
            problems.append(f"target {target!r} needs {missing}")
        plan.update(branches)
    if problems:
        if is_table(tree):  # "name[i]" of an array of the wrong shape: say so precisely
            for branch in plan.values():
                if branch not in present:
                    tree.explain_missing(branch)
        groups = available_groups(keys, mapping)
        hint = (
            f"feature groups available in this file: {list(groups)}"
            if REQUIRED_GROUP in groups
            else "not even the 4-vectors are there: map your names with BranchMapping"
        )
        where = f"tree {mapping.tree!r}" if not is_table(tree) else f"the {tree.format} file"
        raise DataError(
            f"{path}: {where} is missing branches: {'; '.join(problems)}. "
            f"Branches present: {sorted(keys)}. {hint}"
        )
    # the jet axis: for the features if all four exist (else the constituent sum), and each
    # one that exists for relative coordinates (Δη/Δφ around it, pT or E relative to it)
    jet = {f: getattr(mapping, f) for f in BranchMapping.JET_FIELDS}
    have = {f: b for f, b in jet.items() if b is not None and b in present}
    if len(have) == len(jet) or mapping.coordinates != "cartesian":
        plan.update(have)
    declared = [b for b in jet.values() if b is not None]
    if have and len(have) < len(jet) and len(declared) == len(jet):
        logger.warning(
            "%s: only some jet-axis branches exist (%s); using the constituent sum as axis",
            path,
            list(have.values()),
        )
    return plan


# --- reading and validating a chunk -----------------------------------------------------------
def _leaf_kind(arr: Any) -> str:
    """numpy dtype kind of an array's values (``U`` for strings, ``O`` for records etc.)."""
    layout = ak.to_layout(arr)
    while hasattr(layout, "content"):
        if layout.parameter("__array__") in ("string", "bytestring"):
            return "U"
        layout = layout.content
    dtype = getattr(layout, "dtype", None)
    return dtype.kind if dtype is not None else "O"


def _is_float(arr: Any) -> bool:
    return _leaf_kind(arr) == "f"


def _per_jet(field: str) -> bool:
    """A field with one value per jet (jet axis, labels, the matched parton)."""
    return field.startswith(("jet_", "label:")) or field in JET_TARGET_FIELDS.values()


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def validate_arrays(
    arrays: Mapping[str, Any],
    plan: Mapping[str, str],
    spec: ReadSpec,
    source: str = "<in-memory>",
    entry_start: int = 0,
    file_index: int = 0,
) -> RawChunk:
    """Map branch arrays to fields and validate them (shapes, jagged lengths, one-hot, NaN).

    ``arrays`` is indexable by branch name (an awkward record array from ``tree.arrays`` or a
    dict); ``plan`` is ``{field: branch}`` (see :func:`plan_branches`). Entries in messages
    are ``entry_start + i``.
    """
    where = f"{source}"
    fields: dict[str, Any] = {}
    n: int | None = None
    ref_field = spec.mapping.coordinate_fields()[0]
    ref_counts: np.ndarray | None = None
    for field, branch in plan.items():
        try:
            arr = arrays[branch]
        except (KeyError, ak.errors.FieldNotFoundError, ValueError) as err:
            raise DataError(f"{where}: branch {branch!r} is missing from the input") from err
        arr = ak.Array(arr) if not isinstance(arr, ak.Array) else arr
        kind = _leaf_kind(arr)
        if kind not in "biuf":
            raise DataError(
                f"{where}: branch {branch!r} is not numeric (type {arr.type}); map "
                f"{field!r} to a numeric column"
            )
        n = len(arr) if n is None else n
        if len(arr) != n:
            raise DataError(f"{where}: branch {branch!r} has {len(arr)} entries, others have {n}")
        jagged = not _per_jet(field)
        if jagged and arr.ndim != 2:
            raise DataError(
                f"{where}: branch {branch!r} should hold one value per particle (jagged) but "
                f"has type {arr.type}"
            )
        if not jagged and arr.ndim != 1:
            raise DataError(
                f"{where}: branch {branch!r} should hold one value per jet but has type {arr.type}"
            )
        fields[field] = arr
    n = n or 0
    # jagged lengths must agree with the 4-vectors
    ref_branch = plan.get(ref_field)
    if ref_branch is not None:
        ref_counts = ak.to_numpy(ak.num(fields[ref_field], axis=1))
        for field, branch in plan.items():
            if _per_jet(field) or field == ref_field:
                continue
            counts = ak.to_numpy(ak.num(fields[field], axis=1))
            bad = counts != ref_counts
            if bad.any():
                i = _first(bad)
                raise DataError(
                    f"{where}: branches {ref_branch!r} and {branch!r} have different lengths "
                    f"(first at entry {entry_start + i}: {ref_counts[i]} vs {counts[i]} particles)"
                )
    # NaN / inf in any float input
    nonfinite = np.zeros(n, dtype=bool)
    for field, branch in plan.items():
        arr = fields[field]
        if not _is_float(arr):
            continue
        finite = np.isfinite(arr)
        bad = ~ak.to_numpy(ak.all(finite, axis=1)) if arr.ndim == 2 else ~ak.to_numpy(finite)
        if bad.any():
            if spec.nan_policy == "raise":
                raise DataError(
                    f"{where}: branch {branch!r} has NaN/inf values (first at entry "
                    f"{entry_start + _first(bad)}); fix the file or pass nan_policy='skip' to "
                    "drop such jets"
                )
            nonfinite |= bad
    # labels: one-hot, in label order
    other_class = np.zeros(n, dtype=bool)
    label_fields = [f for f in plan if f.startswith("label:")]
    if label_fields:
        onehot = np.stack(
            [ak.to_numpy(fields.pop(f)).astype(np.float64) for f in label_fields], axis=1
        )
        binary = np.all((onehot == 0) | (onehot == 1), axis=1)
        bad = ~(binary & (onehot.sum(axis=1) == 1))
        if spec.other_classes == "skip":
            other_class = binary & (onehot.sum(axis=1) == 0)
            bad &= ~other_class
        if bad.any():
            i = _first(bad)
            names = [plan[f] for f in label_fields]
            hint = "every jet needs exactly one class among the label names in use"
            if binary[i] and onehot[i].sum() == 0:
                # the usual cause: classes=/--classes picks some classes of mixed files
                hint = (
                    f"this jet is of none of the classes in use {list(spec.label_names or ())}; "
                    "to learn only some classes of mixed files, skip the others "
                    "(other_classes='skip', `jetfm finetune --skip-other-classes`) or give "
                    "only their jets' files"
                )
            raise DataError(
                f"{where}: labels are not one-hot at entry {entry_start + i} (branches {names} "
                f"= {onehot[i].tolist()}); {hint}"
            )
        fields["labels"] = np.where(other_class, -1, onehot.argmax(axis=1)).astype(np.int64)
    if ref_branch is not None:
        fields = to_cartesian(fields, spec.mapping, where)
        check_four_vectors(fields, spec.mapping, dict(plan), where, entry_start)
        _check_not_all_empty(fields, plan, spec, where, entry_start)
    return RawChunk(fields, nonfinite, other_class, source, entry_start, file_index)


#: a chunk of at least this many jets, none with a particle, is a layout error (not bad luck)
MIN_JETS_ALL_EMPTY = 20


def _check_not_all_empty(
    fields: Mapping[str, Any], plan: Mapping[str, str], spec: ReadSpec, where: str, start: int
) -> None:
    n = len(fields["px"])
    if n < MIN_JETS_ALL_EMPTY or ak.any(ak.num(fields["px"], axis=1) > 0):
        return
    columns = [plan[f] for f in spec.mapping.coordinate_fields()]
    mask = f" and the mask {spec.mapping.mask!r}" if spec.mapping.mask else ""
    raise DataError(
        f"{where}: none of the {n} jets of entries {start}–{start + n} has a particle (every "
        f"four-vector of {columns}{mask} is zero or masked): is the layout right?"
    )


def read_unit(reader: TreeReader, unit: WorkUnit, spec: ReadSpec) -> RawChunk:
    """Read and validate one work unit (DataError names file, branch and entry range)."""
    tree = reader.tree(unit.path)
    plan = plan_branches(tree, unit.path, spec)
    try:
        arrays = tree.arrays(
            list(dict.fromkeys(plan.values())),
            entry_start=unit.entry_start,
            entry_stop=unit.entry_stop,
            library="ak",
            array_cache=None,
        )
    except DataError:
        raise
    except Exception as err:  # decompression / deserialisation failures of a corrupt file
        raise DataError(
            f"{unit.path}: reading entries {unit.entry_start}–{unit.entry_stop} of tree "
            f"{spec.mapping.tree!r} failed ({type(err).__name__}: {short_message(err)}); the "
            "file is probably truncated or corrupt"
        ) from err
    return validate_arrays(arrays, plan, spec, unit.path, unit.entry_start, unit.file_index)


# --- work units --------------------------------------------------------------------------------
@dataclasses.dataclass
class FilePlan:
    """Work units over a set of files, plus which files were skipped as empty."""

    units: list[WorkUnit]
    paths: list[str]
    entries: list[int]
    empty_files: list[str]

    @property
    def num_entries(self) -> int:
        return sum(self.entries)


def plan_work(paths: PathsLike, spec: ReadSpec, step_size: int) -> FilePlan:
    """Check every file (tree, branches) up front and split it into ``step_size`` ranges.

    Empty files are skipped with a warning (counted in ``empty_files``); DataError if all are
    empty. Checking up front means a bad file fails before training starts, not hours in.
    """
    if step_size < 1:
        raise DataError(f"step_size must be ≥ 1; got {step_size}")
    files = [os.fspath(p) for p in expand_paths(paths)]
    units: list[WorkUnit] = []
    entries: list[int] = []
    empty: list[str] = []
    with TreeReader(spec.mapping) as reader:
        for index, path in enumerate(files):
            tree = reader.tree(path)
            plan_branches(tree, path, spec)
            n = int(tree.num_entries)
            entries.append(n)
            if n == 0:
                logger.warning("%s: tree %r has 0 entries; skipping the file", path, tree.name)
                empty.append(path)
                continue
            for start in range(0, n, step_size):
                units.append(WorkUnit(path, index, start, min(start + step_size, n)))
            reader.close()
    if not units:
        raise DataError(
            f"every input file is empty (0 entries in tree {spec.mapping.tree!r}): {files}"
        )
    return FilePlan(units, files, entries, empty)


def iter_raw_chunks(units: Sequence[WorkUnit], spec: ReadSpec) -> Iterator[RawChunk]:
    """Read the given units in order, one file open at a time."""
    with TreeReader(spec.mapping) as reader:
        for unit in units:
            yield read_unit(reader, unit, spec)
