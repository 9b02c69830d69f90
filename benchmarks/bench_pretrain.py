"""Pre-training throughput: masked particles dropped vs sent through the encoder, and
pad-to-longest vs padded-to-128 batches.

All variants run side by side in one process on the same batch of jets (same masked
particles, same seed), interleaved round by round, and are reported as steps/s and as ratios
against the baseline (mask tokens through the encoder, pad-to-longest). A step is forward +
backward + AdamW update of ``JetFMForMaskedParticleModeling``.

    python benchmarks/bench_pretrain.py --sizes small,base --steps 10 --out bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import torch

from jetfm.configuration import JetFMConfig
from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling, sample_particle_mask

VARIANTS = {
    # name: (mask_in_encoder, pad_to)
    "encoder_mask_tokens/longest": (True, None),
    "dropped/longest": (False, None),
    "encoder_mask_tokens/pad128": (True, 128),
    "dropped/pad128": (False, 128),
}
BASELINE = "encoder_mask_tokens/longest"


def make_batch(batch_size: int, mean_particles: int, seed: int, device: torch.device) -> dict:
    """Jets with JetClass-like multiplicities (8 + Poisson), features ~ N(0, 1), padded to
    128; ``trim`` gives the pad-to-longest view."""
    g = torch.Generator().manual_seed(seed)
    rate = torch.full((batch_size,), float(mean_particles - 8))
    counts = (8 + torch.poisson(rate, generator=g)).clamp(max=128).long()
    mask = torch.arange(128) < counts[:, None]
    pid = torch.zeros(batch_size, 128, 6)
    kind = torch.randint(0, 5, (batch_size, 128), generator=g)
    pid[..., 1:].scatter_(-1, kind.unsqueeze(-1), 1.0)
    batch = {
        "kinematics": torch.randn(batch_size, 128, 7, generator=g),
        "pid": pid,
        "tracks": torch.randn(batch_size, 128, 4, generator=g),
        "mask": mask,
    }
    batch = {k: v * mask.unsqueeze(-1) if v.dim() == 3 else v for k, v in batch.items()}
    return {k: v.to(device) for k, v in batch.items()}


def trim(batch: dict, width: int | None) -> dict:
    width = int(batch["mask"].sum(1).max()) if width is None else width
    return {k: v[:, :width] for k, v in batch.items()}


def time_variants(size: str, args, device: torch.device) -> dict:
    batch = make_batch(args.batch_size, args.mean_particles, args.seed, device)
    batch["masked"] = sample_particle_mask(
        batch["mask"], args.mask_fraction, torch.Generator(device=device).manual_seed(args.seed)
    )
    setups = {}
    for name, (mask_in_encoder, pad_to) in VARIANTS.items():
        torch.manual_seed(args.seed)
        config = JetFMConfig.from_preset(
            size, mpm_target=args.target, mask_in_encoder=mask_in_encoder,
            mask_fraction=args.mask_fraction,
        )  # fmt: skip
        model = JetFMForMaskedParticleModeling(config).to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        setups[name] = (model, opt, trim(batch, pad_to))
    amp = device.type == "cuda"

    def step(name: str) -> None:
        model, opt, b = setups[name]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = model(**b).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for name in setups:  # warm-up (allocator, kernels)
        for _ in range(args.warmup):
            step(name)
    sync()
    times: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(args.rounds):  # interleaved, so drifts hit every variant alike
        for name in setups:
            sync()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(name)
            sync()
            times[name].append(args.steps / (time.perf_counter() - t0))
    width = {name: setups[name][2]["mask"].shape[1] for name in setups}
    rates = {name: statistics.median(v) for name, v in times.items()}
    return {
        "steps_per_s": rates,
        "padded_width": width,
        "ratio_vs_baseline": {n: r / rates[BASELINE] for n, r in rates.items()},
        "dropped_vs_encoder_longest": rates["dropped/longest"] / rates[BASELINE],
        "dropped_vs_encoder_pad128": rates["dropped/pad128"] / rates["encoder_mask_tokens/pad128"],
        "longest_vs_pad128_dropped": rates["dropped/longest"] / rates["dropped/pad128"],
        "longest_vs_pad128_encoder": rates[BASELINE] / rates["encoder_mask_tokens/pad128"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="small,base")
    parser.add_argument("--target", default="flow")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--mean-particles", type=int, default=48)
    parser.add_argument("--mask-fraction", type=float, default=0.4)
    parser.add_argument("--steps", type=int, default=5, help="steps per timing round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
        "settings": vars(args),
        "sizes": {},
    }
    header = f"{'size':6} {'variant':30} {'width':>5} {'steps/s':>9} {'× baseline':>10}"
    print(header)
    print("-" * len(header))
    for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        res = time_variants(size, args, device)
        results["sizes"][size] = res
        for name, rate in res["steps_per_s"].items():
            print(
                f"{size:6} {name:30} {res['padded_width'][name]:5d} {rate:9.2f} "
                f"{res['ratio_vs_baseline'][name]:10.2f}"
            )
        print(
            f"{size:6} dropped/encoder: {res['dropped_vs_encoder_longest']:.2f}× (longest), "
            f"{res['dropped_vs_encoder_pad128']:.2f}× (pad128); longest/pad128: "
            f"{res['longest_vs_pad128_dropped']:.2f}× (dropped), "
            f"{res['longest_vs_pad128_encoder']:.2f}× (encoder)"
        )
    if args.out:
        out_dir = os.path.dirname(os.path.abspath(args.out))
        fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(results, fh, indent=2)
        os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
