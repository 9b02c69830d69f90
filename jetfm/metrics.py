"""Evaluation metrics of the three fine-tuning tasks (numpy + scikit-learn).

* Tagging: accuracy, macro one-vs-rest AUC, and the background rejection ``1/ε_B`` at 50 %
  and 30 % signal efficiency of each class against the background class (QCD), using the
  score ``s_i / (s_i + s_QCD)`` as in the Particle Transformer tables.
* Track identification: accuracy, balanced accuracy, per-class recall, confusion matrix.
* Vertex finding: adjusted Rand index (ARI) per jet, fraction of jets whose vertices are all
  found perfectly, efficiency/purity of b-hadron vertices; everything split by jet flavour.

Every function takes plain arrays, so they serve the CLI, the Trainer's ``compute_metrics``
and notebooks alike.

Rejections are reported with their statistical uncertainty, which on the few hundred jets of
a small test set is large: the number of background jets passing the cut is binomial, so
each rejection carries the central 68.27 % Clopper–Pearson interval on ε_B, and where no
background jet passes (the rejection is not measurable) the 95 % CL lower bound the sample
allows instead of ``inf`` (:func:`rejection_record`). Any other non-finite value is written
as ``null`` by :func:`write_metrics`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from jetfm.atomic import write_text
from jetfm.data.schema import IGNORE_INDEX, TRACK_ORIGINS

SIGNAL_EFFICIENCIES = (0.5, 0.3)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(..., C)`` logits in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# --- tagging --------------------------------------------------------------------------------
#: confidence level of the interval on a measured rejection (one standard deviation)
INTERVAL_CL = 0.6827
#: confidence level of the lower bound on the rejection when no background jet passes
BOUND_CL = 0.95


def clopper_pearson(k: np.ndarray, n: np.ndarray, cl: float = INTERVAL_CL) -> np.ndarray:
    """Central Clopper–Pearson interval ``(..., 2)`` on a binomial fraction ``k/n``.

    Exact (beta quantiles, ``scipy.stats.beta``): it never undercovers, and it stays inside
    ``[0, 1]`` at ``k = 0`` and ``k = n``, where the normal approximation fails.
    """
    from scipy.stats import beta

    k, n = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    alpha = 1.0 - cl
    with np.errstate(invalid="ignore"):
        low = np.where(k > 0, beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        high = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    return np.stack([low, high], axis=-1)


def upper_limit(k: int, n: int, cl: float = BOUND_CL) -> float:
    """One-sided Clopper–Pearson upper limit on a binomial fraction (``k`` of ``n``)."""
    from scipy.stats import beta

    return 1.0 if k >= n else float(beta.ppf(cl, k + 1, n - k))


def rejection_record(passing: int, n_background: int, signal_efficiency: float) -> dict[str, Any]:
    """A background rejection ``1/ε_B`` with its statistical uncertainty, as stored in the
    metrics JSON.

    ``passing`` of ``n_background`` background jets pass the cut (ε_B = passing / n). With at
    least one passing: ``value`` = n / passing and ``interval`` = the rejections at the ends
    of the central 68.27 % Clopper–Pearson interval on ε_B (asymmetric; background
    statistics only: the cut is held where the signal sample puts it). With none passing the
    rejection cannot be measured: ``value`` is None and ``lower_bound`` = 1 / (the 95 % CL
    Clopper–Pearson upper limit on ε_B) is what the sample allows (e.g. > 67 for 0 of 200).
    """
    out: dict[str, Any] = {
        "signal_efficiency": float(signal_efficiency),
        "n_background": int(n_background),
        "n_background_passing": int(passing),
    }
    if passing > 0:
        low, high = clopper_pearson(passing, n_background)
        out |= {
            "value": n_background / passing,
            "interval": [float(1.0 / high), float(1.0 / low)],
            "cl": INTERVAL_CL,
        }
    else:
        out |= {
            "value": None,
            "lower_bound": 1.0 / upper_limit(0, n_background),
            "cl": BOUND_CL,
        }
    return out


def is_rejection_record(value: Any) -> bool:
    """Whether a metrics entry is a :func:`rejection_record`."""
    return isinstance(value, Mapping) and "n_background_passing" in value


def _decimal_place(x: float, digits: int) -> int:
    """Decimal places (negative: tens, hundreds, ...) that leave ``x`` with ``digits``
    significant digits."""
    return digits - 1 - math.floor(math.log10(abs(x)))


def _fixed(x: float, places: int) -> str:
    """``x`` rounded to ``places`` decimal places, written without an exponent."""
    return f"{round(x, places):.{max(places, 0)}f}"


def round_with_errors(
    value: float, errors: Sequence[float], digits: int = 2
) -> tuple[str, list[str]]:
    """``value`` and its ``errors`` as text, rounded to one decimal place: the one that gives
    the smallest non-zero error ``digits`` significant digits (the particle-data rounding),
    never in exponent notation: ``(200.0, [958.3, 139.0])`` → ``("200", ["960", "140"])``,
    ``(25.0, [13.06, 8.09])`` → ``("25.0", ["13.1", "8.1"])``."""
    positive = [abs(e) for e in errors if math.isfinite(e) and e != 0]
    if positive:
        places = _decimal_place(min(positive), digits)
    elif value and math.isfinite(value):
        places = _decimal_place(value, digits + 1)
    else:
        places = 0
    return _fixed(value, places), [_fixed(abs(e), places) for e in errors]


def _round_down(x: float, digits: int = 2) -> str:
    """``x`` rounded down to ``digits`` significant digits (a lower bound stays one)."""
    places = _decimal_place(x, digits)
    scaled = math.floor(x * 10.0**places + 1e-9) / 10.0**places
    return _fixed(scaled, places)


def format_rejection(record: Mapping[str, Any]) -> str:
    """One table cell for a :func:`rejection_record`: the value and its 68 % interval, both
    rounded to the uncertainty (:func:`round_with_errors`), and how many background jets
    passed: ``25.0 (+13.1/-8.1), 8 of 200 bkg passed``. Where none passed the rejection has
    no upper end and the cell gives the bound the sample allows, rounded down:
    ``> 67 (95% CL), none of 200 bkg passed``."""
    n = record["n_background"]
    if record.get("value") is None:
        bound = _round_down(record["lower_bound"])
        return f"> {bound} ({100 * record['cl']:.0f}% CL), none of {n} bkg passed"
    value, (low, high) = record["value"], record["interval"]
    text, (up, down) = round_with_errors(value, [high - value, value - low])
    return f"{text} (+{up}/-{down}), {record['n_background_passing']} of {n} bkg passed"


def _signal_threshold_points(
    y_signal: np.ndarray, score: np.ndarray, efficiencies: Sequence[float]
) -> tuple[list[tuple[float, int, float]], int]:
    """Per efficiency ``(ε_S reached, background jets passing, ε_B)`` at the loosest cut that
    keeps at least that signal efficiency, and the number of background jets."""
    y = np.asarray(y_signal).astype(bool)
    fpr, tpr, _ = roc_curve(y, np.asarray(score), drop_intermediate=False)
    n_bkg = int((~y).sum())
    points = []
    for eff in efficiencies:
        i = min(int(np.searchsorted(tpr, eff, side="left")), len(tpr) - 1)
        points.append((float(tpr[i]), int(round(fpr[i] * n_bkg)), float(fpr[i])))
    return points, n_bkg


def rejection_at_efficiency(
    y_signal: np.ndarray, score: np.ndarray, efficiencies: Sequence[float] = SIGNAL_EFFICIENCIES
) -> dict[float, float]:
    """Background rejection ``1/ε_B`` at the given signal efficiencies (point values).

    Args:
        y_signal: bool/0-1 array, True for signal.
        score: discriminant, larger = more signal-like.

    ε_B is read off the ROC curve (``sklearn.metrics.roc_curve``) at the loosest threshold
    that still keeps at least the requested signal efficiency (the smallest ε_B with
    ε_S ≥ eff); the rejection is ``inf`` when no background passes. For reporting use
    :func:`rejection_with_uncertainty`, which gives the uncertainty and, instead of ``inf``,
    the bound the sample allows.
    """
    points, _ = _signal_threshold_points(y_signal, score, efficiencies)
    return {
        float(eff): (math.inf if eps_b <= 0 else 1.0 / eps_b)
        for eff, (_, _, eps_b) in zip(efficiencies, points, strict=True)
    }


def rejection_with_uncertainty(
    y_signal: np.ndarray, score: np.ndarray, efficiencies: Sequence[float] = SIGNAL_EFFICIENCIES
) -> dict[float, dict[str, Any]]:
    """:func:`rejection_record` (value and 68 % interval, or the 95 % CL lower bound when no
    background jet passes) at each signal efficiency, cut as in
    :func:`rejection_at_efficiency`."""
    points, n_bkg = _signal_threshold_points(y_signal, score, efficiencies)
    return {
        float(eff): rejection_record(passing, n_bkg, eff_s)
        for eff, (eff_s, passing, _) in zip(efficiencies, points, strict=True)
    }


def rejection_curve(
    y_signal: np.ndarray, score: np.ndarray, cl: float = INTERVAL_CL
) -> dict[str, np.ndarray]:
    """The rejection curve with its band: ``signal_efficiency``, ``rejection`` and the
    Clopper–Pearson ``low``/``high`` rejections (``cl`` interval on ε_B), at every ROC point
    where at least one background jet passes."""
    y = np.asarray(y_signal).astype(bool)
    fpr, tpr, _ = roc_curve(y, np.asarray(score))
    n_bkg = int((~y).sum())
    passing = np.rint(fpr * n_bkg)
    ok = passing > 0
    interval = clopper_pearson(passing[ok], n_bkg, cl)
    return {
        "signal_efficiency": tpr[ok],
        "rejection": n_bkg / passing[ok],
        "low": 1.0 / interval[:, 1],
        "high": 1.0 / interval[:, 0],
    }


def tagging_metrics(
    labels: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str] | None = None,
    background: str | int = "QCD",
    efficiencies: Sequence[float] = SIGNAL_EFFICIENCIES,
) -> dict[str, Any]:
    """Metrics of a multi-class jet tagger.

    Args:
        labels: ``(n,)`` true class indices.
        probs: ``(n, C)`` class probabilities (softmax of the logits).
        class_names: names of the ``C`` classes (default ``class0…``).
        background: background class (name or index) for the rejections; if it is not among
            the classes, the rejections are left out.

    Returns:
        ``{"accuracy", "auc" (macro one-vs-rest), "auc_per_class": {name: auc},
        "recall": {name: fraction of that class's jets tagged as it}, "confusion_matrix":
        [[…]] (row: true class, column: predicted), "rejection": {name: {"50": record,
        "30": record}}, "n_jets"}`` with each record from :func:`rejection_record` (value and
        68 % interval, or a 95 % CL lower bound when no background jet passes); AUCs and recalls of classes absent from ``labels`` are skipped (NaN-free).
    """
    labels = np.asarray(labels).astype(np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    n, c = probs.shape
    names = list(class_names) if class_names is not None else [f"class{i}" for i in range(c)]
    if len(names) != c:
        raise ValueError(f"{len(names)} class names for {c} output classes")
    out: dict[str, Any] = {
        "n_jets": int(n),
        "accuracy": float(accuracy_score(labels, probs.argmax(axis=1))),
    }
    present = np.unique(labels)
    per_class = {}
    for i in present:
        if 0 < (labels == i).sum() < n:
            per_class[names[i]] = float(roc_auc_score(labels == i, probs[:, i]))
    out["auc_per_class"] = per_class
    # per-class recall: where a tagger gains or loses, which one accuracy number hides
    predicted = probs.argmax(axis=1)
    recall = recall_score(labels, predicted, labels=present, average=None, zero_division=0)
    out["recall"] = {names[i]: float(r) for i, r in zip(present, recall, strict=True)}
    out["confusion_matrix"] = confusion_matrix(labels, predicted, labels=range(c)).tolist()
    if len(present) >= 2:
        if c == 2:
            out["auc"] = float(roc_auc_score(labels, probs[:, 1]))
        elif len(present) == c:
            out["auc"] = float(roc_auc_score(labels, probs, multi_class="ovr", average="macro"))
        else:  # some classes absent from this sample: macro-average over the present ones
            out["auc"] = float(np.mean(list(per_class.values())))
    bkg = names.index(background) if isinstance(background, str) and background in names else (
        background if isinstance(background, int) else None
    )  # fmt: skip
    if bkg is not None:
        rejections = {}
        is_bkg = labels == bkg
        for i in present:
            if i == bkg or not is_bkg.any():
                continue
            sel = is_bkg | (labels == i)
            # the ParT-table discriminant: signal class vs the background class only
            score = probs[sel, i] / np.clip(probs[sel, i] + probs[sel, bkg], 1e-12, None)
            rej = rejection_with_uncertainty(labels[sel] == i, score, efficiencies)
            rejections[names[i]] = {f"{round(100 * e)}": r for e, r in rej.items()}
        out["background"] = names[bkg]
        out["rejection"] = rejections
    return out


# --- track identification -------------------------------------------------------------------
def track_id_metrics(
    track_labels: np.ndarray,
    predictions: np.ndarray,
    class_names: Sequence[str] = TRACK_ORIGINS,
) -> dict[str, Any]:
    """Per-track metrics over positions whose label is not ``IGNORE_INDEX``.

    Args:
        track_labels: ``(…)`` true origin index (``IGNORE_INDEX`` for neutrals/padding).
        predictions: same shape, predicted origin index.

    Returns:
        ``{"accuracy", "balanced_accuracy", "recall": {class: r}, "confusion_matrix": [[…]],
        "n_tracks", "class_counts"}``; recall of classes with no true tracks is omitted and
        balanced accuracy averages over the classes present.
    """
    y = np.asarray(track_labels).reshape(-1)
    p = np.asarray(predictions).reshape(-1)
    keep = y != IGNORE_INDEX
    y, p = y[keep].astype(np.int64), p[keep].astype(np.int64)
    classes = np.arange(len(class_names))
    counts = np.bincount(y, minlength=len(classes))
    out: dict[str, Any] = {"n_tracks": int(len(y))}
    out["class_counts"] = {class_names[i]: int(counts[i]) for i in classes}
    if not len(y):
        return out
    out["accuracy"] = float(accuracy_score(y, p))
    out["balanced_accuracy"] = float(balanced_accuracy_score(y, p))
    recall = recall_score(y, p, labels=classes, average=None, zero_division=0)
    out["recall"] = {class_names[i]: float(recall[i]) for i in classes if counts[i] > 0}
    out["confusion_matrix"] = confusion_matrix(y, p, labels=classes).tolist()
    return out


# --- vertex finding -------------------------------------------------------------------------
def _dense_ids(jet: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Relabel arbitrary integer ids to ``0..k-1`` inside each jet (vectorised)."""
    key = np.stack([jet, values], axis=1)
    _, inverse = np.unique(key, axis=0, return_inverse=True)
    return inverse.reshape(-1)


def _pair_counts(jet: np.ndarray, a: np.ndarray, b: np.ndarray, n_jets: int) -> np.ndarray:
    """Per jet, Σ over (a, b) cells of count² (the "pairs together" sums of the ARI)."""
    key = np.stack([jet, a, b], axis=1)
    cells, counts = np.unique(key, axis=0, return_counts=True)
    return np.bincount(cells[:, 0], weights=counts.astype(np.float64) ** 2, minlength=n_jets)


def adjusted_rand_index_per_jet(
    true_vertex: np.ndarray, pred_vertex: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """Adjusted Rand index of each jet's predicted vs true track partition, ``(B,)``.

    The formula of ``sklearn.metrics.adjusted_rand_score`` (via its pair-confusion matrix),
    evaluated for all jets at once from contingency counts instead of one call per jet;
    ``tests/test_metrics.py`` checks it equals sklearn jet by jet. Jets with fewer than two
    valid tracks get NaN (the ARI of one track is trivially 1).

    Args:
        true_vertex / pred_vertex: ``(B, N)`` integer vertex ids (any numbering).
        valid: ``(B, N)`` bool, the tracks to compare.
    """
    valid = np.asarray(valid, dtype=bool)
    n_jets = valid.shape[0]
    jet, slot = np.nonzero(valid)
    t = _dense_ids(jet, np.asarray(true_vertex)[jet, slot])
    p = _dense_ids(jet, np.asarray(pred_vertex)[jet, slot])
    n = np.bincount(jet, minlength=n_jets).astype(np.float64)
    sum_cells = _pair_counts(jet, t, p, n_jets)  # Σ n_ij²
    sum_true = _pair_counts(jet, t, np.zeros_like(t), n_jets)  # Σ a_i²
    sum_pred = _pair_counts(jet, np.zeros_like(p), p, n_jets)  # Σ b_j²
    # sklearn.metrics.cluster.pair_confusion_matrix, per jet
    tp = sum_cells - n
    fp = sum_pred - sum_cells
    fn = sum_true - sum_cells
    tn = n**2 - fp - fn - sum_cells
    denom = (tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)
    with np.errstate(divide="ignore", invalid="ignore"):
        ari = np.where(denom != 0, 2.0 * (tp * tn - fn * fp) / denom, 1.0)
    ari = np.where((fn == 0) & (fp == 0), 1.0, ari)
    return np.where(n >= 2, ari, np.nan)


def jet_flavour(track_labels: np.ndarray) -> np.ndarray:
    """Jet flavour from track origins: ``"b"`` with any b / b→c track, else ``"c"`` with any
    c track, else ``"light"``. ``(B, N)`` → ``(B,)`` strings."""
    t = np.asarray(track_labels)
    has_b = ((t == TRACK_ORIGINS.index("b")) | (t == TRACK_ORIGINS.index("b->c"))).any(axis=1)
    has_c = (t == TRACK_ORIGINS.index("c")).any(axis=1)
    return np.where(has_b, "b", np.where(has_c, "c", "light"))


def b_vertex_efficiency_purity(
    true_vertex: np.ndarray, pred_vertex: np.ndarray, track_labels: np.ndarray
) -> dict[str, float]:
    """Efficiency and purity of reconstructed b-hadron vertices (track level).

    A true b-hadron vertex is a true vertex whose tracks mostly come from the b decay chain
    (origin ``b`` or ``b->c``). It is matched to the predicted vertex sharing most tracks
    with it; efficiency = shared / true tracks, purity = shared / predicted tracks, averaged
    over b-hadron vertices with at least two tracks.
    """
    t_lab = np.asarray(track_labels)
    valid = (t_lab != IGNORE_INDEX) & (np.asarray(true_vertex) != IGNORE_INDEX)
    jet, slot = np.nonzero(valid)
    if not len(jet):
        return {}
    t = _dense_ids(jet, np.asarray(true_vertex)[jet, slot])  # global ids of (jet, true vertex)
    p = _dense_ids(jet, np.asarray(pred_vertex)[jet, slot])  # global ids of (jet, pred vertex)
    origin = t_lab[jet, slot]
    from_b = (origin == TRACK_ORIGINS.index("b")) | (origin == TRACK_ORIGINS.index("b->c"))
    n_true = np.bincount(t)
    is_b_vertex = (np.bincount(t, weights=from_b) > 0.5 * n_true) & (n_true >= 2)
    if not is_b_vertex.any():
        return {"n_b_vertices": 0}
    n_pred = np.bincount(p)
    cells, shared = np.unique(np.stack([t, p], axis=1), axis=0, return_counts=True)
    # best predicted vertex per true vertex: sort cells by (true id, shared) and take the last
    order = np.lexsort((shared, cells[:, 0]))
    cells, shared = cells[order], shared[order]
    last = np.r_[cells[1:, 0] != cells[:-1, 0], True]
    best_true, best_pred, best_shared = cells[last, 0], cells[last, 1], shared[last]
    sel = is_b_vertex[best_true]
    eff = best_shared[sel] / n_true[best_true[sel]]
    pur = best_shared[sel] / n_pred[best_pred[sel]]
    return {
        "n_b_vertices": int(sel.sum()),
        "b_vertex_efficiency": float(eff.mean()),
        "b_vertex_purity": float(pur.mean()),
    }


def vertexing_metrics(
    vertex_labels: np.ndarray,
    pred_vertex: np.ndarray,
    track_labels: np.ndarray | None = None,
) -> dict[str, Any]:
    """Vertex-finding metrics over jets with at least two tracks.

    Args:
        vertex_labels: ``(B, N)`` true vertex id, ``IGNORE_INDEX`` for non-tracks/padding.
        pred_vertex: ``(B, N)`` predicted vertex id (e.g. from
            :func:`jetfm.modeling.vertexing.group_vertices`).
        track_labels: ``(B, N)`` track origins; enables the b-vertex efficiency/purity and
            the split by jet flavour (b / c / light).

    Returns:
        ``{"ari", "perfect_fraction", "n_jets", "baseline_ari_one_vertex", …,
        "by_flavour": {flavour: {…}}}``.
    """
    truth = np.asarray(vertex_labels)
    pred = np.asarray(pred_vertex)
    valid = truth != IGNORE_INDEX
    ari = adjusted_rand_index_per_jet(truth, pred, valid)
    # the trivial baseline: every track of a jet in one vertex
    ari_one = adjusted_rand_index_per_jet(truth, np.zeros_like(truth), valid)
    used = ~np.isnan(ari)

    def summary(sel: np.ndarray) -> dict[str, Any]:
        sel = sel & used
        if not sel.any():
            return {"n_jets": 0}
        return {
            "n_jets": int(sel.sum()),
            "ari": float(ari[sel].mean()),
            "perfect_fraction": float((ari[sel] >= 1.0 - 1e-12).mean()),
            "baseline_ari_one_vertex": float(ari_one[sel].mean()),
        }

    out = summary(np.ones(len(ari), dtype=bool))
    if track_labels is not None:
        out |= b_vertex_efficiency_purity(truth, pred, track_labels)
        flavour = jet_flavour(track_labels)
        out["by_flavour"] = {}
        for f in ("b", "c", "light"):
            fsel = flavour == f
            part = summary(fsel)
            if part["n_jets"]:
                if f != "light":
                    part |= b_vertex_efficiency_purity(
                        truth[fsel], pred[fsel], np.asarray(track_labels)[fsel]
                    )
                out["by_flavour"][f] = part
    return out


# --- output ---------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def write_metrics(metrics: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write metrics as strict JSON (non-finite → ``null``), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, json.dumps(_jsonable(metrics), indent=2, allow_nan=False) + "\n")


def format_table(metrics: Mapping[str, Any], prefix: str = "") -> str:
    """Flatten nested metrics into aligned ``name  value`` lines (lists left out); a
    rejection is one line (:func:`format_rejection`)."""
    rows: list[tuple[str, str]] = []

    def walk(d: Mapping[str, Any], pre: str) -> None:
        for k, v in d.items():
            name = f"{pre}{k}"
            if is_rejection_record(v):
                rows.append((name, format_rejection(v)))
            elif isinstance(v, Mapping):
                walk(v, name + ".")
            elif isinstance(v, (list, tuple)):
                continue
            elif isinstance(v, float):
                rows.append((name, f"{v:.4g}"))
            else:
                rows.append((name, str(v)))

    walk(metrics, prefix)
    width = max((len(r[0]) for r in rows), default=0)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
