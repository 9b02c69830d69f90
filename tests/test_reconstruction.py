"""The jet-mass check of MPM reconstructions (jetfm.reconstruction), on real Pythia jets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jetfm.configuration import JetFMConfig
from jetfm.errors import JetFMError
from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling
from jetfm.reconstruction import jet_mass, masked_reconstruction, plot_reconstruction


def test_jet_mass_is_the_two_particle_formula_and_needs_no_jet_axis():
    rng = np.random.default_rng(0)
    pt = rng.uniform(5, 100, (50, 3))
    deta, dphi = rng.normal(0, 0.3, (2, 50, 3))
    mask = np.array([True, True, False])[None].repeat(50, 0)  # the third particle is padding
    m = jet_mass(pt, deta, dphi, mask)
    d_eta, d_phi = deta[:, 0] - deta[:, 1], dphi[:, 0] - dphi[:, 1]
    expected = np.sqrt(2 * pt[:, 0] * pt[:, 1] * (np.cosh(d_eta) - np.cos(d_phi)))
    np.testing.assert_allclose(m, expected, rtol=1e-6)
    # a boost along the beam (η shift) and a rotation about it (φ shift) change nothing
    np.testing.assert_allclose(jet_mass(pt, deta + 0.7, dphi - 0.4, mask), m, rtol=1e-6)


def test_the_released_decoder_restores_the_mass_that_masking_removes(pythia_dir, tmp_path):
    """Real Pythia jets: dropping 40 % of the particles leaves ~60 % of the jet mass; the
    shipped mpm-flow-base decoder samples them back to within a few % of the true mass, a
    fresh decoder on the same backbone does not."""
    from jetfm.data.datasets import JetDataset
    from jetfm.data.processor import JetProcessor

    processor = JetProcessor.from_pretrained("mpm-flow-base")
    jets = JetDataset(pythia_dir, processor, targets=())
    model = JetFMForMaskedParticleModeling.from_pretrained("mpm-flow-base")
    result = masked_reconstruction(model, jets, processor, n_jets=300, batch_size=128)
    stats = result.summary()
    assert stats["jets"] == 300
    assert stats["visible_mass_response"] < 0.75
    assert abs(stats["reconstructed_mass_response"] - 1) < 0.1, stats
    assert np.all(result.visible_mass <= result.true_mass + 1e-3)  # a subset weighs less

    torch.manual_seed(0)
    fresh = JetFMForMaskedParticleModeling(model.config)
    fresh.jetfm.load_state_dict(model.jetfm.state_dict())
    fresh_stats = masked_reconstruction(
        fresh, jets, processor, n_jets=300, batch_size=128
    ).summary()
    off = abs(fresh_stats["reconstructed_mass_response"] - 1)
    assert off > 2 * abs(stats["reconstructed_mass_response"] - 1), (fresh_stats, stats)
    assert fresh_stats["visible_mass_response"] == stats["visible_mass_response"]  # same masks

    again = masked_reconstruction(model, jets, processor, n_jets=300, batch_size=128)
    np.testing.assert_array_equal(again.reconstructed_mass, result.reconstructed_mass)
    plot = plot_reconstruction(result, tmp_path / "reco.png", title="mpm-flow-base")
    assert plot.stat().st_size > 10_000 and not list(tmp_path.glob(".*"))  # no temp file left


def test_code_targets_are_refused_clearly():
    config = JetFMConfig.from_preset("tiny", mpm_target="kmeans", target_options={"num_codes": 8})
    with pytest.raises(JetFMError, match="--target flow, diffusion or regression"):
        masked_reconstruction(JetFMForMaskedParticleModeling(config), [], None)
    flow = JetFMForMaskedParticleModeling(JetFMConfig.from_preset("tiny", mpm_target="flow"))
    processor = type("P", (), {"feature_groups": ("kinematics",)})()
    with pytest.raises(JetFMError, match="in-memory JetDataset, got list"):
        masked_reconstruction(flow, [], processor)


def test_the_study_check_compares_shipped_and_fresh_decoders(pythia_dir, tmp_path):
    """studies/check_reconstruction.py: the shipped decoder rebuilds the jet mass better than
    a fresh one on the same masks."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "studies" / "check_reconstruction.py"
    spec = importlib.util.spec_from_file_location("check_reconstruction", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--data", str(pythia_dir), "--checkpoints", "mpm-flow-base", "--out",
                 str(tmp_path), "--jets", "120"])  # fmt: skip
    report = json.loads((tmp_path / "reconstruction.json").read_text())
    shipped = report["models"]["mpm-flow-base"]["shipped decoder"]
    fresh = report["models"]["mpm-flow-base"]["fresh decoder"]
    assert shipped["visible_mass_response"] == fresh["visible_mass_response"]  # same masks
    assert abs(shipped["reconstructed_mass_response"] - 1) < abs(
        fresh["reconstructed_mass_response"] - 1
    )
    assert {p.name for p in tmp_path.glob("*.png")} == {
        "mpm-flow-base_shipped.png", "mpm-flow-base_fresh.png"
    }  # fmt: skip


def test_jetfm_evaluate_checks_a_pre_training_checkpoint(pythia_dir, tmp_path, capsys):
    """`jetfm evaluate` on a release with its decoder runs the reconstruction check on
    unlabelled use of the files; a release without a decoder is refused with the reason."""
    import json

    from jetfm.cli import main

    out = tmp_path / "m.json"
    assert main(["evaluate", "--model", "mpm-flow-base", "--data", str(pythia_dir), "--output",
                 str(out), "--plots", str(tmp_path / "plots"), "--no-progress"]) == 0  # fmt: skip
    metrics = json.loads(out.read_text())
    assert metrics["task"] == "masked-particle reconstruction" and metrics["jets"] == 1200
    assert abs(metrics["reconstructed_mass_response"] - 1) < 0.1
    assert metrics["visible_mass_response"] < 0.75
    assert (tmp_path / "plots" / "mpm_reconstruction.png").is_file()
    capsys.readouterr()
    assert main(["evaluate", "--model", "mpm-flow-tiny", "--data", str(pythia_dir), "--output",
                 str(tmp_path / "t.json")]) == 2  # fmt: skip
    assert "MPM decoder" in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()
