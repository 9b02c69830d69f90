"""The fast CPU pre-training step: bf16 autocast (``--bf16``) and compiled steps on a CPU."""

from __future__ import annotations

import tempfile

import pytest
import torch
import torch.nn.functional as F
from torch._dynamo.utils import counters

from jetfm.configuration import JetFMConfig
from jetfm.data.schema import IGNORE_INDEX, TRACK_ORIGINS
from jetfm.modeling.layers import MultiHeadAttention, scaled_dot_product_attention
from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling
from jetfm.pretraining import PretrainArguments, trainer_arguments
from jetfm.training import ComponentLossTrainer, compile_model, run_training, training_arguments
from tests._synthetic_jets import SyntheticJetDataset, pad_collate, synthetic_jets

CLASSES = ["QCD_light", "QCD_gluon", "QCD_heavy", "Wqq", "Tbqq"]


def _truth_model(seed: int = 0) -> JetFMForMaskedParticleModeling:
    """The released recipe in small: flow target, class and origin objectives."""
    config = JetFMConfig.from_preset(
        "tiny", mpm_target="flow", target_options={"flow_transforms": 1},
        truth_objectives={"class": 1.0, "origin": 0.5},
        pretrain_classes=CLASSES, pretrain_label_names=["QCD", "Wqq", "Tbqq"],
    )  # fmt: skip
    torch.manual_seed(seed)
    return JetFMForMaskedParticleModeling(config).train()


def _truth_batch(n: int = 8, seed: int = 2) -> dict[str, torch.Tensor]:
    batch = synthetic_jets(n, seed=seed)
    batch.pop("jet_id")
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    batch["labels"] = labels
    batch["parton_labels"] = torch.where(labels == 0, torch.randint(0, 3, (n,), generator=g),
                                         IGNORE_INDEX)  # fmt: skip
    origin = torch.randint(0, len(TRACK_ORIGINS), batch["mask"].shape, generator=g)
    charged = batch["mask"] & (batch["pid"][..., 0] != 0)
    batch["track_labels"] = torch.where(charged, origin, IGNORE_INDEX)
    return batch


def test_bf16_attention_on_a_cpu_is_computed_in_float32():
    """bf16 queries on a CPU go through the float32 kernel (its bf16 backward is several
    times slower): the output is that of float32 attention rounded to bf16, under autocast
    too, and the gradients reach the bf16 inputs."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(4, 2, 10, 16, generator=g).bfloat16().requires_grad_() for _ in "qkv")
    mask = (torch.arange(10) < torch.tensor([10, 7, 3, 9])[:, None])[:, None, None, :]
    expected = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = scaled_dot_product_attention(q, k, v, mask, 0.0)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y, expected.bfloat16(), rtol=0, atol=0)
    y.float().square().sum().backward()
    assert all(t.grad is not None and t.grad.dtype == torch.bfloat16 for t in (q, k, v))
    # a whole attention layer under autocast stays within bf16 rounding of float32
    torch.manual_seed(0)
    layer = MultiHeadAttention(32, 2)
    x = torch.randn(4, 10, 32)
    key_mask = mask[:, 0, 0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = layer(x, key_mask)
    torch.testing.assert_close(fast.float(), layer(x, key_mask), rtol=0.05, atol=0.02)


def test_compiled_cpu_step_gives_the_eager_loss_in_bf16_with_truth_objectives():
    """The pre-training step of the release recipe (flow target, class and origin
    objectives) compiled on a CPU under bf16 autocast (``--compile --bf16``) gives the eager
    step's losses and finite gradients for every parameter; bf16 stays within its rounding of
    float32. The backend is ``aot_eager`` (the graphs inductor compiles, without generating
    C++ kernels, which takes minutes on a CPU; ``benchmarks/check_cpu_precision.py`` runs
    inductor). Float32 compiled steps: tests/test_fast_pretraining.py."""
    import torch._dynamo

    eager, compiled, fp32 = _truth_model(), _truth_model(), _truth_model()
    compile_model(compiled, backend="aot_eager")
    batch = _truth_batch()
    torch._dynamo.reset()
    counters.clear()
    results = {}
    for name, model in (("eager", eager), ("compiled", compiled), ("fp32", fp32)):
        torch.manual_seed(7)  # the same masks and flow noise
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name != "fp32"):
            out = model(**batch)
        out.loss.backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        results[name] = (out.loss.detach(), out.class_loss, out.origin_loss, grads)
    assert counters["stats"]["unique_graphs"] >= 1  # it did compile
    (loss_e, cls_e, org_e, grads_e), (loss_c, cls_c, org_c, grads_c) = (
        results["eager"], results["compiled"])  # fmt: skip
    for compiled_value, eager_value in ((loss_c, loss_e), (cls_c, cls_e), (org_c, org_e)):
        torch.testing.assert_close(compiled_value, eager_value, rtol=1e-2, atol=1e-2)
    assert grads_c.keys() == grads_e.keys() == results["fp32"][3].keys()
    assert all(torch.isfinite(g).all() for g in grads_c.values())
    # bf16 rounding moves the loss by far less than training does
    assert abs(float(loss_e) - float(results["fp32"][0])) < 0.02 * abs(float(loss_e)) + 0.02


def test_bf16_autocast_trains_on_a_cpu():
    """``cpu_bf16=True`` (``jetfm pretrain --bf16``): the Trainer runs the matrix products in
    bf16 on a CPU, the loss falls, the weights stay float32; off by default."""
    assert trainer_arguments(PretrainArguments(data="x", output_dir="o", bf16=True)).bf16
    assert not trainer_arguments(PretrainArguments(data="x", output_dir="o")).bf16
    config = JetFMConfig.from_preset("tiny", mpm_target="regression")
    torch.manual_seed(0)
    model = JetFMForMaskedParticleModeling(config)
    seen: set[torch.dtype] = set()
    model.decoder.input_proj.register_forward_hook(lambda m, i, o: seen.add(o.dtype))
    with tempfile.TemporaryDirectory() as out:
        args = training_arguments(
            out, seed=0, cpu_bf16=True, max_steps=60, per_device_train_batch_size=16,
            logging_steps=1, learning_rate=2e-3, warmup_steps=0, lr_scheduler_type="constant",
            save_strategy="no",
        )  # fmt: skip
        trainer = run_training(
            model, args, SyntheticJetDataset(256), data_collator=pad_collate,
            trainer_cls=ComponentLossTrainer,
        )  # fmt: skip
    assert args.bf16 and seen == {torch.bfloat16}
    losses = [h["target_loss"] for h in trainer.state.log_history if "target_loss" in h]
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.9 * first, (first, last)
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("cpu_bf16", [False, True])
def test_cpu_bf16_is_off_unless_asked(cpu_bf16, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("on CUDA bf16 follows the GPU")
    assert training_arguments(str(tmp_path), cpu_bf16=cpu_bf16).bf16 is cpu_bf16
