"""Pre-training step throughput: the data-dependent path vs the static-shape device path.

Both paths run side by side in one process, round by round (``benchutil.interleaved_rates``),
on the same jets, for each model size and batch size:

* ``dynamic`` — masked particles addressed by boolean indexing (``static_shapes=False``),
  batches padded to their longest jet by ``JetCollator`` from a ``DataLoader`` over per-jet
  dicts (what ``jetfm pretrain --no-device-batches`` runs), eager, AdamW ``foreach``;
* ``static`` — what ``jetfm pretrain`` runs: batches gathered on the device in bucketed
  shapes by ``DeviceJetBatches``, the model's default addressing (index tensors, static
  shapes, on CUDA and when compiled; boolean indexing in eager CPU runs),
  ``torch.compile`` with ``--compile``, fused AdamW on CUDA.

Two numbers per path, in jets/s:

* ``model`` — the training step alone (forward, backward, optimiser) on batches already on
  the device (the same eight sets of jets for both paths, cycled: in their bucket's shape
  for ``static``, cut to their longest jet for ``dynamic``);
* ``end_to_end`` — the input path and the step: every timed step takes its next batch from
  the path's own loader, as ``jetfm pretrain`` does (its Trainer logs ``jets_per_second``
  for the whole loop, bookkeeping included).

On CUDA the steps run in bf16 autocast and the report adds the model FLOPs utilisation:
FLOPs of one step (``torch.utils.flop_counter``) × steps/s ÷ the GPU's bf16 matrix rate
measured in the same process.

    python benchmarks/bench_pretrain_step.py --sizes base,large --batch-sizes 256,1024 \\
        --compile --out pretrain_step.json

**Variants** (``--variants``): the ``static`` path's step (what ``jetfm pretrain`` runs) in
several precisions, compilations and thread counts, side by side in one process on the same
batches, as ratios against the first variant (the baseline):

* ``fp32`` — eager float32 (``jetfm pretrain``);
* ``bf16`` — eager, bf16 autocast (``jetfm pretrain --bf16`` on a CPU; always on CUDA);
* ``compile`` — ``torch.compile`` (inductor), float32 (``--compile``);
* ``compile+bf16`` — both (``--compile --bf16``);

each with ``@T`` for ``torch.set_num_threads(T)`` during its steps (``fp32@1,fp32@2``;
without it ``--threads``, else torch's default). Eager variants get the batches cut to their
longest jet, compiled ones the same jets padded to their bucket, as ``jetfm pretrain`` does.
A compiled variant first compiles one graph per bucket shape of the timed batches: that
one-off time is reported apart (``compile_s``). Every step is forward, backward, gradient
clipping at 1 and an AdamW update, as the Trainer runs it. ``--truth class=1,origin=0.5``
adds the simulation-truth objectives (synthetic labels on synthetic jets), ``--data FILES``
times real files (e.g. ``jetfm generate`` output) through ``jetfm pretrain``'s own data
preparation and model::

    python benchmarks/bench_pretrain_step.py --sizes base --batch-sizes 256 --target flow \\
        --variants fp32@1,bf16@1,compile@1,compile+bf16@1 --out cpu_variants.json
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import tempfile
import time
from typing import Any

import numpy as np
import torch
from benchutil import interleaved_rates, machine_info, write_json_atomic

from jetfm.configuration import JetFMConfig
from jetfm.data.batching import JetCollator, default_buckets
from jetfm.data.device_batches import DeviceJetBatches
from jetfm.data.schema import IGNORE_INDEX, PARTON_FLAVOURS, TRACK_ORIGINS
from jetfm.data.truth import truth_class_names
from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling
from jetfm.training import compile_model

MAX_PARTICLES = 128
GROUPS = {"kinematics": 7, "pid": 6, "tracks": 4}
PATHS = ("dynamic", "static")


def synthetic_features(n_jets: int, mean_particles: int, seed: int) -> tuple[dict, np.ndarray]:
    """Flat features of jets with ``8 + Poisson(mean − 8)`` particles (at most 128)."""
    rng = np.random.default_rng(seed)
    counts = np.minimum(8 + rng.poisson(mean_particles - 8, n_jets), MAX_PARTICLES)
    total = int(counts.sum())
    flat = {g: rng.standard_normal((total, n)).astype(np.float32) for g, n in GROUPS.items()}
    kind = rng.integers(0, 5, total)
    flat["pid"][:] = 0.0
    flat["pid"][np.arange(total), 1 + kind] = 1.0
    flat["pid"][:, 0] = rng.choice([-1.0, 0.0, 1.0], total)
    return flat, counts


#: the classes of ``jetfm generate``'s pre-training sets (synthetic truth labels)
GENERATOR_CLASSES = ("QCD", "Hbb", "Hcc", "Hgg", "Zqq", "Wqq", "Tbqq", "Tbl")
#: environment variables that change CPU timings, recorded with the results
ENVIRONMENT = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "TORCHINDUCTOR_COMPILE_THREADS")
#: the variants of ``--variants`` (before ``@threads``)
VARIANTS = ("fp32", "bf16", "compile", "compile+bf16")


@dataclasses.dataclass
class JetSource:
    """Training jets as ``jetfm pretrain`` holds them: flat features, per-particle and
    per-jet truth targets, and the model config's data-dependent fields."""

    flat: dict
    counts: np.ndarray
    targets: dict
    jet_targets: dict
    config_options: dict
    buckets: tuple[int, ...]
    description: str


