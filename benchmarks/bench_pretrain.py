"""Pre-training throughput: masked particles dropped vs sent through the encoder, and
pad-to-longest vs padded-to-128 batches.

All variants run side by side in one process on the same batch of jets (same masked
particles, same seed), interleaved round by round, and are reported as jets/s and as ratios
against the baseline (mask tokens through the encoder, padded to 128: the scheme of the
first MPM paper with fixed-size batches). A step is forward + backward + AdamW update of
``JetFMForMaskedParticleModeling``.

    python benchmarks/bench_pretrain.py --sizes small,base --batch-size 128 --out bench.json
"""

from __future__ import annotations

import argparse

import torch
from benchutil import interleaved_rates, variant_report, write_json_atomic

from jetfm.configuration import JetFMConfig
from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling, sample_particle_mask

MAX_PARTICLES = 128
VARIANTS = {
    # name: (mask_in_encoder, pad_to)
    "encoder_mask_tokens/pad128": (True, MAX_PARTICLES),
    "encoder_mask_tokens/longest": (True, None),
    "dropped/pad128": (False, MAX_PARTICLES),
    "dropped/longest": (False, None),
}
BASELINE = "encoder_mask_tokens/pad128"


def make_batch(batch_size: int, mean_particles: int, seed: int, device: torch.device | str) -> dict:
    """Jets with JetClass-like multiplicities (``8 + Poisson(mean_particles - 8)``, at most
    128), features ~ N(0, 1), padded to 128; :func:`trim` gives the pad-to-longest view."""
    if not 8 <= mean_particles <= MAX_PARTICLES:
        raise ValueError(f"mean_particles must be in [8, {MAX_PARTICLES}], got {mean_particles}")
    g = torch.Generator().manual_seed(seed)
    rate = torch.full((batch_size,), float(mean_particles - 8))
    counts = (8 + torch.poisson(rate, generator=g)).clamp(max=MAX_PARTICLES).long()
    mask = torch.arange(MAX_PARTICLES) < counts[:, None]
    pid = torch.zeros(batch_size, MAX_PARTICLES, 6)
    kind = torch.randint(0, 5, (batch_size, MAX_PARTICLES), generator=g)
    pid[..., 1:].scatter_(-1, kind.unsqueeze(-1), 1.0)
    batch = {
        "kinematics": torch.randn(batch_size, MAX_PARTICLES, 7, generator=g),
        "pid": pid,
        "tracks": torch.randn(batch_size, MAX_PARTICLES, 4, generator=g),
        "mask": mask,
    }
    batch = {k: v * mask.unsqueeze(-1) if v.dim() == 3 else v for k, v in batch.items()}
    return {k: v.to(device) for k, v in batch.items()}


def trim(batch: dict, width: int | None) -> dict:
    """The batch cut to ``width`` particle slots (``None``: the longest jet in it)."""
    width = int(batch["mask"].sum(1).max()) if width is None else width
    return {k: v[:, :width] for k, v in batch.items()}


