"""parquet, HDF5 and NumPy ``.npz`` inputs, read like a ROOT tree: one table of named columns
per file.

:func:`open_table` gives, for a parquet, HDF5 or ``.npz`` file, an object with the part of
uproot's ``TTree`` interface the reader uses (``name``, ``num_entries``, ``keys()`` and
``arrays(names, entry_start=, entry_stop=)``), so work units, branch checks, validation,
sharding and streaming are the same code for every format. These layouts are understood:

* **jagged** per-particle columns (parquet list columns, like JetClass-II): used as they are;
* **padded** per-particle arrays, ``(n_jets, n_particles)`` or ``(n_jets, n_particles, k)``
  (HDF5 datasets, ``.npz`` arrays or fixed-size parquet lists, like the top-tagging set's
  ``(n, 200, 4)`` four-vectors (E, px, py, pz)): component ``i`` of the last axis is the
  column ``"name[i]"``; the real particles are those of the ``mask`` column (mapping field
  ``mask``, which may be a component ``"name[i]"``, or a column named ``mask``), else the
  slots whose coordinates are not all zero (the zero-padding convention). Padded arrays are
  turned into jagged ones chunk by chunk;
* **numbered columns** ``E_0, E_1, ...`` (one row per jet, like the top-tagging set's original
  pandas frame): the mapping names them ``"E_{i}"`` and they are read as one padded array;
* a component ``"name[i]"`` of a per-jet ``(n_jets, k)`` array for the jet fields (JetNet's
  ``jet_features``).

An HDF5 group written by ``DataFrame.to_hdf`` is read as the table of the frame's columns
(:mod:`jetfm.data.pandas_hdf`, no pandas needed); ``.npz`` archives are opened with
``allow_pickle=False``.

Labels may be one-hot columns (``label_<class>``, as in ROOT), one column of class indices
(integers, 0./1. floats or booleans), of class-name strings (``"top"``, ``"qcd"``) or one
``(n_jets, n_classes)`` one-hot array (mapping field ``label``; columns named
``label``/``labels``/``jet_label``/``is_signal``/``y`` are found without it); the table
presents them as ``label_<class>`` columns, so the rest of the reader needs no special case.
Class names come from the mapping's ``label_classes`` (index order), else the strings (sorted)
or ``"0"``, ``"1"``, ... A NaN or fractional label is an error naming the file, the column
and the entry.

When the mapping keeps the JetClass names and the file has none of them but exactly one
padded array of width 4, that array is taken as (E, px, py, pz) (the top-tagging order), and
said so in the log. Memory is bounded by the chunk (HDF5 slices; the parquet row groups a
chunk touches; a ``.npz`` member is loaded whole).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Sequence
from typing import Any

import awkward as ak
import numpy as np

from jetfm.data.pandas_hdf import PandasFrame, is_pandas_frame
from jetfm.data.schema import BranchMapping
from jetfm.errors import DataError

logger = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("root", "parquet", "hdf5", "npz")
#: file name endings of each format (directories are searched for these)
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "root": (".root",),
    "parquet": (".parquet", ".parq", ".pq"),
    "hdf5": (".h5", ".hdf5", ".hdf"),
    "npz": (".npz",),
}
_MAGIC = {
    b"root": "root",
    b"PAR1": "parquet",
    b"\x89HDF\r\n\x1a\n": "hdf5",
    b"PK\x03\x04": "npz",  # a zip archive: NumPy's .npz
}
#: label columns recognised without a mapping (class indices or a one-hot array)
LABEL_COLUMN_NAMES: tuple[str, ...] = ("label", "labels", "jet_label", "is_signal", "y")
#: the component order of an auto-detected four-vector array (top-tagging reference set)
FOUR_VECTOR_ORDER: tuple[str, ...] = ("energy", "px", "py", "pz")
_EXPLAINED: set[str] = set()
_LARGEST_INDEX: dict[tuple[str, int, int, str], Any] = {}
#: rows read at a time when scanning a label column for its classes
LABEL_SCAN_ROWS = 1_000_000
_COMPONENT = re.compile(r"^(?P<base>.+)\[(?P<index>\d+)\]$")


def detect_format(path: str | os.PathLike) -> str:
    """``root``, ``parquet`` or ``hdf5``, from the file's first bytes, else its name.

    A file too short for its magic bytes (empty, cut) falls back to its name ending; the
    reader of that format then reports what is wrong with it.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as err:
        raise DataError(f"{path}: cannot be opened ({err})") from err
    for magic, fmt in _MAGIC.items():
        if head.startswith(magic):
            return fmt
    lower = path.lower()
    for fmt, endings in EXTENSIONS.items():
        if lower.endswith(endings):
            return fmt
    raise DataError(
        f"{path}: not a ROOT, parquet, HDF5 or .npz file (unknown first bytes {head!r} and name "
        f"ending; known endings: {[e for ends in EXTENSIONS.values() for e in ends]})"
    )


