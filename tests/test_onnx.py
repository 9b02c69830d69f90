"""ONNX export of fine-tuned heads: onnxruntime matches torch on batches of other sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from jetfm.cli import main  # noqa: E402
from jetfm.data import JetDataset, dataset_to_batch  # noqa: E402
from jetfm.finetuning import finetune  # noqa: E402
from jetfm.loading import input_groups, load_checkpoint  # noqa: E402
from jetfm.onnx_export import export_onnx, run_onnx  # noqa: E402


@pytest.fixture(scope="module", params=["tagging", "track-id", "vertexing"])
def tuned(request, jetclass_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / request.param
    finetune("tiny", request.param, jetclass_file, jetclass_file, out, max_steps=2,
             batch_size=16, early_stopping_patience=None, evals_per_run=1)  # fmt: skip
    return out, request.param


def _real_batch(model_dir, path, n_jets):
    loaded = load_checkpoint(model_dir, device="cpu")
    model, processor = loaded.model, loaded.processor
    groups = input_groups(model, processor)
    data = JetDataset(path, processor, targets=(), feature_groups=groups)
    batch = dataset_to_batch(data, targets=(), indices=np.arange(n_jets))
    return model.eval(), {k: batch[k] for k in [*groups, "mask"]}


def test_onnxruntime_matches_torch(tuned, jetclass_file, tmp_path):
    model_dir, task = tuned
    path = export_onnx(model_dir, tmp_path / "model.onnx")
    graph = onnx.load(path)
    meta = {p.key: p.value for p in graph.metadata_props}
    assert meta["jetfm_task"] == task
    assert json.loads(meta["feature_groups"]) == ["kinematics", "pid", "tracks"]
    # real jets; batch size and particle count differ from the export example (2 × 12)
    for n_jets in (7, 1):
        model, inputs = _real_batch(model_dir, jetclass_file, n_jets)
        with torch.no_grad():
            expected = model(**inputs).logits.numpy()
        got = run_onnx(path, inputs)
        assert got.shape == expected.shape
        assert inputs["mask"].shape[1] != 12
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_export_onnx_cli(jetclass_file, tmp_path, capsys):
    out = tmp_path / "tagger"
    finetune("tiny", "tagging", jetclass_file, jetclass_file, out, max_steps=1, batch_size=16,
             early_stopping_patience=None, evals_per_run=1)  # fmt: skip
    assert main(["export-onnx", str(out), str(tmp_path / "t.onnx")]) == 0
    assert "onnxruntime matches torch" in capsys.readouterr().out
    # not a fine-tuned head: a clear error, not a traceback
    assert main(["export-onnx", str(tmp_path / "missing"), str(tmp_path / "x.onnx")]) == 2
    assert "config.json" in capsys.readouterr().err
