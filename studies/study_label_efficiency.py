"""Does pre-training pay? Fine-tune pretrained checkpoints and the from-scratch baseline on
few labelled jets, evaluate everything on one held-out test set, and plot metric vs labels.

Each run is ``finetune`` → ``evaluate_checkpoint`` on the test files; its result is appended
to ``OUT/results.jsonl`` as soon as it finishes, so an interrupted study resumes where it
stopped (runs already in the file are skipped; a run is keyed by study, model, task, labels
and seed, plus the LR in an ``--lrs`` grid, so compare other fine-tuning settings such as a
single ``--lr``, ``--backbone-lr-scale``, ``--freeze-fraction`` or ``--layer-lr-decay`` in
separate ``--out`` folders). ``--summarise`` only re-reads the file and rewrites
``OUT/summary.{json,md}`` and ``OUT/label_efficiency.png`` (and ``OUT/lr_scan.png`` after an
LR grid).

Learning-rate grid: ``--lrs 5e-4,1e-3,2e-3`` runs every full fine-tuning (``main`` and
``kinematics``) at each LR (the LR joins the run key), and the summary reports, for each
model and label count, the test metric at the LR with the best mean *validation* metric
over the seeds. Pre-trained and scratch are tuned alike, so neither side wins by the other
being run at a poor LR; the whole scan is kept in the summary (``lr_scan``).

The run matrix (each at every ``--labels`` size; ``--seeds`` seeds at the smallest size, one
seed above it, or ``--seeds`` at every size with ``--seeds-every-size``):

- ``main``: every ``--checkpoints`` entry and ``scratch`` (same architecture, random
  weights), full fine-tuning, for each ``--tasks`` task (on ``--feature-groups`` only, when
  given: ``kinematics`` for files of four-vectors);
- ``probe``: frozen backbone + head, pretrained vs frozen *random* backbone (tagging);
- ``kinematics``: only the kinematic feature group as input (tagging), pretrained vs scratch;
- ``bdt``: gradient-boosted trees on jet observables (mass, soft-drop mass, multiplicity,
  girth, pT_D, τ21, τ32), the classic baseline (tagging).

Transfer to a new class (the first MPM paper's study): pre-train without top jets, then
point ``--data`` at folders holding only the QCD and Tbqq files and pass
``--classes QCD,Tbqq`` (top vs QCD, pretrained-without-top vs scratch).

Example (the numbers in ``model_cards/mpm-flow-base``)::

    python studies/study_label_efficiency.py --data /work/data --out study \\
        --checkpoints flow=model_cards/mpm-flow-base,vq=model_cards/mpm-vq-base \\
        --labels 1000,10000 --seeds 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from jetfm.atomic import atomic_file, write_text

#: the headline metric of each task (all "higher is better")
TASK_METRIC = {"tagging": "accuracy", "track-id": "balanced_accuracy", "vertexing": "ari"}
#: the extra studies, run for tagging only
EXTRAS = ("probe", "kinematics", "bdt")


@dataclasses.dataclass(frozen=True)
class Run:
    """One fine-tuning (or BDT) run of the study."""

    study: str  # main / probe / kinematics / bdt
    model: str  # a --checkpoints key, "scratch", "random" (frozen random) or "bdt"
    task: str
    labels: int
    seed: int
    lr: float | None = None  # set for the runs of an --lrs grid; None: --lr
    mode: str = "full"  # fine-tuning mode of a main run (--modes): full, frozen, linear, probe

    @property
    def key(self) -> str:
        key = f"{self.study}:{self.model}:{self.task}:{self.labels}:{self.seed}"
        key = key if self.lr is None else f"{key}:lr{self.lr:g}"
        return key if self.mode == "full" else f"{key}:{self.mode}"

    def key_matches(self, text: str) -> bool:
        """Whether ``--only``'s ``text`` selects this run: a part of the key, or with a
        trailing ``$`` its end."""
        return self.key.endswith(text[:-1]) if text.endswith("$") else text in self.key


def plan_runs(args: argparse.Namespace, checkpoints: dict[str, str]) -> list[Run]:
    """The run matrix, cheapest first (small label sizes, main study, then extras)."""
    sizes = sorted(int(n) for n in args.labels.split(","))
    tasks = args.tasks.split(",")
    extras = [e for e in args.extras.split(",") if e]
    grid: list[float | None] = parse_lrs(args.lrs) or [None]  # None: the single --lr
    modes = parse_modes(args.modes)
    runs: list[Run] = []
    for n in sizes:
        seeds = range(args.seeds if n == sizes[0] or args.seeds_every_size else 1)
        for seed in seeds:
            for task in tasks:
                for model in [*checkpoints, "scratch"]:
                    runs += [Run("main", model, task, n, seed, lr, mode)
                             for mode in modes for lr in lrs_of(mode, grid)]  # fmt: skip
            first = next(iter(checkpoints))
            if "probe" in extras:
                runs += [Run("probe", first, "tagging", n, seed),
                         Run("probe", "random", "tagging", n, seed)]  # fmt: skip
            if "kinematics" in extras:
                runs += [Run("kinematics", model, "tagging", n, seed, lr)
                         for model in (first, "scratch") for lr in grid]  # fmt: skip
            if "bdt" in extras:
                runs.append(Run("bdt", "bdt", "tagging", n, seed))
    return runs


#: the fine-tuning modes of the main study: ``full``; ``frozen`` (the same head on a frozen
#: encoder); ``linear`` (a linear head on the frozen encoder, trained by gradient); ``probe``
#: (``jetfm finetune --mode probe``: a logistic regression on the frozen backbone, no LR)
MODES = ("full", "frozen", "linear", "probe")
#: a linear head alone trains at this multiple of the grid's LR (the probe study's factor)
LINEAR_LR_FACTOR = 10


def lrs_of(mode: str, grid: list[float | None]) -> list[float | None]:
    """The LRs a mode runs at: the grid, or none for the LR-free ``probe``."""
    return [None] if mode == "probe" else grid


def parse_modes(text: str) -> list[str]:
    """The ``--modes`` of the main study (:data:`MODES`), a clear error otherwise."""
    modes = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if not modes or bad:
        raise SystemExit(f"--modes: expected some of {', '.join(MODES)}, got {text!r}")
    return list(dict.fromkeys(modes))


def parse_lrs(text: str | None) -> list[float]:
    """The ``--lrs`` grid as floats (empty without one); a clear error for a bad entry."""
    if not text:
        return []
    try:
        lrs = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"--lrs: expected comma-separated learning rates, got {text!r}") from None
    if not lrs or any(not (lr > 0 and math.isfinite(lr)) for lr in lrs):
        raise SystemExit(f"--lrs: learning rates must be positive numbers, got {text!r}")
    return sorted(set(lrs))


def steps_for(labels: int, args: argparse.Namespace) -> int:
    """Optimiser steps: ``--epochs`` passes over the labelled jets, within the step limits
    (few labels need many passes; every model of a size gets the same budget)."""
    per_epoch = math.ceil(labels / args.batch_size)
    return int(min(args.max_steps, max(args.min_steps, per_epoch * args.epochs)))


def run_finetune(run: Run, args: argparse.Namespace, checkpoints: dict[str, str]) -> dict:
    from jetfm.evaluation import evaluate_checkpoint
    from jetfm.finetuning import finetune

    data = Path(args.data)
    model = checkpoints.get(run.model, next(iter(checkpoints.values())))
    work = Path(args.out) / "runs" / run.key.replace(":", "_")
    shutil.rmtree(work, ignore_errors=True)
    kwargs: dict[str, Any] = {}
    linear = run.study == "probe" or (run.study == "main" and run.mode == "linear")
    if linear:
        # a linear probe of the frozen jet state (pretrained vs random backbone)
        kwargs = {"mode": "frozen", "config_overrides": {"head_hidden_size": 0}}
    if run.study == "kinematics":
        kwargs = {"feature_groups": ["kinematics"]}
    elif run.study == "main" and args.feature_groups:
        kwargs["feature_groups"] = args.feature_groups.split(",")
    if run.study == "main" and run.mode in ("frozen", "probe"):
        kwargs["mode"] = run.mode  # frozen: the same head as full fine-tuning, encoder fixed
    other_classes = "skip" if args.skip_other_classes else "raise"
    if run.task == "tagging" and args.classes:
        kwargs["classes"] = args.classes.split(",")
        kwargs["other_classes"] = other_classes
    steps = steps_for(run.labels, args)
    layer_lr_decay = 1.0 if linear else args.layer_lr_decay  # frozen: no decay
    lr = run.lr if run.lr is not None else args.lr
    if linear:
        lr *= LINEAR_LR_FACTOR  # a linear head alone trains at a higher LR
    probe = run.study == "main" and run.mode == "probe"
    start = time.perf_counter()
    result = finetune(
        model,
        run.task,
        str(data / "train"),
        str(data / "val"),
        work,
        from_scratch=run.model in ("scratch", "random"),
        max_train_jets=run.labels,
        max_steps=steps,
        batch_size=args.batch_size,
        lr=lr,
        backbone_lr_scale=args.backbone_lr_scale,
        freeze_fraction=args.freeze_fraction,
        layer_lr_decay=layer_lr_decay,
        seed=run.seed,
        pretrained_head=not args.new_head,
        early_stopping_patience=None,
        evals_per_run=args.evals,
        disable_tqdm=True,
        **kwargs,
    )
    seconds = time.perf_counter() - start
    info = getattr(getattr(result.model, "config", None), "finetuning", None) or {}
    metrics = evaluate_checkpoint(
        work, str(data / "test"), progress=False, other_classes=other_classes
    )
    if not args.keep_runs:
        shutil.rmtree(work, ignore_errors=True)
    keep = ("accuracy", "balanced_accuracy", "auc", "ari", "perfect_fraction", "n_jets",
            "recall", "confusion_matrix")  # fmt: skip
    return (
        {
            **{k: metrics[k] for k in keep if k in metrics},
            "val": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
            "steps": None if probe else steps,
            "lr": None if probe else lr,  # a probe has no LR: its L2 strength is chosen inside
            "freeze_fraction": args.freeze_fraction,
            "layer_lr_decay": layer_lr_decay,
            "seconds": round(seconds, 1),
        }
        | ({"probe_c": result.metrics["probe"]["c"]} if probe else {})
        | ({"head_from": info["head_from"]} if "head_from" in info else {})
        | ({"feature_groups": kwargs["feature_groups"]} if "feature_groups" in kwargs else {})
    )


# --- the classic baseline: boosted trees on jet observables ---------------------------------
def jet_observables(
    files: str, classes: list[str] | None = None, skip_other_classes: bool = False
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(X, y, class names)`` of the classic tagging observables: jet mass, multiplicity,
    girth, pT_D, and where the files have them the soft-drop mass, τ21 and τ32; the girth
    from ``part_deta``/``part_dphi``, or from the four-vectors and the jet axis (``jet_eta``/
    ``jet_phi``, else the summed constituents) in files without them (labels from
    the ``classes`` branches only, when given; a jet of none of them is dropped with
    ``skip_other_classes``, else an error)."""
    import awkward as ak
    import uproot

    from jetfm.data.features import wrap_phi
    from jetfm.errors import DataError

    paths = sorted(Path(files).glob("*.root")) if Path(files).is_dir() else [Path(files)]
    particles = ["part_px", "part_py", "part_pz", "part_energy"]
    angles = ["part_deta", "part_dphi"]  # else from the four-vectors and the jet axis
    optional = ["jet_sdmass", "jet_tau1", "jet_tau2", "jet_tau3", "jet_eta", "jet_phi"]
    rows, labels, names = [], [], None
    for path in paths:
        with uproot.open(path) as f:
            tree = f["tree"]
            label_keys = sorted(tree.keys(filter_name="label_*"))
            if classes:
                label_keys = [f"label_{c}" for c in classes]
            names = names or [k.removeprefix("label_") for k in label_keys]
            extra = [k for k in optional + angles if k in tree]
            a = tree.arrays(particles + extra + label_keys)
        pt = np.hypot(a.part_px, a.part_py)
        e, px, py, pz = (ak.sum(a[c], axis=1) for c in
                         ("part_energy", "part_px", "part_py", "part_pz"))  # fmt: skip
        sum_pt = ak.sum(pt, axis=1)
        if all(k in extra for k in angles):
            dr = np.hypot(a.part_deta, a.part_dphi)
        else:  # four-vectors only: angles to the jet axis (jet_eta/phi, else the summed jet)
            has_axis = "jet_eta" in extra and "jet_phi" in extra
            jet_eta = a.jet_eta if has_axis else np.arcsinh(pz / np.hypot(px, py))
            jet_phi = a.jet_phi if has_axis else np.arctan2(py, px)
            deta = np.arcsinh(a.part_pz / pt) - jet_eta
            dr = np.hypot(deta, wrap_phi(np.arctan2(a.part_py, a.part_px) - jet_phi))
        feats = [
            np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0)),  # jet mass
            ak.num(pt),  # multiplicity
            ak.sum(pt * dr, axis=1) / sum_pt,  # girth (width)
            np.sqrt(ak.sum(pt**2, axis=1)) / sum_pt,  # pT_D
            sum_pt,
        ]
        if "jet_sdmass" in extra:
            feats.append(a.jet_sdmass)
        if len([k for k in extra if k.startswith("jet_tau")]) == 3:
            feats += [a.jet_tau2 / (a.jet_tau1 + 1e-9), a.jet_tau3 / (a.jet_tau2 + 1e-9)]
        onehot = np.stack([ak.to_numpy(a[k]) for k in label_keys], axis=1)
        labelled = onehot.sum(axis=1) == 1
        if not labelled.all() and not skip_other_classes:
            raise DataError(
                f"{path}: entry {int(np.flatnonzero(~labelled)[0])} is of none of the classes "
                f"{names}; pass --skip-other-classes to drop such jets"
            )
        table = np.stack([ak.to_numpy(f).astype(np.float64) for f in feats], axis=1)
        rows.append(table[labelled])
        labels.append(onehot[labelled].argmax(axis=1))
    return np.concatenate(rows), np.concatenate(labels), names or []


