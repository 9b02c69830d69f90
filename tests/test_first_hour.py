"""What a new user meets in their first hour, without silent mistakes: the classes a tagger
learns, the checkpoint early stopping restores, saving and re-fine-tuning any checkpoint,
where evaluation writes, a damaged feature cache, curves of every run, no leftover
``checkpoint-*`` folders."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import uproot

from jetfm.cli import main
from jetfm.defaults import FINETUNE_FREEZE_FRACTION, FINETUNE_RAMP_FRACTION
from jetfm.errors import DataError
from jetfm.finetuning import backbone_ramp_end, finetune
from tests.fixtures_data import write_jetclass_file

ALL_CLASSES = ("QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl")
FAST = dict(batch_size=32, max_steps=6, evals_per_run=2, early_stopping_patience=None)


def _with_empty_label_branches(branches: dict) -> dict:
    """Every JetClass label branch, as ``jetfm generate --classes QCD,Tbqq`` writes them: the
    classes not generated hold no jet."""
    n = len(branches["label_QCD"])
    for name in ALL_CLASSES:
        branches.setdefault(f"label_{name}", np.zeros(n, bool))
    return branches


@pytest.fixture(scope="module")
def two_class_files(tmp_path_factory):
    """QCD + Tbqq jets in files that carry all ten label branches."""
    base = tmp_path_factory.mktemp("two_class")
    kw = dict(classes=("QCD", "Tbqq"), mutate=_with_empty_label_branches)
    train = write_jetclass_file(base / "train.root", 192, seed=61, **kw)
    val = write_jetclass_file(base / "val.root", 96, seed=62, **kw)
    return train, val


def test_tagger_learns_only_the_classes_with_training_jets(two_class_files, tmp_path, caplog):
    train, val = two_class_files
    assert len(uproot.open(train)["tree"].keys(filter_name="label_*")) == 10
    with caplog.at_level(logging.INFO, logger="jetfm"):
        result = finetune("mpm-flow-tiny", "tagging", train, val, tmp_path / "tagger", **FAST)
    assert list(result.model.config.id2label.values()) == ["QCD", "Tbqq"]
    assert "training classes (jets): QCD 96, Tbqq 96" in caplog.text
    assert "Hbb" in caplog.text  # the empty branches are named as not learnt
    # prediction writes one score per learnt class
    out = tmp_path / "pred"
    assert main(["predict", "--model", str(tmp_path / "tagger"), "--data", str(val),
                 "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    written = uproot.open(next(out.glob("*.root")))
    scores = sorted(written[written.keys()[0]].keys(filter_name="score_*"))
    assert scores == ["score_QCD", "score_Tbqq"]


def test_a_validation_class_without_training_jets_is_an_error(two_class_files, tmp_path):
    train, _ = two_class_files
    val = write_jetclass_file(tmp_path / "val.root", 90, seed=63, classes=("QCD", "Tbqq", "Wqq"))
    with pytest.raises(DataError, match=r"validation files .* no training jets: Wqq 30"):
        finetune("mpm-flow-tiny", "tagging", train, val, tmp_path / "tagger", **FAST)


def test_chosen_classes_must_have_training_jets(two_class_files, tmp_path):
    train, val = two_class_files
    with pytest.raises(DataError, match=r"classes \['Hbb'\] have no jets in the training files"):
        finetune("mpm-flow-tiny", "tagging", train, val, tmp_path / "t", classes=["QCD", "Hbb"],
                 **FAST)  # fmt: skip


def test_frozen_and_ramp_evaluations_are_never_the_restored_best(two_class_files, tmp_path):
    """``full`` mode: no validation pass (so no "best" checkpoint, no early-stopping count)
    before the backbone has reached its learning rate."""
    train, val = two_class_files
    result = finetune("mpm-flow-tiny", "tagging", train, val, tmp_path / "full",
                      batch_size=32, max_steps=40, evals_per_run=10,
                      early_stopping_patience=1)  # fmt: skip
    state = result.trainer.state
    hold = backbone_ramp_end(40, FINETUNE_FREEZE_FRACTION, FINETUNE_RAMP_FRACTION)
    assert hold == 4 + 12  # 10 % frozen, then a ramp over 30 % of the steps
    eval_steps = [h["step"] for h in state.log_history if "eval_loss" in h]
    assert eval_steps and min(eval_steps) >= hold
    best_step = int(Path(state.best_model_checkpoint).name.split("-")[1])
    assert best_step >= hold
    saved = json.loads((tmp_path / "full" / "finetune_metrics.json").read_text())
    assert saved["best_step"] == best_step and saved["max_steps"] == 40
    assert saved["stopped_early"] == (saved["steps"] < 40)


def test_early_stop_and_restored_step_are_logged(two_class_files, tmp_path, caplog):
    train, val = two_class_files
    with caplog.at_level(logging.INFO, logger="jetfm"):
        finetune("mpm-flow-tiny", "tagging", train, val, tmp_path / "t", mode="frozen",
                 batch_size=32, max_steps=60, evals_per_run=20, lr=1e-6,
                 early_stopping_patience=1)  # fmt: skip
    assert "restored the best checkpoint: step" in caplog.text
    assert "early stopping at step" in caplog.text


def test_a_saved_backbone_keeps_its_statistics_and_fine_tunes(two_class_files, tmp_path):
    from jetfm import JetFM

    model = JetFM.from_pretrained("mpm-flow-tiny")
    model.save_pretrained(tmp_path / "backbone")
    shipped = json.loads(
        (Path(__file__).parents[1] / "model_cards/mpm-flow-tiny/preprocessor_config.json")
        .read_text()
    )  # fmt: skip
    assert json.loads((tmp_path / "backbone/preprocessor_config.json").read_text()) == shipped
    train, val = two_class_files
    result = finetune(str(tmp_path / "backbone"), "tagging", train, val, tmp_path / "t", **FAST)
    assert result.model.config.num_labels == 2


def test_any_checkpoint_fine_tunes_again_with_a_new_head(two_class_files, tmp_path, caplog, capfd):
    """A 3-class tagger re-fine-tuned on 2 classes, and as a track-ID model: its backbone
    is kept, a new head built, one log line says so."""
    import torch

    base = tmp_path / "data3"
    classes = ("QCD", "Wqq", "Tbqq")
    train3 = write_jetclass_file(base / "train.root", 96, seed=71, classes=classes)
    val3 = write_jetclass_file(base / "val.root", 48, seed=72, classes=classes)
    first = finetune("mpm-flow-tiny", "tagging", train3, val3, tmp_path / "tagger3", **FAST)
    backbone = {k: v.clone() for k, v in first.model.jetfm.state_dict().items()}
    train, val = two_class_files
    with caplog.at_level(logging.INFO, logger="jetfm"):
        second = finetune(str(tmp_path / "tagger3"), "tagging", train, val, tmp_path / "tagger2",
                          **{**FAST, "max_steps": 1, "lr": 1e-12})  # fmt: skip
    assert second.model.config.num_labels == 2
    assert "is a tagging model: its backbone is kept and a new tagging head of 2 classes" in (
        caplog.text
    )
    for name, value in second.model.jetfm.state_dict().items():
        torch.testing.assert_close(value, backbone[name], atol=1e-6, rtol=0)
    third = finetune(str(tmp_path / "tagger3"), "track-id", train, val, tmp_path / "tracks",
                     **FAST)  # fmt: skip
    assert type(third.model).__name__ == "JetFMForTrackID"
    # the new heads are one log line each, not transformers' table of missing weights
    printed = "".join(capfd.readouterr())
    assert "LOAD REPORT" not in printed and "MISSING" not in printed


def test_evaluate_writes_its_metrics_where_it_says(two_class_files, tmp_path, monkeypatch, capsys):
    train, val = two_class_files
    finetune("mpm-flow-tiny", "tagging", train, val, tmp_path / "tagger", **FAST)
    monkeypatch.chdir(tmp_path)
    plots = tmp_path / "tagger" / "plots"
    assert main(["evaluate", "--model", "tagger", "--data", str(val), "--plots", str(plots),
                 "--no-progress"]) == 0  # fmt: skip
    assert not (tmp_path / "metrics.json").exists()
    assert (plots / "metrics.json").is_file()
    assert f"wrote {plots / 'metrics.json'}" in capsys.readouterr().out
    # without --plots: in the model's folder; another data set's metrics are not replaced
    assert main(["evaluate", "--model", "tagger", "--data", str(val), "--no-progress"]) == 0
    first = tmp_path / "tagger" / "evaluation" / "metrics.json"
    assert json.loads(first.read_text())["data"] == str(val)
    assert main(["evaluate", "--model", "tagger", "--data", str(train), "--no-progress"]) == 0
    second = tmp_path / "tagger" / "evaluation" / "metrics-2.json"
    assert json.loads(first.read_text())["data"] == str(val)
    assert json.loads(second.read_text())["data"] == str(train)


def test_runs_write_curves_and_drop_their_intermediate_checkpoints(
    two_class_files, tmp_path, capsys
):
    train, val = two_class_files
    finetune("mpm-flow-tiny", "tagging", train, val, tmp_path / "t", **FAST)
    out = tmp_path / "t"
    assert not list(out.glob("checkpoint-*"))
    header = (out / "training_log.csv").read_text().splitlines()[0].split(",")
    assert {"step", "loss", "learning_rate", "eval_loss", "eval_accuracy"} <= set(header)
    png = (out / "training_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    printed = capsys.readouterr().out
    assert "{'loss'" not in printed and "step 6/6" in printed
    finetune("mpm-flow-tiny", "tagging", train, val, tmp_path / "kept", keep_checkpoints=True,
             **FAST)  # fmt: skip
    assert list((tmp_path / "kept").glob("checkpoint-*"))


def test_a_damaged_feature_cache_is_rebuilt(jetclass_file, tmp_path, caplog):
    from jetfm.data import JetProcessor
    from jetfm.data.feature_cache import FEATURES_FILE, cached_features

    processor = JetProcessor().fit(jetclass_file, progress=False)
    first = cached_features(jetclass_file, processor, tmp_path / "cache")
    file = tmp_path / "cache" / FEATURES_FILE
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 3])  # a copy cut short
    with caplog.at_level(logging.WARNING):
        again = cached_features(jetclass_file, processor, tmp_path / "cache")
    assert "unreadable" in caplog.text and "rebuilding" in caplog.text
    assert not again.reused and np.array_equal(again.counts, first.counts)
    assert cached_features(jetclass_file, processor, tmp_path / "cache").reused
