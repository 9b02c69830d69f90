"""The user's path: ``jetfm quickstart`` end to end on real Pythia jets, and every script in
``examples/`` run at tiny sizes through its ``main(argv)`` on real ROOT files."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import uproot
from safetensors.torch import load_file

from jetfm.cli import main as cli
from jetfm.errors import DataError
from tests.fixtures_data import write_jetclass_file

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG = b"\x89PNG\r\n\x1a\n"
CLASSES = ("QCD", "Wqq", "Hbb")


def example(name: str):
    """Import ``examples/<name>.py`` as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """``train/ val/ test/`` of synthetic JetClass-layout jets (tracks and truth included)."""
    root = tmp_path_factory.mktemp("example_data")
    for i, (split, n) in enumerate((("train", 240), ("val", 90), ("test", 120))):
        write_jetclass_file(root / split / "jets.root", n, seed=60 + i, classes=CLASSES)
    return root


@pytest.fixture(scope="module")
def tagger(data, tmp_path_factory) -> Path:
    """A fine-tuned tagger folder (with the Trainer's checkpoint-* inside)."""
    from jetfm.finetuning import finetune

    out = tmp_path_factory.mktemp("tagger") / "model"
    finetune("mpm-flow-tiny", "tagging", str(data / "train"),
             str(data / "val"), out, max_steps=10, batch_size=64, lr=1e-3,
             early_stopping_patience=None, evals_per_run=1, keep_checkpoints=True)  # fmt: skip
    return out


# --- jetfm quickstart ---------------------------------------------------------------------
def test_quickstart_command_end_to_end(tmp_path, capsys):
    """Pretrained checkpoint → generated jets (three seeds) → fine-tuned tagger → metrics and
    plots, through the CLI, offline."""
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    from jetfm.generation import SUPPORTED_CLASSES
    from jetfm.hub import resolve_pretrained
    from jetfm.quickstart import SEEDS

    out = tmp_path / "qs"
    # the shipped tiny checkpoint: the same path as the default (base) at a fraction of the cost
    code = cli(["quickstart", "--output", str(out), "--model", "mpm-flow-tiny", "--jets-per-class",
                "8", "--max-steps", "6", "--workers", "2", "--no-progress"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "[4/4]" in printed and "accuracy" in printed and "roc.png" in printed

    # three independent samples: their own seeds, one file per class, the planned sizes
    for split, n in (("train", 8), ("val", 2), ("test", 8)):
        manifest = json.loads((out / "data" / split / "manifest.json").read_text())
        assert manifest["seed"] == SEEDS[split]
        assert manifest["counts"] == dict.fromkeys(SUPPORTED_CLASSES, n)

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "tagging"
    assert metrics["n_jets"] == 8 * len(SUPPORTED_CLASSES)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and math.isfinite(metrics["auc"])
    assert set(metrics["auc_per_class"]) == set(SUPPORTED_CLASSES)
    assert is_png(out / "plots" / "roc.png") and is_png(out / "plots" / "confusion_matrix.png")

    # the tagger starts from the shipped pretrained backbone; the default frozen mode keeps the
    # encoder as pre-trained and trains the pooling (and the head)
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["architectures"] == ["JetFMForJetTagging"]
    assert list(config["id2label"].values()) == list(SUPPORTED_CLASSES)
    assert config["finetuning"]["from_scratch"] is False
    pre = load_file(resolve_pretrained("mpm-flow-tiny") / "model.safetensors")
    post = load_file(out / "model" / "model.safetensors")
    name = "layers.0.attn.q.weight"
    trained = post[f"jetfm.{name}"]
    assert trained.shape == pre[name].shape
    assert config["finetuning"]["mode"] == "frozen"
    assert trained.equal(pre[name])  # the encoder as pre-trained
    pooling = "class_attention.0.attn.q.weight"
    assert not post[f"jetfm.{pooling}"].equal(pre[pooling])  # the pooling learnt


def test_quickstart_without_generate_extra_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pythia8mc", None)  # import now raises ImportError
    code = cli(["quickstart", "--output", str(tmp_path / "qs"), "--jets-per-class", "8"])
    assert code == 2
    err = capsys.readouterr().err
    assert 'pip install "jetfm[generate]"' in err and "quickstart" in err
    assert not (tmp_path / "qs").exists()  # failed before writing anything


def test_quickstart_rejects_tiny_sizes(tmp_path, capsys):
    assert cli(["quickstart", "--output", str(tmp_path), "--jets-per-class", "2"]) == 2
    assert "--jets-per-class" in capsys.readouterr().err


# --- examples/ ----------------------------------------------------------------------------
def test_example_quickstart_python_api(data, tmp_path):
    metrics = example("quickstart").main(
        [
            "--data",
            str(data),
            "--output",
            str(tmp_path),
            "--max-steps",
            "8",
            "--model",
            "mpm-flow-tiny",
        ]
    )
    assert metrics["n_jets"] == 120 and set(metrics["auc_per_class"]) == set(CLASSES)
    assert metrics["auc"] > 0.5  # learned something: the classes differ in prong structure
    assert is_png(tmp_path / "plots" / "roc.png")
    assert json.loads((tmp_path / "metrics.json").read_text())["accuracy"] == metrics["accuracy"]


def test_example_own_root_files_with_yaml_mapping(data, tmp_path):
    mod = example("finetune_own_root_files")
    metrics = mod.main(["--data", str(data), "--output", str(tmp_path), "--max-steps", "20"])
    # the files really use the custom layout, and the tagger read them through the mapping
    with uproot.open(tmp_path / "own_files" / "train" / "jets.root") as f:
        keys = set(f["Events"].keys())
    assert {"pfcand_px", "fj_pt", "truth_is_Wqq"} <= keys and "part_px" not in keys
    saved = json.loads((tmp_path / "model" / "preprocessor_config.json").read_text())
    assert saved["branch_mapping"]["px"] == "pfcand_px"
    assert set(metrics["auc_per_class"]) == set(CLASSES) and metrics["auc"] > 0.5


def test_example_own_root_files_bad_mapping_names_the_branch(data, tmp_path):
    from jetfm.data import BranchMapping

    mod = example("finetune_own_root_files")

    mapping = BranchMapping.from_yaml(EXAMPLES / "branch_map.yaml")
    own = mod.write_custom_layout(str(data / "val"), tmp_path / "own", mapping)
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "branch_map.yaml").read_text().replace("pfcand_px", "pf_px"))
    with pytest.raises(DataError, match="pf_px"):
        mod.main(["--files", str(own / "*.root"), "--branch-map", str(bad),
                  "--output", str(tmp_path / "run")])  # fmt: skip


