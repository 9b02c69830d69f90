"""Does the square-root LR rule keep pre-training on track at large batches?

Pre-trains the same model on the same jets for the same number of jets seen at batch 256
(LR 5e-4) and at a larger batch with the LR from ``jetfm.training.scaled_learning_rate``
(``5e-4 · sqrt(B/256)``), plus two contrasts at the large batch (the unscaled LR and linear
scaling), through ``jetfm pretrain`` itself (device batches, default schedule). Prints the
final MPM validation loss of each run; the rule holds when the scaled run ends within noise
of the batch-256 run.

    python benchmarks/check_lr_scaling.py --jets-seen 40960 --size tiny --out lr_scaling.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from benchutil import machine_info, write_json_atomic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from jetfm.cli import main as cli_main  # noqa: E402
from jetfm.pretraining import BASE_LR  # noqa: E402
from jetfm.training import scaled_learning_rate  # noqa: E402
from tests.fixtures_data import write_jetclass_file  # noqa: E402  (the tests' jet writer)


def final_eval_loss(output: Path) -> float:
    history = json.loads((output / "run_config.json").read_text())["log_history"]
    return [h["eval_loss"] for h in history if "eval_loss" in h][-1]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jets", type=int, default=20_000, help="training jets")
    parser.add_argument("--jets-seen", type=int, default=40_960, help="jets per run")
    parser.add_argument("--large-batch", type=int, default=1024)
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--target", default="diffusion")
    parser.add_argument(
        "--rules", default="sqrt,same,linear", help="large-batch runs: sqrt, same, linear"
    )
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="lr-scaling-"))
    train = work / "train" / "jets.root"
    val = work / "val" / "jets.root"
    if not train.exists():
        classes = ("QCD", "Hbb", "Wqq", "Tbqq")
        write_jetclass_file(train, args.jets, seed=31, classes=classes, chunk_size=5000)
        write_jetclass_file(val, 2000, seed=32, classes=classes)
    big = args.large_batch
    rules = {
        "sqrt": (f"{big}, sqrt rule", scaled_learning_rate(BASE_LR, big)),
        "same": (f"{big}, same LR", BASE_LR),
        "linear": (f"{big}, linear rule", BASE_LR * big / 256),
    }
    runs = {"256 (reference)": (256, BASE_LR)}
    for rule in args.rules.split(","):
        name, lr = rules[rule]
        runs[name] = (big, lr)
    results = {"machine": machine_info(), "settings": vars(args), "runs": {}}
    for name, (batch, lr) in runs.items():
        steps = args.jets_seen // batch
        out = work / f"run-{batch}-{lr:g}"
        argv = ["pretrain", "--data", str(train), "--val", str(val), "--output", str(out),
                "--size", args.size, "--target", args.target, "--batch-size", str(batch),
                "--lr", str(lr), "--max-steps", str(steps), "--save-steps", str(steps),
                "--logging-steps", str(max(1, steps // 10)), "--feature-cache",
                str(work / "features")]  # fmt: skip
        assert cli_main(argv) == 0
        loss = final_eval_loss(out)
        results["runs"][name] = {"batch": batch, "lr": lr, "steps": steps, "eval_loss": loss}
        print(f"{name:20} batch {batch:5d} LR {lr:.2e} steps {steps:5d}: MPM val loss {loss:.4f}")
    if args.out:
        write_json_atomic(args.out, results)
    return results


if __name__ == "__main__":
    main()
