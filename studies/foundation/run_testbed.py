"""Run the label-efficiency study on the domain-shifted test bed and check the targets.

For each task folder of the test bed (``top``, ``qg``: written by ``prepare_testbed.py``)
this runs ``studies/study_label_efficiency.py`` with the test bed's protocol:

- every ``--checkpoints`` entry (``NAME=PATH`` pairs) and ``scratch`` (the same architecture
  with random weights), fully fine-tuned on the ``kinematics`` feature group only (the files
  hold four-vectors only), for tagging;
- at every ``--labels`` count with ``--seeds`` seeds each (``--seeds-every-size``);
- every run at each LR of ``--lrs`` (and, with ``-- --modes full,frozen,linear``, also with
  the encoder frozen, and as a linear probe: a linear head on the frozen encoder at 10× the
  LR); the summary takes, for every model and label count, the recipe with the
  best mean *validation* accuracy over the seeds (pretrained and scratch alike), and reports
  the test accuracy there;
- the gradient-boosted-tree baseline (``bdt``) on jet observables at the same label counts.

Rows go to ``OUT/<task>/results.jsonl`` (resumable: finished runs are skipped), with the
study's own ``summary.md`` and plots beside them; ``OUT/summary.md`` and ``OUT/summary.json``
hold the table of both tasks (mean ± std test accuracy per model × labels, each model at its
LR chosen on validation) and the issue's targets, each marked met or not:

- at ``--target-labels`` (1,000): pretrained ≥ scratch + 5 points on both tasks, ahead on
  every seed, and ahead of the BDT;
- pretrained at ``--target-labels`` ≥ scratch at ``--high-labels`` (10,000) on at least one
  task;
- for a checkpoint named in ``--held-out NAME=TASK`` (its pre-training supervised no class of
  that task's signal, e.g. ``--supervised-classes`` without Tbqq and Tbl for ``top``): ahead
  of scratch at ``--target-labels`` on that task, on the mean and on every seed.

Arguments after ``--`` go to the study script as they are (``--batch-size``,
``--min-steps``, ``--max-steps``, ``--evals``, ...). ``--summarise`` only rewrites the
summaries from the rows.

Example::

    python studies/foundation/run_testbed.py --testbed /work/data/testbed \\
        --checkpoints truth=/work/runs/mpm-truth-det,mpm=/work/runs/mpm-only-det,base=mpm-flow-base \\
        --labels 100,1000,10000 --seeds 3 --lrs 5e-4,1e-3,2e-3 --out studies/results/foundation
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from jetfm.atomic import write_text
from jetfm.errors import DataError

STUDY = Path(__file__).resolve().parent.parent / "study_label_efficiency.py"
TASKS = ("top", "qg")
TASK_TITLES = {"top": "top vs QCD (R = 0.8)", "qg": "quark vs gluon (R = 0.4)"}
#: the issue's margin: pretrained ≥ scratch + this much accuracy at the target label count
MARGIN = 0.05


def load_study() -> Any:
    """The study script as a module."""
    spec = importlib.util.spec_from_file_location("study_label_efficiency", STUDY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def study_argv(args: argparse.Namespace, task: str, passthrough: list[str]) -> list[str]:
    """The study script's arguments for one task of the test bed."""
    argv = ["--data", str(Path(args.testbed) / task), "--out", str(Path(args.out) / task),
            "--checkpoints", args.checkpoints, "--labels", args.labels,
            "--seeds", str(args.seeds), "--seeds-every-size", "--tasks", "tagging",
            "--extras", "bdt", "--feature-groups", "kinematics"]  # fmt: skip
    if args.lrs:
        argv += ["--lrs", args.lrs]
    return argv + passthrough


def check_testbed(testbed: Path, task: str, labels: list[int]) -> dict[str, Any]:
    """The task's test-bed manifest; DataError when it is missing or its training split is
    smaller than the largest label count (that run would silently use fewer labels)."""
    path = testbed / task / "manifest.json"
    if not path.is_file():
        raise DataError(f"{path}: missing; write the test bed with prepare_testbed.py first")
    manifest = json.loads(path.read_text())
    n_train = manifest["splits"]["train"]["n_jets"]
    if max(labels) > n_train:
        raise DataError(
            f"{path}: the training split has {n_train} jets, fewer than --labels {max(labels)}"
        )
    return manifest


def seed_values(
    rows: list[dict], model: str, labels: int, recipe: tuple[float | None, str] | None = None
) -> dict[int, float]:
    """``{seed: test accuracy}`` of one model and label count at its chosen ``recipe`` (LR,
    mode; the LR-free probe: ``(None, "probe")``), every row where the cell had only one."""
    study = "bdt" if model == "bdt" else "main"
    return {
        r["seed"]: r["accuracy"]
        for r in rows
        if r["study"] == study and r["model"] == model and r["labels"] == labels
        and (recipe is None or (r.get("lr"), r.get("mode", "full")) == recipe)
    }  # fmt: skip


