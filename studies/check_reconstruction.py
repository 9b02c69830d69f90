"""The jet-mass check of MPM checkpoints, each beside its own backbone with a fresh decoder.

For every checkpoint: mask the validation jets as in pre-training, sample the masked particles
with the shipped decoder, rebuild the jets, and compare their mass with the truth
(:mod:`jetfm.reconstruction`); the baseline is the same backbone with a freshly initialised
decoder, on the same masks. Writes ``reconstruction.json`` and one plot per model into --out.

    python studies/check_reconstruction.py --data data/val --checkpoints mpm-flow-base \\
        --out studies/results/reconstruction
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# the benchmarks' helpers (machine facts, atomic JSON), whatever the caller's sys.path
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from benchutil import machine_info, write_json_atomic  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="validation ROOT files (dir, glob, file)")
    parser.add_argument("--checkpoints", required=True, help="comma-separated names or folders")
    parser.add_argument("--out", required=True)
    parser.add_argument("--jets", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    from jetfm import JetDataset, JetFMForMaskedParticleModeling, JetProcessor
    from jetfm.reconstruction import masked_reconstruction, plot_reconstruction

    out = Path(args.out)
    report: dict = {"machine": machine_info(), "jets": args.jets, "data": args.data, "models": {}}
    for name in [c.strip() for c in args.checkpoints.split(",") if c.strip()]:
        processor = JetProcessor.from_pretrained(name)
        jets = JetDataset(args.data, processor, targets=())
        model = JetFMForMaskedParticleModeling.from_pretrained(name)
        torch.manual_seed(args.seed)
        fresh = JetFMForMaskedParticleModeling(model.config)
        fresh.jetfm.load_state_dict(model.jetfm.state_dict())
        label = Path(name).name
        entry = {}
        for variant, net in (("shipped decoder", model), ("fresh decoder", fresh)):
            result = masked_reconstruction(net, jets, processor, n_jets=args.jets, seed=args.seed,
                                           progress=True)  # fmt: skip
            entry[variant] = result.summary()
            plot_reconstruction(result, out / f"{label}_{variant.split()[0]}.png",
                                title=f"{label}, {variant}, {len(result.true_mass):,} jets")  # fmt: skip
            print(label, variant, {k: round(v, 3) for k, v in entry[variant].items()})
        report["models"][label] = entry
    write_json_atomic(out / "reconstruction.json", report)
    return report


if __name__ == "__main__":
    main()
