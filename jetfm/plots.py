"""Evaluation plots (matplotlib, Agg backend): ROC / rejection curves and confusion matrices.

Every function writes one PNG atomically and returns its path; nothing opens a window.

``style`` (:data:`STYLES`): ``"default"`` is plain matplotlib; ``"CMS"`` and ``"ATLAS"`` draw
in the experiment's style with its "Simulation" label through ``mplhep``, an optional
dependency imported only when such a style is asked for (``pip install mplhep``). The style
applies to the one figure (a ``matplotlib.style.context``), never to the caller's settings.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from jetfm.atomic import atomic_file
from jetfm.errors import JetFMError

STYLES = ("default", "CMS", "ATLAS")


def check_style(style: str) -> str:
    """``style`` if it is one of :data:`STYLES` and usable here, else a clear JetFMError."""
    if style not in STYLES:
        raise JetFMError(f"unknown plot style {style!r}; choose from {list(STYLES)}")
    if style != "default":
        try:
            import mplhep  # noqa: F401
        except ImportError:
            raise JetFMError(
                f"plot style {style!r} needs mplhep: pip install mplhep (or use --style default)"
            ) from None
    return style


@contextlib.contextmanager
def _figure(style: str = "default", **kwargs) -> Iterator:
    """``(plt, (fig, ax))`` drawn under ``style``; the style ends with the block."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    check_style(style)
    if style == "default":
        sheet: object = {}
    else:
        import mplhep

        sheet = getattr(mplhep.style, style)
        kwargs.pop("figsize", None)  # the experiment's figure size, which its fonts fit
    with plt.style.context(sheet):
        yield plt, plt.subplots(**kwargs)


def _experiment_label(ax, style: str) -> None:
    """The experiment's "Simulation" label on a styled plot (nothing in the default style)."""
    if style == "default":
        return
    import mplhep

    # data=False is the "Simulation" label; the centre-of-mass energy of the generated jets
    getattr(mplhep, style.lower()).label(data=False, ax=ax, loc=0, rlabel="(13 TeV)")


def _save(fig, path: str | os.PathLike) -> Path:
    """``savefig`` as PNG, atomically (:func:`jetfm.atomic.atomic_file`)."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_file(path) as tmp:  # a .tmp name: the format is given, not guessed
            fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def plot_rejection_curves(
    labels: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    path: str | os.PathLike,
    background: str = "QCD",
    style: str = "default",
) -> Path:
    """Background rejection ``1/ε_B`` vs signal efficiency for each class against the
    background (score ``s_i/(s_i+s_B)``), log scale — the jet-tagging ROC of the ParT paper —
    with a band of the 68 % Clopper–Pearson interval on ε_B (the statistics of the background
    sample, :func:`jetfm.metrics.rejection_curve`). Falls back to one-vs-rest ROC curves
    (ε_B vs ε_S) when the background class is absent.
    """
    from sklearn.metrics import roc_curve

    from jetfm.metrics import rejection_curve

    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    with _figure(style, figsize=(6, 4.5)) as (plt, (fig, ax)):
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
            if bkg is not None:
                curve = rejection_curve(truth, score)
                eff = curve["signal_efficiency"]
                (line,) = ax.plot(eff, curve["rejection"], label=f"{name} vs {background}")
                ax.fill_between(eff, curve["low"], curve["high"], color=line.get_color(),
                                alpha=0.25, linewidth=0)  # fmt: skip
            else:
                fpr, tpr, _ = roc_curve(truth, score)
                ax.plot(tpr, fpr, label=f"{name} vs rest")
        if bkg is not None:
            ax.set_yscale("log")
            ax.set_ylabel(f"{background} rejection " + r"$1/\varepsilon_B$")
        else:
            ax.plot([0, 1], [0, 1], "k:", lw=1)
            ax.set_ylabel(r"background efficiency $\varepsilon_B$")
        ax.set_xlabel(r"signal efficiency $\varepsilon_S$")
        ax.set_xlim(0, 1)
        if style == "default":
            ax.grid(alpha=0.3)
        if ax.lines:
            # the band: the binomial statistics of the background jets passing each cut
            title = "bands: 68 % CL (Clopper-Pearson)" if bkg is not None else None
            ax.legend(fontsize="small", title=title, title_fontsize="small")
        _experiment_label(ax, style)
        return _save(fig, path)


def plot_confusion_matrix(
    labels: np.ndarray,
    predictions: np.ndarray,
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str = "",
    style: str = "default",
) -> Path:
    """Row-normalised confusion matrix (true class per row: each row shows recall)."""
    size = (1.0 + 0.7 * len(class_names),) * 2
    with _figure(style, figsize=size) as (plt, (fig, ax)):
        _confusion_matrix(ax, labels, predictions, class_names, title, style)
        return _save(fig, path)


def _confusion_matrix(ax, labels, predictions, class_names, title: str, style: str) -> None:
    from sklearn.metrics import ConfusionMatrixDisplay

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
        ax.set_title(title, loc="right" if style != "default" else "center")
    _experiment_label(ax, style)


def plot_ari_histogram(
    ari_by_flavour: dict[str, np.ndarray], path: str | os.PathLike, style: str = "default"
) -> Path:
    """Distribution of the per-jet adjusted Rand index, one histogram per jet flavour."""
    with _figure(style, figsize=(6, 4)) as (plt, (fig, ax)):
        _ari_histogram(ax, ari_by_flavour, style)
        return _save(fig, path)


def _ari_histogram(ax, ari_by_flavour: dict[str, np.ndarray], style: str) -> None:
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
    _experiment_label(ax, style)
