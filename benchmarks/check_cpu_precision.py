"""Do the fast CPU steps (bf16 autocast, torch.compile) pre-train as well as float32?

Pre-trains the same model on the same jets for the same steps through ``jetfm pretrain``
itself, once per variant (``fp32``: no flag, ``bf16``: ``--bf16``, ``compile``:
``--compile``, ``compile+bf16``: both), then scores every final checkpoint the same way: in
float32, eager, on the validation jets with the fixed evaluation masks (the loss and its
MPM and truth parts). ``--reference-seeds`` adds float32 runs from other seeds: the spread of
their losses is the noise that a variant's difference is read against. Each run also
records its wall time (compilation included).

One invocation may run some of the variants: the results accumulate in ``--out`` (runs of the
same name are replaced), so a slow machine can run them one at a time::

    python benchmarks/check_cpu_precision.py --data "train/*.root" --val "val/*.root" \\
        --variants fp32,bf16 --reference-seeds 43 --steps 200 --out cpu_precision.json
    python benchmarks/check_cpu_precision.py ... --variants compile+bf16 --out cpu_precision.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from benchutil import machine_info, write_json_atomic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from jetfm.cli import main as cli_main  # noqa: E402

FLAGS = {"fp32": [], "bf16": ["--bf16"], "compile": ["--compile"],
         "compile+bf16": ["--compile", "--bf16"]}  # fmt: skip
PARTS = ("loss", "mpm_loss", "class_loss", "origin_loss", "vertex_loss")


def evaluate(checkpoint: Path, val: str, batch_size: int, max_batches: int) -> dict[str, float]:
    """Mean losses of ``checkpoint`` on ``val`` in float32, eager, evaluation masks."""
    from jetfm.data import JetDataset, JetProcessor
    from jetfm.data.batching import JetCollator
    from jetfm.data.reading import TARGETS
    from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling
    from jetfm.pretraining import OBJECTIVE_TARGETS, val_targets

    model = JetFMForMaskedParticleModeling.from_pretrained(str(checkpoint)).eval()
    processor = JetProcessor.from_pretrained(str(checkpoint))
    weights = model.config.truth_objectives or {}
    wanted = {OBJECTIVE_TARGETS[k] for k in weights} | ({"parton_labels"} if "class" in weights
                                                          else set())  # fmt: skip
    targets = val_targets(val, processor, tuple(t for t in TARGETS if t in wanted))
    dataset = JetDataset(val, processor, targets=targets)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, collate_fn=JetCollator(targets=targets,
                                                               optional_targets=True)
    )  # fmt: skip
    sums: dict[str, float] = {}
    jets = 0
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if i == max_batches:
                break
            out = model(**batch)
            n = int(batch["mask"].shape[0])
            jets += n
            for part in PARTS:
                value = getattr(out, part)
                if value is not None:
                    sums[part] = sums.get(part, 0.0) + float(value) * n
    return {part: total / jets for part, total in sums.items()} | {"jets": jets}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="training files (glob)")
    parser.add_argument("--val", required=True, help="validation files (glob)")
    parser.add_argument("--variants", default="fp32,bf16,compile+bf16")
    parser.add_argument("--reference-seeds", default="", help="extra fp32 runs (seeds)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--size", default="base")
    parser.add_argument("--target", default="flow")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--truth", default=None, help="as jetfm pretrain --truth")
    parser.add_argument("--buckets", default=None, help="as jetfm pretrain --buckets")
    parser.add_argument("--val-batches", type=int, default=16, help="validation batches")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--workdir", required=True, help="runs and the feature cache")
    parser.add_argument("--out", default=None, help="JSON results (accumulated)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.workdir)
    out = Path(args.out) if args.out else None
    results: dict[str, Any] = {"runs": {}}
    if out is not None and out.exists():
        results = json.loads(out.read_text())
    runs = [(v, args.seed) for v in args.variants.split(",") if v]
    runs += [("fp32", int(s)) for s in args.reference_seeds.split(",") if s]
    for variant, seed in runs:
        name = variant if seed == args.seed else f"{variant} (seed {seed})"
        folder = work / f"run-{variant}-{seed}"
        argv = ["pretrain", "--data", args.data, "--output", str(folder), "--size", args.size,
                "--target", args.target, "--batch-size", str(args.batch_size),
                "--max-steps", str(args.steps), "--save-steps", str(args.steps),
                "--logging-steps", str(max(1, args.steps // 10)), "--seed", str(seed),
                "--feature-cache", str(work / "features"), *FLAGS[variant]]  # fmt: skip
        if args.truth:
            argv += ["--truth", args.truth]
        if args.buckets:
            argv += ["--buckets", args.buckets]
        t0 = time.perf_counter()
        assert cli_main(argv) == 0
        wall = time.perf_counter() - t0
        losses = evaluate(folder, args.val, args.batch_size, args.val_batches)
        results["runs"][name] = {"variant": variant, "seed": seed, "wall_s": wall,
                                 "threads": torch.get_num_threads(), **losses}  # fmt: skip
        print(f"{name:24} {args.steps} steps in {wall:6.0f} s: validation loss "
              f"{losses['loss']:.4f} (" + ", ".join(f"{p} {losses[p]:.4f}" for p in PARTS[1:]
                                                  if p in losses) + ")")  # fmt: skip
    results["machine"] = machine_info()
    results["environment"] = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    results["settings"] = vars(args)
    if out is not None:
        write_json_atomic(out, results)
    return results


if __name__ == "__main__":
    main()
