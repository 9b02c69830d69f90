"""The backbone: permutation equivariance, padding invariance, groups, presets, round trip."""

from __future__ import annotations

import pytest
import torch

from jetfm.configuration import SIZE_PRESETS, JetFMConfig
from jetfm.modeling import JetFMModel, pid_categories


def _batch(b: int = 3, n: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    pid = torch.zeros(b, n, 6)
    flag = torch.randint(0, 5, (b, n), generator=g)
    pid[..., 1:].scatter_(-1, flag.unsqueeze(-1), 1.0)
    pid[..., 0] = torch.where(flag == 3, torch.randint(0, 2, (b, n), generator=g) * 2.0 - 1, 0.0)
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[0, 7:] = False
    mask[1, 3:] = False
    return {
        "kinematics": torch.randn(b, n, 7, generator=g),
        "pid": pid,
        "tracks": torch.randn(b, n, 4, generator=g),
        "mask": mask,
    }


@pytest.fixture(scope="module")
def model() -> JetFMModel:
    torch.manual_seed(0)
    return JetFMModel(JetFMConfig.from_preset("tiny")).eval()


def test_permuting_particles_permutes_outputs(model):
    batch = _batch()
    perm = torch.randperm(batch["mask"].shape[1], generator=torch.Generator().manual_seed(1))
    out = model(**batch)
    out_p = model(**{k: v[:, perm] for k, v in batch.items()})
    torch.testing.assert_close(out_p.last_hidden_state, out.last_hidden_state[:, perm])
    torch.testing.assert_close(out_p.pooler_output, out.pooler_output)


def test_ordered_option_breaks_equivariance_on_purpose():
    torch.manual_seed(0)
    model = JetFMModel(JetFMConfig.from_preset("tiny", ordered=True)).eval()
    batch = _batch()
    perm = torch.arange(batch["mask"].shape[1]).flip(0)
    out = model(**batch).pooler_output
    out_p = model(**{k: v[:, perm] for k, v in batch.items()}).pooler_output
    assert not torch.allclose(out, out_p, atol=1e-5)


def test_padding_content_is_ignored(model):
    batch = _batch()
    noisy = {k: v.clone() for k, v in batch.items()}
    pad = ~batch["mask"]
    noisy["kinematics"][pad] = 1e3
    noisy["tracks"][pad] = -7.0
    out, out_n = model(**batch), model(**noisy)
    torch.testing.assert_close(out.pooler_output, out_n.pooler_output)
    assert torch.all(out_n.last_hidden_state[pad] == 0)
    # Extra padding slots change nothing either.
    wider = {k: torch.cat([v, torch.zeros_like(v[:, :5])], dim=1) for k, v in batch.items()}
    torch.testing.assert_close(model(**wider).pooler_output, out.pooler_output)


def test_kinematics_only_input_and_bad_shapes(model):
    batch = _batch()
    out = model(kinematics=batch["kinematics"], mask=batch["mask"])
    assert out.pooler_output.shape == (3, model.config.hidden_size)
    assert torch.isfinite(out.pooler_output).all()
    with pytest.raises(ValueError, match="kinematics"):
        model(kinematics=batch["kinematics"][..., :5], mask=batch["mask"])
    with pytest.raises(ValueError, match="tracks"):
        model(kinematics=batch["kinematics"], tracks=batch["tracks"][:, :4], mask=batch["mask"])
    kin_only = JetFMModel(JetFMConfig.from_preset("tiny", feature_groups={"kinematics": 7}))
    with pytest.raises(ValueError, match="pid"):
        kin_only(kinematics=batch["kinematics"], pid=batch["pid"], mask=batch["mask"])


def test_single_particle_jet_is_finite(model):
    batch = _batch()
    batch["mask"][2] = False
    batch["mask"][2, 0] = True
    assert torch.isfinite(model(**batch).pooler_output).all()


def test_group_dropout_only_in_training():
    torch.manual_seed(0)
    model = JetFMModel(JetFMConfig.from_preset("tiny", group_dropout_prob=1.0))
    batch = _batch()
    kin_only = model.eval()(kinematics=batch["kinematics"], mask=batch["mask"]).pooler_output
    model.train()
    dropped = model(**batch).pooler_output  # every optional group dropped
    torch.testing.assert_close(dropped, kin_only)
    model.eval()
    assert not torch.allclose(model(**batch).pooler_output, kin_only)


def test_pid_categories_distinguish_charge_and_type():
    pid = torch.tensor(
        [
            [-1, 1, 0, 0, 0, 0],  # e-
            [1, 1, 0, 0, 0, 0],  # e+
            [0, 0, 0, 1, 0, 0],  # photon
            [1, 0, 0, 0, 1, 0],  # h+
            [-1, 0, 0, 0, 1, 0],  # h-
            [0, 0, 0, 0, 0, 1],  # h0
            [0, 0, 0, 0, 0, 0],  # unknown
        ],
        dtype=torch.float,
    )
    cats = pid_categories(pid).tolist()
    assert len(set(cats)) == len(cats)


@pytest.mark.parametrize("size", sorted(SIZE_PRESETS))
def test_size_presets_grow(size):
    n = sum(p.numel() for p in JetFMModel(JetFMConfig.from_preset(size)).parameters())
    bounds = {"tiny": (1e4, 1e5), "small": (1e5, 5e5), "base": (5e5, 2e6),
              "large": (4e6, 1.2e7)}[size]  # fmt: skip
    assert bounds[0] < n < bounds[1]


def test_save_load_round_trip_and_auto_model(tmp_path, model):
    from transformers import AutoConfig, AutoModel

    batch = _batch()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert AutoConfig.from_pretrained(tmp_path).model_type == "jetfm"
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, JetFMModel)
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    torch.testing.assert_close(loaded(**batch).pooler_output, model(**batch).pooler_output)


def test_config_validation():
    with pytest.raises(ValueError, match="kinematics"):
        JetFMConfig(feature_groups={"pid": 6})
    with pytest.raises(ValueError, match="mpm_target"):
        JetFMConfig(mpm_target="bert")
    with pytest.raises(ValueError, match="divisible"):
        JetFMConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="unknown size"):
        JetFMConfig.from_preset("huge")
