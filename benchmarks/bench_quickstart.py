"""Wall time and result of ``jetfm quickstart``: its defaults against a baseline recipe.

Both run in this one process, one after the other, on the same machine state: the command's
defaults (the shipped ``mpm-truth-det-base``, 200 training jets per class, and the mode
chosen for it: the logistic-regression probe) and the baseline, the former default recipe
(the encoder frozen, the pooling and head trained for 300 steps at LR 2e-3, on the same
jets). Each phase (generation, fine-tuning, evaluation) is timed; the ratio of the totals and
the test accuracy / AUC of both are written to ``--out`` (JSON) and printed.

    python benchmarks/bench_quickstart.py --out benchmarks/results/quickstart.json
    python benchmarks/bench_quickstart.py --no-baseline     # the defaults alone (~1 min)

Needs ``jetfm[generate]``; the CPU count is recorded (the README states the time on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _p in (str(HERE), str(HERE.parent)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

#: the recipe the defaults are compared with (the former defaults)
BASELINE = {"mode": "frozen"}


def run_one(output: Path, **options) -> dict:
    """One quickstart run: seconds per phase, total, test accuracy and AUC."""
    from jetfm.quickstart import run_quickstart

    start = time.perf_counter()
    result = run_quickstart(output, progress=False, echo=lambda _line: None, **options)
    total = time.perf_counter() - start
    return {
        "options": options,
        "seconds": {k: round(v, 1) for k, v in result.seconds.items()},
        "total_seconds": round(total, 1),
        "test_accuracy": round(float(result.metrics["accuracy"]), 4),
        "test_auc": round(float(result.metrics["auc"]), 4),
        "test_jets": int(result.metrics["n_jets"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="JSON file for the results")
    parser.add_argument("--no-baseline", action="store_true", help="time the defaults only")
    args = parser.parse_args(argv)

    rows = {}
    with tempfile.TemporaryDirectory(prefix="jetfm-bench-qs-") as tmp:
        rows["defaults"] = run_one(Path(tmp) / "defaults")
        if not args.no_baseline:
            rows["baseline"] = run_one(Path(tmp) / "baseline", **BASELINE)
    report = {"cpu_count": os.cpu_count(), "torch_threads": None, **rows}
    import torch

    report["torch_threads"] = torch.get_num_threads()
    if "baseline" in rows:
        report["time_ratio_defaults_vs_baseline"] = round(
            rows["defaults"]["total_seconds"] / rows["baseline"]["total_seconds"], 3
        )
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        from jetfm.atomic import write_text

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