def synthetic_truth(flat: dict, counts: np.ndarray, weights: dict[str, float], seed: int):
    """Random truth of the objectives in ``weights`` for synthetic jets: a class among
    :data:`GENERATOR_CLASSES` per jet (QCD split by a random parton flavour), a track origin
    and a vertex for every charged particle. Returns ``(targets, jet_targets, config
    options)``; the costs of the truth heads do not depend on the values."""
    rng = np.random.default_rng([seed, 7])
    targets, jet_targets = {}, {}
    label_names = list(GENERATOR_CLASSES)
    charged = flat["pid"][:, 0] != 0
    if "class" in weights:
        labels = rng.integers(0, len(label_names), len(counts))
        jet_targets["labels"] = labels
        jet_targets["parton_labels"] = np.where(
            labels == label_names.index("QCD"), rng.integers(0, len(PARTON_FLAVOURS), len(counts)),
            IGNORE_INDEX,
        )  # fmt: skip
    if "origin" in weights:
        origin = rng.integers(0, len(TRACK_ORIGINS), len(charged))
        targets["track_labels"] = np.where(charged, origin, IGNORE_INDEX)
    if "vertex" in weights:
        targets["vertex_labels"] = np.where(charged, rng.integers(0, 4, len(charged)), IGNORE_INDEX)
    options = dict(truth_objectives=dict(weights))
    if "class" in weights:
        options.update(pretrain_classes=list(truth_class_names(label_names, split_qcd=True)),
                       pretrain_label_names=label_names)  # fmt: skip
    return targets, jet_targets, options


def synthetic_source(n_jets: int, mean_particles: int, seed: int, truth: str | None) -> JetSource:
    """Synthetic jets (:func:`synthetic_features`), with synthetic truth when ``truth``."""
    from jetfm.pretraining import truth_weights

    flat, counts = synthetic_features(n_jets, mean_particles, seed)
    weights = truth_weights(truth)
    targets, jet_targets, options = synthetic_truth(flat, counts, weights, seed)
    return JetSource(
        flat, counts, targets, jet_targets,
        {"feature_groups": dict(GROUPS), "max_particles": MAX_PARTICLES, **options},
        default_buckets(MAX_PARTICLES, counts),
        f"{n_jets} synthetic jets, mean {counts.mean():.1f} particles",
    )  # fmt: skip


def file_source(data: str, truth: str | None, workdir: str) -> JetSource:
    """The jets of ``data`` (files, glob) through ``jetfm pretrain``'s data preparation:
    the processor fitted on them, the feature cache, the truth plan and the buckets."""
    from jetfm.pretraining import PretrainArguments, prepare_data

    args = PretrainArguments(data=data, output_dir=f"{workdir}/run", truth=truth,
                             feature_cache=f"{workdir}/features")  # fmt: skip
    prepared = prepare_data(args)
    features, processor = prepared["features"], prepared["processor"]
    counts = np.asarray(features.counts)
    return JetSource(
        dict(features.flat), counts, dict(features.targets or {}),
        dict(features.jet_targets or {}),
        {"feature_groups": processor.group_sizes, "max_particles": processor.max_particles,
         **prepared["truth"].config_options()},
        tuple(prepared["buckets"]),
        f"{len(counts)} jets from {data}, mean {counts.mean():.1f} particles",
    )  # fmt: skip


def parse_variants(text: str, default_threads: int) -> list[tuple[str, str, int]]:
    """``"fp32@1,bf16"`` → ``[(name, variant, threads)]``; the first is the baseline."""
    out = []
    for spec in (v.strip() for v in text.split(",") if v.strip()):
        kind, _, threads = spec.partition("@")
        if kind not in VARIANTS:
            raise SystemExit(f"--variants: {kind!r} is not one of {list(VARIANTS)}")
        n = int(threads) if threads else default_threads
        out.append((f"{kind}@{n}", kind, n))
    if len({name for name, _, _ in out}) != len(out):
        raise SystemExit(f"--variants: a variant is named twice in {text!r}")
    return out


