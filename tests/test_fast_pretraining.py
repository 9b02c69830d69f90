"""The fast pre-training path: feature cache, device-side batches, compiled steps."""

from __future__ import annotations

import logging
import shutil

import awkward as ak
import numpy as np
import pytest
import torch
import uproot
from torch._dynamo.utils import counters

from jetfm.cli import main as cli_main
from jetfm.configuration import JetFMConfig
from jetfm.data import JetDataset, JetProcessor
from jetfm.data.batching import JetCollator, bucket_length, default_buckets
from jetfm.data.device_batches import DeviceJetBatches
from jetfm.data.feature_cache import MANIFEST_FILE, cached_features
from jetfm.errors import DataError
from jetfm.modeling.heads import JetFMForJetTagging, JetFMForTrackID, JetFMForVertexFinding
from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling
from jetfm.training import compile_model, scaled_learning_rate
from tests._synthetic_jets import synthetic_jets
from tests.fixtures_data import write_jetclass_file


# --- buckets and the LR rule ---------------------------------------------------------------
def test_buckets_and_learning_rate_rule():
    assert default_buckets(128) == (32, 64, 96, 128)
    assert default_buckets(100) == (32, 56, 80, 100)
    counts = np.random.default_rng(0).poisson(40, 10_000)  # quartiles 36, 40, 44; max 66
    buckets = default_buckets(128, counts)  # fitted: rounded up to multiples of 8
    assert buckets == (40, 48, 72, 128)
    assert np.mean(counts <= 40) >= 0.5 and np.mean(counts <= 72) == 1.0
    assert bucket_length(33, (32, 64)) == 64 and bucket_length(32, (32, 64)) == 32
    with pytest.raises(DataError, match="more than the longest bucket"):
        bucket_length(65, (32, 64))
    assert scaled_learning_rate(5e-4, 256) == pytest.approx(5e-4)
    assert scaled_learning_rate(5e-4, 1024) == pytest.approx(1e-3)
    jets = [{"kinematics": np.ones((n, 7), np.float32)} for n in (3, 40)]
    assert JetCollator(targets=(), buckets=(32, 64, 128))(jets)["mask"].shape == (2, 64)


# --- the feature cache ---------------------------------------------------------------------
def _particles_per_jet(path, max_particles):
    energy = uproot.open(path)["tree"]["part_energy"].array()
    return np.minimum(ak.to_numpy(ak.num(energy)), max_particles)


