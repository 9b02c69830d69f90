"""The task registry (:mod:`jetfm.tasks`), the checkpoint loader (:mod:`jetfm.loading`) and
the runner (:mod:`jetfm.runner`): one spelling per task, one way to load a head with what it
needs, one way to run it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from jetfm.configuration import JetFMConfig
from jetfm.data import JetCollator, JetDataset, JetProcessor, dataset_to_batch
from jetfm.data.schema import IGNORE_INDEX
from jetfm.errors import CheckpointError, JetFMError
from jetfm.loading import load_checkpoint
from jetfm.modeling import JetFMModel
from jetfm.modeling.heads import JetFMForJetTagging, JetFMForTrackID, JetFMForVertexFinding
from jetfm.runner import JetRunner, run_dataset
from jetfm.tasks import HEAD_NAMES, TASK_NAMES, TASKS, get_task, task_of_model

COMMON = dict(layer_scale_init=1.0, initializer_range=0.2)


@pytest.fixture(scope="module")
def processor(jetclass_file) -> JetProcessor:
    return JetProcessor(max_particles=32).fit([jetclass_file], progress=False)


@pytest.fixture(scope="module")
def heads(tmp_path_factory, processor) -> dict[str, Path]:
    """A saved, untrained tiny head per task head class, with its processor."""
    base = tmp_path_factory.mktemp("heads")
    torch.manual_seed(0)
    tag = JetFMConfig.from_preset("tiny", num_labels=processor.num_labels, **COMMON)
    out = {}
    for name, model in (
        ("tagging", JetFMForJetTagging(tag)),
        ("track-id", JetFMForTrackID(JetFMConfig.from_preset("tiny", **COMMON))),
        ("vertexing", JetFMForVertexFinding(JetFMConfig.from_preset("tiny", **COMMON))),
    ):
        model.save_pretrained(base / name)
        processor.save_pretrained(base / name)
        out[name] = base / name
    return out


# --- the registry ----------------------------------------------------------------------------
def test_every_task_names_a_real_head_and_the_cli_offers_exactly_the_registry():
    import jetfm.modeling.heads as heads_module
    from jetfm.cli import build_parser

    for task in TASKS.values():
        assert task.head_class is getattr(heads_module, task.head)
        assert task.label in task.labels_read
    assert set(HEAD_NAMES) == {t.head for t in TASKS.values()}
    parser = build_parser()
    finetune = parser._subparsers._group_actions[0].choices["finetune"]
    choices = next(a.choices for a in finetune._actions if a.dest == "task")
    assert tuple(choices) == TASK_NAMES
    with pytest.raises(JetFMError, match="track-id"):
        get_task("track_id")  # one spelling


def test_output_branches_follow_the_task():
    assert get_task("tagging").output_branches(["QCD", "b->c"]) == ["score_QCD", "score_b_to_c"]
    track = get_task("track-id").output_branches()
    assert track[-1] == "part_pred_origin" and "part_prob_b_to_c" in track
    assert get_task("vertexing").output_branches() == ["part_pred_vtx"]
    assert get_task("vertexing").onnx_axes == {0: "batch", 1: "particles", 2: "particles"}


def test_a_head_knows_its_task_from_its_fine_tuning_record():
    model = JetFMForJetTagging(JetFMConfig.from_preset("tiny", num_labels=2))
    assert task_of_model(model).name == "tagging"  # the head's default task
    model.config.finetuning = {"task": "cwola"}
    assert task_of_model(model).name == "cwola"
    with pytest.raises(JetFMError, match="not a fine-tuned task head"):
        task_of_model(JetFMModel(JetFMConfig.from_preset("tiny")))


def test_a_lora_wrapped_head_keeps_its_task():
    from jetfm.finetuning import apply_mode

    pytest.importorskip("peft")
    model = JetFMForJetTagging(JetFMConfig.from_preset("tiny", num_labels=2))
    model.config.finetuning = {"task": "cwola"}
    assert task_of_model(apply_mode(model, "lora")).name == "cwola"


# --- the loader ------------------------------------------------------------------------------
def test_load_checkpoint_returns_the_head_its_processor_task_and_folder(heads, processor):
    for name, folder in heads.items():
        loaded = load_checkpoint(folder, device="cpu")
        assert loaded.task.name == name
        assert type(loaded.model).__name__ == loaded.task.head
        assert not loaded.model.training
        assert loaded.folder == folder
        assert loaded.processor.to_dict() == processor.to_dict()


def test_a_backbone_is_not_a_task_head(tmp_path, processor):
    JetFMModel(JetFMConfig.from_preset("tiny")).save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=r"config\.json.*jetfm finetune"):
        load_checkpoint(tmp_path)


def test_a_head_without_its_processor_is_refused(tmp_path, heads):
    import shutil

    folder = shutil.copytree(heads["tagging"], tmp_path / "tagger")
    (folder / "preprocessor_config.json").unlink()
    with pytest.raises(CheckpointError, match=r"tagger.*preprocessor_config\.json"):
        load_checkpoint(folder)


def test_a_config_field_of_the_wrong_type_names_file_field_and_type(tmp_path, heads):
    import shutil

    folder = shutil.copytree(heads["tagging"], tmp_path / "tagger")
    config = json.loads((folder / "config.json").read_text())
    config["hidden_size"] = "big"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(folder)
    message = str(err.value)
    assert str(folder / "config.json") in message
    assert "hidden_size" in message and "int" in message and "'big'" in message


# --- the runner ------------------------------------------------------------------------------
def _batch(folder: Path, path, n: int = 24) -> dict:
    loaded = load_checkpoint(folder, device="cpu")
    data = JetDataset(path, loaded.processor, targets=())
    return dataset_to_batch(data, targets=(), indices=np.arange(n))


def test_runner_outputs_are_the_heads_own(heads, jetclass_file):
    batch = _batch(heads["tagging"], jetclass_file)
    inputs = {k: v for k, v in batch.items() if k in ("kinematics", "pid", "tracks", "mask")}

    tagger = load_checkpoint(heads["tagging"], device="cpu").model
    with torch.no_grad():
        expected = tagger(**inputs).logits
    torch.testing.assert_close(JetRunner(tagger)(batch)["logits"], expected)

    track = load_checkpoint(heads["track-id"], device="cpu").model
    out = JetRunner(track)(batch)
    charged = batch["mask"] & (batch["pid"][..., 0] != 0)
    assert torch.equal(out["tracks"], charged)  # neutrals are not scored
    with torch.no_grad():
        torch.testing.assert_close(out["logits"], track(**inputs).logits)

    vertexer = load_checkpoint(heads["vertexing"], device="cpu").model
    out = JetRunner(vertexer, vertex_threshold=0.5)(batch)
    expected = vertexer.find_vertices(**inputs, threshold=0.5)
    np.testing.assert_array_equal(out["vertices"].numpy(), expected)
    assert (out["vertices"].numpy()[~charged.numpy()] == -1).all()

    backbone = tagger.jetfm
    with torch.no_grad():
        states = backbone(**inputs).pooler_output
    torch.testing.assert_close(JetRunner(backbone)(batch)["jet_state"], states)


def test_run_dataset_gathers_every_jet_in_order_with_labels(heads, jetclass_file):
    loaded = load_checkpoint(heads["track-id"], device="cpu")
    data = JetDataset(jetclass_file, loaded.processor, targets=("track_labels",))
    collator = JetCollator(targets=("track_labels",))
    out = run_dataset(JetRunner(loaded.model), data, collator, batch_size=7)
    assert len(out["predictions"]) == len(data) == len(out["track_labels"])
    padding = out["track_labels"] == IGNORE_INDEX
    assert (out["predictions"][padding & (out["predictions"] != IGNORE_INDEX)] >= 0).all()
    whole = run_dataset(JetRunner(loaded.model), data, collator, batch_size=len(data))
    real = ~padding
    np.testing.assert_array_equal(out["predictions"][real], whole["predictions"][real])