def short_message(err: BaseException, limit: int = 300) -> str:
    """A library's error message on one line, cut at ``limit`` characters (for DataErrors)."""
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit] + "…"


# --- columns -----------------------------------------------------------------------------------
def _plain(arr: Any, path: str, name: str) -> Any:
    """``arr`` without option types (parquet columns are nullable); DataError on a null."""
    if isinstance(arr, np.ndarray):
        return arr
    text = str(arr.type)
    if "?" not in text and "option" not in text:
        return arr
    missing = ak.is_none(arr, axis=0)
    if arr.ndim > 1:
        missing = missing | ak.fill_none(ak.any(ak.is_none(arr, axis=1), axis=1), True)
    missing = np.asarray(ak.to_numpy(missing), dtype=bool)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError(f"{path}: column {name!r} has missing (null) values (first at row {i})")
    counts = ak.fill_none(ak.num(arr, axis=1), 0) if arr.ndim > 1 else None
    flat = np.ma.getdata(ak.to_numpy(ak.flatten(arr, axis=None)))
    if counts is None:
        return flat
    return ak.unflatten(flat, np.ma.getdata(ak.to_numpy(counts)))


def _padded_to_jagged(values: np.ndarray, mask: np.ndarray) -> ak.Array:
    """Padded ``(n, P)`` values → jagged, keeping the slots where ``mask`` is True."""
    return ak.unflatten(values[mask], mask.sum(axis=1))


class _Column:
    """What the table knows about one stored column: shape after the jet axis, numeric or not."""

    def __init__(self, name: str, inner: tuple[int, ...] | None, dtype: str):
        self.name = name
        #: ``()`` per jet, ``(P,)`` / ``(P, k)`` padded, ``None`` jagged (or not understood)
        self.inner = inner
        self.dtype = dtype

    @property
    def padded(self) -> bool:
        return self.inner is not None and len(self.inner) >= 1


