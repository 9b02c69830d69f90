"""Evaluation plots (matplotlib, Agg backend): ROC / rejection curves and confusion matrices.

Every function writes one PNG atomically and returns its path; nothing opens a window.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _figure(**kwargs):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt, plt.subplots(**kwargs)


def _save(fig, path: str | os.PathLike) -> Path:
    """``savefig`` to a temp file in the target directory, then ``os.replace``."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path


def plot_rejection_curves(
    labels: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    path: str | os.PathLike,
    background: str = "QCD",
) -> Path:
    """Background rejection ``1/ε_B`` vs signal efficiency for each class against the
    background (score ``s_i/(s_i+s_B)``), log scale — the jet-tagging ROC of the ParT paper.
    Falls back to one-vs-rest ROC curves (ε_B vs ε_S) when the background class is absent.
    """
    from sklearn.metrics import roc_curve

    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    plt, (fig, ax) = _figure(figsize=(6, 4.5))
    bkg = list(class_names).index(background) if background in class_names else None
    for i, name in enumerate(class_names):
        if bkg is not None:
            if i == bkg:
                continue
            sel = (labels == i) | (labels == bkg)
            score = probs[sel, i] / np.clip(probs[sel, i] + probs[sel, bkg], 1e-12, None)
            truth = labels[sel] == i
        else:
            score, truth = probs[:, i], labels == i
        if truth.all() or not truth.any():
            continue
        fpr, tpr, _ = roc_curve(truth, score)
        if bkg is not None:
            ok = fpr > 0
            ax.plot(tpr[ok], 1.0 / fpr[ok], label=f"{name} vs {background}")
        else:
            ax.plot(tpr, fpr, label=f"{name} vs rest")
    if bkg is not None:
        ax.set_yscale("log")
        ax.set_ylabel(f"{background} rejection 1/ε_B")
    else:
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.set_ylabel("background efficiency ε_B")
    ax.set_xlabel("signal efficiency ε_S")
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_confusion_matrix(
    labels: np.ndarray,
    predictions: np.ndarray,
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str = "",
) -> Path:
    """Row-normalised confusion matrix (true class per row: each row shows recall)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt, (fig, ax) = _figure(figsize=(1.0 + 0.7 * len(class_names),) * 2)
    ConfusionMatrixDisplay.from_predictions(
        np.asarray(labels),
        np.asarray(predictions),
        labels=np.arange(len(class_names)),
        display_labels=list(class_names),
        normalize="true",
        values_format=".2f",
        cmap="Blues",
        colorbar=False,
        ax=ax,
    )
    ax.tick_params(axis="x", labelrotation=45)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_ari_histogram(ari_by_flavour: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Distribution of the per-jet adjusted Rand index, one histogram per jet flavour."""
    plt, (fig, ax) = _figure(figsize=(6, 4))
    bins = np.linspace(-0.5, 1.0, 31)
    for name, values in ari_by_flavour.items():
        values = np.asarray(values)
        values = values[np.isfinite(values)]
        if len(values):
            ax.hist(
                values, bins=bins, histtype="step", density=True, label=f"{name} ({len(values)})"
            )
    ax.set_xlabel("adjusted Rand index per jet")
    ax.set_ylabel("density")
    if ax.patches:
        ax.legend(fontsize=8)
    return _save(fig, path)
