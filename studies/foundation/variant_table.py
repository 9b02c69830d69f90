"""Transfer per CPU-hour of each pre-training variant: one table from the probe rows.

Every variant is measured the same cheap way: a logistic regression on its frozen jet
representation with 1,000 labelled jets of the domain-shifted test bed (top vs QCD, quark vs
gluon: ``probe_testbed.py``; 8 classes: ``study_label_efficiency.py --modes probe``), C chosen
on validation, test accuracy averaged over 3 draws. The gain is taken against scratch (the
same architecture from random weights at the recipe validation chose, probe included) and
against the checkpoint the variant started from (scratch for a variant started from random
weights), per CPU-hour of the variant's own stage.

The variants, their starts and their measured CPU-hours are in ``variants.json`` beside this
script. Example::

    python studies/foundation/variant_table.py --out studies/results/foundation/variants/table.md \
        --plot studies/results/foundation/variants/gain_vs_cpu_hours.png
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results" / "foundation"
TASKS = ("top", "qg", "eight")
TASK_NAMES = {"top": "top vs QCD", "qg": "quark vs gluon", "eight": "8 classes"}


def probe_accuracies(probes: Path, eight: Path, labels: int = 1000) -> dict:
    """``{(model, task): [test accuracy per seed]}`` of the probes at ``labels`` labels."""
    found: dict = defaultdict(list)
    for line in probes.read_text().splitlines():
        row = json.loads(line)
        if row["kind"] == "probe" and row["labels"] == labels:
            found[row["model"], row["task"]].append(row["accuracy"])
    # the 8-class study's own rows (its scratch probe is the random backbone's) and the
    # variants' probes; a seed measured in both counts once
    seen = set()
    for path in (RESULTS / "eight" / "results.jsonl", eight):
        for line in path.read_text().splitlines() if path.is_file() else ():
            row = json.loads(line)
            model = "random" if row["model"] == "scratch" else row["model"]
            key = (model, row["seed"])
            if row.get("mode") == "probe" and row["labels"] == labels and key not in seen:
                seen.add(key)
                found[model, "eight"].append(row["accuracy"])
    return found


def scratch_accuracy(labels: int = 1000) -> dict[str, float]:
    """Scratch's test accuracy at the recipe chosen on validation, per task."""
    two = json.loads((RESULTS / "summary.json").read_text())["tables"]
    eight = json.loads((RESULTS / "eight" / "summary.json").read_text())["main"]["tagging"]
    out = {t: two[t]["scratch"][str(labels)]["mean"] for t in ("top", "qg")}
    out["eight"] = eight["scratch"][str(labels)]["mean"]
    return out


def table(variants: list[dict], accuracy: dict, scratch: dict[str, float]) -> str:
    """The Markdown table: probe accuracy and gain over scratch per task, and the mean gain
    over the variant's start per CPU-hour of its stage."""
    mean = {k: float(np.mean(v)) for k, v in accuracy.items()}
    head = ["variant", "start", "steps", "CPU-hours (stage / total)"]
    head += [f"{TASK_NAMES[t]}: probe (Δ scratch)" for t in TASKS]
    head += ["points over its start per stage CPU-hour (top / q/g / 8 classes)"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    total = total_cpu_hours(variants)
    for v in variants:
        cells = [v["label"], v.get("start") or "random weights", v["steps"]]
        approx = "≈ " if v.get("cpu_hours_estimated") else ""
        cells.append(f"{approx}{v['cpu_hours']:.2f} / {total[v['name']]:.2f}")
        gains = []
        for task in TASKS:
            acc = mean.get((v["name"], task))
            if acc is None:
                cells.append("—")
                gains.append("—")
                continue
            n = len(accuracy[v["name"], task])
            seeds = f"{n} seed" + ("s" if n > 1 else "")
            cells.append(f"{acc:.3f} ({100 * (acc - scratch[task]):+.1f}; {seeds})")
            # from random weights the bar is scratch: the same network trained on the labels
            start = mean.get((v["start"], task)) if v.get("start") else scratch[task]
            per_hour = None if start is None else 100 * (acc - start) / v["cpu_hours"]
            gains.append("—" if per_hour is None else f"{per_hour:+.1f}")
        cells.append(" / ".join(gains))
        lines.append("| " + " | ".join(cells) + " |")
    ref = ", ".join(f"{TASK_NAMES[t]} {scratch[t]:.3f}" for t in TASKS)
    return (
        "\n".join(lines)
        + f"\n\nScratch at 1,000 labels (its recipe chosen on validation): {ref}.\n"
    )


def total_cpu_hours(variants: list[dict]) -> dict[str, float]:
    """Each variant's CPU-hours with those of the chain of stages behind it."""
    by_name = {v["name"]: v for v in variants}

    def total(name: str | None) -> float:
        return (
            0.0 if name is None else by_name[name]["cpu_hours"] + total(by_name[name].get("start"))
        )

    return {v["name"]: total(v["name"]) for v in variants}


def plot(variants: list[dict], accuracy: dict, scratch: dict[str, float], path: Path) -> None:
    """One panel per task: probe gain over scratch (mean and spread of the draws) against the
    CPU-hours behind the checkpoint, from random weights (circles) or continued (squares)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = total_cpu_hours(variants)
    fig, axes = plt.subplots(1, len(TASKS), figsize=(4.2 * len(TASKS), 3.6), sharex=True)
    for ax, task in zip(axes, TASKS, strict=True):
        ax.axhline(0.0, color="grey", ls="--", lw=1, label="scratch")
        for v in variants:
            draws = accuracy.get((v["name"], task))
            if not draws:
                continue
            gain = 100 * (np.asarray(draws) - scratch[task])
            marker = "o" if v.get("start") is None else "s"
            ax.errorbar(hours[v["name"]], gain.mean(), yerr=gain.std(), marker=marker, ms=5,
                        capsize=2, color="tab:blue" if marker == "o" else "tab:orange")  # fmt: skip
            ax.annotate(v["name"], (hours[v["name"]], gain.mean()), textcoords="offset points",
                        xytext=(4, 3), fontsize=6)  # fmt: skip
        ax.set_xscale("log")
        ax.set_title(TASK_NAMES[task], fontsize=9)
        ax.set_xlabel("CPU-hours behind the checkpoint")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("probe accuracy − scratch (points)\n1,000 labels, domain-shifted jets")
    axes[0].plot([], [], "o", color="tab:blue", label="from random weights")
    axes[0].plot([], [], "s", color="tab:orange", label="continued from a checkpoint")
    axes[0].legend(fontsize=7, loc="center")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=str(HERE / "variants.json"))
    parser.add_argument("--probes", default=str(RESULTS / "probe.jsonl"))
    parser.add_argument("--eight", default=str(RESULTS / "variants" / "eight_probe.jsonl"))
    parser.add_argument("--out", default=None, help="write the table here (default: print)")
    parser.add_argument("--plot", default=None, help="also draw the gain against CPU-hours here")
    args = parser.parse_args(argv)
    variants = json.loads(Path(args.variants).read_text())["variants"]
    accuracy = probe_accuracies(Path(args.probes), Path(args.eight))
    scratch = scratch_accuracy()
    text = table(variants, accuracy, scratch)
    if args.plot:
        plot(variants, accuracy, scratch, Path(args.plot))
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
