"""Draw ``docs/figures/pretraining_steps.png``: tagging accuracy at 1,000 labelled jets vs
the number of pre-training steps behind the backbone (``diffusion`` target, `base` size),
with the from-scratch baseline as a band — does more pre-training keep paying?

Every point is the study protocol (250 steps × 100 jets, 3 seeds, test set of 4,000 jets),
at the LR chosen on the validation set from {1e-3, 2e-3} (the grid every checkpoint here was
run on), read from the raw rows in ``studies/results/``. Run from the repo root::

    python studies/plot_pretraining_steps.py
"""

from __future__ import annotations

from pathlib import Path

from plot_fixed_recipe import load_study_module

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
#: (study model name, file, pre-training steps behind it, legend note)
CHECKPOINTS = (
    ("diffbig", "results_lr_grid.jsonl", 2_400, "one run"),
    ("diff7k", "results_lr_grid.jsonl", 7_200, "one run (mpm-flow-base)"),
    ("cont", "results_session21.jsonl", 12_400, "+5,200 (fresh decoder)"),
    ("cont3", "results_session22.jsonl", 17_400, "+5,000 (decoder kept)"),
)
SCRATCH = ("scratch", "results_lr_grid.jsonl")
LRS = (1e-3, 2e-3)
PROTOCOL_STEPS = 250


def tagging_rows(study, model: str, file: str) -> list[dict]:
    """The protocol's 1k-label tagging rows of ``model`` at the grid's LRs (read with the
    study's own loader: newest row per key, none for a missing file)."""
    rows = study.load_results(RESULTS / file).values()
    return [r for r in rows
            if (r["study"], r["task"], r["model"], r["labels"]) == ("main", "tagging", model, 1000)
            and r.get("steps") == PROTOCOL_STEPS and r["lr"] in LRS]  # fmt: skip


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    study = load_study_module()
    scratch = study.select_lr(tagging_rows(study, *SCRATCH), "accuracy")
    points = []
    for model, file, steps, note in CHECKPOINTS:
        rows = tagging_rows(study, model, file)
        if rows:
            points.append((steps, note, study.select_lr(rows, "accuracy")))
    fig, ax = plt.subplots(figsize=(5.6, 3.9))
    lo, hi = scratch["mean"] - scratch["std"], scratch["mean"] + scratch["std"]
    ax.axhspan(
        lo,
        hi,
        color="grey",
        alpha=0.25,
        label=f"scratch {scratch['mean']:.3f} ± {scratch['std']:.3f}",
    )
    ax.axhline(scratch["mean"], color="grey", ls="--")
    steps = [p[0] for p in points]
    ax.errorbar(steps, [p[2]["mean"] for p in points], yerr=[p[2]["std"] for p in points],
                marker="o", capsize=3, label="pre-trained (diffusion target), fine-tuned")  # fmt: skip
    for s, note, cell in points:
        ax.annotate(
            f"{cell['mean']:.3f}\n{note}",
            (s, cell["mean"]),
            textcoords="offset points",
            xytext=(6, -4),
            ha="left",
            va="top",
            fontsize=7,
        )
    target = scratch["mean"] + 0.10  # issue 8: +10 points over scratch at 1k labels
    ax.axhline(target, color="tab:red", ls=":", label=f"target: scratch + 10 points ({target:.3f})")
    ax.set_xlabel("pre-training steps behind the backbone (× 128 jets)")
    ax.set_ylabel("tagging accuracy, 1,000 labels")
    ax.set_title("Does more pre-training keep paying? (3 seeds, LR chosen on validation)",
                 fontsize=9)  # fmt: skip
    ax.set_xlim(0, max(steps, default=1) * 1.35)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center right")
    study.save_figure(fig, ROOT.parent / "docs" / "figures" / "pretraining_steps.png")
    for s, note, cell in points:
        print(
            f"{s:>6} steps ({note}): {cell['mean']:.4f} ± {cell['std']:.4f} at LR {cell.get('lr')}"
        )
    print(f"scratch: {scratch['mean']:.4f} ± {scratch['std']:.4f} at LR {scratch.get('lr')}")


if __name__ == "__main__":
    main()