class ColumnTable:
    """Shared logic of the parquet and HDF5 tables: names, labels, padding, jagged output.

    Subclasses set ``path``, ``name``, ``num_entries`` and ``columns`` (``{name: _Column}``)
    and implement :meth:`_read` (stored columns, rows ``[start, stop)``).
    """

    format = "table"

    def __init__(self, path: str, mapping: BranchMapping):
        self.path = path
        self.mapping = mapping
        self.aliases: dict[str, str] = {}  # virtual name → stored name / component
        self.label_column: str | None = None
        self.label_names: tuple[str, ...] = ()
        self.label_strings = False  # class names stored as strings in the label column
        self.mask_column: str | None = None
        self.mask_index: int | None = None
        #: ``"E_{i}"`` keys: the numbered columns ``E_0, E_1, ...`` read as one padded array
        self.families: dict[str, list[str]] = {}
        #: per-jet fields of the mapping: their ``"name[i]"`` may be a column of (n_jets, k)
        self._jet_keys = {
            v for f in BranchMapping.JET_FIELDS if (v := getattr(mapping, f)) is not None
        }

    # set-up ---------------------------------------------------------------------------------
    def _finish_setup(self) -> None:
        self._setup_families()
        self._setup_four_vectors()
        self._setup_mask()
        self._setup_labels()

    def _setup_families(self) -> None:
        for value in self.mapping.to_dict().values():
            if not isinstance(value, str) or "{i}" not in value or value in self.families:
                continue
            pattern = re.compile("^" + re.escape(value).replace(r"\{i\}", r"(\d+)") + "$")
            found = {int(m[1]): name for name in self.columns if (m := pattern.match(name))}
            if not found:
                continue
            width = max(found) + 1
            if sorted(found) != list(range(width)):
                missing = sorted(set(range(width)) - set(found))[:5]
                raise DataError(
                    f"{self.path}: the columns {value!r} are not numbered 0..{width - 1} "
                    f"(missing {[value.replace('{i}', str(i)) for i in missing]})"
                )
            members = [found[i] for i in range(width)]
            kinds = {self.columns[m].dtype for m in members}
            self.families[value] = members
            self.columns[value] = _Column(value, (width,), kinds.pop() if len(kinds) == 1 else "f")

    def _component_keys(self) -> list[str]:
        keys = []
        for col in self.columns.values():
            if col.inner is not None and len(col.inner) == 2:
                keys.extend(f"{col.name}[{i}]" for i in range(col.inner[1]))
        for key in self._jet_keys:  # components of per-jet (n_jets, k) arrays the mapping reads
            match = _COMPONENT.match(key)
            col = self.columns.get(match["base"]) if match else None
            if (
                col is not None
                and col.inner
                and len(col.inner) == 1
                and (int(match["index"]) < col.inner[0])
            ):
                keys.append(key)
        return keys

    def _setup_four_vectors(self) -> None:
        defaults = BranchMapping()
        fields = BranchMapping.GROUP_FIELDS["kinematics"]
        if self.mapping.coordinates != "cartesian":
            return
        if any(getattr(self.mapping, f) != getattr(defaults, f) for f in fields):
            return  # the user mapped the four-vectors: no guessing
        if any(getattr(defaults, f) in self.columns for f in fields):
            return
        vectors = [
            c for c in self.columns.values()
            if c.inner is not None and len(c.inner) == 2 and c.inner[1] == 4 and c.dtype == "f"
        ]  # fmt: skip
        if len(vectors) != 1:
            return
        base = vectors[0].name
        for i, field in enumerate(FOUR_VECTOR_ORDER):
            self.aliases[getattr(defaults, field)] = f"{base}[{i}]"
        if self.path in _EXPLAINED:
            return
        _EXPLAINED.add(self.path)  # said once per file, not at every reopening
        logger.info(
            "%s: no %s columns; reading the (n, %d, 4) array %r as (E, px, py, pz) four-vectors "
            "(map them with BranchMapping px/py/pz/energy: '%s[i]' if the order differs)",
            self.path,
            [getattr(defaults, f) for f in fields],
            vectors[0].inner[0],
            base,
            base,
        )

    def _setup_mask(self) -> None:
        name = self.mapping.mask
        if name is not None:
            match = _COMPONENT.match(name)
            if name not in self.columns and not (match and match["base"] in self.columns):
                raise DataError(
                    f"{self.path}: no mask column {name!r} (mapping field 'mask'); columns "
                    f"present: {sorted(self.columns)}"
                )
            self.mask_column, self.mask_index = self._target(name)
        elif "mask" in self.columns and self.columns["mask"].padded:
            self.mask_column = "mask"

    def _setup_labels(self) -> None:
        prefix = self.mapping.label_prefix
        name = self.mapping.label
        if name is None:
            if any(k.startswith(prefix) and k != prefix for k in self.columns):
                return  # one-hot columns, as in ROOT
            name = next((n for n in LABEL_COLUMN_NAMES if n in self.columns), None)
            if name is None:
                return
        elif name not in self.columns:
            raise DataError(
                f"{self.path}: no label column {name!r} (mapping field 'label'); columns "
                f"present: {sorted(self.columns)}"
            )
        col = self.columns[name]
        if col.dtype not in "biufSUO":
            raise DataError(
                f"{self.path}: label column {name!r} is neither numbers (class indices, 0/1, "
                "booleans, one-hot) nor strings (class names)"
            )
        self.label_column = name
        self.label_strings = col.dtype in "SUO"
        if self.mapping.label_classes:
            self.label_names = tuple(self.mapping.label_classes)
        elif self.label_strings:
            self.label_names = self._label_scan(name)
        elif col.inner and len(col.inner) == 1:  # one-hot matrix
            self.label_names = tuple(str(i) for i in range(col.inner[0]))
        else:
            top = self._label_scan(name)
            self.label_names = tuple(str(i) for i in range(max(2, top + 1)))

    def _labels(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows of the label column; DataError naming the first NaN / fractional index."""
        values = np.asarray(self._stored(name, start, stop))
        if self.label_strings:
            return np.char.strip(values.astype(str)) if values.dtype.kind != "U" else values
        if values.dtype.kind == "f":
            bad = ~np.isfinite(values)
            if values.ndim == 1:
                bad |= values != np.rint(values)
            bad = bad.reshape(len(values), -1).any(axis=1)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"{self.path}: label dataset/column {name!r} has the value "
                    f"{values[i].tolist()} at entry {start + i}; labels must be class indices "
                    "(0, 1, ...), 0./1. or one-hot rows, with no NaN"
                )
        return values

    def _label_scan(self, name: str) -> Any:
        """The largest class index (or the sorted class-name strings) in column ``name``,
        read in slices (bounded memory; checks every entry) and remembered per file version
        (every worker opens the file again)."""
        stat = os.stat(self.path)
        key = (self.path, stat.st_mtime_ns, stat.st_size, name)
        if key not in _LARGEST_INDEX:
            top: Any = set() if self.label_strings else -1
            for start in range(0, self.num_entries, LABEL_SCAN_ROWS):
                values = self._labels(name, start, min(start + LABEL_SCAN_ROWS, self.num_entries))
                if self.label_strings:
                    top |= set(np.unique(values).tolist())
                elif len(values):
                    top = max(top, int(np.max(values)))
            _LARGEST_INDEX[key] = tuple(sorted(top)) if self.label_strings else top
        return _LARGEST_INDEX[key]

    # the TTree-like interface -----------------------------------------------------------------
    def keys(self) -> list[str]:
        """Stored columns, components ``name[i]`` of padded arrays, aliases and labels."""
        labels = [f"{self.mapping.label_prefix}{n}" for n in self.label_names]
        return list(
            dict.fromkeys(list(self.columns) + self._component_keys() + list(self.aliases) + labels)
        )

    def _target(self, key: str) -> tuple[str, int | None]:
        """(stored column, component or None) behind a key; DataError if there is none."""
        key = self.aliases.get(key, key)
        if key in self.columns:
            return key, None
        match = _COMPONENT.match(key)
        if match and match["base"] in self.columns:
            base, index = match["base"], int(match["index"])
            inner = self.columns[base].inner
            if key in self._jet_keys and inner is not None and len(inner) == 1:
                if index >= inner[0]:
                    raise DataError(
                        f"{self.path}: {key!r}: the per-jet array {base!r} has only {inner[0]} "
                        f"values per jet (shape (n_jets, {inner[0]}))"
                    )
                return base, index
            if inner is None or len(inner) != 2:
                shape = "jagged" if inner is None else f"(n_jets, {', '.join(map(str, inner))})"
                raise DataError(
                    f"{self.path}: {key!r} needs {base!r} to be a padded (n_jets, n_particles, k) "
                    f"array, but it is {shape}"
                )
            if index >= inner[1]:
                raise DataError(
                    f"{self.path}: {key!r}: {base!r} has only {inner[1]} components per particle "
                    f"(shape (n_jets, {inner[0]}, {inner[1]}))"
                )
            return base, index
        raise DataError(f"{self.path}: no column {key!r}; columns present: {sorted(self.columns)}")

    def explain_missing(self, key: str) -> None:
        """Raise the precise DataError for a missing ``"name[i]"`` key (wrong rank/width)."""
        if _COMPONENT.match(key):
            self._target(key)

    def particle_width(self, key: str) -> int | None:
        """Particle slots per jet of the padded array behind ``key`` (None if jagged)."""
        base, _ = self._target(key)
        inner = self.columns[base].inner
        return inner[0] if inner else None

    def _stored(self, name: str, start: int, stop: int) -> Any:
        if name in self.families:
            members = self.families[name]
            values = self._read(members, start, stop)
            return np.stack([np.asarray(values[m]) for m in members], axis=1)
        try:
            values = self._read([name], start, stop)[name]
        except DataError:
            raise
        except Exception as err:  # decompression / truncation errors of the libraries
            raise DataError(
                f"{self.path}: reading rows {start}–{stop} of column {name!r} failed "
                f"({type(err).__name__}: {short_message(err)}); is the file truncated or corrupt?"
            ) from err
        return _plain(values, self.path, name)

    def _padding_mask(self, stored: dict[str, Any], start: int, stop: int) -> np.ndarray | None:
        """Real-particle mask of this chunk's padded arrays (mask column or zero padding)."""
        if self.mask_column is not None:
            mask = np.asarray(self._stored(self.mask_column, start, stop))
            if self.mask_index is not None:
                mask = mask[..., self.mask_index]
            if mask.ndim != 2:
                raise DataError(
                    f"{self.path}: mask {self.mask_column!r} must be (n_jets, n_particles); "
                    f"it has shape {mask.shape}"
                )
            return mask.astype(bool)
        # zero padding: a slot is real if its four-vector is not all zero
        parts = []
        for key in self.mapping.branches_for(["kinematics"]).values():
            base, index = self._target(key)
            if not self.columns[base].padded:
                return None
            values = stored.get(base)
            if values is None:
                values = stored[base] = np.asarray(self._stored(base, start, stop))
            parts.append(values if index is None else values[..., index])
        return np.any(np.stack(parts) != 0, axis=0)

    def arrays(
        self,
        names: Sequence[str],
        entry_start: int = 0,
        entry_stop: int | None = None,
        library: str = "ak",
        array_cache: Any = None,
    ) -> dict[str, Any]:
        """``{key: array}`` of rows ``[entry_start, entry_stop)``; padded arrays made jagged."""
        start, stop = int(entry_start), int(self.num_entries if entry_stop is None else entry_stop)
        targets = {key: self._label_or_target(key) for key in names}
        stored: dict[str, Any] = {}
        for base, _ in targets.values():
            if base not in stored:
                stored[base] = (
                    self._labels(base, start, stop)
                    if base == self.label_column
                    else self._stored(base, start, stop)
                )
        mask = None
        if any(self.columns[base].padded for base, _ in targets.values()):
            mask = self._padding_mask(stored, start, stop)
        out: dict[str, Any] = {}
        for key, (base, index) in targets.items():
            values = stored[base]
            if key.startswith(self.mapping.label_prefix) and base == self.label_column:
                out[key] = self._one_hot(values, key, start)
                continue
            if index is not None:
                values = np.asarray(values)[..., index]
            col = self.columns[base]
            if col.padded and mask is not None:
                values = np.asarray(values)
                if values.ndim == 2 and values.shape != mask.shape:
                    raise DataError(
                        f"{self.path}: the mask {self.mask_column or '(zero padding)'!s} has "
                        f"shape {mask.shape[1:]} per jet but {base!r} has {values.shape[1:]} "
                        f"(rows {start}–{stop})"
                    )
                if values.ndim == 2:
                    values = _padded_to_jagged(values, mask)
            out[key] = values
        return out

    def _label_or_target(self, key: str) -> tuple[str, int | None]:
        prefix = self.mapping.label_prefix
        name = key[len(prefix) :]
        if self.label_column is not None and key.startswith(prefix) and name in self.label_names:
            return self.label_column, None
        return self._target(key)

    def _one_hot(self, values: np.ndarray, key: str, start: int = 0) -> np.ndarray:
        """The ``label_<class>`` column from class indices, class-name strings or a one-hot
        array."""
        name = key[len(self.mapping.label_prefix) :]
        index = self.label_names.index(name)
        if self.label_strings:
            unknown = ~np.isin(values, np.asarray(self.label_names, dtype=str))
            if unknown.any():
                i = int(np.flatnonzero(unknown)[0])
                raise DataError(
                    f"{self.path}: label {str(values[i])!r} at entry {start + i} of column "
                    f"{self.label_column!r} is not one of the classes {list(self.label_names)}"
                )
            return (values == name).astype(np.int8)
        if values.ndim == 2:
            if index >= values.shape[1]:
                raise DataError(
                    f"{self.path}: one-hot labels {self.label_column!r} have {values.shape[1]} "
                    f"columns, but {len(self.label_names)} class names are given"
                )
            return values[:, index]
        if values.ndim != 1:
            raise DataError(
                f"{self.path}: labels {self.label_column!r} must be class indices (n_jets,) or "
                f"one-hot (n_jets, n_classes); shape {values.shape}"
            )
        return (values == index).astype(np.int8)

    def close(self) -> None:  # pragma: no cover - overridden
        pass

    def _read(self, names: Sequence[str], start: int, stop: int) -> dict[str, Any]:
        raise NotImplementedError


# --- parquet -------------------------------------------------------------------------------------
def _form_inner(form: Any) -> tuple[tuple[int, ...] | None, str]:
    """(padded shape after the jet axis or None for jagged, dtype kind) of a column form."""
    inner: list[int] = []
    while True:
        cls = type(form).__name__
        if cls in ("IndexedOptionForm", "ByteMaskedForm", "BitMaskedForm", "UnmaskedForm"):
            form = form.content
        elif cls == "RegularForm":
            inner.append(int(form.size))
            form = form.content
        elif cls in ("ListOffsetForm", "ListForm"):
            if form.parameters.get("__array__") == "string":
                return None, "U"
            return None, _leaf_kind(form.content)
        elif cls == "NumpyForm":
            inner.extend(int(s) for s in form.inner_shape)
            return tuple(inner), np.dtype(form.primitive).kind if form.primitive != "bool" else "b"
        else:
            return None, "O"


def _leaf_kind(form: Any) -> str:
    while not hasattr(form, "primitive"):
        if not hasattr(form, "content"):
            return "O"
        if form.parameters.get("__array__") == "string":
            return "U"
        form = form.content
    return "b" if form.primitive == "bool" else np.dtype(form.primitive).kind


class ParquetTable(ColumnTable):
    """A parquet file as a table (awkward's parquet I/O, row groups read on demand)."""

    format = "parquet"

    def __init__(self, path: str, mapping: BranchMapping):
        super().__init__(path, mapping)
        try:
            meta = ak.metadata_from_parquet(path)
        except Exception as err:  # pyarrow raises ArrowInvalid / OSError for bad files
            raise DataError(
                f"{path}: cannot be read as a parquet file ({type(err).__name__}: "
                f"{short_message(err)}); is it truncated, corrupt or not parquet?"
            ) from err
        self.name = os.path.basename(path)
        self.num_entries = int(meta["num_rows"])
        self._bounds = np.concatenate([[0], np.cumsum(meta["col_counts"] or [])]).astype(int)
        form = meta["form"]
        self.columns = {
            field: _Column(field, *_form_inner(form.content(field))) for field in form.fields
        }
        self._cache: tuple[tuple[int, ...], tuple[str, ...], Any] | None = None
        self._finish_setup()

    def _read(self, names: Sequence[str], start: int, stop: int) -> dict[str, Any]:
        if stop <= start:
            groups: tuple[int, ...] = ()
        else:
            first = int(np.searchsorted(self._bounds, start, side="right")) - 1
            last = int(np.searchsorted(self._bounds, stop, side="left"))
            groups = tuple(range(max(first, 0), max(last, first + 1)))
        if not groups:
            first = [0] if len(self._bounds) > 1 else None  # a file may have no row group
            empty = ak.from_parquet(self.path, columns=list(names), row_groups=first)
            return {n: empty[n][:0] for n in names}
        # consecutive units of one row group read it once (the last groups read are kept)
        cached = self._cache
        if cached is None or cached[0] != groups or not set(names) <= set(cached[1]):
            kept = cached[1] if cached is not None and cached[0] == groups else ()
            wanted = tuple(dict.fromkeys([*kept, *names]))
            table = ak.from_parquet(self.path, columns=list(wanted), row_groups=list(groups))
            self._cache = cached = (groups, wanted, table)
        offset = int(self._bounds[groups[0]])
        table = cached[2]
        return {n: table[n][start - offset : stop - offset] for n in names}

    def close(self) -> None:
        self._cache = None


# --- HDF5 ----------------------------------------------------------------------------------------
class HDF5Table(ColumnTable):
    """The datasets of one HDF5 group (mapping ``tree``; the file's root when the default
    ``tree`` group does not exist) as a table, read slice by slice with h5py."""

    format = "hdf5"

    def __init__(self, path: str, mapping: BranchMapping):
        super().__init__(path, mapping)
        import h5py

        try:
            self._file = h5py.File(path, "r")
        except Exception as err:  # OSError for truncated / non-HDF5 files
            raise DataError(
                f"{path}: cannot be read as an HDF5 file ({type(err).__name__}: "
                f"{short_message(err)}); is it truncated, corrupt or not HDF5?"
            ) from err
        group: Any = self._file
        self.name = "/"
        if mapping.tree in self._file and isinstance(self._file[mapping.tree], h5py.Group):
            group, self.name = self._file[mapping.tree], mapping.tree
        elif mapping.tree != BranchMapping().tree:
            groups = [k for k, v in self._file.items() if isinstance(v, h5py.Group)]
            self.close()
            raise DataError(
                f"{path}: no group {mapping.tree!r}; groups present: {groups or 'none'} "
                "(set the mapping's tree to the group holding the datasets)"
            )
        self._group = group
        self._frame: PandasFrame | None = None
        if is_pandas_frame(group):  # DataFrame.to_hdf: the frame's columns are the table's
            try:
                self._frame = PandasFrame(group, path)
            except BaseException:
                self.close()
                raise
            self.num_entries = self._frame.num_rows
            self._short_datasets = {}
            self.columns = {
                k: _Column(k, inner, kind) for k, (inner, kind) in self._frame.columns.items()
            }
            self._finish_setup()
            return
        datasets = {k: v for k, v in group.items() if isinstance(v, h5py.Dataset)}
        if not datasets:
            groups = [k for k, v in group.items() if isinstance(v, h5py.Group)]
            self.close()
            raise DataError(
                f"{path}: group {self.name!r} holds no datasets (an empty file?); groups "
                f"present: {groups or 'none'} (set the mapping's tree to the group of the jets)"
            )
        lengths = {k: (v.shape[0] if v.shape else 0) for k, v in datasets.items()}
        self.num_entries = max(lengths.values())
        short = {k: n for k, n in lengths.items() if n != self.num_entries}
        self._short_datasets = short
        self.columns = {
            k: _Column(k, tuple(int(s) for s in v.shape[1:]), v.dtype.kind)
            for k, v in datasets.items()
        }
        self._finish_setup()

    def _read(self, names: Sequence[str], start: int, stop: int) -> dict[str, Any]:
        if self._frame is not None:
            return self._frame.read(names, start, stop)
        out = {}
        for name in names:
            if name in self._short_datasets:
                raise DataError(
                    f"{self.path}: dataset {name!r} has {self._short_datasets[name]} rows, "
                    f"others have {self.num_entries} (one row per jet in every dataset)"
                )
            dataset = self._group[name]
            if name == self.label_column and self.label_strings:
                out[name] = (
                    dataset.asstr()[start:stop]
                    if dataset.dtype.kind == "O"
                    else (dataset[start:stop])
                )
                continue
            if self.columns[name].dtype not in "biuf":
                raise DataError(
                    f"{self.path}: dataset {name!r} is not numeric (dtype {dataset.dtype})"
                )
            out[name] = dataset[start:stop]
        return out

    def close(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None:
            with contextlib.suppress(Exception):  # a broken file must not mask its error
                file.close()
            self._file = None


# --- NumPy .npz ----------------------------------------------------------------------------------
class NpzTable(ColumnTable):
    """The arrays of a NumPy ``.npz`` archive as a table (``np.load(allow_pickle=False)``).

    Shapes and dtypes come from the members' headers; an array is loaded whole the first time
    a chunk needs it and kept while the file is open (one file is open at a time).
    """

    format = "npz"

    def __init__(self, path: str, mapping: BranchMapping):
        super().__init__(path, mapping)
        import zipfile

        self.name = os.path.basename(path)
        self._arrays: dict[str, np.ndarray] = {}
        try:
            with zipfile.ZipFile(path) as archive:
                headers = {}
                for member in archive.namelist():
                    if not member.endswith(".npy"):
                        continue
                    with archive.open(member) as fh:
                        version = np.lib.format.read_magic(fh)
                        reader = (
                            np.lib.format.read_array_header_1_0
                            if version == (1, 0)
                            else np.lib.format.read_array_header_2_0
                        )
                        shape, _, dtype = reader(fh)
                    headers[member[: -len(".npy")]] = (shape, dtype)
            self._npz = np.load(path, allow_pickle=False)
        except Exception as err:  # BadZipFile, ValueError of a bad header, OSError
            raise DataError(
                f"{path}: cannot be read as a NumPy .npz archive ({type(err).__name__}: "
                f"{short_message(err)}); is it truncated, corrupt or not .npz?"
            ) from err
        if not headers:
            self.close()
            raise DataError(f"{path}: the .npz archive holds no arrays")
        scalars = [k for k, (shape, _) in headers.items() if not shape]
        if scalars:
            self.close()
            raise DataError(f"{path}: arrays {scalars} are scalars, not one row per jet")
        lengths = {k: shape[0] for k, (shape, _) in headers.items()}
        self.num_entries = max(lengths.values())
        self._short = {k: n for k, n in lengths.items() if n != self.num_entries}
        self.columns = {
            k: _Column(k, tuple(int(s) for s in shape[1:]), dtype.kind)
            for k, (shape, dtype) in headers.items()
        }
        self._finish_setup()

    def _read(self, names: Sequence[str], start: int, stop: int) -> dict[str, Any]:
        out = {}
        for name in names:
            if name in self._short:
                raise DataError(
                    f"{self.path}: array {name!r} has {self._short[name]} rows, others have "
                    f"{self.num_entries} (one row per jet in every array)"
                )
            kind = self.columns[name].dtype
            if kind == "O":
                raise DataError(
                    f"{self.path}: array {name!r} holds Python objects; jetfm reads .npz with "
                    "allow_pickle=False (save padded numeric arrays, e.g. EnergyFlow's pad=True)"
                )
            if kind not in "biuf" and not (name == self.label_column and self.label_strings):
                raise DataError(f"{self.path}: array {name!r} is not numeric (kind {kind!r})")
            if name not in self._arrays:
                self._arrays[name] = self._npz[name]
            out[name] = self._arrays[name][start:stop]
        return out

    def close(self) -> None:
        self._arrays = {}
        npz = getattr(self, "_npz", None)
        if npz is not None:
            with contextlib.suppress(Exception):
                npz.close()
            self._npz = None


def open_table(path: str | os.PathLike, mapping: BranchMapping, fmt: str) -> ColumnTable:
    """The table of a parquet (``fmt="parquet"``), HDF5 (``"hdf5"``) or ``.npz`` file."""
    path = os.fspath(path)
    if fmt == "parquet":
        return ParquetTable(path, mapping)
    if fmt == "hdf5":
        return HDF5Table(path, mapping)
    if fmt == "npz":
        return NpzTable(path, mapping)
    raise DataError(f"{path}: no table reader for format {fmt!r}; known: {list(FORMATS)}")


def is_table(obj: Any) -> bool:
    """True for a parquet / HDF5 table (False for an uproot TTree or RNTuple)."""
    return isinstance(obj, ColumnTable)


__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "ColumnTable",
    "HDF5Table",
    "NpzTable",
    "ParquetTable",
    "detect_format",
    "is_table",
    "open_table",
]
