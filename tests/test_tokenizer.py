"""The VQ-VAE particle tokenizer and the k-means fitting behind the code targets."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from jetfm.data.schema import IGNORE_INDEX
from jetfm.modeling.targets.kmeans import fit_kmeans, nearest_code
from jetfm.tokenizer import ParticleTokenizer, ParticleTokenizerConfig, codebook_statistics
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
        tok.ema_cluster_size[:5] = 0.0
        tok.codebook[:5] = 1e3  # far away: never chosen
    tok(**batch)
    assert torch.all(tok.ema_cluster_size[:5] >= 1.0 - 1e-6)
    assert tok.codebook[:5].abs().max() < 1e2
    z = tok.encoder(tok.features(batch["kinematics"], batch["tracks"]), batch["mask"])
    z = z[batch["mask"]].detach()
    # each re-seeded code is one of the batch's encoder outputs (moved by one EMA step at most)
    assert torch.cdist(tok.codebook[:5], z).min(1).values.max() < 0.5


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


def test_missing_group_is_a_clear_error():
    tok = ParticleTokenizer(_config(feature_groups={"kinematics": 7, "tracks": 4}))
    batch = _jets()
    with pytest.raises(ValueError, match="tracks"):
        tok.encode(batch["kinematics"], batch["mask"])
    with pytest.raises(ValueError, match="kinematics"):
        tok.encode(batch["kinematics"][..., :5], batch["mask"], batch["tracks"])
