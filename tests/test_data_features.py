"""Features (physics), truncation, targets, and the JetProcessor (fit, normalise, save/load)."""

from __future__ import annotations

import json
import logging

import awkward as ak
import numpy as np
import pytest
import uproot

from jetfm.cli import main
from jetfm.data import (
    FEATURE_GROUPS,
    IGNORE_INDEX,
    JetDataset,
    JetProcessor,
    ReadSpec,
    compute_features,
    iter_raw_chunks,
    plan_work,
    wrap_phi,
)
from jetfm.errors import JetFMError
from tests.fixtures_data import write_jetclass_file

KIN = {name: i for i, name in enumerate(FEATURE_GROUPS["kinematics"])}


def _chunk(path, max_particles=128, targets=("labels", "track_labels", "vertex_labels"), **kw):
    spec = ReadSpec(targets=targets, label_names=("QCD", "Wqq"), **kw)
    raw = next(iter_raw_chunks(plan_work(path, spec, 10_000).units, spec))
    return compute_features(raw, spec, max_particles), raw


def test_wrap_phi_range():
    x = np.array([np.pi, -np.pi, 3 * np.pi, 2 * np.pi - 0.1, -2 * np.pi + 0.1, 0.0])
    out = wrap_phi(x)
    np.testing.assert_allclose(out, [np.pi, np.pi, np.pi, -0.1, 0.1, 0.0], atol=1e-12)
    assert np.all((out > -np.pi) & (out <= np.pi))


def test_hand_computed_features(tmp_path):
    """Two particles across the φ = ±π seam: every kinematic feature by hand."""
    pt = np.array([30.0, 10.0])
    eta = np.array([0.5, 0.7])
    phi = np.array([np.pi - 0.05, -np.pi + 0.05])  # 0.1 apart across the seam
    px, py, pz, e = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)
    path = tmp_path / "hand.root"
    with uproot.recreate(path) as fh:
        parts = {k: ak.Array([v.astype(np.float64)]) for k, v in
                 {"px": px, "py": py, "pz": pz, "energy": e}.items()}  # fmt: skip
        fh.mktree("tree", {"part": ak.zip(parts).type.content})
        fh["tree"].extend({"part": ak.zip(parts)})
    chunk, _ = _chunk(path, targets=(), feature_groups=("kinematics",))
    kin = chunk.features["kinematics"][0].astype(np.float64)
    # jet axis = sum of the constituents (no jet_* branches in this file)
    jpx, jpy, jpz, je = px.sum(), py.sum(), pz.sum(), e.sum()
    jpt, jeta, jphi = np.hypot(jpx, jpy), np.arcsinh(jpz / np.hypot(jpx, jpy)), np.arctan2(jpy, jpx)
    dphi = np.angle(np.exp(1j * (phi - jphi)))
    expected = np.stack(
        [np.log(pt), np.log(e), np.log(pt / jpt), np.log(e / je), eta - jeta, dphi,
         np.hypot(eta - jeta, dphi)], axis=1,
    )  # fmt: skip
    np.testing.assert_allclose(kin, expected, rtol=1e-5, atol=1e-5)
    assert abs(kin[0, KIN["dphi"]] - kin[1, KIN["dphi"]]) == pytest.approx(0.1, abs=1e-5)


def test_kinematics_physics(jetclass_file):
    chunk, _ = _chunk(jetclass_file)
    kin, mask = chunk.features["kinematics"], chunk.mask
    log_pt = np.where(mask, kin[..., KIN["log_pt"]], -1e9)
    # sorted by pT, descending, padding after the real particles
    assert np.all(np.diff(log_pt, axis=1)[mask[:, 1:]] <= 0)
    pt_rel = np.where(mask, np.exp(kin[..., KIN["log_pt_rel"]]), 0.0)
    # constituents' scalar pT sum ≥ the jet pT, and close to it for collimated jets
    assert np.all(pt_rel.sum(axis=1) >= 1 - 1e-4) and np.all(pt_rel.sum(axis=1) < 1.1)
    # the jet axis is the pT centroid: pT-weighted Δη, Δφ average to ~0
    assert np.abs((pt_rel * kin[..., KIN["deta"]]).sum(axis=1)).max() < 0.02
    assert np.abs((pt_rel * kin[..., KIN["dphi"]]).sum(axis=1)).max() < 0.02
    # Wqq has two separated prongs: wider pT-weighted spread than QCD
    spread = (pt_rel * kin[..., KIN["delta_r"]]).sum(axis=1)
    labels = chunk.targets["labels"]
    assert np.median(spread[labels == 1]) > 1.5 * np.median(spread[labels == 0])
    # padding is zero
    assert np.all(kin[~mask] == 0)


