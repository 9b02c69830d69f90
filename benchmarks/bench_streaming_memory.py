"""Peak memory of streaming 1× vs 10× data: it must not grow with the file size.

Writes two synthetic JetClass files with the test-fixture writer (N and 10·N jets), fits a
processor on the small one, then, each in a fresh subprocess, streams a file through
``StreamingJetDataset`` + ``JetCollator`` (batches of 256, as in training) and records the
peak RSS from after the imports on (VmHWM, reset through ``/proc/self/clear_refs``; falls
back to ``ru_maxrss``) and the RSS right after the imports. For contrast (and to show the
measurement can see growth) it does the same with the eager ``JetDataset``.

    python benchmarks/bench_streaming_memory.py --out results/streaming_memory.json

Prints the ratios peak(10×)/peak(1×); for streaming it should be ≈ 1.
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

ROOT = Path(__file__).resolve().parents[1]


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM), so import-time spikes do not count."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def child(mode: str, path: str, processor_dir: str, step_size: int) -> dict:
    """Runs in the subprocess: stream (or load) one file, report memory."""
    from torch.utils.data import DataLoader

    from jetfm.data import JetCollator, JetDataset, JetProcessor, StreamingJetDataset

    processor = JetProcessor.from_pretrained(processor_dir)
    rss_imports = _status_mib("VmRSS")
    reset = _reset_peak()
    start = time.perf_counter()
    collator = JetCollator(targets=("labels",))
    if mode == "streaming":
        ds = StreamingJetDataset(path, processor, ("labels",), step_size=step_size)
    else:
        ds = JetDataset(path, processor, ("labels",), step_size=step_size)
    jets = 0
    for batch in DataLoader(ds, batch_size=256, collate_fn=collator):
        jets += len(batch["labels"])
    if reset:
        peak = _status_mib("VmHWM")  # peak since the reset: the streaming itself
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB → MiB
    return dict(
        mode=mode,
        jets=jets,
        seconds=time.perf_counter() - start,
        rss_after_imports_mib=rss_imports,
        peak_rss_mib=peak,
        peak_measured_after_imports=reset,
    )


def run_child(mode: str, path: Path, processor_dir: Path, step_size: int) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, str(path), str(processor_dir),
           str(step_size)]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jets", type=int, default=10_000, help="jets in the 1× file")
    parser.add_argument("--factor", type=int, default=10, help="size of the big file, × --jets")
    parser.add_argument("--step-size", type=int, default=2_000, help="jets per streamed chunk")
    parser.add_argument("--workdir", default=None, help="where to write the files (temp dir)")
    parser.add_argument("--no-eager", action="store_true", help="skip the eager contrast")
    parser.add_argument("--out", help="JSON file for the results (required)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, path, proc, step = args.child
        print(json.dumps(child(mode, path, proc, int(step))))
        return
    if not args.out:
        parser.error("--out is required")

    sys.path.insert(0, str(ROOT))
    from jetfm.data import JetProcessor
    from tests.fixtures_data import write_jetclass_file

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        small = write_jetclass_file(tmp / "x1.root", args.jets, seed=1, chunk_size=5_000)
        t0 = time.perf_counter()
        big = write_jetclass_file(
            tmp / f"x{args.factor}.root", args.jets * args.factor, seed=2, chunk_size=5_000
        )
        write_s = time.perf_counter() - t0
        JetProcessor().fit(small, progress=False).save_pretrained(tmp / "proc")
        results: dict = {
            "jets_1x": args.jets,
            "factor": args.factor,
            "step_size": args.step_size,
            "file_mib": {
                "1x": small.stat().st_size / 2**20,
                f"{args.factor}x": big.stat().st_size / 2**20,
            },
            "write_big_seconds": write_s,
            "runs": [],
        }
        modes = ["streaming"] + ([] if args.no_eager else ["eager"])
        for mode in modes:
            for label, path in (("1x", small), (f"{args.factor}x", big)):
                run = run_child(mode, path, tmp / "proc", args.step_size)
                run["data"] = label
                results["runs"].append(run)
                print(
                    f"{mode:9s} {label:>4s}: {run['jets']:7d} jets, peak RSS "
                    f"{run['peak_rss_mib']:7.1f} MiB (after imports {run['rss_after_imports_mib']:.1f}"
                    f" MiB), {run['seconds']:.1f} s"
                )
        for mode in modes:
            a, b = (r for r in results["runs"] if r["mode"] == mode)
            ratio = b["peak_rss_mib"] / a["peak_rss_mib"]
            growth = (b["peak_rss_mib"] - b["rss_after_imports_mib"]) / max(
                a["peak_rss_mib"] - a["rss_after_imports_mib"], 1e-9
            )
            results[f"{mode}_peak_ratio"] = ratio
            results[f"{mode}_growth_ratio_above_imports"] = growth
            print(
                f"{mode}: peak RSS {args.factor}x / 1x = {ratio:.3f} "
                f"(memory above imports: ×{growth:.2f})"
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(results, fh, indent=2)
    os.replace(tmp_path, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
