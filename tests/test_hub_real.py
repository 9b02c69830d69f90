"""Opt-in: the push / download round trip against the real Hugging Face Hub.

Runs only with a token in ``JETFM_TEST_HUB_TOKEN`` or ``HF_TOKEN``
(``pytest -m hub tests/test_hub_real.py``); creates a private repo
``<your user>/jetfm-test-<random>``, and deletes it afterwards.
"""

from __future__ import annotations

import os
import uuid

import pytest
import torch
from huggingface_hub import HfApi, constants

from jetfm.configuration import JetFMConfig
from jetfm.hub import bundled_checkpoints
from jetfm.modeling import JetFMModel
from jetfm.publish import push_folder

TOKEN = os.environ.get("JETFM_TEST_HUB_TOKEN") or os.environ.get("HF_TOKEN")

pytestmark = [
    pytest.mark.hub,
    pytest.mark.skipif(not TOKEN, reason="needs JETFM_TEST_HUB_TOKEN or HF_TOKEN"),
]


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)


@pytest.fixture
def repo_id(online):
    api = HfApi(token=TOKEN)
    repo = f"{api.whoami()['name']}/jetfm-test-{uuid.uuid4().hex[:8]}"
    yield repo
    api.delete_repo(repo, missing_ok=True)


def test_real_hub_roundtrip(tmp_path, repo_id):
    folder = bundled_checkpoints()["mpm-flow-tiny"]
    push_folder(folder, repo_id, private=True, token=TOKEN, write_card=False)
    files = set(HfApi(token=TOKEN).list_repo_files(repo_id))
    assert {p.name for p in folder.iterdir()} <= files
    loaded = JetFMModel.from_pretrained(repo_id, cache_dir=tmp_path / "cache", token=TOKEN)
    shipped = JetFMModel.from_pretrained(folder)
    assert all(
        torch.equal(a, b) for a, b in zip(loaded.parameters(), shipped.parameters(), strict=True)
    )


def test_real_push_to_hub_method(tmp_path, repo_id):
    torch.manual_seed(0)
    model = JetFMModel(JetFMConfig.from_preset("tiny"))
    model.push_to_hub(repo_id, private=True, token=TOKEN)
    loaded = JetFMModel.from_pretrained(repo_id, cache_dir=tmp_path / "cache", token=TOKEN)
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), loaded.parameters(), strict=True)
    )
