"""Start-up time of the command line: ``jetfm --help``, ``jetfm --version`` and every
``jetfm SUB --help``, each in a fresh interpreter (what a user waits for).

Every case is a new ``python -m jetfm.cli ...`` process, timed from start to exit; the cases
run interleaved round by round (see ``benchutil``) together with the bare interpreter
(``python -c pass``, the baseline: what no Python program can undercut). ``--compare DIR``
times another checkout of jetfm (e.g. the previous release) in the same rounds, so a before /
after pair shares the machine's state. The headline is each case's best round; the targets
are < 1 s for ``--help`` / ``--version`` and < 1.5 s for every ``SUB --help``.

    python benchmarks/bench_cli.py --rounds 5 --out benchmarks/results/cli.json
    python benchmarks/bench_cli.py --compare /path/to/other/checkout
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(HERE), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from benchutil import write_json_atomic  # noqa: E402

#: seconds a user should wait at most: ``jetfm --help`` / ``--version``, and ``SUB --help``
TARGET_TOP_S, TARGET_SUB_S = 1.0, 1.5
BASELINE = "python -c pass"


def cases(root: Path = ROOT) -> list[list[str]]:
    """The argument lists timed: ``--help``, ``--version``, then ``SUB --help`` for every
    command of the checkout at ``root`` (nested ones such as ``tokenizer train`` too)."""
    code = (
        "import argparse, json\n"
        "from jetfm.cli import build_parser\n"
        "def walk(p, prefix):\n"
        "    for a in p._actions:\n"
        "        if isinstance(a, argparse._SubParsersAction):\n"
        "            for name, sub in a.choices.items():\n"
        "                yield [*prefix, name]\n"
        "                yield from walk(sub, [*prefix, name])\n"
        "print(json.dumps(list(walk(build_parser(), []))))\n"
    )
    import json

    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=_env(root),
                         capture_output=True, text=True, check=True)  # fmt: skip
    commands = json.loads(out.stdout.strip().splitlines()[-1])
    return [["--help"], ["--version"], *[[*c, "--help"] for c in commands]]


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"}


def _run_once(argv: Sequence[str], root: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=root, env=_env(root), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)  # fmt: skip
    return time.perf_counter() - start


def measure(
    rounds: int = 3, compare: Path | None = None, only: Sequence[str] | None = None
) -> dict[str, Any]:
    """Wall seconds of every case (best and median of ``rounds``) for this checkout and, with
    ``compare``, for that one, interleaved with the bare interpreter.

    Returns ``{"baseline": BASELINE, "baseline_s": ..., "cases": [{"command", "target_s",
    "best_s", "median_s", "rounds_s", "x_baseline", "meets_target"} (and the ``compare_*``
    fields)], "targets": {...}}``.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    argvs = cases(ROOT)
    if only:
        argvs = [a for a in argvs if " ".join(a) in only]
    roots = {"this": ROOT, **({"compare": Path(compare).resolve()} if compare else {})}
    python = [sys.executable]
    runs: dict[tuple[str, str], list[float]] = {}
    variants = [("baseline", BASELINE, [*python, "-c", "pass"], ROOT)]
    for label, root in roots.items():
        for argv in argvs:
            variants.append((label, " ".join(argv), [*python, "-m", "jetfm.cli", *argv], root))
    for _ in range(rounds):
        for label, name, argv, root in variants:
            runs.setdefault((label, name), []).append(_run_once(argv, root))
    base = min(runs[("baseline", BASELINE)])
    rows = []
    for argv in argvs:
        name = " ".join(argv)
        target = TARGET_TOP_S if len(argv) == 1 else TARGET_SUB_S
        row: dict[str, Any] = {"command": f"jetfm {name}", "target_s": target}
        for label in roots:
            times = runs[(label, name)]
            prefix = "" if label == "this" else "compare_"
            row |= {
                f"{prefix}best_s": min(times),
                f"{prefix}median_s": statistics.median(times),
                f"{prefix}rounds_s": times,
                f"{prefix}x_baseline": min(times) / base,
                f"{prefix}meets_target": min(times) < target,
            }
        rows.append(row)
    return {
        "baseline": BASELINE,
        "baseline_s": base,
        "baseline_rounds_s": runs[("baseline", BASELINE)],
        "compare_root": str(roots["compare"]) if compare else None,
        "targets": {"--help/--version": TARGET_TOP_S, "SUB --help": TARGET_SUB_S},
        "cases": rows,
    }


def format_rows(result: dict[str, Any]) -> str:
    """A plain-text table of :func:`measure`'s cases."""
    compare = result["compare_root"] is not None
    header = ["command", "best s", "median s", "x python", "target"]
    if compare:
        header += ["compare best s", "speed-up"]
    lines = [header]
    for r in result["cases"]:
        line = [r["command"], f"{r['best_s']:.2f}", f"{r['median_s']:.2f}",
                f"{r['x_baseline']:.1f}",
                f"< {r['target_s']:g} s " + ("ok" if r["meets_target"] else "MISSED")]  # fmt: skip
        if compare:
            line += [f"{r['compare_best_s']:.2f}", f"{r['compare_best_s'] / r['best_s']:.1f}x"]
        lines.append(line)
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in lines]  # fmt: skip
    text.insert(1, "-" * len(text[0]))
    return "\n".join(text) + f"\n(baseline: `{result['baseline']}` {result['baseline_s']:.2f} s)"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (best is kept)")
    parser.add_argument("--compare", default=None, help="another jetfm checkout to time too")
    parser.add_argument("--only", default=None, help="comma list of cases, e.g. '--help,--version'")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    only = [c.strip() for c in args.only.split(",")] if args.only else None
    result = measure(args.rounds, Path(args.compare) if args.compare else None, only)
    print(format_rows(result))
    if args.out:
        write_json_atomic(args.out, result)
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
