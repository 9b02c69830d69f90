"""The VQ-VAE particle tokenizer and the k-means fitting behind the code targets."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from jetfm.data.schema import IGNORE_INDEX
from jetfm.modeling.targets.kmeans import fit_kmeans, nearest_code
from jetfm.modeling.tokenizer import ParticleTokenizer, ParticleTokenizerConfig, codebook_statistics
from jetfm.training import ComponentLossTrainer, run_training, training_arguments
from tests._synthetic_jets import SyntheticJetDataset, pad_collate, synthetic_jets


def _config(**kw) -> ParticleTokenizerConfig:
    base = dict(num_codes=32, hidden_size=32, num_layers=1, intermediate_size=64)
    return ParticleTokenizerConfig(**{**base, **kw})


def _jets(seed=0, n=32):
    jets = synthetic_jets(n, seed=seed)
    return {k: jets[k] for k in ("kinematics", "tracks", "mask")}


def test_fit_kmeans_recovers_separated_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(8, 3, generator=g) * 10
    points = centres.repeat_interleave(200, 0) + 0.1 * torch.randn(1600, 3, generator=g)
    fitted = fit_kmeans(points, 8, steps=100, batch_size=512)
    dist = torch.cdist(centres, fitted)
    # every true centre has a fitted centroid on it, and vice versa (no dead code)
    assert dist.min(1).values.max() < 0.5
    assert dist.min(0).values.max() < 0.5
    codes = nearest_code(points, fitted)
    assert torch.bincount(codes, minlength=8).min() == 200


def test_first_training_call_initialises_codebook_by_kmeans():
    torch.manual_seed(0)
    tok = ParticleTokenizer(_config())
    assert int(tok.initialized) == 0 and torch.all(tok.codebook == 0)
    out = tok.train()(**_jets())
    assert int(tok.initialized) == 1
    assert out.usage > 0.5  # k-means spread the codes over the data
    assert 1 <= out.perplexity <= 32
    codes = out.codes
    assert torch.all(codes[~_jets()["mask"]] == IGNORE_INDEX)


def test_dead_codes_are_reseeded_from_encoder_outputs():
    torch.manual_seed(0)
    tok = ParticleTokenizer(_config()).train()
    batch = _jets()
    tok(**batch)
    with torch.no_grad():
        tok.code_usage[:5] = 0.0  # not chosen lately
        tok.codebook[:5] = 1e3  # far away: never chosen
    tok(**batch)
    # restarted: the same small EMA count (so the first hits pull the code to its particles)
    # and a mean-usage grace period
    restarted = tok.ema_cluster_size[:5]
    assert torch.all(restarted == restarted[0]) and restarted[0] > 0
    assert restarted[0] < tok.ema_cluster_size[5:].median()
    assert torch.all(tok.code_usage[:5] >= tok.dead_code_limit())
    assert tok.codebook[:5].abs().max() < 1e2
    z = tok.encoder(tok.features(batch["kinematics"], batch["tracks"]), batch["mask"])
    z = z[batch["mask"]].detach()
    # each re-seeded code is (exactly) one of the batch's encoder outputs
    assert (tok.codebook[:5, None] == z[None]).all(-1).any(1).all()
    # live codes were not touched by the restart
    assert torch.all(tok.codebook[5:].abs() < 1e2)


def _blob_jets(centres: torch.Tensor, num_jets: int, seed: int, n: int = 16):
    """Jets whose particles each sit in one of ``len(centres)`` tight, well-separated blobs."""
    g = torch.Generator().manual_seed(seed)
    blob = torch.randint(len(centres), (num_jets, n), generator=g)
    x = centres[blob] + 0.05 * torch.randn(num_jets, n, centres.shape[1], generator=g)
    return x, blob


@pytest.mark.parametrize("restarts", [True, False], ids=["restarts", "no-restarts"])
def test_dead_code_restarts_prevent_codebook_collapse(restarts):
    """16 blobs, 64 codes: without restarts the EMA codebook collapses onto a few codes that
    merge blobs; with them every blob gets its own codes."""
    n_blobs, n_codes = 16, 64
    centres = torch.randn(n_blobs, 7, generator=torch.Generator().manual_seed(123)) * 1.5
    off = {} if restarts else {"dead_code_fraction": 0.0, "dead_code_threshold": 0.0}
    config = _config(
        num_codes=n_codes, code_dim=4, hidden_size=16, num_attention_heads=2,
        intermediate_size=32, **off,
    )  # fmt: skip
    torch.manual_seed(0)
    tok = ParticleTokenizer(config).train()
    opt = torch.optim.Adam(tok.parameters(), lr=3e-3)
    for step in range(300):
        x, _ = _blob_jets(centres, 16, seed=1000 + step)
        loss = tok(kinematics=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, blob = _blob_jets(centres, 64, seed=7)
    codes = tok.eval().encode(x).flatten()
    stats = codebook_statistics(codes, n_codes)
    # purity: how well the code tells which blob a particle came from
    joint = torch.zeros(n_codes, n_blobs).index_put_(
        (codes, blob.flatten()), torch.ones(len(codes)), accumulate=True
    )
    purity = float(joint.max(1).values.sum() / len(codes))
    if restarts:
        assert stats["perplexity"] > n_blobs
        assert stats["usage"] > 0.5
        assert purity > 0.95
    else:  # the failure the restarts fix (keeps this test able to fail)
        assert stats["perplexity"] < n_blobs / 2
        assert purity < 0.7


# One gloo rank: loads the shared initial state, runs training-mode forwards on its own
# batches (the codebook updates happen in forward) and saves its codebook buffers.
_RANK_WORKER = textwrap.dedent(
    """
    import sys
    import torch
    import torch.distributed as dist
    from safetensors.torch import load_file, save_file
    from jetfm.modeling.tokenizer import ParticleTokenizer, ParticleTokenizerConfig

    rank, folder = int(sys.argv[1]), sys.argv[2]
    dist.init_process_group(
        "gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=2
    )
    data = load_file(f"{folder}/data.safetensors")
    for name in ("on", "off"):
        torch.manual_seed(rank)  # different random draws per rank: rank 0 must win
        config = ParticleTokenizerConfig.from_pretrained(f"{folder}/{name}")
        tok = ParticleTokenizer(config).train()
        tok.load_state_dict(load_file(f"{folder}/init.safetensors"))
        for x, m in zip(data["x"][:, rank], data["mask"][:, rank]):
            tok(kinematics=x, mask=m)
        bufs = ("codebook", "ema_cluster_size", "ema_embed_sum", "code_usage")
        save_file({b: getattr(tok, b) for b in bufs}, f"{folder}/{name}_rank{rank}.safetensors")
    dist.destroy_process_group()
    """
)


def test_distributed_codebook_updates_are_global_and_identical_on_all_ranks(tmp_path):
    """Two gloo ranks with different batches (one of them empty at some step): the EMA sees
    both ranks' particles (same result as one process on the union), and the dead-code
    restarts leave the same codebook on every rank."""
    torch.manual_seed(0)
    on = _config(code_dim=4)
    off = _config(code_dim=4, dead_code_fraction=0.0, dead_code_threshold=0.0)
    on.save_pretrained(tmp_path / "on")
    off.save_pretrained(tmp_path / "off")
    tok = ParticleTokenizer(on).train()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 2, 8, 10, 7, generator=g)  # (step, rank, jets, particles, features)
    mask = torch.rand(6, 2, 8, 10, generator=g) < 0.7
    mask[3, 1] = False  # rank 1 has no particle at step 3
    tok(kinematics=x[0, 0], mask=mask[0, 0])  # k-means initialisation
    with torch.no_grad():  # four dead codes, far away (the EMA keeps them there)
        tok.ema_cluster_size[:4] = 1e-3
        tok.ema_embed_sum[:4] = 1.0
        tok.codebook[:4] = 1e3
    save_file(tok.state_dict(), tmp_path / "init.safetensors")
    save_file(
        {"x": x[1:].contiguous(), "mask": mask[1:].contiguous()}, tmp_path / "data.safetensors"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RANK_WORKER, str(rank), str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for rank in range(2)
    ]
    try:
        logs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(logs)
    res = {
        (name, r): load_file(tmp_path / f"{name}_rank{r}.safetensors")
        for name in ("on", "off")
        for r in range(2)
    }
    for name in ("on", "off"):
        for buf, value in res[name, 0].items():
            assert torch.equal(value, res[name, 1][buf]), f"{name}: {buf} differs between ranks"
    assert res["on", 0]["codebook"].abs().max() < 1e2  # the dead codes were restarted
    assert res["off", 0]["codebook"][:4].abs().min() > 1e2  # ... and are stuck without
    # without restarts the update is deterministic: same as one process seeing both batches
    ref = ParticleTokenizer(off).train()
    ref.load_state_dict(load_file(tmp_path / "init.safetensors"))
    for step in range(1, 6):
        ref(kinematics=x[step].flatten(0, 1), mask=mask[step].flatten(0, 1))
    for buf, value in res["off", 0].items():
        torch.testing.assert_close(value, getattr(ref, buf), rtol=1e-5, atol=1e-5)


def test_codes_depend_on_the_jet_context():
    torch.manual_seed(0)
    tok = ParticleTokenizer(_config(layer_scale_init=1.0)).train()
    batch = _jets()
    tok(**batch)
    tok.eval()
    codes = tok.encode(batch["kinematics"], batch["mask"], batch["tracks"])
    # Same first particles, different companions: some codes change.
    other = _jets(seed=9)
    mixed = {k: v.clone() for k, v in batch.items()}
    for key in ("kinematics", "tracks"):
        mixed[key][:, 1:] = other[key][:, 1:]
    mixed["mask"][:, 1:] = other["mask"][:, 1:]
    codes_mixed = tok.encode(mixed["kinematics"], mixed["mask"], mixed["tracks"])
    assert (codes_mixed[:, 0] != codes[:, 0]).any()


def test_training_lowers_reconstruction_loss_and_round_trips(tmp_path):
    torch.manual_seed(0)
    tok = ParticleTokenizer(_config())
    args = training_arguments(
        tmp_path / "tok", max_steps=150, per_device_train_batch_size=16, logging_steps=1,
        learning_rate=2e-3, warmup_steps=0, lr_scheduler_type="constant", save_strategy="no",
    )  # fmt: skip
    trainer = run_training(
        tok, args, SyntheticJetDataset(512), data_collator=pad_collate,
        trainer_cls=ComponentLossTrainer,
    )  # fmt: skip
    rec = [
        h["reconstruction_loss"] for h in trainer.state.log_history if "reconstruction_loss" in h
    ]
    assert sum(rec[-15:]) / 15 < 0.8 * sum(rec[:15]) / 15
    perplexity = [h["perplexity"] for h in trainer.state.log_history if "perplexity" in h]
    assert perplexity[-1] > 4  # no codebook collapse

    folder = tmp_path / "tok"
    with safe_open(folder / "model.safetensors", "pt") as fh:
        names = list(fh.keys())
    assert "codebook" in names
    loaded = ParticleTokenizer.from_pretrained(folder).eval()
    batch = _jets(seed=4)
    tok.eval()
    torch.testing.assert_close(loaded.codebook, tok.codebook)
    assert torch.equal(
        loaded.encode(batch["kinematics"], batch["mask"], batch["tracks"]),
        tok.encode(batch["kinematics"], batch["mask"], batch["tracks"]),
    )
    stats = codebook_statistics(tok.encode(batch["kinematics"], batch["mask"], batch["tracks"]), 32)
    assert 0 < stats["usage"] <= 1 and 1 <= stats["perplexity"] <= 32


def test_tokenizer_saved_before_the_restart_options_loads_and_resumes(tmp_path):
    """A checkpoint whose config.json predates the dead-code options still loads (defaults
    filled in), and resuming training does not mistake its live codes for dead ones (the
    unsaved recent-usage average starts from the saved EMA counts)."""
    import json

    torch.manual_seed(0)
    tok = ParticleTokenizer(_config()).train()
    batch = _jets()
    for _ in range(3):
        tok(**batch)
    tok.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    for key in ("dead_code_fraction", "dead_code_decay"):
        cfg.pop(key)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with safe_open(tmp_path / "model.safetensors", "pt") as fh:
        assert "code_usage" not in set(fh.keys())  # training-time state only
    loaded = ParticleTokenizer.from_pretrained(tmp_path)
    assert loaded.config.dead_code_fraction == 0.1 and loaded.config.dead_code_decay == 0.9
    torch.testing.assert_close(loaded.codebook, tok.codebook)
    assert torch.all(loaded.code_usage == 0)
    ema_before = loaded.ema_cluster_size.clone()
    used_before = ema_before > ema_before.mean() * 0.5
    before = loaded.codebook.clone()
    loaded.train()(**batch)
    z = loaded.encoder(loaded.features(batch["kinematics"]), batch["mask"])[batch["mask"]]
    restarted = (loaded.codebook[:, None] == z.detach()[None]).all(-1).any(1)
    assert not restarted[used_before].any()
    decay = loaded.config.dead_code_decay
    assert torch.all(loaded.code_usage[used_before] >= decay * ema_before[used_before] - 1e-5)
    assert not torch.equal(loaded.codebook, before)  # and it keeps learning


def test_missing_group_is_a_clear_error():
    tok = ParticleTokenizer(_config(feature_groups={"kinematics": 7, "tracks": 4}))
    batch = _jets()
    with pytest.raises(ValueError, match="tracks"):
        tok.encode(batch["kinematics"], batch["mask"])
    with pytest.raises(ValueError, match="kinematics"):
        tok.encode(batch["kinematics"][..., :5], batch["mask"], batch["tracks"])
