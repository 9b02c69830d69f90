"""How many jets of each class a set of files holds, and the classes a tagger should learn.

Files often carry a label branch for every class of a production (``jetfm generate`` writes
all eight JetClass ``label_*`` branches whatever classes it generated): a tagger must learn
the classes that have jets in its training files, not every branch that exists.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from jetfm.data.reading import (
    PathsLike,
    ReadSpec,
    iter_raw_chunks,
    plan_work,
    resolve_label_names,
)
from jetfm.data.schema import BranchMapping
from jetfm.errors import DataError

logger = logging.getLogger(__name__)

#: jets read per chunk while counting (only the label branches and four-vectors are read)
_STEP = 100_000


def class_counts(
    paths: PathsLike,
    mapping: BranchMapping | None = None,
    label_names: Sequence[str] | None = None,
) -> dict[str, int]:
    """``{class name: jets}`` over all ``paths`` for ``label_names`` (default: every label
    branch of the files, :func:`~jetfm.data.reading.resolve_label_names`), in that order."""
    mapping = mapping or BranchMapping()
    names = tuple(label_names or resolve_label_names(paths, mapping))
    spec = ReadSpec(
        mapping=mapping,
        feature_groups=("kinematics",),
        targets=("labels",),
        label_names=names,
        nan_policy="skip",  # counting only: NaN inputs are the datasets' business
        other_classes="skip",
    )
    counts = np.zeros(len(names), np.int64)
    for chunk in iter_raw_chunks(plan_work(paths, spec, _STEP).units, spec):
        labels = np.asarray(chunk.fields["labels"])
        counts += np.bincount(labels[labels >= 0], minlength=len(names))[: len(names)]
    return {name: int(n) for name, n in zip(names, counts, strict=True)}


def _describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items())


def training_classes(
    train: PathsLike,
    val: PathsLike | None = None,
    mapping: BranchMapping | None = None,
    classes: Sequence[str] | None = None,
) -> list[str]:
    """The classes a tagger learns from ``train``, checked against ``val``.

    ``classes`` given: those (each must have jets in the training files). Otherwise every
    class with at least one training jet; classes whose label branch exists but holds no jet
    are left out, with a log line. A class with validation jets but no training jet is a
    :class:`~jetfm.errors.DataError` (a tagger cannot learn it, and its validation jets would
    be scored as another class)."""
    mapping = mapping or BranchMapping()
    counts = class_counts(train, mapping, classes)
    chosen = list(classes) if classes else [name for name, n in counts.items() if n > 0]
    empty = [name for name, n in counts.items() if n == 0]
    if classes and empty:
        raise DataError(
            f"classes {empty} have no jets in the training files ({train}); jets per class: "
            f"{_describe(counts)}"
        )
    if len(chosen) < 2:
        raise DataError(
            f"the training files ({train}) hold jets of fewer than two classes "
            f"({_describe(counts)}); a tagger needs at least two"
        )
    logger.info("training classes (jets): %s", _describe({c: counts[c] for c in chosen}))
    if empty:
        logger.info("label branches with no training jets, not learnt: %s", ", ".join(empty))
    if val is not None:
        all_names = resolve_label_names(val, mapping)
        val_counts = class_counts(val, mapping, all_names)
        unseen = {c: n for c, n in val_counts.items() if n > 0 and c not in chosen}
        if unseen and not classes:
            raise DataError(
                f"the validation files ({val}) hold jets of classes with no training jets: "
                f"{_describe(unseen)}; training jets per class: {_describe(counts)}"
            )
    return chosen


__all__ = ["class_counts", "training_classes"]