def test_example_weak_supervision(data, tmp_path):
    results = example("weak_supervision").main(
        ["--data", str(data), "--output", str(tmp_path), "--signal", "Wqq", "--max-steps", "20"]
    )
    auc = results["pretrained"]
    assert 0.0 <= auc["test_auc"] <= 1.0 and 0.0 <= auc["val_true_auc"] <= 1.0
    config = json.loads((tmp_path / "pretrained" / "config.json").read_text())
    assert config["finetuning"]["cwola"]["signal"] == "Wqq"
    low, high = config["finetuning"]["cwola"]["fractions"]  # realised signal fractions
    assert low == pytest.approx(0.2, abs=0.1) and high == pytest.approx(0.6, abs=0.1)


def test_example_vertexing_and_track_id(data, tmp_path):
    results = example("vertexing_and_track_id").main(
        ["--data", str(data), "--output", str(tmp_path), "--max-steps", "10"]
    )
    assert 0.0 <= results["track-id"]["balanced_accuracy"] <= 1.0
    assert -1.0 <= results["vertexing"]["ari"] <= 1.0
    assert is_png(tmp_path / "track-id" / "plots" / "confusion_matrix.png")
    assert is_png(tmp_path / "vertexing" / "plots" / "ari.png")


def test_finetune_by_short_name_keeps_the_checkpoint_normalisation(tagger):
    """Fine-tuned from a short name, the tagger carries the shipped checkpoint's statistics
    (the inputs the backbone was pre-trained on), not ones refitted on the training files."""
    from jetfm.hub import resolve_pretrained

    shipped = resolve_pretrained("mpm-flow-tiny") / "preprocessor_config.json"
    shipped, saved = (
        json.loads(f.read_text()) for f in (shipped, tagger / "preprocessor_config.json")
    )
    assert saved["num_jets_fitted"] == shipped["num_jets_fitted"]
    assert saved["mean"] == shipped["mean"] and saved["std"] == shipped["std"]


def test_example_push_to_hub_dry_run(tagger, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert any(tagger.glob("checkpoint-*"))  # training state that must not be uploaded
    result = example("push_to_hub").main(
        [str(tagger), "--repo-id", "my-org/tagger", "--output", str(tmp_path)]
    )
    assert result["pushed"] is False
    names = {p.as_posix() for p in result["files"]}
    assert {"config.json", "model.safetensors", "README.md", "preprocessor_config.json"} <= names
    assert not any(n.startswith("checkpoint-") for n in names)
    card = (tmp_path / "tagger" / "README.md").read_text()
    assert "my-org/tagger" in card
    assert not (tagger / "README.md").read_text().count("my-org/tagger")  # source untouched


def test_example_push_to_hub_uploads_to_a_hub(tagger, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from tests._fake_hub import FakeHub

    with FakeHub() as fake:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        result = example("push_to_hub").main(
            [str(tagger), "--repo-id", "org/tagger", "--token", "hf_fake_token"]
        )
        files = fake.files("org/tagger")
    assert result["pushed"] is True
    assert {"config.json", "model.safetensors", "README.md"} <= set(files)
    assert not any(name.startswith("checkpoint-") for name in files)
    assert files["model.safetensors"] == (tagger / "model.safetensors").read_bytes()


def test_example_export_onnx(tagger, data, tmp_path):
    pytest.importorskip("onnxruntime")
    result = example("export_onnx").main(
        [str(tagger), "--data", str(data / "test"), "--output", str(tmp_path / "t.onnx")]
    )
    assert result["n_jets"] == 120 and result["max_diff"] < 1e-4


def test_example_pretrain_lowers_the_mpm_loss(data, tmp_path):
    result = example("pretrain").main(
        [
            "--data",
            str(data / "train"),
            "--output",
            str(tmp_path / "mpm"),
            "--max-steps",
            "30",
            "--target",
            "regression",
        ]  # fmt: skip
    )
    assert result["losses"][-1] < result["losses"][0]
    assert (tmp_path / "mpm" / "model.safetensors").is_file()