def test_jet_axis_branches_vs_constituent_sum(tmp_path):
    no_axis = write_jetclass_file(tmp_path / "a.root", 50, seed=4, with_jet_branches=False)
    axis = write_jetclass_file(tmp_path / "b.root", 50, seed=4)
    a, _ = _chunk(no_axis)
    b, _ = _chunk(axis)
    np.testing.assert_allclose(a.features["kinematics"], b.features["kinematics"], atol=2e-4)


def test_pid_and_tracks_features(jetclass_file):
    chunk, raw = _chunk(jetclass_file)
    mask = chunk.mask
    pid = chunk.features["pid"][mask]
    tracks = chunk.features["tracks"][mask]
    origin = chunk.targets["track_labels"][mask]
    vertex = chunk.targets["vertex_labels"][mask]
    charged = pid[:, 0] != 0
    # flags are one-hot per particle, charge only on charged types
    np.testing.assert_array_equal(pid[:, 1:].sum(axis=1), 1)
    assert np.all(pid[charged][:, [3, 5]] == 0)
    # neutrals: no track parameters, ignored by the track / vertex losses
    assert np.all(tracks[~charged] == 0)
    assert np.all(origin[~charged] == IGNORE_INDEX) and np.all(vertex[~charged] == IGNORE_INDEX)
    assert np.all((origin[charged] >= 0) & (origin[charged] <= 5))
    # b-hadron tracks are displaced: larger |tanh d0| than primary tracks
    d0 = np.abs(tracks[:, 0])
    assert np.median(d0[origin == 1]) > 5 * np.median(d0[origin == 0])
    # truth consistency of the fixture: primary tracks at vertex 0, b-decay tracks elsewhere
    assert np.all(vertex[origin == 0] == 0) and np.all(vertex[origin == 1] > 0)
    # padding
    assert np.all(chunk.targets["track_labels"][~mask] == IGNORE_INDEX)
    # the same particles as in the file (pT-sorted): compare the sorted charge lists
    raw_charge = ak.sort(raw.fields["charge"], axis=1)
    ours = ak.sort(ak.unflatten(pid[:, 0], chunk.counts), axis=1)
    assert ak.all(raw_charge == ours)


def test_max_particles_truncation(jetclass_file, caplog):
    full, _ = _chunk(jetclass_file)
    cut, _ = _chunk(jetclass_file, max_particles=10)
    assert cut.counts.max() == 10 and cut.features["kinematics"].shape[1] == 10
    np.testing.assert_array_equal(cut.n_truncated, np.maximum(full.counts - 10, 0))
    # kept particles are the 10 leading ones
    np.testing.assert_array_equal(cut.features["pid"], full.features["pid"][:, :10])
    np.testing.assert_array_equal(cut.targets["track_labels"], full.targets["track_labels"][:, :10])
    with caplog.at_level(logging.INFO):
        ds = JetDataset(jetclass_file, max_particles=10)
    assert ds.stats["truncated_particles"] == int(cut.n_truncated.sum()) > 0
    assert "beyond max_particles=10" in caplog.text


# --- processor -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted(jetclass_files):
    return JetProcessor().fit(jetclass_files, step_size=50, progress=False)


