"""The label-efficiency study script (studies/study_label_efficiency.py) end to end at a
tiny size: pretrained vs scratch fine-tuning, the BDT baseline, resume, summary and plot."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures_data import write_jetclass_file

SCRIPT = Path(__file__).resolve().parent.parent / "studies" / "study_label_efficiency.py"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("study_label_efficiency", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study_data")
    for i, (split, n) in enumerate((("train", 160), ("val", 60), ("test", 90))):
        write_jetclass_file(root / split / "jets.root", n, seed=80 + i, classes=("QCD", "Wqq"))
    return root


def test_study_runs_resumes_and_summarises(study, data, tmp_path):
    argv = ["--data", str(data), "--out", str(tmp_path), "--checkpoints",
            "flow=mpm-flow-tiny", "--labels", "40,120", "--seeds", "2",
            "--tasks", "tagging", "--extras", "bdt", "--min-steps", "4", "--max-steps", "4",
            "--evals", "1", "--batch-size", "32", "--freeze-fraction", "0.5",
            "--layer-lr-decay", "0.8", "--lr", "7e-4"]  # fmt: skip
    summary = study.main(argv)
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    # 2 seeds at 40 labels, 1 at 120; flow + scratch + bdt each
    assert len(rows) == 3 * 3
    assert {r["model"] for r in rows} == {"flow", "scratch", "bdt"}
    assert all(r["n_jets"] == 90 and 0.0 <= r["accuracy"] <= 1.0 for r in rows)
    assert all(r["freeze_fraction"] == 0.5 and r["layer_lr_decay"] == 0.8 and r["lr"] == 7e-4
               for r in rows if r["model"] != "bdt")  # fmt: skip
    cell = summary["main"]["tagging"]["scratch"]["40"]
    assert cell["n"] == 2 and cell["mean"] == pytest.approx(np.mean(cell["values"]))
    assert (tmp_path / "label_efficiency.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "lr_scan.png").exists()  # no --lrs grid, no scan plot
    assert "| flow |" in (tmp_path / "summary.md").read_text()
    # per-class recall and the confusion matrix: in every network row; recall averaged per
    # cell into its own table and plot
    for r in rows:
        if r["model"] != "bdt":
            assert set(r["recall"]) == {"QCD", "Wqq"}
            assert all(0 <= v <= 1 for v in r["recall"].values())
            assert np.sum(r["confusion_matrix"]) == r["n_jets"]
    recalls = json.loads((tmp_path / "recall_per_class.json").read_text())
    flow_40 = [r["recall"]["Wqq"] for r in rows if r["model"] == "flow" and r["labels"] == 40]
    wqq = recalls["main"]["tagging"]["40"]["flow"]["Wqq"]
    assert wqq["n"] == 2 and wqq["mean"] == pytest.approx(np.mean(flow_40))
    assert "recall per class" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "per_class_recall.png").read_bytes()[:4] == b"\x89PNG"

    # a second call finds every run done and only re-summarises
    before = (tmp_path / "results.jsonl").read_text()
    study.main(argv)
    assert (tmp_path / "results.jsonl").read_text() == before


def test_bdt_observables_have_physics_sense(study, data):
    x, y, names = study.jet_observables(str(data / "test"))
    assert names == ["QCD", "Wqq"] and x.shape[0] == len(y) == 90
    assert np.isfinite(x).all()
    mass, multiplicity = x[:, 0], x[:, 1]
    assert (mass >= 0).all() and (multiplicity >= 1).all()


def test_study_on_a_subset_of_classes(study, tmp_path):
    """--classes (the transfer study: top vs QCD) reaches both the networks and the BDT."""

    def add_empty_hbb(branches):
        return {**branches, "label_Hbb": np.zeros_like(branches["label_QCD"])}

    data = tmp_path / "data"
    for i, (split, n) in enumerate((("train", 80), ("val", 40), ("test", 60))):
        write_jetclass_file(data / split / "jets.root", n, seed=90 + i, mutate=add_empty_hbb)
    argv = ["--data", str(data), "--out", str(tmp_path / "out"), "--checkpoints", "s=tiny",
            "--labels", "40", "--seeds", "1", "--tasks", "tagging", "--extras", "bdt",
            "--classes", "QCD,Wqq", "--min-steps", "2", "--max-steps", "2", "--evals", "1",
            "--batch-size", "32", "--only", "scratch,bdt"]  # fmt: skip
    study.main(argv)
    rows = [json.loads(line) for line in (tmp_path / "out/results.jsonl").read_text().splitlines()]
    assert {r["model"] for r in rows} == {"scratch", "bdt"}
    assert all(r["n_jets"] == 60 for r in rows)
    x, y, names = study.jet_observables(str(data / "test"), ["QCD", "Wqq"])
    assert names == ["QCD", "Wqq"] and set(np.unique(y)) == {0, 1}


def test_study_skips_other_classes_of_mixed_files_when_asked(study, tmp_path):
    """--classes on files of every class: an error naming the file, or with
    --skip-other-classes the other classes' jets left out of training, test and the BDT."""
    from jetfm.errors import DataError

    data = tmp_path / "data"
    for i, (split, n) in enumerate((("train", 90), ("val", 45), ("test", 60))):
        write_jetclass_file(data / split / "jets.root", n, seed=95 + i,
                            classes=("QCD", "Wqq", "Hbb"))  # fmt: skip
    with pytest.raises(DataError, match=r"jets\.root: entry \d+ is of none of the classes"):
        study.jet_observables(str(data / "test"), ["QCD", "Wqq"])
    x, y, _ = study.jet_observables(str(data / "test"), ["QCD", "Wqq"], skip_other_classes=True)
    assert len(x) == len(y) == 40 and set(np.unique(y)) == {0, 1}  # 20 jets of each class
    argv = ["--data", str(data), "--out", str(tmp_path / "out"), "--checkpoints", "s=tiny",
            "--labels", "40", "--seeds", "1", "--tasks", "tagging", "--extras", "bdt",
            "--classes", "QCD,Wqq", "--skip-other-classes", "--min-steps", "2", "--max-steps",
            "2", "--evals", "1", "--batch-size", "32", "--only", "scratch,bdt"]  # fmt: skip
    study.main(argv)
    rows = [json.loads(line) for line in (tmp_path / "out/results.jsonl").read_text().splitlines()]
    assert {r["model"] for r in rows} == {"scratch", "bdt"}
    assert all(r["n_jets"] == 40 for r in rows)


