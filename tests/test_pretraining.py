"""Masked Particle Modelling: masking, both encoder schemes, the five targets, the CLI."""

from __future__ import annotations

import functools
import json
import os

import pytest
import torch

from jetfm.cli import main as cli_main
from jetfm.configuration import JetFMConfig
from jetfm.modeling.backbone import JetFMModel
from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling, sample_particle_mask
from jetfm.modeling.targets.kmeans import fit_kmeans
from jetfm.modeling.targets.vqvae import tokenizer_options
from jetfm.modeling.tokenizer import ParticleTokenizer, ParticleTokenizerConfig
from jetfm.training import ComponentLossTrainer, run_training, training_arguments
from tests._synthetic_jets import SyntheticJetDataset, pad_collate, synthetic_jets

TARGETS = ("regression", "flow", "diffusion", "kmeans", "vqvae")


def _tokenizer(seed: int = 0) -> ParticleTokenizer:
    """A small tokenizer whose codebook is k-means initialised on synthetic jets."""
    torch.manual_seed(seed)
    tok = ParticleTokenizer(
        ParticleTokenizerConfig(
            feature_groups={"kinematics": 7, "tracks": 4}, num_codes=32, hidden_size=32,
            num_layers=1, intermediate_size=64,
        )
    )  # fmt: skip
    jets = synthetic_jets(64, seed=5)
    tok.train()(kinematics=jets["kinematics"], mask=jets["mask"], tracks=jets["tracks"])
    return tok.eval()


def _model(target: str, mask_in_encoder: bool = False, seed: int = 0, **kw):
    options = {"num_codes": 32} if target == "kmeans" else {}
    tok = None
    if target == "vqvae":
        tok = _tokenizer()
        options = {"tokenizer": tokenizer_options(tok)}
    config = JetFMConfig.from_preset(
        "tiny", mpm_target=target, mask_in_encoder=mask_in_encoder, target_options=options, **kw
    )
    torch.manual_seed(seed)
    model = JetFMForMaskedParticleModeling(config)
    if target == "kmeans":
        jets = synthetic_jets(256, seed=7)
        points = torch.cat([jets["kinematics"], jets["tracks"]], -1)[jets["mask"]]
        model.target.set_centroids(fit_kmeans(points, 32, steps=50))
    if tok is not None:
        model.target.set_tokenizer(tok)
    return model


@functools.cache
def _trained(target: str, mask_in_encoder: bool = False, steps: int = 150):
    """Train through run_training on synthetic jets; returns (model, logged losses)."""
    import tempfile

    model = _model(target, mask_in_encoder)
    with tempfile.TemporaryDirectory() as out:
        args = training_arguments(
            out, seed=0, max_steps=steps, per_device_train_batch_size=16, logging_steps=1,
            learning_rate=2e-3, warmup_steps=0, lr_scheduler_type="constant",
            save_strategy="no",
        )  # fmt: skip
        trainer = run_training(
            model, args, SyntheticJetDataset(512), data_collator=pad_collate,
            trainer_cls=ComponentLossTrainer,
        )  # fmt: skip
    losses = [h["target_loss"] for h in trainer.state.log_history if "target_loss" in h]
    return model.eval(), losses


def _batch(seed: int = 3, n: int = 8):
    jets = synthetic_jets(n, seed=seed)
    jets.pop("jet_id")
    return jets


# --- masking ------------------------------------------------------------------------------
def test_mask_fraction_and_bounds():
    mask = torch.zeros(6, 20, dtype=torch.bool)
    for i, n in enumerate([0, 1, 2, 5, 10, 20]):
        mask[i, :n] = True
    g = torch.Generator().manual_seed(0)
    masked = sample_particle_mask(mask, 0.4, g)
    assert not (masked & ~mask).any(), "padding was masked"
    assert masked.sum(1).tolist() == [0, 1, 1, 2, 4, 8]
    visible = (mask & ~masked).sum(1)
    assert (visible[2:] >= 1).all()
    # Random: a different draw masks different particles, every real particle can be chosen.
    draws = torch.stack([sample_particle_mask(mask, 0.4) for _ in range(50)])
    assert draws.any(0)[mask].all()
    assert not torch.equal(draws[0], draws[1])


@pytest.mark.parametrize("mask_in_encoder", [False, True])
def test_masked_content_is_hidden_from_the_model(mask_in_encoder):
    """Decoder states may not depend on the masked particles' features (no leak)."""
    model = _model("regression", mask_in_encoder).eval()
    b = _batch()
    masked = sample_particle_mask(b["mask"], 0.4, torch.Generator().manual_seed(1))
    dec, _ = model.decode(b["kinematics"], b["mask"], b["pid"], b["tracks"], masked)
    noisy = {k: v.clone() for k, v in b.items()}
    for g in ("kinematics", "tracks", "pid"):
        noisy[g][masked] = torch.randn_like(noisy[g][masked]) * 5
    dec2, _ = model.decode(noisy["kinematics"], b["mask"], noisy["pid"], noisy["tracks"], masked)
    torch.testing.assert_close(dec2[b["mask"]], dec[b["mask"]])
    # ... while the visible particles do matter.
    noisy["kinematics"][b["mask"] & ~masked] += 1.0
    dec3, _ = model.decode(noisy["kinematics"], b["mask"], noisy["pid"], noisy["tracks"], masked)
    assert not torch.allclose(dec3[masked], dec[masked])


