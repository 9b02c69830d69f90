"""The frozen-backbone monitor of the test bed (studies/foundation/probe_testbed.py): the
regularisation chosen on validation, the zero-shot cut set on validation, and a whole run
over a test bed of real Pythia jets with a truth-pre-trained checkpoint."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

STUDIES = Path(__file__).resolve().parent.parent / "studies" / "foundation"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, STUDIES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def probe_script():
    return _load("probe_testbed")


def test_probe_fits_on_the_labelled_draw_and_chooses_c_on_validation(probe_script):
    rng = np.random.default_rng(0)

    def split(n):  # class 1 is shifted along the first feature; 20 noise features
        y = rng.integers(0, 2, n)
        x = rng.normal(size=(n, 21))
        x[:, 0] += 3 * y
        return x, y

    parts = {s: split(n) for s, n in (("train", 2000), ("val", 500), ("test", 1000))}
    x = {s: v[0] for s, v in parts.items()}
    y = {s: v[1] for s, v in parts.items()}
    row = probe_script.probe(x, y, labels=200, seed=1)
    assert row["C"] in probe_script.C_GRID
    assert row["val"] > 0.9 and row["accuracy"] > 0.9
    # labels the probe never saw: shuffled training labels leave it at chance
    y_bad = dict(y, train=rng.permutation(y["train"]))
    assert probe_script.probe(x, y_bad, labels=200, seed=1)["accuracy"] < 0.65


def test_zero_shot_cut_is_set_on_validation(probe_script):
    # every score is above 0.5 (the pre-training mixture's prior), the classes split at 0.8
    rng = np.random.default_rng(1)
    y = {s: rng.integers(0, 2, 400) for s in ("val", "test")}
    scores = {s: np.where(y[s] == 1, rng.uniform(0.81, 1.0, 400), rng.uniform(0.6, 0.79, 400))
              for s in y}  # fmt: skip
    row = probe_script.zero_shot_row("top", "m", scores, y)
    assert 0.79 <= row["cut"] <= 0.81
    assert row["accuracy"] == 1.0 and row["auc"] == 1.0
    assert np.mean((scores["test"] > 0.5) == y["test"]) < 0.6  # a fixed cut would fail


def test_probe_run_on_a_pythia_test_bed_with_a_truth_checkpoint(probe_script, pythia_dir, tmp_path):
    from jetfm.pretraining import pretrain

    testbed = _load("prepare_testbed")
    testbed.prepare(pythia_dir, tmp_path / "bed" / "qg", "qg", train=80, val=30, min_test=40)
    run = tmp_path / "truth"
    pretrain(data=str(pythia_dir / "*.root"), output_dir=str(run), size="tiny",
             target="regression", max_steps=3, batch_size=32, save_steps=3, truth="class=1",
             seed=0)  # fmt: skip
    # the gluon class held out of the class supervision: probed, but it has no zero-shot score
    held_out = tmp_path / "no_gluon"
    pretrain(data=str(pythia_dir / "*.root"), output_dir=str(held_out), size="tiny",
             target="regression", max_steps=3, batch_size=32, save_steps=3, truth="class=1",
             supervised_classes="QCD_light,QCD_heavy,Wqq", seed=0)  # fmt: skip
    out = tmp_path / "probe.jsonl"
    probe_script.main(["--testbed", str(tmp_path / "bed"), "--tasks", "qg", "--labels", "40",
                       "--seeds", "2", "--checkpoints", f"truth={run},random,held={held_out}",
                       "--out", str(out)])  # fmt: skip
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    probes = [r for r in rows if r["kind"] == "probe"]
    assert sorted((r["model"], r["seed"]) for r in probes) == [
        ("held", 0), ("held", 1), ("random", 0), ("random", 1), ("truth", 0), ("truth", 1)]  # fmt: skip
    assert all(0 <= r["accuracy"] <= 1 and r["labels"] == 40 for r in probes)
    # the class head scores gluon against light + heavy QCD; a random backbone has no head
    (zero_shot,) = [r for r in rows if r["kind"] == "zero-shot"]
    assert zero_shot["model"] == "truth" and 0 <= zero_shot["auc"] <= 1