def time_variants(
    size: str,
    batch_size: int,
    source: JetSource,
    variants: list[tuple[str, str, int]],
    *,
    target: str,
    rounds: int,
    steps: int,
    fixed: int,
    seed: int,
) -> dict[str, Any]:
    """Step time of each variant on the same ``fixed`` batches (cycled in the same order),
    interleaved round by round; ratios against the first variant."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling

    config = JetFMConfig.from_preset(size, mpm_target=target, **source.config_options)
    torch.manual_seed(seed)
    reference = JetFMForMaskedParticleModeling(config).state_dict()
    batches = {}
    for padded in (False, True):
        device_batches = DeviceJetBatches(
            source.flat, source.counts, batch_size, buckets=source.buckets, seed=seed,
            pad_to_bucket=padded, targets=source.targets, jet_targets=source.jet_targets,
        )  # fmt: skip
        batches[padded] = list(itertools.islice(iter(device_batches), fixed))
    # the same jets either way: only the padding differs
    for cut, padded in zip(batches[False], batches[True], strict=True):
        assert int(cut["mask"].sum()) == int(padded["mask"].sum())
    default_threads = torch.get_num_threads()
    steps_fn, compile_s, cycles = {}, {}, {}
    for name, kind, threads in variants:
        compiled, bf16 = kind.startswith("compile"), kind.endswith("bf16")
        model = JetFMForMaskedParticleModeling(config).train()
        model.load_state_dict(reference)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
        if compiled:
            compile_model(model)

        def step(batch, model=model, opt=opt, bf16=bf16, threads=threads) -> None:
            torch.set_num_threads(threads)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

        own = batches[compiled]
        if compiled:  # one graph per batch shape, compiled before anything is timed
            torch._dynamo.reset()
            counters.clear()
            t0 = time.perf_counter()
            for shape in sorted({tuple(b["mask"].shape) for b in own}):
                step(next(b for b in own if tuple(b["mask"].shape) == shape))
            compile_s[name] = time.perf_counter() - t0
        steps_fn[name] = step
        cycles[name] = itertools.cycle(own)
    torch.set_num_threads(default_threads)
    timed = interleaved_rates(
        {name: (lambda n=name: steps_fn[n](next(cycles[n]))) for name in steps_fn},
        dict.fromkeys(steps_fn, float(batch_size)), rounds=rounds, warmup=1, repeats=steps,
    )  # fmt: skip
    torch.set_num_threads(default_threads)
    baseline = variants[0][0]
    rate = {name: t["rate"] for name, t in timed.items()}
    return {
        "size": size,
        "batch_size": batch_size,
        "target": target,
        "truth": config.truth_objectives or None,
        "parameters": sum(v.numel() for v in reference.values()),
        "timed_batches": [list(b["mask"].shape) for b in batches[False]],
        "timed_bucket_shapes": [list(b["mask"].shape) for b in batches[True]],
        "baseline": baseline,
        "step_s": {name: batch_size / r for name, r in rate.items()},
        "step_s_median": {name: batch_size / t["rate_median"] for name, t in timed.items()},
        "jets_per_s_rounds": {name: t["rates"] for name, t in timed.items()},
        "ratio_vs_baseline": {name: r / rate[baseline] for name, r in rate.items()},
        "compile_s": compile_s,
    }


def run_variants(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """The ``--variants`` mode: every size and batch size, a table of ratios."""
    variants = parse_variants(args.variants, args.threads or torch.get_num_threads())
    if args.data:
        source = file_source(args.data, args.truth, args.workdir or tempfile.mkdtemp())
    else:
        source = synthetic_source(args.jets, args.mean_particles, args.seed, args.truth)
    results["jets"] = source.description
    print(f"{source.description}; buckets {list(source.buckets)}")
    header = f"{'size':6} {'batch':>5} {'variant':16} {'step s':>7} {'vs ' + variants[0][0]:>12} {'compile s':>9}"
    print(header)
    print("-" * len(header))
    for size in [s for s in args.sizes.split(",") if s]:
        for batch_size in [int(b) for b in args.batch_sizes.split(",") if b]:
            case = time_variants(
                size, batch_size, source, variants, target=args.target, rounds=args.rounds,
                steps=args.steps, fixed=args.fixed_batches, seed=args.seed,
            )  # fmt: skip
            results["cases"].append(case)
            for name, _, _ in variants:
                comp = case["compile_s"].get(name)
                print(f"{size:6} {batch_size:5d} {name:16} {case['step_s'][name]:7.2f} "
                      f"{case['ratio_vs_baseline'][name]:11.2f}x "
                      f"{'' if comp is None else f'{comp:9.0f}'}")  # fmt: skip


class PerJet(torch.utils.data.Dataset):
    """Per-jet dicts sliced from flat arrays (what ``JetDataset.__getitem__`` returns)."""

    def __init__(self, flat: dict, counts: np.ndarray):
        self.flat, self.counts = flat, counts
        self.offsets = np.concatenate([[0], np.cumsum(counts)])

    def __len__(self) -> int:
        return len(self.counts)

    def __getitem__(self, i: int) -> dict:
        lo, hi = self.offsets[i], self.offsets[i + 1]
        return {g: a[lo:hi] for g, a in self.flat.items()}


def endless(loader) -> Any:
    """Batches of ``loader`` epoch after epoch."""
    while True:
        yield from loader


def matmul_tflops(device: torch.device, n: int = 8192, repeats: int = 20) -> float:
    """The GPU's bf16 matrix rate, measured: TFLOP/s of an ``n``³ matrix product."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize(device)
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e12


