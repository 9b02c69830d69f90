"""Draw ``docs/figures/transfer_steps.png``: the transfer to a new class — a backbone
pre-trained on jets *without* top, fine-tuned for top (Tbqq) vs QCD on 1,000 labelled jets —
as the gain over scratch vs the number of pre-training steps behind the backbone.

Every point is the study protocol (250 steps × 100 jets, LR 5e-4, 5 seeds, test set of
1,000 jets); the gain is pre-trained minus scratch seed by seed (same labelled jets, same
initial head), read from the raw rows in ``studies/results/``. Run from the repo
root::

    python studies/plot_transfer_steps.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from plot_fixed_recipe import load_study_module

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
LR = 5e-4
PROTOCOL_STEPS = 250
#: (pre-training steps, legend note, (file, model) of the pre-trained rows,
#:  (file, model) sources of the scratch rows, searched in order for each seed)
POINTS = (
    (2_400, "273,000 jets (session 18)", ("results_session18.jsonl", "notopbig"),
     (("results_session18.jsonl", "scratch"), ("results_transfer_top.jsonl", "scratch"))),
    (4_800, "150,000 jets (session 29)", ("results_session29.jsonl", "nt48"),
     (("results_session29.jsonl", "scratch"),)),
    (9_600, "the same, continued (session 30)", ("results_session30.jsonl", "nt96"),
     (("results_session29.jsonl", "scratch"),)),
)  # fmt: skip


def top_vs_qcd_rows(study, file: str, model: str) -> dict[int, dict]:
    """Seed → row of ``model``'s 1k-label top-vs-QCD runs at the protocol's LR (rows from
    before the LR grid carry no ``lr``: they ran at the then default, 5e-4)."""
    rows = study.load_results(RESULTS / file).values()
    return {r["seed"]: r for r in rows
            if (r["study"], r["task"], r["model"], r["labels"]) == ("main", "tagging", model, 1000)
            and r.get("n_jets") == 1000 and r.get("steps") == PROTOCOL_STEPS
            and (r.get("lr") or LR) == LR}  # fmt: skip


def paired_gains(study, pretrained: tuple[str, str], scratch_sources) -> dict[int, float]:
    """Seed → pre-trained minus scratch accuracy, for the seeds both sides have."""
    ours = top_vs_qcd_rows(study, *pretrained)
    theirs: dict[int, dict] = {}
    for source in reversed(scratch_sources):  # the first source wins
        theirs |= top_vs_qcd_rows(study, *source)
    return {s: ours[s]["accuracy"] - theirs[s]["accuracy"] for s in sorted(ours) if s in theirs}


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    study = load_study_module()
    fig, ax = plt.subplots(figsize=(5.6, 3.9))
    ax.axhline(0.0, color="grey", ls="--", label="scratch (same seeds)")
    done = []
    for steps, note, pretrained, scratch in POINTS:
        gains = paired_gains(study, pretrained, scratch)
        if not gains:
            continue
        values = 100 * np.array(list(gains.values()))
        ax.scatter(np.full(len(values), steps), values, color="tab:blue", alpha=0.35, s=14)
        mean, std = values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0
        ax.errorbar(steps, mean, yerr=std, marker="o", color="tab:blue", capsize=3)
        ax.annotate(f"{mean:+.1f} ({len(values)} seeds)\n{note}", (steps, mean),
                    textcoords="offset points", xytext=(8, 0), va="center", fontsize=7)  # fmt: skip
        done.append((steps, note, mean, std, len(values)))
    ax.set_xlabel("pre-training steps (× 128 jets without top) behind the backbone")
    ax.set_ylabel("top vs QCD accuracy gain over scratch\n(points, 1,000 labels)")
    ax.set_title("Transfer to a class never seen in pre-training", fontsize=9)
    ax.set_xlim(0, max((d[0] for d in done), default=1) * 1.6)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    study.save_figure(fig, ROOT.parent / "docs" / "figures" / "transfer_steps.png")
    for steps, note, mean, std, n in done:
        print(f"{steps:>6} steps ({note}): {mean:+.2f} ± {std:.2f} points over {n} seeds")


if __name__ == "__main__":
    main()