def test_feature_cache_is_reused_while_valid_and_rebuilt_when_stale(tmp_path, caplog):
    data = write_jetclass_file(tmp_path / "data" / "jets.root", 60, seed=3)
    processor = JetProcessor(max_particles=64).fit(data, progress=False)
    folder = tmp_path / "run.features"
    built = cached_features(data, processor, folder)
    assert not built.reused and (folder / MANIFEST_FILE).is_file()
    reference = JetDataset(data, processor, targets=())
    flat, counts, _ = reference.flat_arrays()
    np.testing.assert_array_equal(built.counts, counts)
    np.testing.assert_array_equal(built.counts, _particles_per_jet(data, 64))  # the file's
    for group, values in flat.items():
        np.testing.assert_array_equal(built.flat[group], values)
    again = cached_features(data, processor, folder)
    assert again.reused
    for group, values in flat.items():
        np.testing.assert_array_equal(again.flat[group], values)
    # other statistics: rebuilt, and the log says why
    with caplog.at_level(logging.WARNING, logger="jetfm.data.feature_cache"):
        other = JetProcessor(max_particles=16).fit(data, progress=False)
        rebuilt = cached_features(data, other, folder)
    assert not rebuilt.reused and rebuilt.counts.max() <= 16
    assert "processor settings or statistics changed" in caplog.text
    # the file rewritten with other jets: never read stale
    write_jetclass_file(data, 50, seed=4)
    fresh = cached_features(data, other, folder)
    assert not fresh.reused and fresh.num_jets == 50
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.features")]
    # a folder that is not a cache is not overwritten
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not a jetfm feature cache"):
        cached_features(data, other, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


# --- device-side batches -------------------------------------------------------------------
def _labelled_flat(counts):
    """Flat features whose every particle carries its jet index and its slot."""
    jet = np.repeat(np.arange(len(counts)), counts)
    slot = np.arange(len(jet)) - np.repeat(np.cumsum(counts) - counts, counts)
    kin = np.zeros((len(jet), 7), np.float32)
    kin[:, 0], kin[:, 1] = jet, slot + 1
    return {"kinematics": kin, "tracks": np.ones((len(jet), 4), np.float32)}


def test_device_batches_cover_every_jet_in_bucketed_static_shapes():
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 60, size=53)
    flat = _labelled_flat(counts)
    ds = DeviceJetBatches(flat, counts, 8, buckets=(16, 32, 64), seed=1)
    batches = list(ds)
    assert len(batches) == len(ds)
    seen = []
    for batch in batches:
        b, length = batch["mask"].shape
        assert b == 8 and length in (16, 32, 64)
        ids = batch["kinematics"][:, 0, 0].long()
        n = torch.as_tensor(counts)[ids]
        assert torch.equal(batch["mask"].sum(1), n)  # the jet's own particles, all of them
        assert torch.equal(batch["mask"], torch.arange(length) < n[:, None])
        real = batch["kinematics"][batch["mask"]]
        assert torch.equal(real[:, 0].long(), ids.repeat_interleave(n))  # no mixing of jets
        slots = torch.cat([torch.arange(1, k + 1) for k in n.tolist()]).float()
        assert torch.equal(real[:, 1], slots)  # in their order
        assert (batch["kinematics"][~batch["mask"]] == 0).all()  # padding stays zero
        assert int(n.max()) > (length // 2 if length > 16 else 0)  # the bucket is snug
        seen.append(ids)
    seen = torch.cat(seen)
    assert set(seen.tolist()) == set(range(len(counts)))  # every jet at least once
    assert len(seen) - len(counts) < 8  # at most one batch's worth drawn again
    # reproducible per epoch, different between epochs
    again = DeviceJetBatches(flat, counts, 8, buckets=(16, 32, 64), seed=1)
    first = [b["kinematics"][:, 0, 0] for b in again]
    assert all(
        torch.equal(a["kinematics"][:, 0, 0], b) for a, b in zip(batches, first, strict=True)
    )
    second = torch.cat([b["kinematics"][:, 0, 0] for b in again])
    assert not torch.equal(second, torch.cat(first))
    # data parallel: ranks share out the jets
    shards = [
        DeviceJetBatches(flat, counts, 4, buckets=(16, 32, 64), rank=r, world_size=2)
        for r in range(2)
    ]
    ids = [set(torch.cat([b["kinematics"][:, 0, 0] for b in s]).long().tolist()) for s in shards]
    assert not ids[0] & ids[1] and ids[0] | ids[1] == set(range(len(counts)))
    with pytest.raises(DataError, match="longest bucket"):
        DeviceJetBatches(flat, counts, 8, buckets=(16, 32))
    # eager CPU runs: the same batches, cut to their longest jet
    cut = DeviceJetBatches(flat, counts, 8, buckets=(16, 32, 64), seed=1, pad_to_bucket=False)
    for full, short in zip(batches, cut, strict=True):
        width = int(full["mask"].sum(1).max())
        assert short["mask"].shape[1] == width
        assert torch.equal(short["kinematics"], full["kinematics"][:, :width])


def test_pretrain_cli_caches_features_and_trains_on_device_batches(tmp_path, caplog):
    data = write_jetclass_file(tmp_path / "data" / "jets.root", 80, seed=5)
    out = tmp_path / "run"
    argv = ["pretrain", "--data", str(data), "--output", str(out), "--size", "tiny",
            "--target", "diffusion", "--max-steps", "3", "--batch-size", "16",
            "--logging-steps", "1", "--buckets", "32,128"]  # fmt: skip
    assert cli_main(argv) == 0
    manifest = out.with_name("run.features") / MANIFEST_FILE
    assert manifest.is_file()
    shutil.rmtree(out)
    with caplog.at_level(logging.INFO, logger="jetfm.data.feature_cache"):
        assert cli_main(argv) == 0
    assert "up to date" in caplog.text
    assert (out / "model.safetensors").is_file()


# --- torch.compile -------------------------------------------------------------------------
def _breaks() -> int:
    return sum(counters["graph_break"].values())


def test_compiled_pretraining_step_equals_eager_without_graph_breaks():
    """The whole MPM training step (masking, encoder, decoder, diffusion target, backward)
    compiles as one graph and gives the eager loss and gradients. (AOTAutograd traces the
    graphs inductor would generate kernels for; CPU kernel generation takes minutes.)"""
    import torch._dynamo

    config = JetFMConfig.from_preset("tiny", mpm_target="diffusion")
    torch.manual_seed(0)
    eager = JetFMForMaskedParticleModeling(config).train()
    compiled = JetFMForMaskedParticleModeling(config).train()
    compiled.load_state_dict(eager.state_dict())
    compile_model(compiled, backend="aot_eager")
    batch = synthetic_jets(8, seed=2)
    batch.pop("jet_id")
    torch._dynamo.reset()
    counters.clear()
    results = []
    for model in (eager, compiled):
        torch.manual_seed(7)
        out = model(**batch)
        out.loss.backward()
        results.append((out.loss.detach(), {n: p.grad for n, p in model.named_parameters()}))
    assert _breaks() == 0
    assert counters["stats"]["unique_graphs"] == 1
    (loss_e, grads_e), (loss_c, grads_c) = results
    torch.testing.assert_close(loss_c, loss_e, rtol=1e-4, atol=1e-5)
    for name, grad in grads_e.items():
        if grad is not None:
            torch.testing.assert_close(grads_c[name], grad, rtol=1e-3, atol=1e-5, msg=name)


@pytest.mark.parametrize(
    "head,labels",
    [(JetFMForJetTagging, "labels"), (JetFMForTrackID, "track_labels"),
     (JetFMForVertexFinding, "vertex_labels")],
)  # fmt: skip
def test_fine_tuning_steps_compile_without_graph_breaks(head, labels):
    import torch._dynamo

    config = JetFMConfig.from_preset("tiny", num_labels=3)
    torch.manual_seed(0)
    model = head(config).eval()  # no dropout: compare with eager exactly
    batch = synthetic_jets(6, seed=3)
    batch.pop("jet_id")
    shape = (6,) if labels == "labels" else batch["mask"].shape
    batch[labels] = torch.randint(0, 3, shape, generator=torch.Generator().manual_seed(1))
    if labels != "labels":
        batch[labels] = batch[labels].masked_fill(~batch["mask"], -100)
    eager = model(**batch).loss
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, backend="aot_eager", dynamic=False)
    loss = compiled(**batch).loss
    loss.backward()
    assert _breaks() == 0
    torch.testing.assert_close(loss, eager, rtol=1e-5, atol=1e-6)