def test_fit_statistics_match_in_memory(fitted, jetclass_files):
    raw = JetDataset(jetclass_files, targets=())
    for group in ("kinematics", "tracks"):
        flat = raw._flat[group].astype(np.float64)
        np.testing.assert_allclose(fitted.mean[group], flat.mean(axis=0), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(fitted.std[group], flat.std(axis=0), rtol=1e-5)
    assert "pid" not in fitted.mean and fitted.num_jets_fitted == 360
    assert fitted.label_names == ["QCD", "Wqq"]
    # normalised dataset: zero mean / unit variance over all real particles, pid untouched
    norm = JetDataset(jetclass_files, fitted, targets=())
    kin = norm._flat["kinematics"].astype(np.float64)
    np.testing.assert_allclose(kin.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(kin.std(axis=0), 1, atol=1e-4)
    np.testing.assert_array_equal(norm._flat["pid"], raw._flat["pid"])
    back = fitted.unnormalise({"kinematics": norm._flat["kinematics"]})["kinematics"]
    np.testing.assert_allclose(back, raw._flat["kinematics"], atol=1e-4)


def test_fit_max_jets(jetclass_files):
    part = JetProcessor().fit(jetclass_files, step_size=50, max_jets=70, progress=False)
    first70 = JetDataset(jetclass_files[0], targets=())
    flat = first70.flat_arrays(np.arange(70))[0]["kinematics"].astype(np.float64)
    assert part.num_jets_fitted == 70
    np.testing.assert_allclose(part.mean["kinematics"], flat.mean(axis=0), rtol=1e-6, atol=1e-7)


def test_constant_feature_gets_unit_std(tmp_path):
    def no_errors(branches):
        return branches | {k: branches[k] * 0 for k in ("part_d0err", "part_dzerr")}

    path = write_jetclass_file(tmp_path / "f.root", 20, mutate=no_errors)
    proc = JetProcessor().fit(path, progress=False)
    assert proc.std["tracks"][2:] == [1.0, 1.0]


def test_save_load_roundtrip(fitted, tmp_path, jetclass_file):
    files = fitted.save_pretrained(tmp_path / "proc")
    assert [p.rsplit("/", 1)[-1] for p in files] == ["preprocessor_config.json"]
    data = json.loads((tmp_path / "proc" / "preprocessor_config.json").read_text())
    assert data["feature_names"]["kinematics"] == list(FEATURE_GROUPS["kinematics"])
    assert data["feature_extractor_type"] == "JetProcessor"
    loaded = JetProcessor.from_pretrained(tmp_path / "proc")
    assert loaded.to_dict() == fitted.to_dict()
    with uproot.open(jetclass_file) as fh:
        arrays = fh["tree"].arrays()
    a, b = fitted(arrays, targets=("labels",)), loaded(arrays, targets=("labels",))
    np.testing.assert_array_equal(a.features["tracks"], b.features["tracks"])
    np.testing.assert_array_equal(a.targets["labels"], b.targets["labels"])
    assert not list((tmp_path / "proc").glob("*.tmp"))  # atomic write leaves no temp file


def test_unknown_keys_warn(fitted, tmp_path):
    fitted.save_pretrained(tmp_path)
    path = tmp_path / "preprocessor_config.json"
    data = json.loads(path.read_text())
    data["future_option"] = {"x": 1}
    path.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="future_option"):
        loaded = JetProcessor.from_pretrained(tmp_path)
    assert loaded.mean == fitted.mean and not hasattr(loaded, "future_option")


def test_changed_feature_definitions_refused(fitted, tmp_path):
    fitted.save_pretrained(tmp_path)
    path = tmp_path / "preprocessor_config.json"
    data = json.loads(path.read_text())
    data["feature_names"]["kinematics"][0] = "pt"
    path.write_text(json.dumps(data))
    with pytest.raises(JetFMError, match="differ"):
        JetProcessor.from_pretrained(tmp_path)


def test_unfitted_processor_cannot_normalise(jetclass_file):
    with pytest.raises(JetFMError, match="no normalisation statistics"):
        JetProcessor()({"part_px": []})


def test_stats_cli(jetclass_files, tmp_path, fitted):
    base = jetclass_files[0].parent
    out = tmp_path / "stats"
    assert main(["stats", "--data", str(base / "*.root"), "--output", str(out),
                 "--step-size", "50"]) == 0  # fmt: skip
    loaded = JetProcessor.from_pretrained(out)
    assert loaded.feature_groups == ["kinematics", "pid", "tracks"]
    np.testing.assert_allclose(loaded.mean["kinematics"], fitted.mean["kinematics"], rtol=1e-9)