def test_dropping_equals_encoding_only_the_visible_particles():
    model = _model("regression").eval()
    b = _batch(n=4)
    masked = sample_particle_mask(b["mask"], 0.4, torch.Generator().manual_seed(2))
    states, registers = model._encode_visible(
        b["kinematics"], b["pid"], b["tracks"], b["mask"], masked
    )
    for i in range(4):  # reference: each jet alone, only its visible particles
        keep = b["mask"][i] & ~masked[i]
        ref = model.jetfm.encode(
            model.jetfm.embed(b["kinematics"][i : i + 1, keep], b["pid"][i : i + 1, keep],
                              b["tracks"][i : i + 1, keep]),
            torch.ones(1, int(keep.sum()), dtype=torch.bool),
        )[0]  # fmt: skip
        r = model.config.num_register_tokens
        torch.testing.assert_close(states[i, keep], ref[0, r:], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(registers[i, :r], ref[0, :r], atol=1e-5, rtol=1e-4)
        assert registers.shape[1] == r  # no jet token by default
        assert torch.all(states[i, ~keep] == 0)


def test_rank_embeddings_tell_masked_slots_apart():
    model = _model("regression").eval()
    b = _batch()
    out = model(**b)
    first = out.masked[0].nonzero().flatten()
    assert len(first) >= 2
    s = out.decoder_states[: len(first)]
    assert not torch.allclose(s[0], s[1]), "identical predictions for two masked slots"


@pytest.mark.parametrize("mask_in_encoder", [False, True])
def test_mpm_trains_the_pooler_through_the_jet_token(mask_in_encoder):
    """The fine-tuning heads read the pooled jet state: with ``decoder_jet_token`` the MPM
    loss reaches the class-attention pooler; without it the pooler gets no gradient."""
    pooler = ("jetfm.cls_token", "jetfm.class_attention.0.attn.q.weight")
    for jet_token in (True, False):
        model = _model("regression", mask_in_encoder, decoder_jet_token=jet_token).train()
        model(**_batch()).loss.backward()
        grads = dict(model.named_parameters())
        for name in pooler:
            g = grads[name].grad
            reached = g is not None and bool(g.abs().sum() > 0)
            assert reached is jet_token, (name, jet_token)
    # the jet token is the pooled state of the visible particles alone
    model = _model("regression", decoder_jet_token=True).eval()
    b = _batch(n=2)
    masked = sample_particle_mask(b["mask"], 0.4, torch.Generator().manual_seed(2))
    _, context = model._encode_visible(b["kinematics"], b["pid"], b["tracks"], b["mask"], masked)
    keep = b["mask"][0] & ~masked[0]
    alone = model.jetfm(b["kinematics"][:1, keep], pid=b["pid"][:1, keep],
                        tracks=b["tracks"][:1, keep]).pooler_output  # fmt: skip
    torch.testing.assert_close(context[0, -1], alone[0], atol=1e-5, rtol=1e-4)


def test_decoder_without_visible_particles_reads_only_the_context():
    """``decoder_sees_visible=False``: the masked slots' decoder states depend on the visible
    particles only through the context tokens (no copying of pT-neighbours)."""
    model = _model("regression", decoder_sees_visible=False).eval()
    b = _batch(n=2)
    masked = sample_particle_mask(b["mask"], 0.4, torch.Generator().manual_seed(3))
    states, context = model._encode_visible(
        b["kinematics"], b["pid"], b["tracks"], b["mask"], masked
    )
    decoder = model.decoder
    out = decoder(states, context, b["mask"], masked, sees_visible=False)
    scrambled = torch.where(masked.unsqueeze(-1), states, 5 * torch.randn_like(states))
    again = decoder(scrambled, context, b["mask"], masked, sees_visible=False)
    torch.testing.assert_close(out[masked], again[masked])
    # the default decoder does read them, and the context still matters without them
    seen = decoder(scrambled, context, b["mask"], masked, sees_visible=True)
    assert not torch.allclose(seen[masked], decoder(states, context, b["mask"], masked)[masked])
    moved = decoder(states, context + 1.0, b["mask"], masked, sees_visible=False)
    assert not torch.allclose(out[masked], moved[masked])
    model.train()
    model(**_batch()).loss.backward()
    assert model.jetfm.layers[0].attn.q.weight.grad.abs().sum() > 0


def test_context_gain_measures_use_of_the_jets_own_context():
    """A trained model decodes a jet better from its own context than from another jet's
    (synthetic particles' pT scales with the jet's pT; measured 0.29 nats), an untrained one
    not at all; shifting by the batch size hands every jet its own context back (gain 0)."""
    from jetfm.diagnostics import context_gain

    batches = [_batch(seed=11, n=32), _batch(seed=12, n=32)]
    trained, _ = _trained("kmeans")
    gain = context_gain(trained, batches)
    fresh = context_gain(_model("kmeans"), batches)
    assert gain["context_gain"] > 0.1, gain
    assert abs(fresh["context_gain"]) < 0.05, fresh
    own = trained(**{k: v for k, v in batches[0].items()}).target_loss
    assert abs(context_gain(trained, batches[:1])["target_loss"] - float(own)) < 1e-5
    assert abs(context_gain(trained, batches, shift=32)["context_gain"]) < 1e-6
    assert trained.training is False
    with pytest.raises(ValueError, match="at least two jets"):
        context_gain(trained, [_batch(n=1)])


def test_representation_collapse_sees_a_collapsed_backbone():
    """A random embedding spreads particles over several directions; one whose output
    depends on a single input feature puts them on one line (rank 1, top share 1). A block
    that adds one large vector to every particle makes the final states alike."""
    from jetfm.diagnostics import representation_collapse as collapse_of

    model = _model("regression")
    batches = [_batch(seed=s) for s in range(3)]
    healthy = collapse_of(model, batches)
    assert healthy["embedding_rank"] > 1.5 and healthy["embedding_top_share"] < 0.9, healthy
    assert healthy["state_common_share"] < 0.7, healthy
    with torch.no_grad():  # the feed-forward output bias is added to every particle
        block = model.jetfm.layers[-1]
        block.ls2.gamma.fill_(1.0)
        block.ff.down.bias.copy_(100 * torch.randn_like(block.ff.down.bias))
    assert collapse_of(model, batches)["state_common_share"] > 0.95
    emb = model.jetfm.embeddings
    with torch.no_grad():  # only feature 0 reaches the output, through one linear direction
        first = emb.mlps["kinematics"]
        first[0].weight[:, 1:] = 0
        first[0].bias.zero_()
        first[1] = torch.nn.Identity()
        for name in ("tracks",):
            emb.mlps[name][2].weight.zero_(), emb.mlps[name][2].bias.zero_()
        emb.pid_type.weight.zero_(), emb.pid_linear.weight.zero_(), emb.pid_linear.bias.zero_()
    collapsed = collapse_of(model, batches)
    assert collapsed["embedding_rank"] < 1.2 and collapsed["embedding_top_share"] > 0.95, collapsed
    assert model.training  # left as found
    with pytest.raises(ValueError, match="two real particles"):
        collapse_of(model, [])


@pytest.mark.parametrize("scale", [0.0, 0.1])
def test_embedding_lr_scale(scale, tmp_path):
    """mpm_embedding_lr_scale=0 keeps the particle embedding at its initial weights while the
    rest trains; another value gives the embedding its own LR in the Trainer's optimiser."""
    model = _model("regression", mpm_embedding_lr_scale=scale)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = training_arguments(
        str(tmp_path), seed=0, max_steps=5, per_device_train_batch_size=16, learning_rate=1e-3,
        warmup_steps=0, lr_scheduler_type="constant", save_strategy="no",
    )  # fmt: skip
    trainer = run_training(
        model, args, SyntheticJetDataset(64), data_collator=pad_collate,
        trainer_cls=ComponentLossTrainer,
    )  # fmt: skip
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    in_embedding = {n for n in before if n.startswith("jetfm.embeddings.")}
    assert in_embedding and moved - in_embedding
    lrs = sorted({g["lr"] for g in trainer.optimizer.param_groups})
    if scale == 0:
        assert not moved & in_embedding
        assert lrs == [1e-3]  # frozen parameters are not in the optimiser at all
    else:
        assert in_embedding <= moved
        assert lrs == pytest.approx([1e-4, 1e-3])
    reloaded = JetFMForMaskedParticleModeling.from_pretrained(tmp_path)
    assert reloaded.config.mpm_embedding_lr_scale == scale


def test_group_dropout_in_pre_training_only(tmp_path):
    """mpm_group_dropout=1 pre-trains on kinematics alone (the targets keep every group); the
    saved backbone, loaded for fine-tuning, drops nothing."""
    model = _model("regression", mpm_group_dropout=1.0)
    b = _batch()
    kin_only = dict(kinematics=b["kinematics"], mask=b["mask"])
    model.eval()
    reference = model.jetfm(**kin_only).last_hidden_state
    assert not torch.allclose(model.jetfm(**b).last_hidden_state, reference)
    model.train()
    torch.testing.assert_close(model.jetfm(**b).last_hidden_state, reference)
    torch.manual_seed(0)
    assert torch.isfinite(model(**b).loss)
    model.save_pretrained(tmp_path)
    backbone = JetFMModel.from_pretrained(tmp_path).train()
    assert backbone.config.group_dropout_prob == 0 and backbone.config.mpm_group_dropout == 1
    assert not torch.allclose(backbone(**b).last_hidden_state, reference)
    with pytest.raises(ValueError, match="mpm_group_dropout"):
        JetFMConfig(mpm_group_dropout=1.5)


def test_encoder_delay_freezes_then_ramps_the_encoder(tmp_path):
    """mpm_encoder_delay=0.2 over 10 steps: encoder LR 0 for 2 steps, half at step 2, full
    from step 3; the decoder trains at the full LR throughout."""
    from transformers import TrainerCallback

    seen: list[dict[str, float]] = []

    class RecordLR(TrainerCallback):
        def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
            seen.append({g["jetfm_part"]: g["lr"] for g in optimizer.param_groups})

    model = _model("regression", mpm_encoder_delay=0.2)
    encoder_before = model.jetfm.layers[0].attn.q.weight.detach().clone()
    args = training_arguments(
        str(tmp_path), seed=0, max_steps=10, per_device_train_batch_size=16, learning_rate=1e-3,
        warmup_steps=0, lr_scheduler_type="constant", save_strategy="no",
    )  # fmt: skip
    run_training(
        model, args, SyntheticJetDataset(64), data_collator=pad_collate,
        trainer_cls=ComponentLossTrainer, callbacks=[RecordLR()],
    )  # fmt: skip
    encoder = [round(lr / 1e-3, 3) for lr in (step["encoder"] for step in seen)]
    assert encoder[:5] == [0.0, 0.0, 0.5, 1.0, 1.0], encoder
    assert all(step["rest"] == pytest.approx(1e-3) for step in seen)
    assert not torch.equal(model.jetfm.layers[0].attn.q.weight, encoder_before)
    with pytest.raises(ValueError, match="mpm_encoder_delay"):
        JetFMConfig(mpm_encoder_delay=0.7)


def test_pid_side_target_optional():
    model = _model("regression").eval()
    b = _batch()
    with_pid = model(**b)
    assert with_pid.pid_loss is not None and with_pid.pid_logits.shape[-1] == 11
    torch.testing.assert_close(with_pid.loss, with_pid.target_loss + with_pid.pid_loss)
    no_pid = model(kinematics=b["kinematics"], mask=b["mask"], tracks=b["tracks"])
    assert no_pid.pid_loss is None and torch.isfinite(no_pid.loss)
    kin_only = _model("flow", feature_groups={"kinematics": 7}).eval()
    out = kin_only(kinematics=b["kinematics"], mask=b["mask"])
    assert out.pid_loss is None and torch.isfinite(out.loss)


def test_eval_masks_are_reproducible_and_training_masks_random():
    model = _model("diffusion")
    b = _batch()
    model.eval()
    a, c = model(**b), model(**b)
    assert torch.equal(a.masked, c.masked) and torch.equal(a.loss, c.loss)
    model.train()
    assert not torch.equal(model(**b).masked, model(**b).masked)


# --- the static-shape step: same loss and gradients as boolean indexing -------------------
def _loss_and_grads(model, batch, masked, static_shapes):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(11)  # the same training-mode noise draws for both forms
    out = model(**batch, masked=masked, static_shapes=static_shapes)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads


@pytest.mark.parametrize(
    "target,mask_in_encoder",
    [(t, False) for t in TARGETS] + [("diffusion", True)],
)
def test_static_shape_step_equals_boolean_indexing(target, mask_in_encoder):
    """On a fixed mask, the step addressed by index tensors (static shapes, padding entries
    weighted 0) gives the loss, component losses and gradients of boolean indexing."""
    model = _model(target, mask_in_encoder).train()
    b = _batch(seed=4, n=7)
    masked = sample_particle_mask(b["mask"], 0.4, torch.Generator().manual_seed(5))
    ref, ref_grads = _loss_and_grads(model, b, masked, static_shapes=False)
    new, new_grads = _loss_and_grads(model, b, masked, static_shapes=True)
    m, k = int(masked.sum()), int(masked.sum(1).max())
    assert ref.decoder_states.shape[0] == m and ref.masked_index is None
    assert new.masked_index.shape[1] >= k and new.decoder_states.shape[0] > m  # padded entries
    torch.testing.assert_close(new.entries(new.decoder_states), ref.decoder_states)
    torch.testing.assert_close(new.loss, ref.loss, rtol=1e-5, atol=1e-6)
    for key in ("target_loss", "pid_loss"):
        if getattr(ref, key) is not None:
            torch.testing.assert_close(getattr(new, key), getattr(ref, key))
    assert new_grads.keys() == ref_grads.keys() and len(ref_grads) > 10
    for name, grad in ref_grads.items():
        torch.testing.assert_close(new_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_static_widths_bound_every_jet():
    """The index tensors are wide enough for any jet of N slots, and no wider."""
    model = _model("regression")
    for n in (1, 2, 5, 17, 33, 64):
        most_masked, most_visible = model.static_widths(n)
        mask = torch.arange(n)[None, :] < torch.arange(1, n + 1)[:, None]  # 1..n particles
        masked = sample_particle_mask(mask, model.config.mask_fraction)
        assert int(masked.sum(1).max()) == most_masked
        assert int((mask & ~masked).sum(1).max()) == most_visible


def test_bucket_padding_does_not_change_the_loss():
    """Padding a batch to a longer bucket adds only padding: a deterministic target's loss
    and the decoder states at the masked particles are unchanged."""
    model = _model("regression").eval()
    b = _batch(seed=6, n=5)
    masked = sample_particle_mask(b["mask"], 0.4, torch.Generator().manual_seed(1))
    extra = 9
    padded = {k: torch.nn.functional.pad(v, (0, 0, 0, extra) if v.dim() == 3 else (0, extra))
              for k, v in b.items()}  # fmt: skip
    wide_masked = torch.nn.functional.pad(masked, (0, extra))
    short = model(**b, masked=masked)
    long = model(**padded, masked=wide_masked)
    torch.testing.assert_close(long.loss, short.loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(long.entries(long.predictions), short.entries(short.predictions))


# --- training: the loss falls for every target and both schemes --------------------------
@pytest.mark.parametrize(
    "target,mask_in_encoder",
    [(t, False) for t in TARGETS] + [("regression", True), ("flow", True)],
)
def test_loss_falls(target, mask_in_encoder):
    _, losses = _trained(target, mask_in_encoder)
    first, last = sum(losses[:15]) / 15, sum(losses[-15:]) / 15
    assert last < first - 0.05 * abs(first), f"{target}: {first:.3f} -> {last:.3f}"


def test_context_is_used():
    """A trained model predicts masked particles' energy scale (log pT, log E, which share the
    jet's pT and η) better from their own jet than from another jet's visible particles:
    information flows encoder → decoder."""
    model, _ = _trained("regression")
    jets = synthetic_jets(64, seed=11, n_min=16, n_max=16)  # equal sizes: swap contexts
    jets.pop("jet_id")
    masked = sample_particle_mask(jets["mask"], 0.4, torch.Generator().manual_seed(0))
    true = jets["kinematics"][masked][:, :4]

    def error(batch):
        return (model(**batch, masked=masked).predictions[:, :4] - true).pow(2).mean()

    own = error(jets)
    swapped = {k: v.roll(1, dims=0) for k, v in jets.items()}
    mixed = {
        k: torch.where(masked[..., None], jets[k], swapped[k]) if k != "mask" else jets[k]
        for k in jets
    }
    other = error(mixed)
    assert own < 0.92 * other, (float(own), float(other))


@pytest.mark.parametrize("target", ["diffusion", "flow"])
def test_sampling_reconstructs_masked_particles(target):
    model, _ = _trained(target)
    b = synthetic_jets(64, seed=12)
    b.pop("jet_id")
    gen = torch.Generator().manual_seed(0)
    samples, masked = model.reconstruct(**b, generator=gen)
    true = b["kinematics"][masked]
    assert samples["kinematics"].shape == true.shape
    assert samples["tracks"].shape == b["tracks"][masked].shape
    assert torch.isfinite(samples["kinematics"]).all()
    # Trained samples are closer to the truth than the untrained model's.
    fresh = _model(target).eval()
    raw, _ = fresh.reconstruct(**b, masked=masked, generator=torch.Generator().manual_seed(0))
    err = (samples["kinematics"] - true).pow(2).mean()
    err_raw = (raw["kinematics"] - true).pow(2).mean()
    assert err < err_raw, (float(err), float(err_raw))


# --- checkpoints --------------------------------------------------------------------------
@pytest.mark.parametrize("target", TARGETS)
def test_save_load_round_trip(target, tmp_path):
    model = _model(target, seed=4).eval()
    b = _batch()
    out = model(**b)
    model.save_pretrained(tmp_path)
    loaded = JetFMForMaskedParticleModeling.from_pretrained(tmp_path).eval()
    out2 = loaded(**b)
    torch.testing.assert_close(out2.loss, out.loss)
    torch.testing.assert_close(out2.decoder_states, out.decoder_states)
    backbone = JetFMModel.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(backbone(**b).last_hidden_state, model.jetfm(**b).last_hidden_state)
    if target == "vqvae":
        assert not any(p.requires_grad for p in loaded.target.tokenizer.parameters())
    if target == "kmeans":
        torch.testing.assert_close(loaded.target.centroids, model.target.centroids)


# --- CLI on real ROOT files (the data layer path) -----------------------------------------
def _cli(*argv) -> int:
    return cli_main([str(a) for a in argv])


def test_cli_pretrains_every_target_and_round_trips(jetclass_file, tmp_path):
    from jetfm.data.batching import JetCollator
    from jetfm.data.datasets import JetDataset
    from jetfm.data.processor import JetProcessor

    tok_dir = tmp_path / "tok"
    common = ["--data", jetclass_file, "--batch-size", 32, "--logging-steps", 2, "--save-steps", 4]
    assert _cli("tokenizer", "train", *common, "--output", tok_dir, "--max-steps", 4,
                "--codes", 16, "--hidden-size", 32, "--layers", 1) == 0  # fmt: skip
    stats = json.loads((tok_dir / "codebook_stats.json").read_text())
    assert 0 < stats["usage"] <= 1 and 1 <= stats["perplexity"] <= 16
    for target in TARGETS:
        out = tmp_path / target
        extra = ["--tokenizer", tok_dir] if target == "vqvae" else []
        extra += ["--num-codes", 16] if target == "kmeans" else []
        extra += ["--streaming"] if target == "diffusion" else []
        extra += ["--val", jetclass_file] if target in ("flow", "kmeans") else []
        # grouped LRs and the encoder ramp must survive checkpointing and --resume below
        extra += (
            ["--encoder-delay", 0.25, "--embedding-lr-scale", 0, "--group-dropout", 0.5]
            if target == "regression"
            else []
        )
        assert _cli("pretrain", *common, "--target", target, "--size", "tiny", "--output", out,
                    "--max-steps", 5, "--keep-checkpoints", *extra) == 0  # fmt: skip
        names = {p.name for p in out.iterdir()}
        assert {"config.json", "model.safetensors", "preprocessor_config.json",
                "training_args.json", "run_config.json", "checkpoint-4",
                "training_log.csv", "training_curves.png"} <= names  # fmt: skip
        # the curves show the MPM components beside the total loss
        log_columns = (out / "training_log.csv").read_text().splitlines()[0].split(",")
        assert "loss" in log_columns and "target_loss" in log_columns
        assert json.loads((out / "run_config.json").read_text())["global_step"] == 5
        umask = os.umask(0)
        os.umask(umask)
        assert (out / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask  # shareable
        assert f"model_name: {target}\n" in (out / "README.md").read_text()  # not the temp dir
        # the jet-mass check of the reconstructions, for targets that sample particles
        assert (target == "flow") == ("mpm_reconstruction.png" in names)
        if target == "vqvae":
            assert (out / "tokenizer" / "model.safetensors").exists()
            assert ParticleTokenizer.from_pretrained(out / "tokenizer").config.num_codes == 16
        processor = JetProcessor.from_pretrained(out)
        batch = JetCollator(targets=())([JetDataset(jetclass_file, processor, targets=())[i]
                                         for i in range(8)])  # fmt: skip
        model = JetFMForMaskedParticleModeling.from_pretrained(out).eval()
        again = JetFMForMaskedParticleModeling.from_pretrained(out).eval()
        torch.testing.assert_close(model(**batch).loss, again(**batch).loss)
        assert model.config.mpm_target == target
        backbone = JetFMModel.from_pretrained(out).eval()
        torch.testing.assert_close(
            backbone(**batch).pooler_output, model.jetfm(**batch).pooler_output
        )
    # Resume: continues from checkpoint-4 of the regression run up to 8 steps.
    out = tmp_path / "regression"
    assert _cli("pretrain", *common, "--target", "regression", "--size", "tiny", "--output",
                out, "--max-steps", 8, "--resume") == 0  # fmt: skip
    run = json.loads((out / "run_config.json").read_text())
    assert run["global_step"] == 8 and run["resumed_from"].endswith("checkpoint-5")
    resumed = JetFMForMaskedParticleModeling.from_pretrained(out)
    assert (resumed.config.mpm_encoder_delay, resumed.config.mpm_embedding_lr_scale) == (0.25, 0)
    assert resumed.config.mpm_group_dropout == 0.5
    assert resumed.jetfm.embeddings.group_dropout_prob == 0.5


def test_cli_errors_are_clear(jetclass_file, tmp_path, capsys):
    base = ["pretrain", "--data", jetclass_file, "--size", "tiny", "--output", tmp_path / "x"]
    assert _cli(*base, "--target", "vqvae", "--max-steps", 2) == 2
    assert "--tokenizer" in capsys.readouterr().err
    assert _cli(*base, "--streaming") == 2
    assert "--max-steps" in capsys.readouterr().err
    assert _cli(*base, "--target", "vqvae", "--tokenizer", tmp_path, "--max-steps", 2) == 2
    assert "config.json" in capsys.readouterr().err
    # out-of-range numbers are refused before any file is read (here: none exists)
    nowhere = ["pretrain", "--data", tmp_path / "missing", "--output", tmp_path / "y"]
    for flag, value in (("--group-dropout", 1.5), ("--mask-fraction", 1.0),
                        ("--encoder-delay", 0.5), ("--embedding-lr-scale", -1)):  # fmt: skip
        assert _cli(*nowhere, flag, value, "--max-steps", 2) == 2
        err = capsys.readouterr().err
        assert flag in err and "missing" not in err, err


def test_flow_scores_track_parameters_of_charged_particles_only():
    """A neutral particle's track features are a fill value, not a measurement: the flow loss
    must not depend on them (a constant is a delta function a flow could fit without bound)."""
    model = _model("flow").eval()
    b = _batch(n=6)
    masked = sample_particle_mask(b["mask"], 0.4, torch.Generator().manual_seed(1))
    neutral = b["pid"][..., 0] == 0
    assert (masked & neutral).any() and (masked & ~neutral).any()
    changed = dict(b, tracks=torch.where(neutral[..., None], b["tracks"] + 3.0, b["tracks"]))
    changed_charged = dict(b, tracks=torch.where(~neutral[..., None], b["tracks"] + 3.0,
                                                 b["tracks"]))  # fmt: skip
    with torch.no_grad():
        base = model(**b, masked=masked).loss
        # the encoder also sees the visible neutrals' tracks: only hide masked ones' changes
        swap = dict(changed, tracks=torch.where(masked[..., None], changed["tracks"],
                                                b["tracks"]))  # fmt: skip
        assert torch.allclose(model(**swap, masked=masked).loss, base)
        swap_c = dict(changed_charged, tracks=torch.where(masked[..., None],
                                                          changed_charged["tracks"], b["tracks"]))  # fmt: skip
        assert not torch.allclose(model(**swap_c, masked=masked).loss, base)


# --- continuing pre-training (--init-from) --------------------------------------------------
def _weights(folder, prefix: str = "") -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def test_continuing_from_a_run_and_from_its_release_is_the_same(
    jetclass_file, jetclass_files, tmp_path
):
    """--init-from takes the architecture, the normalisation, the backbone and (same target) the
    decoder: from a `jetfm pretrain` output or from its release (backbone + mpm_decoder
    .safetensors) the continued run is identical; the backbone starts where it stopped."""
    from jetfm.data.processor import JetProcessor
    from jetfm.modeling.continuation import steps_behind

    common = ["--data", jetclass_file, "--batch-size", 32, "--target", "diffusion",
              "--save-steps", 50, "--logging-steps", 1, "--seed", 3]  # fmt: skip
    first = tmp_path / "first"  # on other jets, so that refitted statistics would differ
    assert _cli("pretrain", *common[2:], "--data", jetclass_files[0].parent, "--size", "tiny",
                "--output", first, "--max-steps", 6) == 0  # fmt: skip
    assert _cli("release", "--name", "rel", "--out", tmp_path / "cards", "--pretrained",
                first) == 0  # fmt: skip
    release = tmp_path / "cards" / "rel"
    assert (release / "mpm_decoder.safetensors").is_file()
    # the whole MPM model loads from the release as from the run: backbone + shipped decoder
    from_run = JetFMForMaskedParticleModeling.from_pretrained(first).state_dict()
    from_release = JetFMForMaskedParticleModeling.from_pretrained(release).state_dict()
    assert from_run.keys() == from_release.keys()
    for key in from_run:
        torch.testing.assert_close(from_release[key], from_run[key], msg=key)
    for source, out in ((first, "from_run"), (release, "from_release")):
        assert _cli("pretrain", *common, "--init-from", source, "--output", tmp_path / out,
                    "--max-steps", 4, "--keep-checkpoints") == 0  # fmt: skip
    a, b = _weights(tmp_path / "from_run"), _weights(tmp_path / "from_release")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)
    run = json.loads((tmp_path / "from_release" / "run_config.json").read_text())
    assert run["init_from"] == str(release) and run["global_step"] == 4
    # the steps behind the start are counted (6 in the first run), and the card states the total
    assert run["steps_before"] == 6
    # ... and so does every checkpoint of the continued run, finished or not
    ckpt = tmp_path / "from_release" / "checkpoint-4"
    assert json.loads((ckpt / "continuation.json").read_text())["steps_before"] == 6
    (tmp_path / "from_release" / "run_config.json").rename(tmp_path / "run_config.moved")
    assert steps_behind(ckpt) == 10
    (tmp_path / "run_config.moved").rename(tmp_path / "from_release" / "run_config.json")
    assert _cli("card", tmp_path / "from_release") == 0
    card = (tmp_path / "from_release" / "README.md").read_text()
    assert "for 10 optimiser steps in all (6 behind the checkpoint" in card and "`rel`" in card
    # not refitted: the continued backbone reads its inputs as it learnt to
    assert (JetProcessor.from_pretrained(tmp_path / "from_run").to_dict()
            == JetProcessor.from_pretrained(first).to_dict())  # fmt: skip

    # 4 small steps move the backbone far less than the distance to a fresh random one
    start, moved = _weights(first, "jetfm."), _weights(tmp_path / "from_run", "jetfm.")
    config = JetFMForMaskedParticleModeling.from_pretrained(first).config
    fresh = JetFMForMaskedParticleModeling(config).jetfm.state_dict()
    step = sum((moved[k] - start[k]).norm() ** 2 for k in start) ** 0.5
    random_gap = sum((fresh[k] - start[k]).norm() ** 2 for k in start) ** 0.5
    assert 0 < step < 0.2 * random_gap


def test_a_release_without_its_decoder_loads_with_a_clear_warning(tmp_path, caplog):
    """Older releases ship the backbone alone (and, for the tokenized target, its tokenizer):
    the MPM model still loads, with the shipped tokenizer, and says the decoder is fresh."""
    model = _model("vqvae")
    release = tmp_path / "rel"
    model.jetfm.save_pretrained(release)  # backbone keys without prefix, as `jetfm release`
    model.target.tokenizer.save_pretrained(release / "tokenizer")
    with caplog.at_level("WARNING"):
        loaded = JetFMForMaskedParticleModeling.from_pretrained(release)
    assert "no mpm_decoder.safetensors" in caplog.text and "freshly initialised" in caplog.text
    assert "MISSING" not in caplog.text  # not transformers' key table on top
    for part in ("jetfm", "target.tokenizer"):
        want = model.get_submodule(part).state_dict()
        got = loaded.get_submodule(part).state_dict()
        for key in want:
            torch.testing.assert_close(got[key], want[key], msg=f"{part}.{key}")
    assert not any(p.requires_grad for p in loaded.target.tokenizer.parameters())


def test_continuing_with_another_target_trains_a_fresh_decoder(jetclass_file, tmp_path, caplog):
    common = ["--data", jetclass_file, "--batch-size", 32, "--save-steps", 50]
    first = tmp_path / "first"
    assert _cli("pretrain", *common, "--size", "tiny", "--target", "regression", "--output",
                first, "--max-steps", 3) == 0  # fmt: skip
    out = tmp_path / "flow"
    with caplog.at_level("INFO"):
        assert _cli("pretrain", *common, "--target", "flow", "--init-from", first, "--output",
                    out, "--max-steps", 3) == 0  # fmt: skip
    assert "for another target" in caplog.text
    model = JetFMForMaskedParticleModeling.from_pretrained(out)
    assert model.config.mpm_target == "flow" and model.config.size == "tiny"


def test_init_from_errors_are_clear(jetclass_file, kinematics_only_file, tmp_path, capsys):
    base = ["pretrain", "--data", jetclass_file, "--output", tmp_path / "x", "--max-steps", 2]
    tiny = "mpm-flow-tiny"  # shipped: kinematics, pid and tracks
    assert _cli(*base, "--init-from", tiny, "--size", "base") == 2
    assert "tiny model" in capsys.readouterr().err
    assert _cli(*base, "--init-from", tiny, "--layer-scale-init", 0.1) == 2
    assert "--layer-scale-init" in capsys.readouterr().err
    assert _cli(*base, "--init-from", tiny, "--groups", "kinematics") == 2
    assert "feature groups" in capsys.readouterr().err
    assert _cli(*base[:2], kinematics_only_file, *base[3:], "--init-from", tiny) == 2
    err = capsys.readouterr().err
    assert "kin.root" in err and "pid" in err
    assert _cli(*base, "--init-from", tmp_path / "nowhere") == 2
    assert "nowhere" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_steps_behind_counts_every_stage_and_trainer_checkpoints(tmp_path):
    """A chain of continued runs adds up; a Trainer checkpoint counts its own step plus the
    steps its (finished) run started with; a folder with no record gives None."""
    from jetfm.modeling.continuation import steps_behind

    run = tmp_path / "stage3"
    (run / "checkpoint-400").mkdir(parents=True)
    (run / "run_config.json").write_text(json.dumps({"global_step": 5000, "steps_before": 12400}))
    (run / "checkpoint-400" / "trainer_state.json").write_text(json.dumps({"global_step": 400}))
    assert steps_behind(run) == 17400
    assert steps_behind(run / "checkpoint-400") == 12800
    first = tmp_path / "first"
    first.mkdir()
    (first / "run_config.json").write_text(json.dumps({"global_step": 7200}))
    assert steps_behind(first) == 7200
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "run_config.json").write_text("{not json")
    assert steps_behind(tmp_path / "bare") is None
    assert steps_behind(tmp_path / "nowhere") is None


def test_continuing_with_its_decoder_trains_the_encoder_from_the_first_step(
    jetclass_file, tmp_path, caplog
):
    """The encoder delay lets a *fresh* decoder learn to read the encoder first. A run that
    continues a checkpoint's decoder does not need it: by default its encoder learns from the
    first step (a long continued run would otherwise keep its backbone frozen for a quarter of
    its steps). A fresh decoder (another target) keeps the delay, and the log says so."""
    common = ["--data", jetclass_file, "--batch-size", 32, "--logging-steps", 1, "--seed", 5,
              "--save-steps", 50]  # fmt: skip
    first = tmp_path / "first"
    assert _cli("pretrain", *common, "--size", "tiny", "--target", "regression", "--output",
                first, "--max-steps", 3) == 0  # fmt: skip
    start = _weights(first, "jetfm.")
    out = tmp_path / "same"
    with caplog.at_level("INFO"):
        assert _cli("pretrain", *common, "--target", "regression", "--init-from", first,
                    "--output", out, "--max-steps", 8) == 0  # fmt: skip
    assert JetFMForMaskedParticleModeling.from_pretrained(out).config.mpm_encoder_delay == 0
    assert "initialised from" in caplog.text and "decoder" in caplog.text
    assert "the encoder stays frozen" not in caplog.text
    moved = _weights(out, "jetfm.")
    assert any(not torch.equal(moved[k], start[k]) for k in start if k.startswith("layers."))
    # the embedding stays frozen at its initialisation (--embedding-lr-scale 0)
    assert all(torch.equal(moved[k], start[k]) for k in start if k.startswith("embeddings."))

    caplog.clear()
    other = tmp_path / "other"
    with caplog.at_level("INFO"):
        assert _cli("pretrain", *common, "--target", "flow", "--init-from", first, "--output",
                    other, "--max-steps", 8) == 0  # fmt: skip
    assert JetFMForMaskedParticleModeling.from_pretrained(other).config.mpm_encoder_delay == 0.25
    assert "the encoder stays frozen for the first 2 of 8 steps" in caplog.text
    # an explicit --encoder-delay is kept when continuing the decoder too
    assert _cli("pretrain", *common, "--target", "regression", "--init-from", first, "--output",
                tmp_path / "delayed", "--max-steps", 2, "--encoder-delay", 0.1) == 0  # fmt: skip
    delayed = JetFMForMaskedParticleModeling.from_pretrained(tmp_path / "delayed")
    assert delayed.config.mpm_encoder_delay == 0.1
