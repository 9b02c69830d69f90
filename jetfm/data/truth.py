"""Generator truth for supervised pre-training: jet classes with QCD split by its hard parton.

Generated files (``jetfm generate``) carry, beside the one-hot ``label_*`` branches, the PDG
id of the matched object per jet (``aux_genpart_pid``: the resonance, or the hard parton of a
QCD jet) and the per-track truth ``part_origin`` / ``part_vtx``. Pre-training on simulation
truth (:mod:`jetfm.modeling.truth_heads`) supervises

* the **jet class**: the file's classes, with ``QCD`` split by its hard parton into
  ``QCD_light`` (u, d, s), ``QCD_gluon`` and ``QCD_heavy`` (c, b) —
  :func:`truth_class_names`; the per-jet flavour is the ``parton_labels`` target
  (:func:`parton_flavour`);
* the **track origin** (``track_labels``) and **vertex pairing** (``vertex_labels``).

Which of these a set of files can feed is :func:`available_truth`; a jet's class in a list of
supervised classes is a table lookup (:func:`truth_class_table`), so held-out classes are a
setting (the list), not a code path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jetfm.data.reading import PathsLike, TreeReader, expand_paths
from jetfm.data.schema import IGNORE_INDEX, PARTON_FLAVOURS, QCD_CLASS, BranchMapping

#: the truth targets of pre-training, in the order of :data:`jetfm.data.reading.TARGETS`
TRUTH_TARGETS: tuple[str, ...] = ("labels", "parton_labels", "track_labels", "vertex_labels")

_LIGHT = (1, 2, 3)
_GLUON = (21,)
_HEAVY = (4, 5)


def parton_flavour(pid: np.ndarray) -> np.ndarray:
    """Index in :data:`~jetfm.data.schema.PARTON_FLAVOURS` of each PDG id (sign ignored):
    1–3 → light, 21 → gluon, 4–5 → heavy; anything else (a resonance: W, Z, H, t) →
    :data:`~jetfm.data.schema.IGNORE_INDEX`. int64."""
    a = np.abs(np.asarray(pid, dtype=np.int64))
    out = np.full(a.shape, IGNORE_INDEX, dtype=np.int64)
    for code, ids in enumerate((_LIGHT, _GLUON, _HEAVY)):
        out[np.isin(a, ids)] = code
    return out


def split_name(flavour: str) -> str:
    """``QCD_<flavour>``: the truth class of a QCD jet of that hard-parton flavour."""
    return f"{QCD_CLASS}_{flavour}"


def truth_class_names(label_names: Sequence[str], split_qcd: bool = True) -> tuple[str, ...]:
    """The jet classes of the truth objective for files of these classes: the label names,
    ``QCD`` replaced by ``QCD_light``, ``QCD_gluon``, ``QCD_heavy`` when ``split_qcd``."""
    out: list[str] = []
    for name in label_names:
        if name == QCD_CLASS and split_qcd:
            out += [split_name(f) for f in PARTON_FLAVOURS]
        else:
            out.append(name)
    return tuple(out)


def expand_classes(names: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    """User class names → truth classes: ``QCD`` stands for its three parton splits when
    ``known`` holds them. ValueError naming what is unknown."""
    known = tuple(known)
    out: list[str] = []
    for name in names:
        split = [split_name(f) for f in PARTON_FLAVOURS]
        if name == QCD_CLASS and QCD_CLASS not in known and all(s in known for s in split):
            out += split
        elif name in known:
            out.append(name)
        else:
            raise ValueError(f"unknown class {name!r}; the files' truth classes are {list(known)}")
    return tuple(dict.fromkeys(out))


def truth_class_table(label_names: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """``(len(label_names), len(PARTON_FLAVOURS) + 1)`` int64: the index in ``classes`` of a
    jet of label ``i`` and parton flavour ``j`` (last column: flavour unknown), or
    :data:`~jetfm.data.schema.IGNORE_INDEX` for a class not supervised. A QCD jet of unknown
    flavour is class ``QCD`` (supervised only when ``classes`` holds it)."""
    index = {name: i for i, name in enumerate(classes)}
    table = np.full((len(label_names), len(PARTON_FLAVOURS) + 1), IGNORE_INDEX, dtype=np.int64)
    for i, name in enumerate(label_names):
        table[i, -1] = index.get(name, IGNORE_INDEX)
        for j, flavour in enumerate(PARTON_FLAVOURS):
            key = split_name(flavour) if name == QCD_CLASS else name
            table[i, j] = index.get(key, IGNORE_INDEX)
    return table


def available_truth(
    paths: PathsLike, mapping: BranchMapping | None = None, label_names: Sequence[str] = ()
) -> dict[str, str | None]:
    """``{truth target: None when every file has it, else why not}`` for
    :data:`TRUTH_TARGETS`. Reads only the branch names of each file."""
    mapping = mapping or BranchMapping()
    needs = {
        "labels": [f"{mapping.label_prefix}{n}" for n in label_names],
        "parton_labels": [mapping.parton],
        "track_labels": [mapping.origin],
        "vertex_labels": [mapping.vertex],
    }
    missing: dict[str, str | None] = {t: None for t in TRUTH_TARGETS}
    if not label_names:
        missing["labels"] = f"no {mapping.label_prefix}* branches"
    with TreeReader(mapping) as reader:
        for path in expand_paths(paths):
            keys = set(reader.tree(str(path)).keys())
            for target, branches in needs.items():
                lacking = [b for b in branches if b not in keys]
                if lacking and missing[target] is None:
                    missing[target] = f"{path} has no {lacking[0]!r}"
            reader.close()
    return missing


__all__ = [
    "TRUTH_TARGETS",
    "available_truth",
    "expand_classes",
    "parton_flavour",
    "split_name",
    "truth_class_names",
    "truth_class_table",
]
