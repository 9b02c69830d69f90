"""The per-format examples at tiny sizes: top-tagging-layout HDF5 and JetClass-II-like
parquet, fine-tuned from the shipped tiny checkpoint on files the tests write."""

from __future__ import annotations

import awkward as ak
import h5py
import numpy as np

from tests.fixtures_data import generate_jets, write_jetclass_file
from tests.fixtures_formats import write_parquet
from tests.test_examples import example


def test_example_top_tagging_hdf5_from_demo_files(tmp_path):
    """ROOT demo input (QCD, Tbqq) → top-tagging HDF5 → fine-tuned on the four-vectors only
    → metrics → predictions aligned row by row with the test file."""
    demo = tmp_path / "demo"
    for i, (split, n) in enumerate((("train", 160), ("val", 60), ("test", 80))):
        write_jetclass_file(demo / split / "jets.root", n, seed=70 + i, classes=("QCD", "Tbqq"))
    out = tmp_path / "run"
    result = example("finetune_top_tagging_hdf5").main(
        ["--demo-from", str(demo), "--output", str(out), "--model", "mpm-flow-tiny",
         "--max-steps", "4"]
    )  # fmt: skip
    with h5py.File(out / "files" / "test.h5", "r") as f:
        assert set(f) == {"Pmu", "is_signal"} and f["Pmu"].shape == (80, 200, 4)
        labels = f["is_signal"][:]
    # the checkpoint knows more groups; the files have four-vectors only
    info = result["result"].model.config.finetuning
    assert info["feature_groups"] == ["kinematics"]
    assert set(result["metrics"]["auc_per_class"]) == {"QCD", "Tbqq"}
    (pred,) = result["predictions"]
    with h5py.File(pred, "r") as f:
        scores = np.stack([f["score_QCD"][:], f["score_Tbqq"][:]], axis=1)
    assert scores.shape == (80, 2) and len(labels) == 80
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)


def test_example_jetclass2_parquet_on_written_files(tmp_path):
    """Jagged parquet with particle ID, tracks and a jet_label column → every group used."""
    classes = ("QCD", "Hbb", "Wqq")
    for i, (split, n) in enumerate((("train", 150), ("val", 60), ("test", 60))):
        branches = generate_jets(n, seed=80 + i, classes=classes, with_truth=False)
        onehot = np.stack([np.asarray(branches.pop(f"label_{c}")) for c in classes], axis=1)
        branches["jet_label"] = onehot.argmax(axis=1).astype(np.int32)
        (tmp_path / split).mkdir()
        write_parquet(branches, tmp_path / split / "jets.parquet", row_group_size=64)
    out = tmp_path / "run"
    result = example("finetune_jetclass2_parquet").main(
        ["--files", str(tmp_path / "{split}" / "*.parquet"), "--output", str(out),
         "--model", "mpm-flow-tiny", "--max-steps", "4"]
    )  # fmt: skip
    assert result["config"]["finetuning"]["feature_groups"] == ["kinematics", "pid", "tracks"]
    assert set(result["metrics"]["auc_per_class"]) == set(classes)
    (pred,) = result["predictions"]
    table = ak.from_parquet(pred)
    assert len(table) == 60 and {f"score_{c}" for c in classes} <= set(table.fields)
    assert (tmp_path / "run" / "stats" / "preprocessor_config.json").is_file()


def test_example_quark_gluon_npz_writes_and_fine_tunes(tmp_path):
    """EnergyFlow-layout .npz (pT, y, φ, PDG id) → the qg-npz layout, no mapping file → the
    PDG ids feed particle ID → metrics for gluon/quark → HDF5 predictions, one row per jet."""
    out = tmp_path / "run"
    result = example("finetune_quark_gluon_npz").main(
        ["--output", str(out), "--model", "mpm-flow-tiny", "--max-steps", "4", "--jets", "80"]
    )
    assert result["result"].model.config.finetuning["feature_groups"] == ["kinematics", "pid"]
    assert set(result["metrics"]["auc_per_class"]) == {"gluon", "quark"}
    (pred,) = result["predictions"]
    assert pred.endswith("QG_jets_test.h5")
    with h5py.File(pred, "r") as f:
        scores = np.stack([f["score_gluon"][:], f["score_quark"][:]], axis=1)
    assert scores.shape == (20, 2)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