def step_flops(model, batch: dict, static: bool) -> float:
    """FLOPs of one training step (forward + backward) on ``batch``."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(**batch, static_shapes=static).loss.backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def make_step(model, opt, device: torch.device, static: bool | None):
    amp = device.type == "cuda"

    def step(batch: dict) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = model(**batch, static_shapes=static).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def time_case(
    size: str,
    batch_size: int,
    flat: dict,
    counts: np.ndarray,
    *,
    device: torch.device,
    compile_static: bool,
    workers: int,
    rounds: int,
    steps: int,
    target: str,
    seed: int,
    peak_tflops: float | None,
) -> dict[str, Any]:
    """jets/s of both paths, model-only and end to end, for one size and batch size."""
    cuda = device.type == "cuda"
    config = JetFMConfig.from_preset(size, mpm_target=target, feature_groups=GROUPS)
    buckets = default_buckets(MAX_PARTICLES, counts)
    collate = JetCollator(targets=())
    loader = torch.utils.data.DataLoader(
        PerJet(flat, counts), batch_size=batch_size, shuffle=True, collate_fn=collate,
        num_workers=workers, pin_memory=cuda, drop_last=True,
        persistent_workers=workers > 0,
    )  # fmt: skip
    device_batches = DeviceJetBatches(
        flat, counts, batch_size, buckets=buckets, device=device, seed=seed,
        pad_to_bucket=cuda or compile_static,  # as jetfm pretrain does
    )  # fmt: skip
    models, steps_fn, sources = {}, {}, {}
    for path in PATHS:
        torch.manual_seed(seed)
        model = JetFMForMaskedParticleModeling(config).to(device).train()
        fused = {"fused": True} if cuda and path == "static" else {}
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **fused)
        if path == "static" and compile_static:
            compile_model(model)
        models[path] = model
        # the static path runs the model's default, as jetfm pretrain does
        steps_fn[path] = make_step(model, opt, device, static=False if path == "dynamic" else None)
    sources["dynamic"] = (
        {k: v.to(device, non_blocking=True) for k, v in b.items()} for b in endless(loader)
    )
    sources["static"] = endless(device_batches)
    # fixed device-resident batches for the model-only numbers: the same jets for both
    # paths, in their bucket's shape for `static` and cut to the longest jet for `dynamic`
    static_fixed = list(itertools.islice(iter(device_batches), 8))
    fixed = {
        "static": static_fixed,
        "dynamic": [
            {k: v[:, : int(b["mask"].sum(1).max())] for k, v in b.items()} for b in static_fixed
        ],
    }
    cycles = {p: itertools.cycle(fixed[p]) for p in PATHS}
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    variants = {}
    for path in PATHS:
        variants[f"{path}/model"] = lambda p=path: steps_fn[p](next(cycles[p]))
        variants[f"{path}/end_to_end"] = lambda p=path: steps_fn[p](next(sources[p]))
    # compile (one graph per bucket and mode) before timing: warm every bucket
    warm = len(buckets) * 2 if compile_static else 2
    timed = interleaved_rates(
        variants, dict.fromkeys(variants, float(batch_size)), rounds=rounds, warmup=warm,
        repeats=steps, sync=sync,
    )  # fmt: skip
    rate = {name: t["rate"] for name, t in timed.items()}
    report: dict[str, Any] = {
        "size": size,
        "batch_size": batch_size,
        "parameters": sum(p.numel() for p in models["static"].parameters()),
        "jets_per_s": {name: round(r, 1) for name, r in rate.items()},
        "jets_per_s_rounds": {name: t["rates"] for name, t in timed.items()},
        "ratios": {
            "static_vs_dynamic_model": rate["static/model"] / rate["dynamic/model"],
            "static_vs_dynamic_end_to_end": rate["static/end_to_end"] / rate["dynamic/end_to_end"],
            "end_to_end_vs_model_static": rate["static/end_to_end"] / rate["static/model"],
            "end_to_end_vs_model_dynamic": rate["dynamic/end_to_end"] / rate["dynamic/model"],
        },
    }
    if peak_tflops:
        eager = JetFMForMaskedParticleModeling(config).to(device).train()
        # the work of the data-dependent step on the same jets: padding entries not counted
        flops = step_flops(eager, fixed["dynamic"][0], static=False) / batch_size
        report["gflop_per_jet"] = flops / 1e9
        report["mfu"] = {
            name: flops * rate[name] / (peak_tflops * 1e12) for name in ("static/model",
                                                                        "static/end_to_end")
        }  # fmt: skip
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="base,large")
    parser.add_argument("--batch-sizes", default="256,1024")
    parser.add_argument("--jets", type=int, default=20_000, help="synthetic training jets")
    parser.add_argument("--mean-particles", type=int, default=63)
    parser.add_argument("--target", default="diffusion")
    parser.add_argument("--compile", action="store_true", help="compile the static step")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (dynamic)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="steps per round and variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument(
        "--variants", default=None,
        help="compare step variants instead of the paths: comma-separated "
             f"{'|'.join(VARIANTS)}, each with @THREADS (the first is the baseline; CPU)",
    )  # fmt: skip
    parser.add_argument("--truth", default=None, help="truth objectives (--variants), e.g. "
                        "class=1,origin=0.5, as jetfm pretrain --truth")  # fmt: skip
    parser.add_argument("--data", default=None, help="time these files' jets (--variants; "
                        "a glob), prepared as jetfm pretrain does; default synthetic jets")  # fmt: skip
    parser.add_argument("--workdir", default=None, help="feature cache of --data")
    parser.add_argument("--fixed-batches", type=int, default=4,
                        help="batches cycled in the timing (--variants)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.variants:
        results = {"machine": machine_info("cpu"), "settings": vars(args), "mode": "variants",
                   "cases": []}  # fmt: skip
        results["environment"] = {k: os.environ.get(k) for k in ENVIRONMENT}
        results["load_average_before"] = list(os.getloadavg())
        run_variants(args, results)
        results["load_average_after"] = list(os.getloadavg())
        if args.out:
            write_json_atomic(args.out, results)
        return results
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    workers = args.workers if args.workers is not None else (4 if cuda else 0)
    peak = matmul_tflops(device) if cuda else None
    flat, counts = synthetic_features(args.jets, args.mean_particles, args.seed)
    results: dict[str, Any] = {
        "machine": machine_info(args.device),
        "settings": vars(args),
        "bf16_matmul_tflops": peak,
        "mean_particles_actual": float(counts.mean()),
        "cases": [],
    }
    header = (f"{'size':6} {'batch':>5} {'path':8} {'model jets/s':>13} {'end-to-end':>11} "
              f"{'e2e/model':>9} {'MFU':>6}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for size in [s for s in args.sizes.split(",") if s]:
        for batch_size in [int(b) for b in args.batch_sizes.split(",") if b]:
            case = time_case(
                size, batch_size, flat, counts, device=device, compile_static=args.compile,
                workers=workers, rounds=args.rounds, steps=args.steps, target=args.target,
                seed=args.seed, peak_tflops=peak,
            )  # fmt: skip
            results["cases"].append(case)
            for path in PATHS:
                model, e2e = (
                    case["jets_per_s"][f"{path}/model"],
                    case["jets_per_s"][f"{path}/end_to_end"],
                )
                mfu = case.get("mfu", {}).get(f"{path}/end_to_end")
                print(f"{size:6} {batch_size:5d} {path:8} {model:13.0f} {e2e:11.0f} "
                      f"{e2e / model:9.2f} {'' if mfu is None else f'{mfu:6.1%}'}")  # fmt: skip
            r = case["ratios"]
            print(f"{size:6} {batch_size:5d} static/dynamic: model "
                  f"{r['static_vs_dynamic_model']:.2f}x, end to end "
                  f"{r['static_vs_dynamic_end_to_end']:.2f}x")  # fmt: skip
    if args.out:
        write_json_atomic(args.out, results)
    return results


if __name__ == "__main__":
    main()
