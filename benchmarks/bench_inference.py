"""Inference throughput of the tagging model: batches padded to 128 vs padded to the longest
jet, side by side.

A plain forward of :class:`jetfm.modeling.heads.JetFMForJetTagging` (10 JetClass classes)
under ``torch.inference_mode`` on the synthetic batches of ``bench_pretrain`` (same
multiplicity model), interleaved round by round; the ratio is against the padded-to-128
baseline. Reading, features and bucketing of a whole file are in ``bench_predict.py``.

    python benchmarks/bench_inference.py --sizes tiny,small,base --batch-size 128
"""

from __future__ import annotations

import argparse

import torch
from bench_pretrain import MAX_PARTICLES, cuda_sync, make_batch, trim
from benchutil import interleaved_rates, variant_report, write_json_atomic

from jetfm.configuration import JetFMConfig
from jetfm.modeling.heads import JetFMForJetTagging

VARIANTS = {"pad128": MAX_PARTICLES, "longest": None}  # name: pad_to
BASELINE = "pad128"


def time_forward(
    size: str,
    *,
    batch_size: int = 128,
    mean_particles: int = 48,
    num_labels: int = 10,
    rounds: int = 3,
    warmup: int = 1,
    min_time: float = 0.5,
    steps: int | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> dict:
    """Inference jets/s of one model on one batch, padded to 128 vs to the longest jet.

    Both variants share one model (same weights); arguments as in
    :func:`bench_pretrain.time_variants`. A GPU runs in bfloat16 autocast.

    Returns:
        ``{"size", "batch_size", "mean_particles", "mean_particles_actual", "baseline",
        "variants": {name: {"width", "jets_per_s", ...}}, "ratio_vs_baseline",
        "ratios": {"longest_vs_pad128"}}``.
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    config = JetFMConfig.from_preset(size, num_labels=num_labels)
    model = JetFMForJetTagging(config).to(device).eval()
    batch = make_batch(batch_size, mean_particles, seed, device)
    amp = device.type == "cuda"
    steps_fn, widths = {}, {}
    for name, pad_to in VARIANTS.items():
        b = trim(batch, pad_to)
        widths[name] = int(b["mask"].shape[1])

        def step(b=b) -> None:
            with (
                torch.inference_mode(),
                torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp),
            ):
                model(**b)

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
        "ratios": {"longest_vs_pad128": rate["longest"] / rate[BASELINE]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="tiny,small,base")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--mean-particles", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {"device": args.device, "torch_threads": torch.get_num_threads(), "sizes": {}}
    print(f"{'size':6} {'variant':8} {'width':>5} {'jets/s':>10} {'× pad128':>9}")
    for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        res = time_forward(
            size, batch_size=args.batch_size, mean_particles=args.mean_particles,
            rounds=args.rounds, seed=args.seed, device=args.device,
        )  # fmt: skip
        results["sizes"][size] = res
        for name, v in res["variants"].items():
            print(
                f"{size:6} {name:8} {v['width']:5d} {v['jets_per_s']:10.1f} "
                f"{res['ratio_vs_baseline'][name]:9.2f}"
            )
    if args.out:
        write_json_atomic(args.out, results)


if __name__ == "__main__":
    main()
