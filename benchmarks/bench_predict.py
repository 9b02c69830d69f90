"""Prediction throughput (pad-to-128 vs bucketed, torch vs ONNX Runtime) and memory (1× vs 10×).

Writes a synthetic JetClass file with the test-fixture writer (JetClass-like multiplicities,
≈ 30–50 constituents per jet, ``max_particles`` = 128), fits a processor on it and, for each
size preset, saves an (untrained) tagging head with it. Then, in one process and side by
side:

* ``model`` jets/s: :meth:`jetfm.inference.Predictor.predict_chunk` on chunks read once
  (the forward passes, batching and unsorting only);
* ``end-to-end`` jets/s: :func:`jetfm.inference.predict` on the file (reading, features,
  model, mapping back);

each for batches padded to ``max_particles`` in entry order (the baseline) and bucketed by
particle count, with torch and with ONNX Runtime (the export of
:func:`jetfm.onnx_export.export_onnx`). Best of ``--rounds`` after a warm-up round.

Memory: ``jetfm predict`` (:func:`jetfm.inference.predict_files`, tiny model) runs in a fresh
subprocess on the 1× file and on a 10× file; the peak RSS from after the imports on (VmHWM,
reset through ``/proc/self/clear_refs``) must stay flat.

    python benchmarks/bench_predict.py --sizes tiny,small,base --out results/predict.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchutil import reset_peak_rss, status_mib, write_json_atomic

ROOT = Path(__file__).resolve().parents[1]


# --- memory child ----------------------------------------------------------------------------
def child(model_dir: str, path: str, out_dir: str, step_size: int) -> dict:
    """Runs in the subprocess: predict one file to ``out_dir``, report memory."""
    import torch

    from jetfm.inference import make_predictor, predict_files

    torch.set_num_threads(1)
    predictor = make_predictor(model_dir)
    rss_imports = status_mib("VmRSS")
    reset = reset_peak_rss()
    start = time.perf_counter()
    summary = predict_files(predictor, path, out_dir, step_size=step_size, progress=False)
    if reset:
        peak = status_mib("VmHWM")
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(
        jets=summary["jets"],
        seconds=time.perf_counter() - start,
        rss_after_imports_mib=rss_imports,
        peak_rss_mib=peak,
        peak_measured_after_imports=reset,
    )


def run_child(model_dir: Path, path: Path, out_dir: Path, step_size: int) -> dict:
    cmd = [sys.executable, __file__, "--child", str(model_dir), str(path), str(out_dir),
           str(step_size)]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- throughput ------------------------------------------------------------------------------
def _best_rate(fn, jets: int, rounds: int) -> float:
    fn()  # warm-up (allocator, ONNX Runtime's first-run optimisation)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return jets / best


def throughput(model_dir: Path, path: Path, args: argparse.Namespace, onnx_path: Path | None):
    from jetfm.data.input_plan import plan_inputs, work_units
    from jetfm.inference import make_predictor, predict
    from jetfm.inference.chunks import iter_prepared

    rows = {}
    backends = [("torch", None)] + ([("onnx", onnx_path)] if onnx_path is not None else [])
    for backend, onnx in backends:
        for bucket in (False, True):
            predictor = make_predictor(
                model_dir, batch_size=args.batch_size, bucket=bucket, onnx=onnx or False,
                device=args.device,
            )  # fmt: skip
            spec = predictor.read_spec()
            files = plan_inputs(path, spec)
            units = work_units(files, args.step_size)
            chunks = list(iter_prepared(units, files, predictor.processor, spec))
            jets = sum(len(c.chunk) for c in chunks)

            def model_only(predictor=predictor, chunks=chunks) -> None:
                for c in chunks:
                    predictor.predict_chunk(c.chunk)

            def end_to_end(predictor=predictor) -> None:
                predict(predictor, path, step_size=args.step_size)

            key = f"{backend}-{'bucketed' if bucket else 'pad128'}"
            rows[key] = {
                "model_jets_per_s": _best_rate(model_only, jets, args.rounds),
                "end_to_end_jets_per_s": _best_rate(end_to_end, jets, args.rounds),
            }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="tiny,small,base", help="size presets")
    parser.add_argument("--jets", type=int, default=2_000, help="jets in the 1× file")
    parser.add_argument("--factor", type=int, default=10, help="size of the big file, × --jets")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--step-size", type=int, default=1_000, help="entries per chunk")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds (best is kept)")
    parser.add_argument("--threads", type=int, default=None, help="torch / ORT CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--no-memory", action="store_true", help="skip the 1× vs 10× runs")
    parser.add_argument("--workdir", default=None, help="where to write files (temp dir)")
    parser.add_argument("--out", help="JSON file for the results")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model_dir, path, out_dir, step = args.child
        print(json.dumps(child(model_dir, path, out_dir, int(step))))
        return

    sys.path.insert(0, str(ROOT))
    import torch

    from jetfm.configuration import JetFMConfig
    from jetfm.data import JetProcessor
    from jetfm.modeling.heads import JetFMForJetTagging
    from tests.fixtures_data import write_jetclass_file

    if args.threads:
        torch.set_num_threads(args.threads)
    onnx_ok = not args.no_onnx
    if onnx_ok:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            onnx_ok = False
    results: dict = {
        "jets": args.jets,
        "batch_size": args.batch_size,
        "step_size": args.step_size,
        "torch_threads": torch.get_num_threads(),
        "device": args.device,
        "sizes": {},
    }
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        data = write_jetclass_file(tmp / "x1.root", args.jets, seed=1, chunk_size=5_000)
        processor = JetProcessor(max_particles=128).fit(data, progress=False)
        import awkward as ak
        import uproot

        with uproot.open(data) as f:
            counts = ak.num(f["tree"]["part_px"].array())
        results["mean_particles"] = float(ak.mean(counts))
        results["max_particles"] = processor.max_particles
        print(
            f"{args.jets} jets, {results['mean_particles']:.1f} particles on average "
            f"(max_particles {processor.max_particles}), batch {args.batch_size}, "
            f"{results['torch_threads']} torch threads, {args.device}"
        )
        header = f"{'size':6s} {'backend':16s} {'model jets/s':>13s} {'end-to-end jets/s':>18s}"
        print(header)
        for size in args.sizes.split(","):
            model_dir = tmp / f"tagger-{size}"
            config = JetFMConfig.from_preset(
                size, num_labels=2, id2label={0: "QCD", 1: "Wqq"}, max_particles=128
            )
            JetFMForJetTagging(config).save_pretrained(model_dir)
            processor.save_pretrained(model_dir)
            onnx_path = None
            if onnx_ok:
                from jetfm.onnx_export import export_onnx

                onnx_path = export_onnx(model_dir, model_dir / "model.onnx")
            rows = throughput(model_dir, data, args, onnx_path)
            results["sizes"][size] = rows
            for key, row in rows.items():
                print(
                    f"{size:6s} {key:16s} {row['model_jets_per_s']:13.0f} "
                    f"{row['end_to_end_jets_per_s']:18.0f}"
                )
            for backend in ("torch", "onnx"):
                if f"{backend}-bucketed" in rows:
                    a, b = rows[f"{backend}-pad128"], rows[f"{backend}-bucketed"]
                    speedup = b["model_jets_per_s"] / a["model_jets_per_s"]
                    rows[f"{backend}_bucketed_speedup_model"] = speedup
                    print(f"{size:6s} {backend}: bucketed / pad-128 (model) = ×{speedup:.2f}")
        if not args.no_memory:
            big = write_jetclass_file(
                tmp / f"x{args.factor}.root", args.jets * args.factor, seed=2, chunk_size=5_000
            )
            runs = {}
            for label, path in (("1x", data), (f"{args.factor}x", big)):
                run = run_child(tmp / "tagger-tiny" if "tiny" in args.sizes else model_dir,
                                path, tmp / f"out-{label}", args.step_size)  # fmt: skip
                runs[label] = run
                print(
                    f"memory {label:>4s}: {run['jets']:7d} jets, peak RSS {run['peak_rss_mib']:7.1f}"
                    f" MiB (after imports {run['rss_after_imports_mib']:.1f} MiB), "
                    f"{run['seconds']:.1f} s"
                )
            a, b = runs["1x"], runs[f"{args.factor}x"]
            results["memory"] = runs
            results["memory_peak_ratio"] = b["peak_rss_mib"] / a["peak_rss_mib"]
            results["memory_growth_ratio_above_imports"] = (
                b["peak_rss_mib"] - b["rss_after_imports_mib"]
            ) / max(a["peak_rss_mib"] - a["rss_after_imports_mib"], 1e-9)
            print(
                f"memory: peak RSS {args.factor}x / 1x = {results['memory_peak_ratio']:.3f} "
                f"(memory above imports ×{results['memory_growth_ratio_above_imports']:.2f})"
            )
    if args.out:
        out = write_json_atomic(args.out, results)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