def test_lr_grid_runs_every_lr_and_reports_the_validation_choice(study, data, tmp_path):
    """--lrs: each fine-tuning runs at every LR (the LR joins the key), and the summary cell
    is the LR with the best validation metric, not the best test metric."""
    argv = ["--data", str(data), "--out", str(tmp_path), "--checkpoints", "s=tiny",
            "--labels", "40", "--seeds", "1", "--tasks", "tagging", "--extras", "",
            "--lrs", "1e-3,3e-4", "--min-steps", "2", "--max-steps", "2", "--evals", "1",
            "--batch-size", "32", "--only", "scratch"]  # fmt: skip
    summary = study.main(argv)
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in rows) == ["main:scratch:tagging:40:0:lr0.0003",
                                              "main:scratch:tagging:40:0:lr0.001"]  # fmt: skip
    assert sorted(r["lr"] for r in rows) == [3e-4, 1e-3]
    cell = summary["main"]["tagging"]["scratch"]["40"]
    assert set(cell["lr_scan"]) == {"0.0003", "0.001"} and cell["lr"] in (3e-4, 1e-3)
    assert "(LR " in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "lr_scan.png").read_bytes()[:4] == b"\x89PNG"

    # the choice follows validation: the LR with the worse test score but better val wins
    def row(lr, val, test):
        return {"lr": lr, "val": {"accuracy": val}, "accuracy": test}

    chosen = study.select_lr([row(1e-3, 0.70, 0.60), row(1e-3, 0.72, 0.62),
                              row(2e-3, 0.65, 0.66), row(2e-3, 0.66, 0.67)], "accuracy")  # fmt: skip
    assert chosen["lr"] == 1e-3 and chosen["n"] == 2
    assert chosen["mean"] == pytest.approx(0.61)
    assert chosen["lr_scan"]["0.002"]["test"] == pytest.approx(0.665)
    # per-class recall averages only the seeds of the LR chosen on validation
    results = {f"{i}": {"study": "main", "task": "tagging", "labels": 40, "model": "m",
                        "recall": {"QCD": q}, **row(lr, val, 0.5)}
               for i, (lr, val, q) in enumerate([(1e-3, 0.7, 0.9), (2e-3, 0.6, 0.1)])}  # fmt: skip
    recalls = study.per_class_recall(results, study.summarise(results))
    assert recalls["main"]["tagging"]["40"]["m"]["QCD"]["values"] == [0.9]
    # a summary of rows without recall (or scan) removes what an earlier summary left there
    for row_ in results.values():
        row_.pop("recall"), row_.pop("lr")
    study.write_summary(tmp_path, results)
    assert not (tmp_path / "recall_per_class.json").exists()
    assert not (tmp_path / "per_class_recall.png").exists()
    assert not (tmp_path / "lr_scan.png").exists()
    assert (tmp_path / "label_efficiency.png").is_file()
    assert study.select_lr([row(1e-3, 0.7, 0.6)], "accuracy").keys() == {"mean", "std", "n",
                                                                         "values"}  # fmt: skip
    # one recipe: nothing chosen, but a mode other than full fine-tuning is still named
    only_probe = study.select_lr([row(None, 0.7, 0.6) | {"mode": "probe"}], "accuracy")
    assert only_probe["mode"] == "probe" and study.cell_recipe(only_probe) == " (probe)"


