"""Hub path: name resolution, the shipped checkpoint, safety checks, model cards, and a push /
download round trip against a local fake Hub speaking huggingface_hub's real protocol."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants

import jetfm.hub
from jetfm.cli import main
from jetfm.configuration import JetFMConfig
from jetfm.errors import CheckpointError, JetFMError
from jetfm.hub import (
    bundled_checkpoints,
    check_safetensors,
    known_checkpoints,
    resolve_pretrained,
)
from jetfm.model_card import GENERATED_MARKER, collect_facts, render_model_card
from jetfm.modeling import JetFMModel
from jetfm.modeling.heads import JetFMForJetTagging
from jetfm.publish import push_folder
from tests._fake_hub import FakeHub

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = "mpm-flow-tiny"
TOKEN = "hf_fake_token"


def _tiny(seed: int = 0) -> JetFMModel:
    torch.manual_seed(seed)
    return JetFMModel(JetFMConfig.from_preset("tiny")).eval()


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def hub(monkeypatch):
    """A running fake Hub, with Hub access switched on for this test only."""
    with FakeHub() as fake:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        yield fake


def _go_offline(monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def fresh_process_memory(monkeypatch):
    """Each test sees the Hub path as a new process would: no failed probe, nothing said."""
    monkeypatch.setattr(jetfm.hub, "_FAILED_PROBES", set())
    monkeypatch.setattr(jetfm.hub, "_ANNOUNCED", set())


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers (a Hub behind a
    dead network path); counts the connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            self.connections.append(conn)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __enter__(self) -> SilentServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()
        for conn in self.connections:
            conn.close()


# --- local folders --------------------------------------------------------------------------
def test_save_load_is_bit_identical_and_writes_card(tmp_path):
    model = _tiny()
    model.save_pretrained(tmp_path / "ck")
    loaded = JetFMModel.from_pretrained(tmp_path / "ck")
    assert _same_weights(model, loaded)
    assert next(loaded.parameters()).dtype == torch.float32
    card = (tmp_path / "ck" / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: jetfm" in card and GENERATED_MARKER in card
    # no training record: the card must not claim pre-training
    assert "No training record" in card and "masked-particle-modelling" not in card


def test_float16_storage_loads_as_float32(tmp_path):
    model = _tiny()
    model.half().save_pretrained(tmp_path / "ck")
    header = check_safetensors(tmp_path / "ck" / "model.safetensors")
    assert {v["dtype"] for v in header.values()} == {"F16"}
    loaded = JetFMModel.from_pretrained(tmp_path / "ck")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    assert all(
        torch.equal(a.float(), b)
        for a, b in zip(model.parameters(), loaded.parameters(), strict=True)
    )


def test_missing_folder_and_bad_names(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        JetFMModel.from_pretrained(str(tmp_path / "nope") + "/")
    with pytest.raises(CheckpointError, match="is a file"):
        (tmp_path / "f.txt").write_text("x")
        JetFMModel.from_pretrained(tmp_path / "f.txt")
    for cls in (JetFMModel, JetFMConfig):
        with pytest.raises(CheckpointError) as err:
            cls.from_pretrained("mpm-flow-does-not-exist")
        message = str(err.value)
        assert "jetfm/mpm-flow-does-not-exist" in message and "HF_HUB_OFFLINE" in message
        assert SHIPPED in message and "offline mode" in message  # known names, what was tried


# --- safety ---------------------------------------------------------------------------------
class _Boom:
    """Unpickling this would create a marker file: proves the loader never unpickles."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path(self.marker).touch, ())


def test_pickle_only_folder_is_refused_without_unpickling(tmp_path):
    folder = tmp_path / "ck"
    _tiny().save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin.*refused"):
        JetFMModel.from_pretrained(folder)
    with pytest.raises(CheckpointError, match="use_safetensors=False is refused"):
        JetFMModel.from_pretrained(folder, use_safetensors=False)
    with pytest.raises(CheckpointError, match="trust_remote_code"):
        JetFMModel.from_pretrained(folder, trust_remote_code=True)
    assert not marker.exists()


def _truncate(data: bytes) -> bytes:
    return data[: len(data) - 100]


def _flip_json(data: bytes) -> bytes:
    return data[:8] + b"\xff" + data[9:]  # first header byte '{' → invalid UTF-8 / JSON