def cuda_sync(device: torch.device):
    """A no-op on the CPU, ``torch.cuda.synchronize`` on a GPU (timings need finished work)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def time_variants(
    size: str,
    *,
    batch_size: int = 128,
    mean_particles: int = 48,
    mask_fraction: float = 0.4,
    target: str = "flow",
    rounds: int = 3,
    warmup: int = 1,
    min_time: float = 0.5,
    steps: int | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> dict:
    """Training jets/s of the four :data:`VARIANTS` of one case, interleaved.

    Args:
        size: size preset (``tiny``, ``small``, ``base``).
        batch_size / mean_particles: the synthetic batch (see :func:`make_batch`).
        mask_fraction / target: the MPM settings of every variant.
        rounds / warmup / min_time / steps: see :func:`benchutil.interleaved_rates`
            (``steps`` fixes the steps per round, else they are calibrated to ``min_time``).
        seed: data, masking and weight-initialisation seed (the same for every variant).
        device: where to run; a GPU runs in bfloat16 autocast.

    Returns:
        ``{"size", "batch_size", "mean_particles", "mean_particles_actual", "baseline",
        "variants": {name: {"width", "jets_per_s", "jets_per_s_median", "jets_per_s_rounds",
        "steps_per_round"}}, "ratio_vs_baseline": {name: ratio}, "ratios": {...}}`` where
        ``ratios`` holds the side-by-side comparisons ``dropped_vs_encoder_{longest,pad128}``,
        ``longest_vs_pad128_{dropped,encoder}`` and ``dropped_longest_vs_baseline``.
    """
    device = torch.device(device)
    batch = make_batch(batch_size, mean_particles, seed, device)
    batch["masked"] = sample_particle_mask(
        batch["mask"], mask_fraction, torch.Generator(device=device).manual_seed(seed)
    )
    amp = device.type == "cuda"
    steps_fn, widths = {}, {}
    for name, (mask_in_encoder, pad_to) in VARIANTS.items():
        torch.manual_seed(seed)
        config = JetFMConfig.from_preset(
            size, mpm_target=target, mask_in_encoder=mask_in_encoder, mask_fraction=mask_fraction
        )
        model = JetFMForMaskedParticleModeling(config).to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        b = trim(batch, pad_to)
        widths[name] = int(b["mask"].shape[1])

        def step(model=model, opt=opt, b=b) -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = model(**b).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        steps_fn[name] = step
    timed = interleaved_rates(
        steps_fn,
        dict.fromkeys(steps_fn, float(batch_size)),
        rounds=rounds,
        warmup=warmup,
        min_time=min_time,
        repeats=steps,
        sync=cuda_sync(device),
    )
    report = variant_report(timed, widths, BASELINE)
    rate = {name: t["rate"] for name, t in timed.items()}
    return {
        "size": size,
        "batch_size": batch_size,
        "mean_particles": mean_particles,
        "mean_particles_actual": float(batch["mask"].sum(1).float().mean()),
        **report,
        "ratios": {
            "dropped_vs_encoder_longest": rate["dropped/longest"]
            / rate["encoder_mask_tokens/longest"],
            "dropped_vs_encoder_pad128": rate["dropped/pad128"] / rate[BASELINE],
            "longest_vs_pad128_dropped": rate["dropped/longest"] / rate["dropped/pad128"],
            "longest_vs_pad128_encoder": rate["encoder_mask_tokens/longest"] / rate[BASELINE],
            "dropped_longest_vs_baseline": rate["dropped/longest"] / rate[BASELINE],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="small,base")
    parser.add_argument("--target", default="flow")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--mean-particles", type=int, default=48)
    parser.add_argument("--mask-fraction", type=float, default=0.4)
    parser.add_argument(
        "--steps", type=int, default=None, help="steps per round (default: ≥ 0.5 s)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "settings": vars(args),
    }
    results["sizes"] = {}
    header = f"{'size':6} {'variant':28} {'width':>5} {'jets/s':>9} {'× baseline':>10}"
    print(header)
    print("-" * len(header))
    for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        res = time_variants(
            size, batch_size=args.batch_size, mean_particles=args.mean_particles,
            mask_fraction=args.mask_fraction, target=args.target, rounds=args.rounds,
            warmup=args.warmup, steps=args.steps, seed=args.seed, device=args.device,
        )  # fmt: skip
        results["sizes"][size] = res
        for name, v in res["variants"].items():
            print(
                f"{size:6} {name:28} {v['width']:5d} {v['jets_per_s']:9.1f} "
                f"{res['ratio_vs_baseline'][name]:10.2f}"
            )
        r = res["ratios"]
        print(
            f"{size:6} dropped/encoder: {r['dropped_vs_encoder_longest']:.2f}× (longest), "
            f"{r['dropped_vs_encoder_pad128']:.2f}× (pad128); longest/pad128: "
            f"{r['longest_vs_pad128_dropped']:.2f}× (dropped), "
            f"{r['longest_vs_pad128_encoder']:.2f}× (encoder)"
        )
    if args.out:
        write_json_atomic(args.out, results)


if __name__ == "__main__":
    main()