def task_table(study: Any, rows: list[dict]) -> dict[str, dict[str, dict]]:
    """``{model: {labels: cell}}`` of one task: the study's cells (LR chosen on validation)
    plus ``seeds`` (``{seed: accuracy}`` at that LR); the BDT under ``bdt``."""
    summary = study.summarise({r["key"]: r for r in rows})
    models = dict(summary.get("main", {}).get("tagging", {}))
    models.update(summary.get("bdt", {}).get("tagging", {}))
    for model, cells in models.items():
        for labels, cell in cells.items():
            chosen = (cell["lr"], cell.get("mode", "full")) if "lr_scan" in cell else None
            cell["seeds"] = seed_values(rows, model, int(labels), chosen)
    return models


def seeds_ahead(pre: dict, scr: dict) -> tuple[int, int]:
    """How many of the seeds two cells share have ``pre`` above ``scr``, and how many they
    share."""
    common = set(pre["seeds"]) & set(scr["seeds"])
    return sum(pre["seeds"][s] > scr["seeds"][s] for s in common), len(common)


def check_targets(
    tables: dict[str, dict],
    pretrained: list[str],
    low: int,
    high: int,
    held_out: dict[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """``{checkpoint: {target: {met, detail}}}``; a target whose cells were not run is
    ``met: None``. ``held_out`` maps a checkpoint to the task whose signal class its
    pre-training did not supervise; it adds the held-out-class target on that task."""

    def cell(task: str, model: str, labels: int) -> dict | None:
        return tables.get(task, {}).get(model, {}).get(str(labels))

    out: dict[str, dict[str, Any]] = {}
    for name in pretrained:
        checks: dict[str, Any] = {}
        margin, every_seed, over_bdt, beats_high = [], [], [], []
        for task in tables:
            pre, scr, bdt = (cell(task, m, low) for m in (name, "scratch", "bdt"))
            high_scr = cell(task, "scratch", high)
            if pre and scr:
                gain = pre["mean"] - scr["mean"]
                margin.append((task, gain >= MARGIN, f"{task}: {100 * gain:+.1f} points"))
                n_ahead, n_common = seeds_ahead(pre, scr)
                every_seed.append((task, 0 < n_ahead == n_common,
                                   f"{task}: ahead on {n_ahead}/{n_common} seeds"))  # fmt: skip
            if pre and bdt:
                gap = pre["mean"] - bdt["mean"]
                over_bdt.append((task, gap > 0, f"{task}: {100 * gap:+.1f} points over the BDT"))
            if pre and high_scr:
                gap = pre["mean"] - high_scr["mean"]
                beats_high.append((task, gap >= 0, f"{task}: {100 * gap:+.1f} points vs "
                                   f"scratch at {high:,}"))  # fmt: skip
        for key, found, any_task in (
            (f"≥ scratch + {100 * MARGIN:.0f} points at {low:,} labels, both tasks", margin, False),
            (f"ahead of scratch on every seed at {low:,} labels, both tasks", every_seed, False),
            (f"ahead of the BDT at {low:,} labels, both tasks", over_bdt, False),
            (f"at {low:,} labels ≥ scratch at {high:,}, at least one task", beats_high, True),
        ):
            passed = [f[1] for f in found]
            if any_task:  # met on one task; failed only when every task was measured
                met = True if any(passed) else (False if len(found) == len(TASKS) else None)
            else:  # met on every task; unknown while a task is missing and none failed
                met = False if not all(passed) else (True if len(found) == len(TASKS) else None)
            checks[key] = {"met": met, "detail": "; ".join(f[2] for f in found) or "not run"}
        if name in (held_out or {}):
            task = held_out[name]
            key = f"held-out classes: ahead of scratch at {low:,} labels on {task}, every seed"
            checks[key] = held_out_check(cell(task, name, low), cell(task, "scratch", low), task)
        out[name] = checks
    return out


def held_out_check(pre: dict | None, scr: dict | None, task: str) -> dict[str, Any]:
    """The held-out-class target on one task: the mean and every seed ahead of scratch."""
    if not (pre and scr):
        return {"met": None, "detail": f"{task}: not run"}
    n_ahead, n_common = seeds_ahead(pre, scr)
    gain = pre["mean"] - scr["mean"]
    met = 0 < n_ahead == n_common and gain > 0
    return {"met": met, "detail": f"{task}: {100 * gain:+.1f} points, ahead on "
                                  f"{n_ahead}/{n_common} seeds"}  # fmt: skip


def summary_markdown(
    study: Any, tables: dict[str, dict], targets: dict[str, dict], testbeds: dict[str, dict]
) -> str:
    """The markdown summary: one table per task, then the targets."""
    lines = ["# Domain-shifted test bed: pretrained vs scratch vs BDT", "",
             "Test accuracy, mean ± std over seeds; each network at the recipe (LR, and "
             "`frozen` where the encoder stayed frozen, `linear` for a linear head on the "
             "frozen encoder trained by gradient, `probe` for a logistic regression on it, "
             "`jetfm finetune --mode probe`) with the best mean validation accuracy (shown); "
             "four-vectors only (the `kinematics` group).", ""]  # fmt: skip
    for task, models in tables.items():
        manifest = testbeds.get(task, {})
        gen = manifest.get("generation", {})
        opts = gen.get("options", {})
        test = manifest.get("splits", {}).get("test", {})
        majority = max(test.get("classes", {0: 0}).values()) / max(test.get("n_jets", 1), 1)
        lines += [f"## {TASK_TITLES[task]}", "",
                  f"Source: seed {gen.get('seed')}, tune {opts.get('tune')}, detector "
                  f"{opts.get('detector')}; test jets {test.get('n_jets')} "
                  f"{test.get('classes')} (majority class: {majority:.3f}).", ""]  # fmt: skip
        sizes = sorted({int(n) for cells in models.values() for n in cells})
        lines += ["| model | " + " | ".join(f"{n:,} labels" for n in sizes) + " |",
                  "| --- |" + " --- |" * len(sizes)]  # fmt: skip
        order = [m for m in models if m not in ("scratch", "bdt")] + ["scratch", "bdt"]
        for model in [m for m in order if m in models]:
            row = []
            for n in sizes:
                c = models[model].get(str(n))
                row.append(study.format_stats(c) + study.cell_recipe(c))
            lines.append(f"| {model} | " + " | ".join(row) + " |")
        lines.append("")
    lines += ["## Targets", ""]
    mark = {True: "met", False: "**not met**", None: "not measured"}
    for name, checks in targets.items():
        lines += [f"**{name}**", ""]
        lines += [f"- {key}: {mark[c['met']]} ({c['detail']})" for key, c in checks.items()]
        lines.append("")
    return "\n".join(lines)


def parse_held_out(text: str, pretrained: list[str]) -> dict[str, str]:
    """``--held-out`` (``NAME=TASK`` pairs) as ``{name: task}``; SystemExit on an unknown
    name or task."""
    out = {}
    for item in filter(None, (t.strip() for t in (text or "").split(","))):
        name, _, task = item.partition("=")
        if name not in pretrained or task not in TASKS:
            raise SystemExit(f"--held-out {item!r}: expected NAME=TASK with NAME one of "
                             f"{pretrained} and TASK one of {list(TASKS)}")  # fmt: skip
        out[name] = task
    return out


def summarise(args: argparse.Namespace, study: Any) -> dict[str, Any]:
    """Read every task's rows, write ``OUT/summary.{md,json}``, return the summary."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tables, testbeds = {}, {}
    for task in args.tasks.split(","):
        results = out / task / "results.jsonl"
        if results.exists():
            tables[task] = task_table(study, list(study.load_results(results).values()))
        manifest = Path(args.testbed) / task / "manifest.json"
        if manifest.is_file():
            testbeds[task] = json.loads(manifest.read_text())
    pretrained = [item.split("=", 1)[0] for item in args.checkpoints.split(",") if item]
    held_out = parse_held_out(args.held_out, pretrained)
    targets = check_targets(tables, pretrained, args.target_labels, args.high_labels, held_out)
    summary = {"tables": tables, "targets": targets}
    write_text(out / "summary.json", json.dumps(summary, indent=2))
    text = summary_markdown(study, tables, targets, testbeds)
    write_text(out / "summary.md", text)
    print(text)
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    own, passthrough = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv \
        else (argv, [])  # fmt: skip
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--testbed", required=True, help="folder with top/ and qg/ test beds")
    parser.add_argument("--checkpoints", required=True, help="NAME=PATH pairs, comma-separated")
    parser.add_argument("--out", default="studies/results/foundation")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--labels", default="100,1000,10000")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lrs", default="5e-4,1e-3,2e-3", help="LR grid ('' for --lr only)")
    parser.add_argument("--target-labels", type=int, default=1000)
    parser.add_argument("--high-labels", type=int, default=10000)
    parser.add_argument("--held-out", default="", help="NAME=TASK pairs: checkpoints whose "
                        "pre-training supervised no class of TASK's signal (the held-out-class "
                        "target)")  # fmt: skip
    parser.add_argument("--summarise", action="store_true", help="only rewrite the summaries")
    args = parser.parse_args(own)
    unknown = [t for t in args.tasks.split(",") if t not in TASKS]
    if unknown:
        raise SystemExit(f"--tasks: unknown task {unknown[0]!r}; choose from {list(TASKS)}")
    study = load_study()
    if not args.summarise:
        labels = [int(n) for n in args.labels.split(",")]
        try:
            for task in args.tasks.split(","):
                check_testbed(Path(args.testbed), task, labels)
        except DataError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for task in args.tasks.split(","):
            task_argv = study_argv(args, task, passthrough)
            with open(out / "commands.txt", "a") as fh:
                fh.write(f"python {STUDY.relative_to(STUDY.parents[1])} "
                         f"{shlex.join(task_argv)}\n")  # fmt: skip
            print(f"== {task}: study_label_efficiency.py {shlex.join(task_argv)}", flush=True)
            study.main(task_argv)
    return summarise(args, study)


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
