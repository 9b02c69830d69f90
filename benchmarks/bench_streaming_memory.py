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

from benchutil import reset_peak_rss, status_mib, write_json_atomic

ROOT = Path(__file__).resolve().parents[1]


def child(mode: str, path: str, processor_dir: str, step_size: int) -> dict:
    """Runs in the subprocess: stream (or load) one file, report memory."""
    from torch.utils.data import DataLoader

    from jetfm.data import JetCollator, JetDataset, JetProcessor, StreamingJetDataset

    processor = JetProcessor.from_pretrained(processor_dir)
    rss_imports = status_mib("VmRSS")
    reset = reset_peak_rss()
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
        peak = status_mib("VmHWM")  # peak since the reset: the streaming itself
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
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"memory child ({mode}, {path}) failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(
    jets: int = 10_000,
    factor: int = 10,
    step_size: int = 2_000,
    *,
    workdir: str | os.PathLike | None = None,
    eager: bool = True,
    verbose: bool = True,
) -> dict:
    """Peak RSS of streaming a 1× and a ``factor``× file (and, with ``eager``, of loading them).

    Args:
        jets: jets in the 1× file.
        factor: size of the big file in units of ``jets``.
        step_size: jets per streamed chunk.
        workdir: where the temporary files go (a temporary folder in it; default the system's).
        eager: also measure the eager ``JetDataset`` (the contrast that shows growth).
        verbose: print one line per run.

    Returns:
        ``{"jets_1x", "factor", "step_size", "file_mib", "write_big_seconds", "runs": [...],
        "<mode>_peak_ratio", "<mode>_growth_ratio_above_imports"}`` for each mode
        (``streaming``, ``eager``); each run has ``mode``, ``data`` (``1x``/``<factor>x``),
        ``jets``, ``seconds``, ``rss_after_imports_mib``, ``peak_rss_mib``.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from jetfm.data import JetProcessor
    from tests.fixtures_data import write_jetclass_file

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp = Path(tmp)
        small = write_jetclass_file(tmp / "x1.root", jets, seed=1, chunk_size=5_000)
        t0 = time.perf_counter()
        big = write_jetclass_file(tmp / f"x{factor}.root", jets * factor, seed=2, chunk_size=5_000)
        write_s = time.perf_counter() - t0
        JetProcessor().fit(small, progress=False).save_pretrained(tmp / "proc")
        results: dict = {
            "jets_1x": jets,
            "factor": factor,
            "step_size": step_size,
            "file_mib": {
                "1x": small.stat().st_size / 2**20,
                f"{factor}x": big.stat().st_size / 2**20,
            },
            "write_big_seconds": write_s,
            "runs": [],
        }
        modes = ["streaming"] + (["eager"] if eager else [])
        for mode in modes:
            for label, path in (("1x", small), (f"{factor}x", big)):
                run = run_child(mode, path, tmp / "proc", step_size)
                run["data"] = label
                results["runs"].append(run)
                if verbose:
                    print(
                        f"{mode:9s} {label:>4s}: {run['jets']:7d} jets, peak RSS "
                        f"{run['peak_rss_mib']:7.1f} MiB (after imports "
                        f"{run['rss_after_imports_mib']:.1f} MiB), {run['seconds']:.1f} s"
                    )
    for mode in modes:
        a, b = (r for r in results["runs"] if r["mode"] == mode)
        ratio = b["peak_rss_mib"] / a["peak_rss_mib"]
        growth = (b["peak_rss_mib"] - b["rss_after_imports_mib"]) / max(
            a["peak_rss_mib"] - a["rss_after_imports_mib"], 1e-9
        )
        results[f"{mode}_peak_ratio"] = ratio
        results[f"{mode}_growth_ratio_above_imports"] = growth
        if verbose:
            print(
                f"{mode}: peak RSS {factor}x / 1x = {ratio:.3f} "
                f"(memory above imports: ×{growth:.2f})"
            )
    return results


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
    results = measure(
        args.jets, args.factor, args.step_size, workdir=args.workdir, eager=not args.no_eager
    )
    write_json_atomic(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
