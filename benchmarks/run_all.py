"""One entry point for every jetfm benchmark: one table on stdout, one JSON file.

Sections (``--only`` picks some):

* ``pretrain``: MPM training jets/s per size preset × mean particle count × batch size, with
  masked particles dropped vs sent through the encoder as mask tokens, and batches padded
  to the longest jet vs to 128 — the four variants side by side (``bench_pretrain``);
* ``inference``: tagging-model forward jets/s over the same grid, pad-to-longest vs
  padded-to-128 (``bench_inference``);
* ``memory``: peak RSS of streaming a 1× and a 10× file, with the eager dataset as the
  contrast (``bench_streaming_memory``);
* ``generate``: Pythia jets/s per class, vectorised generator vs a naive per-particle loop
  (``bench_generate``; skipped with a note without ``pythia8mc``/``fastjet``);
* ``cli``: wall seconds of ``jetfm --help``, ``--version`` and every ``jetfm SUB --help`` in
  fresh interpreters, against the bare interpreter (``bench_cli``).

Every number that matters is a ratio against a baseline timed in the same process,
interleaved round by round; absolute jets/s are for orientation only.

    python benchmarks/run_all.py --out benchmarks/results/latest.json   # full, 10-15 min, 2 cores
    python benchmarks/run_all.py --quick --only pretrain,inference      # < 1 min smoke run
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(HERE), str(ROOT)):  # the sibling bench modules and the repo's packages
    if _p not in sys.path:
        sys.path.insert(0, _p)

import torch  # noqa: E402
from benchutil import geomean, machine_info, write_json_atomic  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

SECTIONS = ("pretrain", "inference", "memory", "generate", "cli")
SCHEMA_VERSION = 1

# The default (full) run: ~10–15 min on 2 shared CPU cores with one thread; the base model at
# batch 128 and 128 particles dominates (≈ 6–12 s per training step on one core).
FULL: dict[str, dict[str, Any]] = {
    "grid": {"sizes": ("tiny", "small", "base"), "particles": (16, 32, 64, 128),
             "batch_sizes": (32, 128)},
    "pretrain": {"rounds": 3, "warmup": 1, "min_time": 0.5, "target": "flow",
                 "mask_fraction": 0.4},
    "inference": {"rounds": 5, "warmup": 1, "min_time": 0.5},
    "memory": {"jets": 10_000, "factor": 10, "step_size": 2_000},
    "generate": {"classes": None, "jets": 300, "naive_jets": 60, "rounds": 2},
    "cli": {"rounds": 3, "only": None},
}  # fmt: skip
# --quick: checks that everything runs (seconds per section), numbers are not meaningful.
QUICK: dict[str, dict[str, Any]] = {
    "grid": {"sizes": ("tiny", "small"), "particles": (16, 64), "batch_sizes": (8, 32)},
    "pretrain": {"rounds": 2, "warmup": 1, "min_time": 0.02, "target": "flow",
                 "mask_fraction": 0.4},
    "inference": {"rounds": 2, "warmup": 1, "min_time": 0.02},
    "memory": {"jets": 500, "factor": 10, "step_size": 250},
    "generate": {"classes": ("QCD", "Tbqq"), "jets": 40, "naive_jets": 10, "rounds": 1},
    "cli": {"rounds": 1, "only": ("--help", "--version", "finetune --help")},
}  # fmt: skip


# --- sections --------------------------------------------------------------------------------
def _grid_cases(grid: dict) -> list[tuple[str, int, int]]:
    return [
        (size, n, b)
        for size in grid["sizes"]
        for n in grid["particles"]
        for b in grid["batch_sizes"]
    ]


def _summaries(cases: list[dict], sizes: Sequence[str]) -> dict[str, dict[str, float]]:
    """Geometric mean of each ratio over the grid, per size and over all cases."""
    out: dict[str, dict[str, float]] = {}
    for key in [*sizes, "all"]:
        chosen = [c for c in cases if key in ("all", c["size"])]
        if chosen:
            names = chosen[0]["ratios"]
            out[key] = {name: geomean([c["ratios"][name] for c in chosen]) for name in names}
    return out


def run_pretrain(grid: dict, settings: dict, device: str, progress: bool = True) -> dict:
    """Training jets/s of every (size, particles, batch) case; see ``bench_pretrain``."""
    from bench_pretrain import BASELINE, VARIANTS, time_variants

    cases = []
    for size, n, b in tqdm(_grid_cases(grid), desc="pretrain", disable=not progress):
        cases.append(time_variants(size, batch_size=b, mean_particles=n, device=device, **settings))
    return {
        "baseline": BASELINE,
        "variants": list(VARIANTS),
        "cases": cases,
        "summary": _summaries(cases, grid["sizes"]),
    }


def run_inference(grid: dict, settings: dict, device: str, progress: bool = True) -> dict:
    """Tagging forward jets/s of every (size, particles, batch) case; see ``bench_inference``."""
    from bench_inference import BASELINE, VARIANTS, time_forward

    cases = []
    for size, n, b in tqdm(_grid_cases(grid), desc="inference", disable=not progress):
        cases.append(time_forward(size, batch_size=b, mean_particles=n, device=device, **settings))
    return {
        "baseline": BASELINE,
        "variants": list(VARIANTS),
        "cases": cases,
        "summary": _summaries(cases, grid["sizes"]),
    }


def run_memory(settings: dict) -> dict:
    """Peak RSS streaming 1× vs ``factor``× data (subprocesses); see ``bench_streaming_memory``."""
    from bench_streaming_memory import measure

    res = measure(settings["jets"], settings["factor"], settings["step_size"], verbose=False)
    big = f"{settings['factor']}x"
    ratios = {}
    for mode in ("streaming", "eager"):
        if f"{mode}_peak_ratio" in res:
            ratios[f"{mode}_peak_{big}_vs_1x"] = res[f"{mode}_peak_ratio"]
            ratios[f"{mode}_above_imports_{big}_vs_1x"] = res[f"{mode}_growth_ratio_above_imports"]
    return {"baseline": "1x", **res, "ratios": ratios}


def run_generate(settings: dict, progress: bool = True) -> dict:
    """Generator jets/s per class, vectorised vs naive; see ``bench_generate``."""
    from bench_generate import available, measure

    missing = available()
    if missing:
        return {"skipped": missing}
    res = measure(
        settings["classes"],
        settings["jets"],
        settings["naive_jets"],
        rounds=settings["rounds"],
        verbose=False,
        progress=progress,
    )
    speedups = [r["speedup"] for r in res["rows"]]
    return {
        "baseline": "naive",
        **res,
        "ratios": {"vectorised_vs_naive_geomean": geomean(speedups)},
    }


def run_cli(settings: dict) -> dict:
    """Start-up seconds of the command line in fresh interpreters; see ``bench_cli``."""
    from bench_cli import measure

    res = measure(settings["rounds"], only=settings["only"])
    return {
        **res,
        "ratios": {f"{c['command']} x python": c["x_baseline"] for c in res["cases"]},
    }


# --- the table -------------------------------------------------------------------------------
COLUMNS = (
    ("section", "<"),
    ("case", "<"),
    ("variant", "<"),
    ("width", ">"),
    ("value", ">"),
    ("unit", "<"),
    ("x baseline", ">"),
)


def _num(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}" if abs(x) < 1 else f"{x:.1f}"


def table_rows(sections: dict) -> list[dict[str, str]]:
    """One row per measured variant, then the headline ratios (geometric means)."""
    rows: list[dict[str, str]] = []

    def add(section, case, variant, value, unit, ratio=None, width="", base=False):
        if not isinstance(value, float | int):
            text = str(value)
        else:
            text = f"{value:.2f}" if unit.startswith("x") else _num(value)
        rows.append({
            "section": section, "case": case, "variant": variant, "width": str(width),
            "value": text,
            "unit": unit, "x baseline": "base" if base else ("" if ratio is None else f"{ratio:.2f}"),
        })  # fmt: skip

    for name in ("pretrain", "inference"):
        sec = sections.get(name)
        if not sec:
            continue
        for c in sec["cases"]:
            case = f"{c['size']} N={c['mean_particles']} B={c['batch_size']}"
            for var, v in c["variants"].items():
                add(name, case, var, v["jets_per_s"], "jets/s", c["ratio_vs_baseline"][var],
                    v["width"], base=var == sec["baseline"])  # fmt: skip
    mem = sections.get("memory")
    if mem:
        for run in mem["runs"]:
            is_base = run["data"] == "1x"
            ratio = None
            if not is_base:
                base = next(r for r in mem["runs"] if r["mode"] == run["mode"] and r is not run)
                ratio = run["peak_rss_mib"] / base["peak_rss_mib"]
            add("memory", f"{run['mode']} {run['jets']} jets", f"{run['data']} peak RSS",
                run["peak_rss_mib"], "MiB", ratio, base=is_base)  # fmt: skip
    gen = sections.get("generate")
    if gen and "skipped" in gen:
        add("generate", "-", "skipped", gen["skipped"], "")
    elif gen:
        for r in gen["rows"]:
            add("generate", r["class"], "naive loop", r["naive_jets_per_s"], "jets/s", base=True)
            add("generate", r["class"], "vectorised", r["fast_jets_per_s"], "jets/s", r["speedup"])
    for name in ("pretrain", "inference"):
        sec = sections.get(name)
        for size, ratios in (sec or {}).get("summary", {}).items():
            for ratio_name, value in ratios.items():
                add("headline", f"{name} {size}", ratio_name, value, "x (geomean)")
    cli = sections.get("cli")
    if cli:
        add("cli", "python -c pass", "wall", cli["baseline_s"], "s", base=True)
        for c in cli["cases"]:
            add("cli", c["command"], f"best (target < {c['target_s']:g} s)", c["best_s"], "s",
                c["x_baseline"])  # fmt: skip
    for name in ("memory", "generate"):
        for ratio_name, value in (sections.get(name) or {}).get("ratios", {}).items():
            add("headline", name, ratio_name, value, "x")
    return rows


def format_table(rows: list[dict[str, str]]) -> str:
    """Plain-text table with aligned columns."""
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c, _ in COLUMNS}

    def line(cells: dict[str, str]) -> str:
        return "  ".join(f"{cells[c]:{a}{widths[c]}}" for c, a in COLUMNS).rstrip()

    header = line({c: c for c, _ in COLUMNS})
    out = [header, "-" * len(header)]
    previous = None
    for r in rows:
        if previous is not None and r["section"] != previous:
            out.append("")
        out.append(line(r))
        previous = r["section"]
    return "\n".join(out)


# --- entry point -----------------------------------------------------------------------------
def _int_list(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def _str_list(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny settings: checks it runs")
    parser.add_argument(
        "--only", type=_str_list, default=SECTIONS, help=f"comma list of {','.join(SECTIONS)}"
    )
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: per-core numbers, steady on a shared machine; "
        "0 = torch's default)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (pretrain, inference)")
    parser.add_argument("--sizes", type=_str_list, default=None, help="override the size grid")
    parser.add_argument("--particles", type=_int_list, default=None, help="mean particle counts")
    parser.add_argument("--batch-sizes", type=_int_list, default=None, help="batch sizes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the chosen sections, print the table, write ``--out``; returns the results."""
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown or not args.only:
        parser.error(f"--only: unknown section(s) {unknown}; choose from {','.join(SECTIONS)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    config = {k: dict(v) for k, v in (QUICK if args.quick else FULL).items()}
    for key in ("sizes", "particles", "batch_sizes"):
        if getattr(args, key) is not None:
            config["grid"][key] = getattr(args, key)
    old_threads = torch.get_num_threads()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    progress = not args.no_progress
    results: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "command": ["benchmarks/run_all.py", *(sys.argv[1:] if argv is None else argv)],
        "quick": args.quick,
        "machine": machine_info(args.device),
        "config": {k: config[k] for k in ("grid", *args.only) if k in config},
        "sections": {},
        "wall_s": {},
    }
    start = time.perf_counter()
    try:
        for name in (s for s in SECTIONS if s in args.only):  # fixed order
            t0 = time.perf_counter()
            if name == "pretrain":
                sec = run_pretrain(config["grid"], config["pretrain"], args.device, progress)
            elif name == "inference":
                sec = run_inference(config["grid"], config["inference"], args.device, progress)
            elif name == "memory":
                sec = run_memory(config["memory"])
            elif name == "cli":
                sec = run_cli(config["cli"])
            else:
                sec = run_generate(config["generate"], progress)
            results["sections"][name] = sec
            results["wall_s"][name] = round(time.perf_counter() - t0, 1)
    finally:
        torch.set_num_threads(old_threads)
    results["wall_s"]["total"] = round(time.perf_counter() - start, 1)
    rows = table_rows(results["sections"])
    results["table"] = rows
    m = results["machine"]
    print(
        f"jetfm benchmarks — {m['cpu']} ({m['cores']} cores), torch {m['torch']}, "
        f"{m['torch_threads']} thread(s), device {m['device']}, {m['date']}"
    )
    print(format_table(rows))
    print(
        "wall time: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in results["wall_s"].items())
        + ("  (--quick: numbers not meaningful)" if args.quick else "")
    )
    if args.out:
        write_json_atomic(args.out, results)
        print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
