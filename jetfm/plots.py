"""Evaluation plots (matplotlib, Agg backend): ROC / rejection curves and confusion matrices.

Every function writes one PNG atomically and returns its path; nothing opens a window. The
module imports numpy and matplotlib only when it draws (the command line reads
:data:`STYLES` to build its ``--help``).

``style`` (:data:`STYLES`): ``"default"`` is plain matplotlib; ``"CMS"`` and ``"ATLAS"`` draw
in the experiment's style with its "Simulation" label through ``mplhep``, an optional
dependency imported only when such a style is asked for (``pip install mplhep``). The style
applies to the one figure (a ``matplotlib.style.context``), never to the caller's settings.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jetfm.atomic import atomic_file
from jetfm.errors import JetFMError

if TYPE_CHECKING:
    import numpy as np

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
def _figure(style: str = "default", panels: tuple[int, int] | None = None, **kwargs) -> Iterator:
    """``(plt, (fig, ax))`` drawn under ``style``; the style ends with the block. With
    ``panels=(rows, columns)`` ``ax`` is a 2-d array of axes and an experiment style's figure
    grows with the grid (each panel the size its fonts fit)."""
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
        if panels is not None:
            with plt.style.context(sheet):
                width, height = plt.rcParams["figure.figsize"]
            kwargs["figsize"] = (0.6 * width * panels[1], 0.6 * height * panels[0])
    if panels is not None:
        kwargs.update(nrows=panels[0], ncols=panels[1], squeeze=False)
    with plt.style.context(sheet):
        yield plt, plt.subplots(**kwargs)


def panel_grid(n: int, max_columns: int = 4) -> tuple[int, int]:
    """``(rows, columns)`` of a grid for ``n`` panels: at most ``max_columns`` wide, rows
    filled as evenly as the columns allow (7 panels: 2 × 4, 3 panels: 1 × 3)."""
    if n < 1:
        return 1, 1
    rows = math.ceil(n / max_columns)
    return rows, math.ceil(n / rows)


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
    """Write :func:`rejection_figure` as a PNG to ``path`` (atomically); returns the path."""
    with rejection_figure(labels, probs, class_names, background, style) as fig:
        return _save(fig, path)


@contextlib.contextmanager
def rejection_figure(
    labels: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    background: str = "QCD",
    style: str = "default",
) -> Iterator:
    """The rejection plot as a matplotlib figure, drawn and open inside the ``with`` block
    (under ``style``; save it there), closed after it.

    Background rejection ``1/ε_B`` vs signal efficiency, one panel per signal class
    against the background (score ``s_i/(s_i+s_B)``), log scale — the jet-tagging ROC of the
    ParT paper — in a grid (:func:`panel_grid`) with a shared rejection axis, so that the
    classes compare at a glance and no band hides another. Each panel shows the band of the
    68 % Clopper–Pearson interval on ε_B (the statistics of the background sample,
    :func:`jetfm.metrics.rejection_curve`) and, at the tight cuts where no background jet
    passes, the 95 % CL lower bound the sample allows (dotted, with an arrow: the rejection
    there has no upper end). Falls back to one-vs-rest ROC curves (ε_B vs ε_S), one panel
    per class, when the background class is absent.
    """
    import numpy as np

    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    bkg = list(class_names).index(background) if background in class_names else None
    panels = []  # (name, truth, score) of each class with both signal and background jets
    for i, name in enumerate(class_names):
        if i == bkg:
            continue
        if bkg is not None:
            sel = (labels == i) | (labels == bkg)
            score = probs[sel, i] / np.clip(probs[sel, i] + probs[sel, bkg], 1e-12, None)
            truth = labels[sel] == i
        else:
            score, truth = probs[:, i], labels == i
        if truth.any() and not truth.all():
            panels.append((name, truth, score))
    rows, columns = panel_grid(len(panels))
    size = (0.5 + 3.3 * columns, 0.6 + 2.9 * rows)
    grid = dict(panels=(rows, columns), figsize=size, sharex=True, sharey=True)
    with _figure(style, **grid) as (plt, (fig, axes)):
        for ax, (name, truth, score) in zip(axes.flat, panels, strict=False):
            if bkg is not None:
                _rejection_panel(ax, truth, score, background)
            else:
                _roc_panel(ax, truth, score)
            title = f"{name} vs {background if bkg is not None else 'rest'}"
            ax.set_xlim(0, 1)
            if style == "default":
                ax.set_title(title, fontsize="medium")
                ax.grid(alpha=0.3)
            else:  # above the panel is the experiment's label
                ax.text(0.96, 0.95, title, transform=ax.transAxes, ha="right", va="top",
                        bbox=dict(facecolor="white", edgecolor="none", alpha=0.8))  # fmt: skip
        spare = list(axes.flat)[len(panels) :]
        for ax in spare:
            ax.set_visible(False)
        for ax in axes[:, 0]:
            ax.set_ylabel(
                f"{background} rejection " + r"$1/\varepsilon_B$"
                if bkg is not None
                else r"background efficiency $\varepsilon_B$"
            )
        for c in range(columns):  # the lowest visible panel of each column gets the x axis
            column = [ax for ax in axes[:, c] if ax.get_visible()]
            if column:
                column[-1].set_xlabel(r"signal efficiency $\varepsilon_S$")
                column[-1].xaxis.set_tick_params(labelbottom=True)
        _experiment_label(axes[0, 0], style)
        if panels:  # one legend for the figure: in a spare slot of the grid, else below it
            entries: dict[str, object] = {}  # every panel's entries, each label once
            for ax in axes.flat[: len(panels)]:
                for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                    entries.setdefault(label, handle)
            handles, names = list(entries.values()), list(entries)
            if spare:
                spare[0].set_visible(True)
                spare[0].axis("off")
                spare[0].legend(handles, names, loc="center", fontsize="small", frameon=False)
            else:
                fig.legend(handles, names, loc="upper center", ncols=len(handles),
                           bbox_to_anchor=(0.5, 0.0), fontsize="small", frameon=False)  # fmt: skip
        fig.tight_layout()
        try:
            yield fig
        finally:
            plt.close(fig)


def _rejection_panel(ax, truth: np.ndarray, score: np.ndarray, background: str) -> None:
    """One signal class's rejection curve, its 68 % band, the 95 % CL bound where no
    background jet passes and, in a corner, the rejection at 50 % signal efficiency."""
    from jetfm.metrics import (
        BOUND_CL,
        format_rejection,
        rejection_curve,
        rejection_with_uncertainty,
        upper_limit,
    )

    curve = rejection_curve(truth, score)
    eff = curve["signal_efficiency"]
    (line,) = ax.plot(eff, curve["rejection"], label=r"rejection $1/\varepsilon_B$")
    color = line.get_color()
    ax.fill_between(eff, curve["low"], curve["high"], color=color, alpha=0.3, linewidth=0,
                    label="68 % CL (background statistics)")  # fmt: skip
    tightest = float(eff[0]) if len(eff) else 1.0
    if tightest > 0:  # the tight cuts that no background jet passes: a lower bound only
        bound = 1.0 / upper_limit(0, int((~truth).sum()))
        ax.plot([0, tightest], [bound, bound], ":", color=color,
                label=f"no {background} jet passes: > bound ({100 * BOUND_CL:.0f} % CL)")  # fmt: skip
        ax.annotate("", xy=(tightest / 2, bound * 2.5), xytext=(tightest / 2, bound),
                    arrowprops=dict(arrowstyle="->", color=color))  # fmt: skip
    ax.set_yscale("log")
    at_half = format_rejection(rejection_with_uncertainty(truth, score, (0.5,))[0.5])
    ax.text(0.03, 0.04, r"$\varepsilon_S$ = 50 %: " + at_half.split(",")[0], fontsize="small",
            transform=ax.transAxes)  # fmt: skip


def _roc_panel(ax, truth: np.ndarray, score: np.ndarray) -> None:
    """One class's one-vs-rest ROC curve (ε_B vs ε_S) with the diagonal of a random guess."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(truth, score)
    ax.plot(tpr, fpr, label="ROC")
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="random guess")


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
    import numpy as np
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
    import numpy as np

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