def run_bdt(run: Run, args: argparse.Namespace, cache: dict) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import accuracy_score, roc_auc_score

    for split in ("train", "test"):
        if split not in cache:
            classes = args.classes.split(",") if args.classes else None
            cache[split] = jet_observables(
                str(Path(args.data) / split), classes, args.skip_other_classes
            )
    x, y, _ = cache["train"]
    rng = np.random.default_rng(run.seed)
    keep = rng.choice(len(y), size=min(run.labels, len(y)), replace=False)
    clf = HistGradientBoostingClassifier(random_state=run.seed, early_stopping=True)
    start = time.perf_counter()
    clf.fit(x[keep], y[keep])
    xt, yt, _ = cache["test"]
    prob = clf.predict_proba(xt)
    return {
        "accuracy": float(accuracy_score(yt, prob.argmax(axis=1))),
        "auc": float(
            roc_auc_score(yt, prob[:, 1])
            if prob.shape[1] == 2
            else roc_auc_score(yt, prob, multi_class="ovr")
        ),  # fmt: skip
        "n_jets": int(len(yt)),
        "seconds": round(time.perf_counter() - start, 1),
    }


# --- bookkeeping ----------------------------------------------------------------------------
def load_results(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    results = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            results[row["key"]] = row
    return results


def append_result(path: Path, row: dict) -> None:
    # one line per finished run, flushed and fsynced: a cut-off loses at most the run in flight
    with open(path, "a") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def metric_stats(values: list[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (0 for one value), count and the values."""
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "n": len(v), "values": [float(x) for x in v]}  # fmt: skip


def format_stats(stats: dict[str, Any] | None) -> str:
    """A table cell of :func:`metric_stats`: ``mean ± std`` (just the mean for one seed)."""
    if stats is None:
        return "—"
    return f"{stats['mean']:.3f} ± {stats['std']:.3f}" if stats["n"] > 1 else f"{stats['mean']:.3f}"


def recipe_of(row: dict) -> tuple[float | None, str]:
    """The fine-tuning recipe a row was run with: its LR and mode."""
    return row.get("lr"), row.get("mode", "full")


def recipe_name(recipe: tuple[float | None, str]) -> str:
    """``0.002``, ``0.002 frozen``, ``probe``: a recipe as a key of a cell's ``lr_scan``."""
    lr, mode = recipe
    if mode == "probe":
        return "probe"
    name = "default" if lr is None else f"{lr:g}"
    return name if mode == "full" else f"{name} {mode}"


def select_lr(rows: list[dict], metric: str) -> dict[str, Any]:
    """The cell of one (study, task, model, labels) group: the test metric's statistics at
    the recipe (LR, and mode with ``--modes``) whose mean validation metric is best; with one
    recipe, simply its statistics.

    Recipes are compared on the seeds they all have: where the grid ran on the first seeds
    only and the other seeds at the recipe chosen there, the choice is made on those first
    seeds (``val``); a tie goes to the recipe with more seeds (the one the study went on
    with). The cell's statistics are over every seed of the chosen recipe."""
    by_recipe: dict[tuple[float | None, str], list[dict]] = {}
    for row in rows:
        by_recipe.setdefault(recipe_of(row), []).append(row)
    if len(by_recipe) == 1:  # nothing to choose; the mode is still named (not the LR)
        ((_, mode),) = by_recipe
        return metric_stats([r[metric] for r in rows]) | ({"mode": mode} if mode != "full" else {})
    shared = set.intersection(*({r.get("seed") for r in g} for g in by_recipe.values()))

    def val_mean(group: list[dict]) -> float:
        vals = [
            r.get("val", {}).get(metric) for r in group if not shared or r.get("seed") in shared
        ]
        vals = [v for v in vals if v is not None]
        return float(np.mean(vals)) if vals else -math.inf

    scan = {
        recipe: {"val": val_mean(g), "test": float(np.mean([r[metric] for r in g])), "n": len(g)}
        for recipe, g in sorted(by_recipe.items(), key=lambda kv: (kv[0][1], kv[0][0] or 0.0))
    }
    best = max(scan, key=lambda recipe: (round(scan[recipe]["val"], 9), scan[recipe]["n"]))
    return {
        **metric_stats([r[metric] for r in by_recipe[best]]),
        "lr": best[0],
        **({"mode": best[1]} if best[1] != "full" else {}),
        "lr_scan": {recipe_name(recipe): s for recipe, s in scan.items()},
    }


def summarise(results: dict[str, dict]) -> dict[str, Any]:
    """``{study: {task: {model: {labels: {mean, std, n, values}}}}}`` of the headline metric;
    where a group was run at several LRs (``--lrs``), the cell is the one chosen on the
    validation set and also holds ``lr`` and the whole ``lr_scan``."""
    groups: dict[tuple, list[dict]] = {}
    for row in results.values():
        if TASK_METRIC[row["task"]] in row:
            groups.setdefault((row["study"], row["task"], row["model"], row["labels"]), []).append(
                row
            )
    out: dict[str, Any] = {}
    for (study, task, model, labels), rows in sorted(groups.items()):
        cell = out.setdefault(study, {}).setdefault(task, {}).setdefault(model, {})
        cell[str(labels)] = select_lr(rows, TASK_METRIC[task])
    return out


def per_class_recall(results: dict[str, dict], summary: dict[str, Any]) -> dict[str, Any]:
    """``{study: {task: {labels: {model: {class: {mean, std, n, values}}}}}}``: the recall of
    each class over the seeds of each summary cell (at its chosen LR), for the rows that
    carry it: where in the class list a pretrained backbone gains, which accuracy hides."""
    groups: dict[tuple, list[dict]] = {}
    for row in results.values():
        if isinstance(row.get("recall"), dict):
            key = (row["study"], row["task"], str(row["labels"]), row["model"])
            groups.setdefault(key, []).append(row)
    out: dict[str, Any] = {}
    for (study, task, labels, model), rows in sorted(groups.items()):
        cell = summary.get(study, {}).get(task, {}).get(model, {}).get(labels, {})
        if "lr_scan" in cell:  # only the seeds of the recipe chosen on validation
            chosen = (cell["lr"], cell.get("mode", "full"))
            rows = [r for r in rows if recipe_of(r) == chosen]
        classes = sorted({c for r in rows for c in r["recall"]})
        stats = {c: metric_stats([r["recall"][c] for r in rows if c in r["recall"]])
                 for c in classes}  # fmt: skip
        out.setdefault(study, {}).setdefault(task, {}).setdefault(labels, {})[model] = stats
    return out


def recall_table(recalls: dict[str, Any]) -> str:
    """Markdown: one table of per-class recall (rows: classes, columns: models) per cell."""
    lines = []
    for study, tasks in recalls.items():
        for task, by_labels in tasks.items():
            for labels, models in sorted(by_labels.items(), key=lambda kv: int(kv[0])):
                classes = sorted({c for m in models.values() for c in m})
                lines += [f"**{study} — {task}, {int(labels):,} labels: recall per class** "
                          "(mean ± std over seeds)", "",
                          "| class | " + " | ".join(models) + " |",
                          "| --- |" + " --- |" * len(models)]  # fmt: skip
                for c in classes:
                    cells = [format_stats(m.get(c)) for m in models.values()]
                    lines.append(f"| {c} | " + " | ".join(cells) + " |")
                lines.append("")
    return "\n".join(lines)


def plot_recall(recalls: dict[str, Any], path: Path) -> bool:
    """Grouped bars of per-class recall, one panel per label count of the main tagging study,
    one bar colour per model. Returns whether there was anything to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_labels = recalls.get("main", {}).get("tagging", {})
    if not by_labels:
        return False
    panels = sorted(by_labels.items(), key=lambda kv: int(kv[0]))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 3.8), squeeze=False)
    for ax, (labels, models) in zip(axes[0], panels, strict=True):
        classes = sorted({c for m in models.values() for c in m})
        width = 0.8 / len(models)
        for j, (model, stats) in enumerate(models.items()):
            x = np.arange(len(classes)) + (j - (len(models) - 1) / 2) * width
            mean = [stats[c]["mean"] if c in stats else np.nan for c in classes]
            std = [stats[c]["std"] if c in stats else 0.0 for c in classes]
            ax.bar(x, mean, width, yerr=std, capsize=2, label=model,
                   hatch="//" if model == "scratch" else None)  # fmt: skip
        ax.set_xticks(np.arange(len(classes)), classes)
        ax.set_ylim(0, 1)
        ax.set_ylabel("recall (fraction tagged correctly)")
        ax.set_title(f"tagging, {int(labels):,} labels: recall per class (mean ± std over "
                     "seeds)", fontsize=9)  # fmt: skip
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    save_figure(fig, path)
    return True


def markdown_table(summary: dict[str, Any]) -> str:
    lines = []
    for study, tasks in summary.items():
        for task, models in tasks.items():
            sizes = sorted({int(n) for cells in models.values() for n in cells})
            scanned = any("lr_scan" in c for cells in models.values() for c in cells.values())
            note = "; LR: chosen on validation" if scanned else ""
            title = f"**{study} — {task}** ({TASK_METRIC[task]}, mean ± std over seeds{note})"
            lines += [title, "",
                      "| model | " + " | ".join(f"{n:,} labels" for n in sizes) + " |",
                      "| --- |" + " --- |" * len(sizes)]  # fmt: skip
            for model, cells in models.items():
                row = []
                for n in sizes:
                    c = cells.get(str(n))
                    text = format_stats(c)
                    text += cell_recipe(c)
                    row.append(text)
                lines.append(f"| {model} | " + " | ".join(row) + " |")
            lines.append("")
    return "\n".join(lines)


def cell_recipe(cell: dict[str, Any] | None) -> str:
    """`` (LR 0.002)``, `` (LR 0.002, frozen)`` or `` (probe)``: the recipe a cell was
    chosen at."""
    if cell is not None and cell.get("mode") == "probe":
        return " (probe)"
    if cell is None or cell.get("lr") is None:
        return ""
    mode = cell.get("mode", "full")
    return f" (LR {cell['lr']:g}" + ("" if mode == "full" else f", {mode}") + ")"


def save_figure(fig: Any, path: Path) -> None:
    """Write a figure atomically (temp file, then rename) and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    try:
        with atomic_file(path) as tmp:
            fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    main = summary.get("main", {})
    tasks = list(main)
    if not tasks:
        return
    crowded = max(len(main[t]) for t in tasks) + ("bdt" in summary) > 5
    # a long legend goes beside its panel (inside, it hides the points), so widen the panels
    width = 7.4 if crowded else 4.2
    fig, axes = plt.subplots(1, len(tasks), figsize=(width * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        models = dict(main[task])
        if task == "tagging" and "bdt" in summary:
            models["BDT (observables)"] = summary["bdt"]["tagging"]["bdt"]
        for model, cells in models.items():
            sizes = sorted(int(n) for n in cells)
            mean = [cells[str(n)]["mean"] for n in sizes]
            std = [cells[str(n)]["std"] for n in sizes]
            style = "--" if model == "scratch" else ":" if "BDT" in model else "-"
            ax.errorbar(sizes, mean, yerr=std, marker="o", ls=style, capsize=3, label=model)
        ax.set_xscale("log")
        ax.set_xlabel("labelled jets")
        ax.set_ylabel(TASK_METRIC[task].replace("_", " "))
        ax.set_title(task)
        ax.grid(alpha=0.3)
        if crowded:
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        else:
            ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_lr_scan(summary: dict[str, Any], path: Path) -> bool:
    """Mean test (solid; scratch dashed) and validation (dotted) metric vs fine-tuning LR,
    one colour per model, one panel per (task, labels) cell scanned with ``--lrs``; the
    chosen LR is ringed. Returns whether there was a scan to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []  # (task, labels, {model: cell}) of every cell with a scan
    for task, models in summary.get("main", {}).items():
        for labels in sorted({n for cells in models.values() for n in cells}, key=int):
            scanned = {m: c[labels] for m, c in models.items() if "lr_scan" in c.get(labels, {})}
            if scanned:
                panels.append((task, labels, scanned))
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    for ax, (task, labels, cells) in zip(axes[0], panels, strict=True):
        all_lrs: set[float] = set()
        for model, cell in cells.items():
            by_mode: dict[str, dict[float, dict]] = {}
            colour, probe = None, cell["lr_scan"].get("probe")  # a probe has no LR
            for k, v in cell["lr_scan"].items():
                lr, _, mode = k.partition(" ")
                if k != "probe" and lr != "default":
                    by_mode.setdefault(mode or "full", {})[float(lr)] = v
            for mode, scan in by_mode.items():
                lrs = sorted(scan)
                all_lrs |= set(lrs)
                style = "o--" if model == "scratch" else "o-"  # as in the label-efficiency plot
                label = model if mode == "full" else f"{model} ({mode})"
                marker = "o" if mode == "full" else "s"
                line = ax.plot(lrs, [scan[lr]["test"] for lr in lrs], style.replace("o", marker),
                               label=label)  # fmt: skip
                colour = line[0].get_color()
                ax.plot(lrs, [scan[lr]["val"] for lr in lrs], ":", color=colour)
                if cell.get("mode", "full") == mode and cell.get("lr") in scan:
                    ax.plot([cell["lr"]], [scan[cell["lr"]]["test"]], "o", ms=13, mfc="none",
                            color=colour)  # fmt: skip
            if probe is not None:  # LR-free: level lines, dash-dot test, dotted validation
                chosen = cell.get("mode") == "probe"
                label = f"{model} (probe{', chosen' if chosen else ''})"
                line = ax.axhline(probe["test"], ls="-.", lw=2 if chosen else 1, color=colour,
                                  label=label)  # fmt: skip
                ax.axhline(probe["val"], ls=":", lw=1, color=line.get_color())
        ax.set_xscale("log")
        ax.set_xticks(sorted(all_lrs), [f"{lr:g}" for lr in sorted(all_lrs)])
        ax.minorticks_off()
        ax.set_xlabel("fine-tuning learning rate")
        ax.set_ylabel(f"mean {TASK_METRIC[task].replace('_', ' ')}")
        ax.set_title(f"{task}, {int(labels):,} labels\ntest: solid (scratch dashed), "
                     "validation: dotted, ring: chosen on validation", fontsize=9)  # fmt: skip
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)
    return True


def write_summary(out: Path, results: dict[str, dict]) -> dict[str, Any]:
    summary = summarise(results)
    recalls = per_class_recall(results, summary)
    text_md = markdown_table(summary) + ("\n" + recall_table(recalls) if recalls else "")
    files = [("summary.json", json.dumps(summary, indent=2)), ("summary.md", text_md)]
    if recalls:  # its own file: summary.json keeps its {study: …} shape for its readers
        files.append(("recall_per_class.json", json.dumps(recalls, indent=2)))
    for name, text in files:
        write_text(out / name, text)
    plot(summary, out / "label_efficiency.png")
    # what this summary has nothing for is removed: a table or figure an earlier summary left
    # in the same folder must not pass for this one's
    if not recalls:
        (out / "recall_per_class.json").unlink(missing_ok=True)
    if not plot_lr_scan(summary, out / "lr_scan.png"):
        (out / "lr_scan.png").unlink(missing_ok=True)
    if not plot_recall(recalls, out / "per_class_recall.png"):
        (out / "per_class_recall.png").unlink(missing_ok=True)
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder with train/ val/ test/ ROOT files")
    parser.add_argument("--out", default="study", help="results folder")
    parser.add_argument(
        "--checkpoints",
        default="flow=mpm-flow-base,vq=mpm-vq-base",
        help="NAME=checkpoint pairs (the first one also runs the extras)",
    )
    parser.add_argument("--labels", default="1000,10000", help="labelled-jet counts")
    parser.add_argument("--seeds", type=int, default=3, help="seeds at the smallest count")
    parser.add_argument("--seeds-every-size", action="store_true",
                        help="run --seeds seeds at every label count (default: one above "
                        "the smallest)")  # fmt: skip
    parser.add_argument("--feature-groups", default=None,
                        help="main study: only these input groups, e.g. kinematics "
                        "(default: every group the model and the files share)")  # fmt: skip
    parser.add_argument("--tasks", default="tagging,track-id,vertexing")
    parser.add_argument("--extras", default=",".join(EXTRAS), help="probe,kinematics,bdt or ''")
    parser.add_argument("--only", default=None,
                        help="comma-separated texts: run only the keys containing one of them "
                        "(a text ending in $ must end the key: ':lr0.002$' is not ':lr0.002:frozen')")  # fmt: skip
    parser.add_argument(
        "--classes",
        default=None,
        help="tagging: only these classes, e.g. QCD,Tbqq (the transfer study)",
    )
    parser.add_argument(
        "--skip-other-classes",
        action="store_true",
        help="with --classes: drop the other classes' jets from files that mix them all",
    )
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--lrs", default=None,
                        help="LR grid, e.g. 5e-4,1e-3,2e-3: every full fine-tuning is run at "
                        "each and the summary picks each model's LR on validation")  # fmt: skip
    parser.add_argument(
        "--new-head",
        action="store_true",
        help="track-id: a random head even where a checkpoint has a "
        "pre-trained track-origin head (by default the head starts from it)",
    )
    parser.add_argument("--modes", default="full",
                        help="main study: fine-tuning modes, e.g. full,frozen,linear,probe "
                        "(linear: a linear head on the frozen encoder, at 10x each LR; probe: "
                        "a logistic regression on it, once, no LR): every model runs each "
                        "(with each LR) and the summary picks on validation")  # fmt: skip
    parser.add_argument("--backbone-lr-scale", type=float, default=1.0,
                        help="full fine-tuning: backbone LR / head LR after the ramp")  # fmt: skip
    parser.add_argument("--freeze-fraction", type=float, default=0.1,
                        help="full fine-tuning: share of the steps with the backbone frozen "
                        "(a linear-probe phase first; 0.5 = LP-FT)")  # fmt: skip
    parser.add_argument("--layer-lr-decay", type=float, default=1.0,
                        help="full fine-tuning: layer-wise LR decay per encoder block (1: off)")  # fmt: skip
    parser.add_argument("--epochs", type=float, default=30, help="passes over the labels")
    parser.add_argument("--min-steps", type=int, default=300)
    parser.add_argument("--max-steps", type=int, default=1500)
    parser.add_argument("--evals", type=int, default=6, help="validation passes per run")
    parser.add_argument("--keep-runs", action="store_true", help="keep fine-tuned models")
    parser.add_argument("--summarise", action="store_true", help="only rewrite the summary")
    args = parser.parse_args(argv)
    parse_lrs(args.lrs)  # a bad grid fails now, not after hours of runs
    parse_modes(args.modes)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "results.jsonl"
    checkpoints = dict(item.split("=", 1) for item in args.checkpoints.split(",") if item)
    results = load_results(results_file)
    if not args.summarise:
        only = [t for t in (args.only or "").split(",") if t]
        runs = [
            r for r in plan_runs(args, checkpoints) if not only or any(map(r.key_matches, only))
        ]
        todo = [r for r in runs if r.key not in results]
        print(f"{len(runs)} runs planned, {len(runs) - len(todo)} already done", flush=True)
        cache: dict = {}
        for i, run in enumerate(todo, start=1):
            start = time.perf_counter()
            row = run_bdt(run, args, cache) if run.study == "bdt" else run_finetune(
                run, args, checkpoints)  # fmt: skip
            # the run's fields, then what it measured (its "lr" is the one used, grid or --lr)
            row = dataclasses.asdict(run) | row | {"key": run.key}
            append_result(results_file, row)
            results[run.key] = row
            metric = TASK_METRIC[run.task]
            print(f"[{i}/{len(todo)}] {run.key}: {metric} {row.get(metric, float('nan')):.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
            write_summary(out, results)
    summary = write_summary(out, results)
    print(markdown_table(summary))
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