def _flip_offset(data: bytes) -> bytes:
    n = int.from_bytes(data[:8], "little")
    header = data[8 : 8 + n]
    i = header.index(b'"data_offsets":[') + len(b'"data_offsets":[')
    j = header.index(b"]", i)
    digit = header[j - 1 : j]
    flipped = header[: j - 1] + (b"7" if digit != b"7" else b"3") + header[j:]
    return data[:8] + flipped + data[8 + n :]


def _huge_length(data: bytes) -> bytes:
    return (2**40).to_bytes(8, "little") + data[8:]


@pytest.mark.parametrize("corrupt", [_truncate, _flip_json, _flip_offset, _huge_length])
def test_corrupt_safetensors_names_the_file(tmp_path, corrupt):
    folder = tmp_path / "ck"
    _tiny().save_pretrained(folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(corrupt(weights.read_bytes()))
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*(corrupt|truncated)"):
        JetFMModel.from_pretrained(folder)


def test_config_from_newer_jetfm_loads_with_warning(tmp_path):
    model = _tiny()
    model.save_pretrained(tmp_path / "ck")
    path = tmp_path / "ck" / "config.json"
    config = json.loads(path.read_text())
    config["future_option"] = {"from": "jetfm 9"}
    path.write_text(json.dumps(config))
    with pytest.warns(UserWarning, match="future_option"):
        loaded = JetFMModel.from_pretrained(tmp_path / "ck")
    assert _same_weights(model, loaded)


# --- the shipped checkpoint -----------------------------------------------------------------
def test_shipped_checkpoint_is_a_complete_pretrained_repo():
    folder = bundled_checkpoints()[SHIPPED]
    assert SHIPPED in known_checkpoints()
    names = {p.name for p in folder.iterdir()}
    assert {"README.md", "config.json", "model.safetensors", "preprocessor_config.json"} <= names
    assert all(p.stat().st_size <= 25e6 for p in folder.iterdir())
    assert not any(p.suffix in (".bin", ".pt", ".pkl") for p in folder.iterdir())
    run = json.loads((folder / "run_config.json").read_text())
    assert run["model_class"] == "JetFMForMaskedParticleModeling" and run["global_step"] > 0
    losses = [h["loss"] for h in run["log_history"] if "loss" in h]
    assert losses[-1] < losses[0]  # the pre-training really lowered its loss
    provenance = json.loads((folder / "provenance.json").read_text())
    assert "Pythia" in provenance["data"]["source"] and provenance["data"]["num_jets"] > 0
    # the card is generated from the recorded facts, not hand-edited
    shipped = (folder / "README.md").read_text().splitlines()
    fresh = render_model_card(collect_facts(folder)).splitlines()
    assert len(shipped) == len(fresh)
    differ = [(a, b) for a, b in zip(shipped, fresh, strict=True) if a != b]
    assert all("Written by" in a for a, _ in differ)
    assert "library_name: jetfm" in shipped and "license: apache-2.0" in shipped


def test_shipped_checkpoint_loads_offline(tmp_path, monkeypatch, caplog):
    _go_offline(monkeypatch)  # HF_HUB_OFFLINE=1, empty cache: only the bundled copy can serve
    with caplog.at_level("INFO", logger="jetfm.hub"):
        model = JetFMModel.from_pretrained(SHIPPED, cache_dir=tmp_path / "empty-cache")
    assert "shipped with jetfm" in caplog.text
    assert model.config.size == "tiny" and next(model.parameters()).dtype == torch.float32
    # the processor statistics come from the same folder
    from jetfm.data.processor import JetProcessor

    processor = JetProcessor.from_pretrained(SHIPPED)
    assert processor.mean is not None and processor.num_jets_fitted > 0
    # the config alone resolves the short name too (fine-tuning reads it before the weights)
    from jetfm.finetuning import config_for_finetuning

    config, expected = JetFMConfig.from_pretrained(SHIPPED).to_dict(), model.config.to_dict()
    assert {**config, "_name_or_path": ""} == {**expected, "_name_or_path": ""}
    assert config_for_finetuning(SHIPPED).hidden_size == model.config.hidden_size
    # and the model runs on a batch shaped like the processor's output
    x = torch.randn(2, 5, 7)
    out = model(kinematics=x, pid=torch.zeros(2, 5, 6), tracks=torch.zeros(2, 5, 4))
    assert out.pooler_output.shape == (2, model.config.hidden_size)


def test_no_network_without_offline_mode_falls_back_quickly(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    start = time.perf_counter()
    with caplog.at_level("INFO", logger="jetfm.hub"):
        folder = resolve_pretrained(SHIPPED, cache_dir=tmp_path / "cache")
    elapsed = time.perf_counter() - start
    assert folder == bundled_checkpoints()[SHIPPED]
    assert "unreachable" in caplog.text
    assert elapsed < 10, f"resolving a shipped checkpoint without network took {elapsed:.1f} s"


def _said(caplog, level: str) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "jetfm.hub" and r.levelname == level
    ]


def test_offline_mode_never_probes_and_says_it_once(tmp_path, hub, monkeypatch, caplog):
    """HF_HUB_OFFLINE=1 with a Hub that would answer: three loads of a shipped checkpoint
    (model, processor, config) send it no request and say "shipped copy" once, at INFO."""
    _go_offline(monkeypatch)
    from jetfm.data.processor import JetProcessor

    with caplog.at_level("DEBUG", logger="jetfm.hub"):
        JetFMModel.from_pretrained(SHIPPED, cache_dir=tmp_path / "cache")
        JetProcessor.from_pretrained(SHIPPED, cache_dir=tmp_path / "cache")
        JetFMConfig.from_pretrained(SHIPPED, cache_dir=tmp_path / "cache")
    assert hub.requests == []  # no probe, no download
    info = [m for m in _said(caplog, "INFO") if "shipped with jetfm" in m]
    assert len(info) == 1 and "offline mode" in info[0]
    assert _said(caplog, "WARNING") == []
    assert sum("shipped with jetfm" in m for m in _said(caplog, "DEBUG")) == 2


def test_failed_probe_is_not_repeated_in_a_process(tmp_path, monkeypatch, caplog):
    """A Hub that never answers (no HF_HUB_OFFLINE): the first load waits for the probe's
    timeout once; the next loads neither probe nor wait, and it is said once, at INFO."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("JETFM_HUB_TIMEOUT", "0.5")
    with SilentServer() as server, caplog.at_level("DEBUG", logger="jetfm.hub"):
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        start = time.perf_counter()
        first = resolve_pretrained(SHIPPED, cache_dir=tmp_path / "cache")
        waited = time.perf_counter() - start
        start = time.perf_counter()
        again = [resolve_pretrained(SHIPPED, cache_dir=tmp_path / "cache") for _ in range(2)]
        later = time.perf_counter() - start
        time.sleep(0.1)  # let the accept thread see any late connection
        connections = len(server.connections)
    assert first == again[0] == again[1] == bundled_checkpoints()[SHIPPED]
    assert connections == 1, f"the Hub was probed {connections} times"
    assert waited >= 0.4 and later < 0.4, (waited, later)
    info = [m for m in _said(caplog, "INFO") if "shipped with jetfm" in m]
    assert len(info) == 1 and "unreachable" in info[0] and "not asked again" in info[0]
    assert _said(caplog, "WARNING") == []


def test_fresh_process_without_network_gets_bundled_copy(tmp_path):
    """A new interpreter (huggingface_hub reads its settings at import) with no network and
    no HF_HUB_OFFLINE: the shipped checkpoint loads, quickly, and loading it again (with its
    processor) says so no second time."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    env.update(HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}",
               PYTHONPATH=str(ROOT))  # fmt: skip
    code = (
        "import logging, time, jetfm; from jetfm import JetFM, JetProcessor\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "t = time.perf_counter(); m = JetFM.from_pretrained('mpm-flow-tiny')\n"
        "JetFM.from_pretrained('mpm-flow-tiny'); JetProcessor.from_pretrained('mpm-flow-tiny')\n"
        "print('OK', m.config.size, round(time.perf_counter() - t, 2))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    ok, size, seconds = out.stdout.split()[-3:]
    assert ok == "OK" and size == "tiny" and float(seconds) < 10
    assert out.stderr.count("shipped with jetfm") == 1 and "WARNING" not in out.stderr


# --- model cards ----------------------------------------------------------------------------
def test_card_command_uses_recorded_facts_and_keeps_handwritten(tmp_path, capsys):
    folder = tmp_path / "ck"
    _tiny().save_pretrained(folder)
    (folder / "metrics.json").write_text(json.dumps({"results": [
        {"task": "jet tagging", "dataset": "test jets", "metric": "auc", "value": 0.9876}
    ]}))  # fmt: skip
    (folder / "provenance.json").write_text(json.dumps(
        {"data": {"source": "unit-test data", "num_jets": 1234}, "hardware": "a test machine"}
    ))  # fmt: skip
    assert main(["card", str(folder), "--repo-id", "org/unit"]) == 0
    card = (folder / "README.md").read_text()
    for fact in ("0.9876", "unit-test data", "- auc", "org/unit", "35,552"):
        assert fact in card, fact
    (folder / "README.md").write_text("# my own words\n")
    assert main(["card", str(folder)]) == 1
    assert (folder / "README.md").read_text() == "# my own words\n"
    assert main(["card", str(folder), "--force"]) == 0
    assert GENERATED_MARKER in (folder / "README.md").read_text()


@pytest.mark.parametrize("name", ["mpm-flow-base", "mpm-flow-tiny", "mpm-vq-base"])
def test_shipped_card_metadata_is_what_the_hub_reads(name):
    """huggingface_hub parses each shipped card's metadata: datasets, and a model-index with
    exactly the measured rows of metrics.json (the random-weights comparison left out)."""
    from huggingface_hub import ModelCard, metadata_load

    folder = ROOT / "model_cards" / name
    meta = metadata_load(folder / "README.md")
    assert meta["library_name"] == "jetfm" and meta["datasets"] == ["jetfm-generate-pythia8"]
    assert "base_model" not in meta  # pre-trained from random weights: no base model
    assert meta["model-index"][0]["name"] == name
    results = ModelCard.load(folder / "README.md").data.eval_results
    rows = json.loads((folder / "metrics.json").read_text())["results"]
    measured = [r for r in rows if not r.get("baseline")]
    assert len(measured) >= 1 and len(results) == len(measured)
    by_name = {r.metric_name: r for r in results}
    for row in measured:
        result = by_name[f"{row['metric']} ({row['task']})"]
        assert result.metric_value == row["value"]
        assert result.dataset_name == row["dataset"]
        assert result.dataset_type == "jetfm-generate-pythia8"
        assert row["task"].startswith(result.task_name)
    if name == "mpm-flow-tiny":  # its probe pair: the random backbone is a comparison only
        assert len(measured) == len(rows) - 1
        assert "comparison, not these weights: random init" in (folder / "README.md").read_text()
    types = {r.task_type for r in results}
    if name == "mpm-flow-base":
        expected = {"jet-tagging", "track-origin-classification", "vertex-finding"}
        assert expected | {"masked-particle-reconstruction"} == types


def test_finetuned_card_names_its_base_model(tmp_path, jetclass_file):
    """A head fine-tuned from a shipped checkpoint records it: the card's base_model (Hub
    metadata and text); one trained from scratch has none."""
    from huggingface_hub import metadata_load

    from jetfm.finetuning import finetune, hub_model_id
    from jetfm.model_card import write_model_card

    assert hub_model_id(SHIPPED) == f"jetfm/{SHIPPED}"
    assert hub_model_id("org/a-model") == "org/a-model"
    assert hub_model_id("tiny") is None and hub_model_id(tmp_path) is None
    for scratch in (False, True):
        out = tmp_path / f"head-{scratch}"
        finetune(SHIPPED, "tagging", jetclass_file, jetclass_file, out, from_scratch=scratch,
                 max_steps=1, batch_size=32, early_stopping_patience=None, evals_per_run=1)  # fmt: skip
        card = write_model_card(out)
        meta, text = metadata_load(card), card.read_text()
        if scratch:
            assert "base_model" not in meta and "Base model" not in text
        else:
            assert meta["base_model"] == f"jetfm/{SHIPPED}"
            assert f"| Base model | `jetfm/{SHIPPED}` |" in text


# --- push / download round trip -------------------------------------------------------------
def test_push_download_offline_roundtrip(tmp_path, hub, monkeypatch):
    folder = tmp_path / "release"
    shutil.copytree(bundled_checkpoints()[SHIPPED], folder)
    (folder / "pytorch_model.bin").write_bytes(b"not sent")  # never uploaded
    (folder / "checkpoint-10").mkdir()
    (folder / "checkpoint-10" / "trainer_state.json").write_text("{}")
    assert main(["push", str(folder), "--repo-id", "org/jetfm-test", "--token", TOKEN]) == 0
    remote = hub.files("org/jetfm-test")
    expected = {p.name for p in bundled_checkpoints()[SHIPPED].iterdir()}
    assert set(remote) == expected
    card = remote["README.md"].decode()
    assert "library_name: jetfm" in card and 'from_pretrained("org/jetfm-test")' in card

    cache = tmp_path / "fresh-cache"
    online = JetFMModel.from_pretrained("org/jetfm-test", cache_dir=cache)
    _go_offline(monkeypatch)
    n_requests = len(hub.requests)
    offline = JetFMModel.from_pretrained("org/jetfm-test", cache_dir=cache)
    assert len(hub.requests) == n_requests  # served from the cache only
    shipped = JetFMModel.from_pretrained(bundled_checkpoints()[SHIPPED])
    assert _same_weights(online, shipped) and _same_weights(offline, shipped)
    snapshot = resolve_pretrained("org/jetfm-test", cache_dir=cache)
    assert (snapshot / "preprocessor_config.json").read_bytes() == remote[
        "preprocessor_config.json"
    ]

    tagger, info = JetFMForJetTagging.from_pretrained(
        "org/jetfm-test", cache_dir=cache, num_labels=3, output_loading_info=True
    )
    assert info["missing_keys"] and all(not k.startswith("jetfm.") for k in info["missing_keys"])
    assert _same_weights(tagger.jetfm, shipped)


def test_push_to_hub_private_branch_and_token(tmp_path, hub):
    model = _tiny(seed=3)
    model.push_to_hub("org/private-test", private=True, token=TOKEN, revision="dev")
    remote = hub.files("org/private-test", "dev")
    assert {"README.md", "config.json", "model.safetensors"} <= set(remote)
    assert "library_name: jetfm" in remote["README.md"].decode()  # our card, not a generic one
    assert "model_name: private-test\n" in remote["README.md"].decode()  # not the temp dir
    assert "model.safetensors" not in hub.files("org/private-test", "main")
    cache = tmp_path / "cache"
    with pytest.raises(CheckpointError, match="private"):
        JetFMModel.from_pretrained("org/private-test", revision="dev", cache_dir=cache)
    loaded = JetFMModel.from_pretrained(
        "org/private-test", revision="dev", cache_dir=cache, token=TOKEN
    )
    assert _same_weights(model, loaded)


def test_push_refuses_bad_folders_and_reports_auth(tmp_path, hub):
    folder = tmp_path / "ck"
    _tiny().save_pretrained(folder)
    assert main(["push", str(folder), "--repo-id", "no-owner"]) == 2
    with pytest.raises(JetFMError, match="Invalid credentials|401"):
        push_folder(folder, "org/no-token", token=False)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        push_folder(folder, "org/x", token=TOKEN)
    assert "org/x" not in hub.repos


def test_probe_limitation_needs_the_release_probe_pair():
    from jetfm.commands.release import probe_shows_no_gain

    task = "jet tagging, linear probe on frozen jet state"
    pair = [{"task": task, "value": 0.40, "notes": "pre-trained backbone; chance = 0.167"},
            {"task": task, "value": 0.41, "notes": "random init backbone; chance = 0.167"}]  # fmt: skip
    assert probe_shows_no_gain(pair)
    pair[0]["value"] = 0.50
    assert not probe_shows_no_gain(pair)
    # a study's probe row (pre-trained clearly above random, said in the notes) is not the pair
    study = {"task": "jet tagging, linear probe on frozen backbone, 1k labelled jets",
             "value": 0.536, "notes": "pre-trained; frozen random backbone (same config) 0.490"}  # fmt: skip
    assert not probe_shows_no_gain([study])


# --- release of a finished pre-training run -------------------------------------------------
def test_release_packages_a_finished_pretraining_run(tmp_path, jetclass_file):
    """`jetfm release --pretrained DIR` packages an existing MPM run: backbone weights only,
    the processor, the stated data/commands/limitations, attached plot and summary."""
    run_dir = tmp_path / "run"
    assert main(["pretrain", "--data", str(jetclass_file), "--output", str(run_dir), "--size",
                 "tiny", "--target", "regression", "--max-steps", "3", "--batch-size", "16",
                 "--save-steps", "3"]) == 0  # fmt: skip
    (tmp_path / "cmds.txt").write_text("jetfm pretrain --data X --output Y\n")
    (tmp_path / "summary.md").write_text("| labels | accuracy |\n|---|---|\n| 1k | 0.777 |\n")
    (tmp_path / "data.json").write_text(json.dumps({"num_jets": 1234, "source": "unit jets"}))
    (tmp_path / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    args = ["release", "--name", "mpm-unit-base", "--out", str(tmp_path / "cards"),
            "--pretrained", str(run_dir), "--commands-file", str(tmp_path / "cmds.txt"),
            "--summary-file", str(tmp_path / "summary.md"), "--data-info",
            str(tmp_path / "data.json"), "--attach", str(tmp_path / "plot.png"),
            "--limitation", "Trained on simulation only.", "--hardware", "unit CPU"]  # fmt: skip
    assert main(args) == 0
    folder = tmp_path / "cards" / "mpm-unit-base"
    assert (folder / "plot.png").is_file() and (folder / "preprocessor_config.json").is_file()
    backbone = JetFMModel.from_pretrained(folder)
    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", "pt") as f:
        names = list(f.keys())  # noqa: SIM118 (safe_open is not a Mapping)
    assert names and not any(k.startswith(("decoder", "target")) for k in names)
    assert sum(p.numel() for p in backbone.parameters()) > 0
    card = (folder / "README.md").read_text()
    for fact in ("0.777", "jetfm pretrain --data X", "1,234", "unit jets", "unit CPU",
                 "Trained on simulation only."):  # fmt: skip
        assert fact in card, fact
    assert main([*args[:5], "--pretrained", str(tmp_path / "nowhere")]) == 2

    # a release failing after staging began leaves the earlier release as it was and no
    # staging folder behind (one would be listed, and packed into the wheel, as a checkpoint)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(FileNotFoundError, match="missing.png"):
        main([*args, "--attach", str(tmp_path / "missing.png")])
    assert main([*args, "--max-file-mb", "0.001"]) == 2  # every file is over the limit
    assert sorted(p.name for p in (tmp_path / "cards").iterdir()) == ["mpm-unit-base"]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert bundled_checkpoints([tmp_path / "cards"]) == {"mpm-unit-base": folder}


def test_bundled_checkpoints_never_lists_hidden_folders(tmp_path):
    first, second = tmp_path / "wheel", tmp_path / "source"
    for root, name in ((first, ".mpm-x.tmp-1a2b"), (first, "mpm-x"), (second, "mpm-x"),
                       (second, ".hidden"), (second, "mpm-y"), (second, "no-config")):  # fmt: skip
        (root / name).mkdir(parents=True)
        if name != "no-config":
            (root / name / "config.json").write_text("{}")
    found = bundled_checkpoints([first, second, tmp_path / "absent"])
    assert found == {"mpm-x": first / "mpm-x", "mpm-y": second / "mpm-y"}
    assert not any(name.startswith(".") for name in bundled_checkpoints())


def test_shipped_mpm_vq_base_loads_offline_with_its_codebook():
    """The tokenized-target checkpoint ships its VQ-VAE codebook (``tokenizer/``): found by
    name offline, it loads and matches the shipped processor's feature groups."""
    from jetfm.data.processor import JetProcessor
    from jetfm.modeling.tokenizer import ParticleTokenizer

    folder = resolve_pretrained("mpm-vq-base")  # backbone and card: the next test
    tok = ParticleTokenizer.from_pretrained(str(Path(folder) / "tokenizer"))
    assert tok.config.num_codes == 512
    proc = JetProcessor.from_pretrained(str(folder))
    assert set(tok.config.feature_groups) <= set(proc.feature_groups)


@pytest.mark.parametrize(
    ("name", "target"), [("mpm-flow-base", "diffusion"), ("mpm-vq-base", "vqvae")]
)
def test_shipped_base_checkpoints_carry_their_measured_table_and_plot(name, target):
    """The physics-grade checkpoints load offline by name and their cards show what the study
    measured: every metrics.json value in the results table, and the label-efficiency figure,
    shipped beside the card (a relative link, so it renders on the Hub too)."""
    folder = Path(resolve_pretrained(name))
    assert JetFMModel.from_pretrained(name).config.mpm_target == target
    card = (folder / "README.md").read_text()
    measured = json.loads((folder / "metrics.json").read_text())["results"]
    assert len(measured) >= 3
    for row in measured:
        assert f"| {row['value']:.4g} |" in card, row["task"]  # the template's format
    figures = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", card)
    assert figures, "the card shows no figure"
    for figure in figures:
        assert (folder / figure).is_file() and (folder / figure).stat().st_size > 10_000, figure
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["data"]["num_jets"] >= 300_000  # the pre-training set size
