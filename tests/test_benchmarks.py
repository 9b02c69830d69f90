"""benchmarks/run_all.py: a ``--quick`` run works end to end and writes consistent JSON.

Timings are never asserted (they depend on the machine and its neighbours); only the
structure, the bookkeeping of the ratios and properties of the synthetic batches are.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import time
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("run_all", BENCHMARKS / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # puts benchmarks/ on sys.path for its siblings
    return module


def _ratios(node, inside=False):
    """Every number below a ``ratios`` / ``ratio_vs_baseline`` / ``summary`` key."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _ratios(value, inside or key in ("ratios", "ratio_vs_baseline", "summary"))
    elif isinstance(node, list):
        for value in node:
            yield from _ratios(value, inside)
    elif inside:
        yield node


def test_quick_run_writes_table_and_json(run_all, tmp_path, capsys):
    out = tmp_path / "results.json"
    argv = ["--quick", "--only", "pretrain,inference", "--sizes", "tiny", "--no-progress"]
    returned = run_all.main([*argv, "--out", str(out)])

    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # no temp file left
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(returned))
    assert data["schema_version"] == 1 and data["quick"] is True
    assert data["machine"]["torch_threads"] == 1 and data["machine"]["device"] == "cpu"
    assert set(data["sections"]) == {"pretrain", "inference"}
    assert set(data["wall_s"]) == {"pretrain", "inference", "total"}
    grid = data["config"]["grid"]
    assert grid["sizes"] == ["tiny"]
    n_cases = len(grid["particles"]) * len(grid["batch_sizes"])

    ratios = list(_ratios(data["sections"]))
    assert len(ratios) >= 2 * n_cases
    assert all(isinstance(r, float) and math.isfinite(r) and r > 0 for r in ratios)

    pre, inf = data["sections"]["pretrain"], data["sections"]["inference"]
    assert set(pre["variants"]) == {
        "encoder_mask_tokens/pad128", "encoder_mask_tokens/longest",
        "dropped/pad128", "dropped/longest",
    }  # fmt: skip
    assert pre["baseline"] == "encoder_mask_tokens/pad128" and inf["baseline"] == "pad128"
    for sec in (pre, inf):
        assert len(sec["cases"]) == n_cases
        assert set(sec["summary"]) == {"tiny", "all"}
        for case in sec["cases"]:
            v = case["variants"]
            assert set(v) == set(sec["variants"])
            assert case["ratio_vs_baseline"][sec["baseline"]] == 1.0
            for name, row in v.items():
                assert row["jets_per_s"] >= row["jets_per_s_median"] > 0
                assert row["jets_per_s"] == max(row["jets_per_s_rounds"])
                rate = row["jets_per_s"] / v[sec["baseline"]]["jets_per_s"]
                assert case["ratio_vs_baseline"][name] == pytest.approx(rate)
                # padded variants use every slot; pad-to-longest stops at the longest jet,
                # which for a JetClass-like mean of <= 64 particles is well below 128
                if name.endswith("pad128"):
                    assert row["width"] == 128
                else:
                    assert case["mean_particles_actual"] <= row["width"] < 128
    r = pre["cases"][0]["ratios"]
    v = pre["cases"][0]["variants"]
    assert r["dropped_vs_encoder_longest"] == pytest.approx(
        v["dropped/longest"]["jets_per_s"] / v["encoder_mask_tokens/longest"]["jets_per_s"]
    )
    assert r["longest_vs_pad128_dropped"] == pytest.approx(
        v["dropped/longest"]["jets_per_s"] / v["dropped/pad128"]["jets_per_s"]
    )

    printed = capsys.readouterr().out
    headline = sum(len(r) for sec in (pre, inf) for r in sec["summary"].values())
    assert len(data["table"]) == (4 + 2) * n_cases + headline  # a row per variant + headline
    header = printed.splitlines()[1]
    assert header.split() == [
        "section",
        "case",
        "variant",
        "width",
        "value",
        "unit",
        "x",
        "baseline",
    ]
    for row in data["table"]:
        assert row["case"] in printed and row["variant"] in printed


def test_quick_cli_section_times_fresh_interpreters(run_all, tmp_path, capsys):
    out = tmp_path / "cli.json"
    run_all.main(["--quick", "--only", "cli", "--no-progress", "--out", str(out)])
    sec = json.loads(out.read_text())["sections"]["cli"]
    assert [c["command"] for c in sec["cases"]] == [
        "jetfm --help", "jetfm --version", "jetfm finetune --help"]  # fmt: skip
    assert sec["baseline"] == "python -c pass" and sec["baseline_s"] > 0
    for case in sec["cases"]:
        assert case["best_s"] == min(case["rounds_s"]) > sec["baseline_s"]
        assert case["x_baseline"] == pytest.approx(case["best_s"] / sec["baseline_s"])
        assert case["target_s"] == (1.0 if case["command"].count(" ") == 1 else 1.5)
    assert all(math.isfinite(r) and r > 1 for r in sec["ratios"].values())
    printed = capsys.readouterr().out
    assert "jetfm finetune --help" in printed and "python -c pass" in printed


def test_unknown_section_is_rejected(run_all, capsys):
    with pytest.raises(SystemExit):
        run_all.main(["--quick", "--only", "pretrain,bogus"])
    assert "bogus" in capsys.readouterr().err