def test_modes_grid_runs_frozen_beside_full_and_chooses_on_validation(study, data, tmp_path):
    """--modes full,frozen: every main run also runs with a frozen encoder (the mode joins
    the key after the LR), and the summary picks LR and mode together on validation."""
    argv = ["--data", str(data), "--out", str(tmp_path), "--checkpoints", "s=tiny",
            "--labels", "40", "--seeds", "1", "--tasks", "tagging", "--extras", "",
            "--lrs", "1e-3", "--modes", "full,frozen,linear,probe", "--min-steps", "2",
            "--max-steps", "2", "--evals", "1", "--batch-size", "32", "--only", "scratch",
            "--keep-runs"]  # fmt: skip
    summary = study.main(argv)
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in rows) == ["main:scratch:tagging:40:0:lr0.001",
                                              "main:scratch:tagging:40:0:lr0.001:frozen",
                                              "main:scratch:tagging:40:0:lr0.001:linear",
                                              "main:scratch:tagging:40:0:probe"]  # fmt: skip
    assert sorted(r["mode"] for r in rows) == ["frozen", "full", "linear", "probe"]
    # the probe runs once per seed, whatever the LR grid: it has no LR, but its L2 strength
    probe = next(r for r in rows if r["mode"] == "probe")
    assert probe["lr"] is None and probe["steps"] is None
    assert probe["probe_c"] in (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)
    # the linear probe: a head without hidden layer, at 10x the grid's LR (recorded as run)
    linear = next(r for r in rows if r["mode"] == "linear")
    assert linear["lr"] == pytest.approx(1e-2)
    config = json.loads((tmp_path / "runs" / "main_scratch_tagging_40_0_lr0.001_linear"
                         / "config.json").read_text())  # fmt: skip
    assert config["head_hidden_size"] == 0
    assert set(summary["main"]["tagging"]["scratch"]["40"]["lr_scan"]) == {
        "0.001", "0.001 frozen", "0.01 linear", "probe"}  # fmt: skip
    assert (tmp_path / "lr_scan.png").read_bytes()[:4] == b"\x89PNG"

    def row(mode, val, test):
        return {"lr": 1e-3, "mode": mode, "val": {"accuracy": val}, "accuracy": test}

    # the frozen recipe wins on validation although full fine-tuning is better on test
    chosen = study.select_lr([row("full", 0.70, 0.80), row("frozen", 0.75, 0.60)], "accuracy")
    assert (chosen["lr"], chosen["mode"], chosen["mean"]) == (1e-3, "frozen", 0.60)
    probe = row("probe", 0.77, 0.65) | {"lr": None}
    picked = study.select_lr([row("full", 0.70, 0.80), probe], "accuracy")
    assert (picked["lr"], picked["mode"], picked["mean"]) == (None, "probe", 0.65)
    assert set(picked["lr_scan"]) == {"0.001", "probe"}
    assert study.cell_recipe(picked) == " (probe)"
    assert study.cell_recipe(chosen) == " (LR 0.001, frozen)"
    chosen = study.select_lr([row("full", 0.80, 0.80), row("frozen", 0.75, 0.60)], "accuracy")
    assert "mode" not in chosen and study.cell_recipe(chosen) == " (LR 0.001)"
    with pytest.raises(SystemExit, match="--modes"):
        study.main([*argv, "--modes", "full,lora"])


