"""``mode="probe"``: a linear tagging head fitted as a logistic regression on the frozen
backbone — the fit folds its standardisation correctly, the backbone stays untouched, the
L2 strength is chosen on validation, the checkpoint is a plain tagger that separates W from
QCD jets, and bad requests fail clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from jetfm.cli import main
from jetfm.errors import JetFMError
from jetfm.evaluation import evaluate_checkpoint
from jetfm.finetuning import finetune, load_model_for_task
from jetfm.probing import PROBE_C_GRID, fit_logistic
from tests.fixtures_data import write_jetclass_file


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("probe_data")
    train = write_jetclass_file(base / "train.root", 400, seed=31)
    val = write_jetclass_file(base / "val.root", 200, seed=32)
    return train, val


def _blobs(n: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs in 6 dimensions with very different feature scales."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(size=(n, 6)) + 1.5 * np.eye(classes, 6)[y]
    return x * np.array([1e-3, 1.0, 50.0, 1.0, 7.0, 1.0]) + 3.0, y


@pytest.mark.parametrize("classes", [2, 3])
def test_folded_weights_reproduce_the_regression(classes):
    """softmax(W x + b) on the raw features equals scikit-learn's probabilities on the
    standardised ones: the standardisation is folded into the layer exactly."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = _blobs(600, classes, seed=1)
    xv, yv = _blobs(300, classes, seed=2)
    fit = fit_logistic(x, y, xv, yv, classes)
    assert fit.weight.shape == (classes, 6) and fit.bias.shape == (classes,)
    assert fit.c in PROBE_C_GRID and set(fit.val_loss) == set(PROBE_C_GRID)
    assert fit.val_loss[fit.c] == min(fit.val_loss.values())
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=fit.c, max_iter=5000).fit(scaler.transform(x), y)
    logits = torch.as_tensor(xv @ fit.weight.T + fit.bias)
    np.testing.assert_allclose(logits.softmax(-1).numpy(),
                               clf.predict_proba(scaler.transform(xv)), atol=1e-8)  # fmt: skip
    assert np.mean(logits.argmax(-1).numpy() == yv) > 0.7  # well separated blobs


def test_a_class_without_training_jets_is_named():
    x, y = _blobs(100, 2, seed=3)
    with pytest.raises(JetFMError, match="no training jet of class Hbb"):
        fit_logistic(x, y, x, y, 3, class_names=["QCD", "Wqq", "Hbb"])


def test_probe_fits_the_head_and_leaves_the_backbone(files, tmp_path):
    """A probe on a (random) tiny backbone: only the linear head changes, the fit is
    deterministic, and the saved tagger separates W from QCD jets on its own."""
    train, val = files
    before = load_model_for_task("tiny", "tagging", label_names=["QCD", "Wqq"], seed=0,
                                 head_hidden_size=0)  # fmt: skip
    runs = []
    for name in ("a", "b"):
        runs.append(finetune("tiny", "tagging", train, val, tmp_path / name, mode="probe",
                             from_scratch=True, seed=0, disable_tqdm=True))  # fmt: skip
    result = runs[0]
    saved = load_file(tmp_path / "a" / "model.safetensors")
    for name, value in before.jetfm.state_dict().items():  # pooling included
        assert torch.equal(value, saved[f"jetfm.{name}"]), name
    assert set(k for k in saved if not k.startswith("jetfm.")) == {
        "classifier.net.1.weight", "classifier.net.1.bias"}  # fmt: skip
    again = load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(saved[k], again[k]) for k in saved)  # no seed dependence

    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["head_hidden_size"] == 0
    assert config["finetuning"]["mode"] == "probe"
    record = config["finetuning"]["probe"]
    assert record["c"] in PROBE_C_GRID and record["train_jets"] == 400
    assert result.metrics["mode"] == "probe" and result.metrics["probe"] == record
    # the W mass peak makes the classes separable even through a random backbone
    assert result.metrics["accuracy"] > 0.7, result.metrics
    metrics = evaluate_checkpoint(tmp_path / "a", val, progress=False)
    assert metrics["accuracy"] == pytest.approx(result.metrics["accuracy"], abs=1e-6)
    card = (tmp_path / "a" / "README.md").read_text()
    assert "logistic regression on the frozen backbone" in card


def test_probe_cli_and_clear_errors(files, tmp_path, capsys):
    train, val = files
    out = tmp_path / "cli"
    code = main(["finetune", "--model", "tiny", "--task", "tagging", "--train", str(train),
                 "--val", str(val), "--output", str(out), "--mode", "probe",
                 "--max-train-jets", "200"])  # fmt: skip
    assert code == 0
    assert json.loads((out / "finetune_metrics.json").read_text())["probe"]["train_jets"] == 200
    with pytest.raises(JetFMError, match="tasks tagging, cwola, not 'track-id'"):
        finetune("tiny", "track-id", train, val, tmp_path / "t", mode="probe")
    with pytest.raises(JetFMError, match="head_hidden_size must be 0, not 64"):
        finetune("tiny", "tagging", train, val, tmp_path / "h", mode="probe",
                 config_overrides={"head_hidden_size": 64})  # fmt: skip


def test_probe_learns_signal_from_cwola_mixtures(tmp_path):
    """Weak supervision by a probe: fitted on the mixture index, it finds the Wqq signal
    (the true labels only score it)."""
    classes = ("QCD", "Wqq")
    train = write_jetclass_file(tmp_path / "train.root", 600, seed=33, classes=classes)
    val = write_jetclass_file(tmp_path / "val.root", 300, seed=34, classes=classes)
    result = finetune("tiny", "cwola", train, val, tmp_path / "cwola", mode="probe", seed=0,
                      signal="Wqq", background="QCD", fractions=(0.8, 0.2), disable_tqdm=True)  # fmt: skip
    assert result.metrics["mode"] == "probe"
    assert result.metrics["true_auc"] > 0.75, result.metrics


def test_default_mode_and_warning_follow_the_pooling(files, tmp_path, caplog):
    """A checkpoint pre-trained with a jet-class objective has a trained pooling: the
    quickstart probes it; a pure-MPM one gets the frozen mode, and a probe of it a warning."""
    from jetfm.finetuning import config_for_finetuning, resolve_model
    from jetfm.probing import default_tagging_mode

    def mode_of(name):
        return default_tagging_mode(config_for_finetuning(resolve_model(name)))

    assert mode_of("mpm-truth-det-base") == "probe"
    assert mode_of("mpm-flow-tiny") == "frozen"
    train, val = files
    with caplog.at_level("WARNING", logger="jetfm.finetuning"):
        finetune("mpm-flow-tiny", "tagging", train, val, tmp_path / "p", mode="probe",
                 max_train_jets=100, disable_tqdm=True)  # fmt: skip
    assert "pooling was never trained" in caplog.text