def _gpu_session(tmp_path, *steps, timeout=60, **env):
    env = {**os.environ, "WORK": str(tmp_path / "work"), "GPU_SESSION_DRY": "1", **env}
    return subprocess.run(["bash", str(BENCHMARKS / "gpu_session.sh"), *steps], env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def test_gpu_session_script_rejects_bad_steps(tmp_path):
    """The GPU script parses, and a typo in a step stops it before any work starts (GPU
    time is too short to lose a call to a half-run command)."""
    assert subprocess.run(["bash", "-n", str(BENCHMARKS / "gpu_session.sh")]).returncode == 0
    bad = _gpu_session(tmp_path, "bogus")
    assert bad.returncode == 2 and "unknown step bogus" in bad.stderr
    assert _gpu_session(tmp_path, "wait").returncode != 0  # wait needs its SECONDS
    assert _gpu_session(tmp_path, "generate", "bogus").returncode == 2  # checked up front:
    assert not (tmp_path / "work" / "gen_pretrain.log").exists()  # nothing was started


def test_gpu_session_wait_reports_progress(tmp_path):
    done = _gpu_session(tmp_path, "wait", "0")
    assert done.returncode == 0, done.stderr
    assert "unlabelled: 0 files" in done.stdout and "labelled: 0/3" in done.stdout


def test_gpu_session_rehearsal_benchmarks_pretrains_and_packs(tmp_path):
    """The GPU recipe end to end on the CPU at tiny size, on jets already generated: the
    benchmark prints its table, pre-training runs detached on device batches and finishes,
    and the pack holds the checkpoint and the benchmark's JSON."""
    import tarfile

    from tests.fixtures_data import write_jetclass_file

    work = tmp_path / "work"
    write_jetclass_file(work / "pretrain" / "jets.root", 96, seed=21)
    write_jetclass_file(work / "data" / "val" / "jets.root", 32, seed=22)
    (work / "gen_labelled.log").write_text("LABELLED_DONE\n")  # what `generate` leaves
    (work / "gen_pretrain.pid").write_text("999999\n")
    out = tmp_path / "out"
    env = {"STEPS": "3", "BATCH": "16", "OUT": str(out)}
    run = _gpu_session(tmp_path, "bench", "pretrain", timeout=300, **env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "static/dynamic: model" in run.stdout  # the benchmark's table
    bench = json.loads((work / "bench_pretrain_step.json").read_text())
    assert bench["cases"] and all(r > 0 for r in bench["cases"][0]["ratios"].values())
    log = work / "pretrain.log"
    for _ in range(240):  # pre-training runs detached, as on the GPU machine
        if "PRETRAIN_EXIT" in log.read_text():
            break
        time.sleep(1)
    assert "PRETRAIN_EXIT 0" in log.read_text(), log.read_text()[-2000:]
    assert "jets-per-second" in log.read_text()
    pack = _gpu_session(tmp_path, "pack", **env)
    assert pack.returncode == 0, pack.stderr
    parts = sorted(out.glob("pack.tgz.part-*"))
    assert parts
    (tmp_path / "pack.tgz").write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(tmp_path / "pack.tgz") as tar:
        names = tar.getnames()
    assert "pack/checkpoint/model.safetensors" in names
    assert "pack/bench_pretrain_step.json" in names


def test_pretrain_step_variants_time_the_same_batches(run_all, tmp_path):
    """``bench_pretrain_step.py --variants``: every variant (precision, threads; truth
    objectives on) is timed on the same jets, and its ratio is against the first."""
    import sys

    sys.path.insert(0, str(BENCHMARKS))
    import bench_pretrain_step

    out = tmp_path / "variants.json"
    results = bench_pretrain_step.main([
        "--variants", "fp32@1,bf16@1", "--sizes", "tiny", "--batch-sizes", "16", "--jets", "200",
        "--rounds", "1", "--steps", "1", "--fixed-batches", "2", "--target", "flow",
        "--truth", "class=1,origin=0.5", "--out", str(out),
    ])  # fmt: skip
    assert json.loads(out.read_text())["cases"] == results["cases"]
    (case,) = results["cases"]
    assert case["baseline"] == "fp32@1" and case["ratio_vs_baseline"]["fp32@1"] == 1.0
    assert case["truth"] == {"class": 1.0, "origin": 0.5}
    assert all(math.isfinite(r) and r > 0 for r in _ratios(results))
    assert len(case["timed_batches"]) == 2 and case["compile_s"] == {}
    with pytest.raises(SystemExit, match="not one of"):
        bench_pretrain_step.parse_variants("fp16", 1)


def test_pthat_benchmark_compares_the_two_cuts_on_the_same_jets(run_all):
    """The containment-cut benchmark runs both rules and restores the generator's own."""
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    import bench_generate

    from jetfm.generation import processes

    rule = processes.pthat_min
    res = bench_generate.measure_pthat(["Tbqq"], n_jets=3, verbose=False)
    (row,) = res["rows"]
    assert row["pthat_plain"] == pytest.approx(270.0)
    assert row["pthat_containment"] == pytest.approx(0.9 * 172.5 / 0.4, abs=0.01)
    assert row["plain_jets_per_s"] > 0 and row["containment_jets_per_s"] > 0
    assert processes.pthat_min is rule
