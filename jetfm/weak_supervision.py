"""Classification without labels (CWoLa, Metodiev–Nachman–Thaler 2017).

Two samples with different, *unknown* signal fractions ``f_lo < f_hi`` are mixed; a
classifier trained to tell which mixture a jet came from is, in the limit, the optimal
signal-vs-background classifier (its likelihood ratio is a monotonic function of the true
one). The tagging head is trained on the binary target "jet is from the signal-richer
mixture" and evaluated on the true labels (AUC).

For studies, :func:`make_mixtures` builds the two mixtures from a labelled sample (signal and
background class, fractions, seed); :class:`MixtureDataset` presents them to the Trainer with
the mixture index as ``labels``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from jetfm.errors import JetFMError

#: mixture label of the signal-richer sample: the head's class-1 probability is the score
SIGNAL_RICH = 1


@dataclasses.dataclass(frozen=True)
class CWoLaMixtures:
    """Two mixed samples drawn from a labelled one.

    Attributes:
        indices: ``(m,)`` indices into the source sample (each jet used at most once).
        mixture: ``(m,)`` 0 for the signal-poorer, 1 for the signal-richer mixture.
        is_signal: ``(m,)`` truth, for evaluation only.
        fractions: the realised signal fractions ``(f_lo, f_hi)``.
    """

    indices: np.ndarray
    mixture: np.ndarray
    is_signal: np.ndarray
    fractions: tuple[float, float]

    def __len__(self) -> int:
        return len(self.indices)


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float]:
    if len(fractions) != 2:
        raise JetFMError(f"CWoLa needs two signal fractions f1,f2; got {list(fractions)}")
    lo, hi = sorted(float(f) for f in fractions)
    if not (0.0 <= lo <= 1.0 and 0.0 <= hi <= 1.0):
        raise JetFMError(f"signal fractions must lie in [0, 1]; got {list(fractions)}")
    if hi - lo < 1e-6:
        raise JetFMError(
            f"CWoLa needs two different signal fractions (f1 ≠ f2); got {list(fractions)}"
        )
    return lo, hi


def make_mixtures(
    labels: np.ndarray,
    signal: int,
    background: int,
    fractions: Sequence[float] = (0.2, 0.6),
    seed: int = 0,
    max_jets: int | None = None,
) -> CWoLaMixtures:
    """Split the signal and background jets of a labelled sample into two equal-size mixtures
    with signal fractions ``f_lo`` and ``f_hi``, as large as the sample allows.

    Args:
        labels: ``(n,)`` true class index of each jet.
        signal / background: class indices (jets of other classes are not used).
        fractions: the two signal fractions (any order; must differ).
        seed: random seed of the draw.
        max_jets: cap on the total number of jets in both mixtures.
    """
    lo, hi = _check_fractions(fractions)
    labels = np.asarray(labels)
    if signal == background:
        raise JetFMError("CWoLa signal and background must be different classes")
    rng = np.random.default_rng(seed)
    sig = rng.permutation(np.flatnonzero(labels == signal))
    bkg = rng.permutation(np.flatnonzero(labels == background))
    # equal mixture sizes m: m·(lo + hi) signal and m·(2 − lo − hi) background jets needed
    m = np.inf
    if lo + hi > 0:
        m = min(m, len(sig) / (lo + hi))
    if lo + hi < 2:
        m = min(m, len(bkg) / (2 - lo - hi))
    if max_jets is not None:
        m = min(m, max_jets / 2)
    m = int(m)
    while m > 0:
        s = (int(np.floor(m * lo)), int(np.floor(m * hi)))
        b = (m - s[0], m - s[1])
        if sum(s) <= len(sig) and sum(b) <= len(bkg):
            break
        m -= 1
    if m < 1:
        raise JetFMError(
            f"not enough jets for CWoLa mixtures: {len(sig)} signal (class {signal}) and "
            f"{len(bkg)} background (class {background}) jets"
        )
    parts = [
        (sig[: s[0]], 0, True),
        (bkg[: b[0]], 0, False),
        (sig[s[0] : s[0] + s[1]], 1, True),
        (bkg[b[0] : b[0] + b[1]], 1, False),
    ]
    indices = np.concatenate([p[0] for p in parts])
    mixture = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
    is_signal = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    order = rng.permutation(len(indices))
    return CWoLaMixtures(
        indices=indices[order],
        mixture=mixture[order].astype(np.int64),
        is_signal=is_signal[order],
        fractions=(s[0] / m, s[1] / m),
    )


class MixtureDataset(Dataset):
    """A labelled dataset seen through CWoLa mixtures: ``labels`` = mixture index.

    Args:
        dataset: per-jet dicts with ``labels`` (e.g. :class:`~jetfm.data.JetDataset`).
        mixtures: from :func:`make_mixtures` on ``dataset.labels``.
    """

    def __init__(self, dataset: Any, mixtures: CWoLaMixtures):
        self.dataset = dataset
        self.mixtures = mixtures

    def __len__(self) -> int:
        return len(self.mixtures)

    def __getitem__(self, index: int) -> dict[str, Any]:
        jet = dict(self.dataset[int(self.mixtures.indices[index])])
        jet["labels"] = self.mixtures.mixture[index]
        return jet


def class_index(label_names: Sequence[str], name: str, what: str) -> int:
    """Index of class ``name`` in ``label_names`` (JetFMError naming the known classes)."""
    names = list(label_names)
    if name not in names:
        raise JetFMError(f"CWoLa {what} class {name!r} is not among the data's classes {names}")
    return names.index(name)


def build_mixture_dataset(
    dataset: Any,
    signal: str,
    background: str,
    fractions: Sequence[float] = (0.2, 0.6),
    seed: int = 0,
    max_jets: int | None = None,
) -> MixtureDataset:
    """Mixtures of a labelled :class:`~jetfm.data.JetDataset` by class *names*.

    The dataset must have been built with ``targets=("labels",)``; its processor's
    ``label_names`` give the class order.
    """
    labels = getattr(dataset, "labels", None)
    if labels is None:
        raise JetFMError("CWoLa mixtures need a dataset built with targets=('labels',)")
    names = dataset.processor.label_names
    mixtures = make_mixtures(
        labels,
        class_index(names, signal, "signal"),
        class_index(names, background, "background"),
        fractions,
        seed=seed,
        max_jets=max_jets,
    )
    return MixtureDataset(dataset, mixtures)


__all__ = [
    "CWoLaMixtures",
    "MixtureDataset",
    "SIGNAL_RICH",
    "build_mixture_dataset",
    "class_index",
    "make_mixtures",
]
