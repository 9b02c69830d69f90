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

    python studies/foundation/variant_table.py --out studies/results/foundation/variants/table.md
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
    total: dict[str, float] = {}
    for v in variants:
        total[v["name"]] = v["cpu_hours"] + total.get(v.get("start") or "", 0.0)
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=str(HERE / "variants.json"))
    parser.add_argument("--probes", default=str(RESULTS / "probe.jsonl"))
    parser.add_argument("--eight", default=str(RESULTS / "variants" / "eight_probe.jsonl"))
    parser.add_argument("--out", default=None, help="write the table here (default: print)")
    args = parser.parse_args(argv)
    variants = json.loads(Path(args.variants).read_text())["variants"]
    text = table(variants, probe_accuracies(Path(args.probes), Path(args.eight)),
                 scratch_accuracy())  # fmt: skip
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