def test_recipes_are_compared_on_the_seeds_they_share(study):
    """The grid on seed 0, the other seeds at the recipe chosen there: the choice stays the
    seed-0 one although another recipe's single seed beats the chosen recipe's mean, and a
    tie goes to the recipe with more seeds; the cell holds all of the chosen recipe's seeds."""

    def row(lr, seed, val, test):
        return {"lr": lr, "seed": seed, "val": {"accuracy": val}, "accuracy": test}

    chosen = [row(1e-3, 0, 0.90, 0.80), row(1e-3, 1, 0.70, 0.70), row(1e-3, 2, 0.80, 0.75)]
    other = [row(2e-3, 0, 0.85, 0.90)]  # above the chosen recipe's 3-seed mean (0.80)
    cell = study.select_lr(chosen + other, "accuracy")
    assert (cell["lr"], cell["n"]) == (1e-3, 3) and cell["mean"] == pytest.approx(0.75)
    assert cell["lr_scan"]["0.001"]["val"] == pytest.approx(0.90)  # compared on seed 0
    tie = [row(2e-3, 0, 0.90, 0.90)]
    assert study.select_lr(chosen + tie, "accuracy")["lr"] == 1e-3
    # a complete grid: every seed counts
    full = [row(2e-3, 0, 0.85, 0.9), row(2e-3, 1, 0.85, 0.9), row(2e-3, 2, 0.85, 0.9)]
    assert study.select_lr(chosen + full, "accuracy")["lr"] == 2e-3


def test_only_selects_by_part_of_the_key_or_by_its_end(study):
    """--only: a text selects every key containing it; a trailing $ pins the key's end, so a
    fully fine-tuned run can be chosen without its frozen twin."""
    full = study.Run("main", "scratch", "tagging", 100, 1, 2e-3)
    frozen = study.Run("main", "scratch", "tagging", 100, 1, 2e-3, "frozen")
    assert full.key_matches("lr0.002") and frozen.key_matches("lr0.002")
    assert full.key_matches("main:scratch:tagging:100:1:lr0.002$")
    assert not frozen.key_matches("main:scratch:tagging:100:1:lr0.002$")
    assert frozen.key_matches(":frozen$") and not full.key_matches("tagging:1000:")


@pytest.mark.parametrize("bad", ["1e-3,abc", "0,1e-3", "-1e-3", ","])
def test_lr_grid_rejects_bad_values_before_any_run(study, tmp_path, bad):
    with pytest.raises(SystemExit, match="--lrs"):
        study.main(["--data", str(tmp_path), "--out", str(tmp_path / "o"), f"--lrs={bad}"])
    assert not (tmp_path / "o" / "results.jsonl").exists()
