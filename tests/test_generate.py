"""The Pythia 8 + FastJet generator: physics sanity, truth labels, files, CLI, resume."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from jetfm import generation
from jetfm.cli import main
from jetfm.data.schema import JETCLASS_LABELS
from jetfm.errors import JetFMError, MissingExtraError
from jetfm.generation import SUPPORTED_CLASSES
from tests.fixtures_pythia import PYTHIA_CLASSES, PYTHIA_JETS_PER_CLASS, PYTHIA_SEED


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


HAVE_GENERATOR = _importable("pythia8mc") and _importable("fastjet")
#: For tests that run the generator directly (fixture users skip through the fixture).
needs_generator = pytest.mark.skipif(not HAVE_GENERATOR, reason="needs jetfm[generate]")

# --- the extra is missing -------------------------------------------------------------------


def test_missing_extra_gives_pip_hint(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "pythia8mc", None)  # import now raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install \"?jetfm\[generate\]"):
        generation.require_extra()
    with pytest.raises(MissingExtraError, match=r"jetfm\[generate\]"):
        _ = generation.generate_jets
    rc = main(["generate", "--jets-per-class", "5", "--out", str(tmp_path / "x")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "jetfm generate" in err and "jetfm[generate]" in err
    assert not (tmp_path / "x").exists()


MASS_WINDOWS = {  # soft-drop mass peak (GeV): median and histogram mode must lie inside
    "Wqq": (72.0, 90.0),
    "Zqq": (82.0, 100.0),
    "Hbb": (112.0, 135.0),
    "Hcc": (112.0, 135.0),
    "Tbqq": (160.0, 188.0),
}


def _flat(x) -> np.ndarray:
    return ak.to_numpy(ak.flatten(x))


def _mode(values: np.ndarray, width: float = 5.0) -> float:
    hist, edges = np.histogram(values, bins=np.arange(0.0, 300.0 + width, width))
    return float(edges[np.argmax(hist)] + width / 2)


# --- physics --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MASS_WINDOWS))
def test_softdrop_mass_peaks_at_the_resonance(pythia_arrays, name):
    sdmass = ak.to_numpy(pythia_arrays[name].jet_sdmass)
    lo, hi = MASS_WINDOWS[name]
    assert lo < np.median(sdmass) < hi
    assert lo < _mode(sdmass) < hi


def test_qcd_mass_is_low_and_unpeaked(pythia_arrays):
    qcd = ak.to_numpy(pythia_arrays["QCD"].jet_sdmass)
    assert np.median(qcd) < 60.0
    # each resonance fills its own mass window far more often than QCD does
    for name, (lo, hi) in MASS_WINDOWS.items():
        sig = ak.to_numpy(pythia_arrays[name].jet_sdmass)
        frac_sig, frac_qcd = np.mean((sig > lo) & (sig < hi)), np.mean((qcd > lo) & (qcd < hi))
        assert frac_sig > 0.4 and frac_sig > 3 * frac_qcd, name


def test_truth_matched_resonance_is_inside_the_jet(pythia_arrays):
    expected_mass = {"Wqq": 80.4, "Zqq": 91.2, "Hbb": 125.0, "Hcc": 125.0, "Tbqq": 172.5}
    for name, mass in expected_mass.items():
        a = pythia_arrays[name]
        assert abs(np.median(ak.to_numpy(a.aux_genpart_mass)) - mass) < 3.0, name
        dphi = np.angle(np.exp(1j * ak.to_numpy(a.aux_genpart_phi - a.jet_phi)))
        dr = np.hypot(ak.to_numpy(a.aux_genpart_eta - a.jet_eta), dphi)
        assert np.all(dr < 0.8), name
    pid = np.abs(ak.to_numpy(pythia_arrays["QCD"].aux_genpart_pid))
    assert np.all((pid <= 5) | (pid == 21))


def test_b_tracks_in_hbb_and_top_but_rarely_in_qcd(pythia_arrays):
    def frac_with(name, codes):
        origin = pythia_arrays[name].part_origin
        hit = ak.unflatten(np.isin(_flat(origin), codes), ak.num(origin))
        return float(np.mean(ak.to_numpy(ak.any(hit, axis=1))))

    assert frac_with("Hbb", [1, 2]) >= 0.9
    assert frac_with("Tbqq", [1, 2]) >= 0.9
    assert frac_with("QCD", [1, 2]) < 0.3
    assert frac_with("Wqq", [1, 2]) < 0.15  # W → cb is CKM suppressed
    assert frac_with("Hcc", [3]) >= 0.8  # c hadrons not from b
    assert frac_with("Hcc", [1, 2]) < 0.15


def test_displaced_tracks_have_large_impact_parameters(pythia_arrays):
    a = pythia_arrays["Hbb"]
    origin, d0 = _flat(a.part_origin), _flat(a.part_d0val)
    d0err, dz = _flat(a.part_d0err), _flat(a.part_dzval)
    primary, from_b = origin == 0, np.isin(origin, [1, 2])
    assert np.median(np.abs(d0[from_b])) > 3 * np.median(np.abs(d0[primary]))
    assert np.median(np.abs(dz[from_b])) > 2 * np.median(np.abs(dz[primary]))
    assert np.median(np.abs(d0[from_b] / d0err[from_b])) > 3.0


def test_impact_parameters_are_smeared_not_perfect(pythia_arrays):
    a = pythia_arrays["QCD"]
    origin, charge = _flat(a.part_origin), _flat(a.part_charge)
    d0, d0err = _flat(a.part_d0val), _flat(a.part_d0err)
    dz, dzerr = _flat(a.part_dzval), _flat(a.part_dzerr)
    primary = origin == 0
    assert np.all(d0[primary] != 0.0) and np.all(dz[primary] != 0.0)
    # prompt tracks: pulls of order one (resolution ⊕ 10 µm beam spot), errors grow at low pT
    pull = d0[primary] / d0err[primary]
    assert 0.5 < np.median(np.abs(pull)) < 1.2
    assert 0.8 < np.std(dz[primary] / dzerr[primary]) < 1.5
    pt = np.hypot(_flat(a.part_px), _flat(a.part_py))[primary]
    assert np.median(d0err[primary][pt < 2]) > 2 * np.median(d0err[primary][pt > 20])
    neutral = charge == 0
    for x in (d0, d0err, dz, dzerr):
        assert np.all(x[neutral] == 0.0)
    assert np.all(d0err[~neutral] > 0.0)


@pytest.mark.parametrize("name", ["Hbb", "Tbqq", "QCD"])
def test_vertex_labels_agree_with_origins(pythia_arrays, name):
    a = pythia_arrays[name]
    charge, origin, vtx = _flat(a.part_charge), _flat(a.part_origin), _flat(a.part_vtx)
    np.testing.assert_array_equal(charge == 0, origin == -1)
    np.testing.assert_array_equal(origin == -1, vtx == -1)
    np.testing.assert_array_equal(origin == 0, vtx == 0)
    jet = np.repeat(np.arange(len(a)), ak.to_numpy(ak.num(a.part_vtx)))
    sec = vtx > 0
    # every (jet, vertex) group has a single origin class ...
    key = jet[sec] * 1000 + vtx[sec]
    uniq, inverse = np.unique(key, return_inverse=True)
    per_group = np.unique(np.stack([inverse, origin[sec]], axis=1), axis=0)
    assert len(per_group) == inverse.max() + 1
    # ... and vertices are numbered 1..k within each jet
    n_sv = ak.to_numpy(ak.max(a.part_vtx, axis=1))
    n_distinct = np.bincount(uniq // 1000, minlength=len(a))
    np.testing.assert_array_equal(np.maximum(n_sv, 0), n_distinct)
    if name == "Hbb":  # two b hadrons, each usually with a charm cascade
        assert np.mean(n_sv) > 2.0


# --- file layout ----------------------------------------------------------------------------


def test_files_follow_the_jetclass_layout(pythia_dir, pythia_arrays):
    labels = [f"label_{c}" for c in SUPPORTED_CLASSES]
    assert set(SUPPORTED_CLASSES) <= set(JETCLASS_LABELS)
    with uproot.open(pythia_dir / "Hbb_000.root") as f:
        tree = f["tree"]
        assert isinstance(tree, uproot.TTree)
        names = set(tree.keys())
    expected = {
        "part_px", "part_py", "part_pz", "part_energy", "part_deta", "part_dphi",
        "part_charge", "part_isElectron", "part_isMuon", "part_isPhoton",
        "part_isChargedHadron", "part_isNeutralHadron", "part_d0val", "part_d0err",
        "part_dzval", "part_dzerr", "part_origin", "part_vtx", "jet_pt", "jet_eta",
        "jet_phi", "jet_energy", "jet_sdmass", "jet_nparticles", "jet_tau1", "jet_tau2",
        "jet_tau3", *labels,
    }  # fmt: skip
    assert expected <= names
    for name, a in pythia_arrays.items():
        assert len(a) == PYTHIA_JETS_PER_CLASS
        onehot = np.stack([ak.to_numpy(a[b]) for b in labels], axis=1).astype(int)
        np.testing.assert_array_equal(onehot.sum(axis=1), 1)
        assert np.all(onehot[:, SUPPORTED_CLASSES.index(name)] == 1)
        pt, eta = ak.to_numpy(a.jet_pt), ak.to_numpy(a.jet_eta)
        assert np.all((pt > 500) & (pt < 1000) & (np.abs(eta) < 2))
        n = ak.to_numpy(ak.num(a.part_px))
        np.testing.assert_array_equal(n, ak.to_numpy(a.jet_nparticles))
        assert n.max() <= 128 and n.min() >= 2
        ppt = np.hypot(a.part_px, a.part_py)
        assert ak.all(ppt[:, :-1] >= ppt[:, 1:])  # pT-ordered


def test_constituents_add_up_to_the_jet(pythia_arrays):
    a = pythia_arrays["Wqq"]
    full = ak.to_numpy(a.jet_nparticles) < 128  # untruncated jets carry every constituent
    a = a[full]
    px, py = ak.to_numpy(ak.sum(a.part_px, axis=1)), ak.to_numpy(ak.sum(a.part_py, axis=1))
    np.testing.assert_allclose(np.hypot(px, py), ak.to_numpy(a.jet_pt), rtol=1e-4)
    np.testing.assert_allclose(
        ak.to_numpy(ak.sum(a.part_energy, axis=1)), ak.to_numpy(a.jet_energy), rtol=1e-4
    )
    # Δη, Δφ relative to the jet axis
    eta = np.arcsinh(a.part_pz / np.hypot(a.part_px, a.part_py))
    np.testing.assert_allclose(_flat(eta - a.jet_eta), _flat(a.part_deta), atol=1e-4)
    # anti-kT R = 0.8 clusters in rapidity: constituents within ΔR(y, φ) ≈ 0.8 (a soft one
    # can end up slightly outside after the axis moves during clustering)
    e, pz = _flat(a.part_energy).astype(float), _flat(a.part_pz).astype(float)
    jet_pz = np.sinh(ak.to_numpy(a.jet_eta)) * ak.to_numpy(a.jet_pt)
    jet_y = 0.5 * np.log(
        (ak.to_numpy(a.jet_energy) + jet_pz) / (ak.to_numpy(a.jet_energy) - jet_pz)
    )
    dy = 0.5 * np.log((e + pz) / (e - pz)) - np.repeat(jet_y, ak.to_numpy(ak.num(a.part_pz)))
    dr = np.hypot(dy, _flat(a.part_dphi))
    assert np.mean(dr < 0.8) > 0.995 and np.all(dr < 1.0)
    # groomed mass never exceeds the ungroomed one, and τ ratios are in [0, 1]
    mass = np.sqrt(np.maximum(ak.to_numpy(a.jet_energy) ** 2 - px**2 - py**2
                              - ak.to_numpy(ak.sum(a.part_pz, axis=1)) ** 2, 0))  # fmt: skip
    assert np.all(ak.to_numpy(a.jet_sdmass) <= mass * (1 + 1e-3) + 1e-3)
    tau21 = ak.to_numpy(a.jet_tau2 / a.jet_tau1)
    assert np.all((tau21 >= 0) & (tau21 <= 1))


def test_manifest_describes_the_files(pythia_dir):
    manifest = json.loads((pythia_dir / "manifest.json").read_text())
    assert manifest["seed"] == PYTHIA_SEED
    assert manifest["counts"] == dict.fromkeys(PYTHIA_CLASSES, PYTHIA_JETS_PER_CLASS)
    assert manifest["labels"] == list(SUPPORTED_CLASSES)
    assert manifest["versions"]["pythia8mc"].startswith("8.3")
    for fname, entry in manifest["files"].items():
        assert (pythia_dir / fname).exists()
        assert entry["n_jets"] == PYTHIA_JETS_PER_CLASS and entry["n_events"] > 0
    assert not list(pythia_dir.glob(".*tmp"))  # no leftovers of the atomic writes


# --- reproducibility and resume --------------------------------------------------------------


def _assert_same(a, b):
    """Same jets; ``b`` may be read from a file (extra counter branch ``npart``)."""
    assert set(a.fields) <= set(b.fields) and len(a) == len(b)
    for f in a.fields:
        np.testing.assert_array_equal(_flat_any(a[f]), _flat_any(b[f]), err_msg=f)


def _flat_any(x) -> np.ndarray:
    return ak.to_numpy(ak.flatten(x, axis=None))


@needs_generator
def test_same_seed_same_jets(pythia_arrays):
    a = generation.generate_jets("Zqq", 25, seed=PYTHIA_SEED)
    _assert_same(a, generation.generate_jets("Zqq", 25, seed=PYTHIA_SEED))
    # independent of batching and of the worker process: equals the fixture file's start
    _assert_same(a, pythia_arrays["Zqq"][:25])
    other = generation.generate_jets("Zqq", 25, seed=PYTHIA_SEED + 1)
    assert not np.array_equal(ak.to_numpy(a.jet_pt), ak.to_numpy(other.jet_pt))


@needs_generator
def test_interrupted_run_resumes(tmp_path):
    kwargs = dict(seed=5, chunk_size=15, progress=False)
    manifest = generation.generate_dataset(["Wqq"], 30, tmp_path, **kwargs)
    assert sorted(manifest["files"]) == ["Wqq_000.root", "Wqq_001.root"]
    first, second = tmp_path / "Wqq_000.root", tmp_path / "Wqq_001.root"
    with uproot.open(second) as f:
        original = f["tree"].arrays()
    stamp = first.stat().st_mtime_ns
    # simulate a crash while writing chunk 1: its file never got renamed into place
    second.rename(tmp_path / ".Wqq_001.root.999.tmp")
    manifest = generation.generate_dataset(["Wqq"], 30, tmp_path, **kwargs)
    assert first.stat().st_mtime_ns == stamp  # finished chunk skipped
    assert not list(tmp_path.glob(".*.tmp"))  # the killed run's partial file is gone
    with uproot.open(second) as f:
        _assert_same(f["tree"].arrays(), original)  # redone chunk identical
    assert manifest["counts"] == {"Wqq": 30}
    # asking for more jets only adds the missing chunk
    manifest = generation.generate_dataset(["Wqq"], 40, tmp_path, **kwargs)
    assert first.stat().st_mtime_ns == stamp
    assert manifest["files"]["Wqq_002.root"]["n_jets"] == 10
    with pytest.raises(JetFMError, match="other settings"):
        generation.generate_dataset(["Wqq"], 30, tmp_path, seed=6, chunk_size=15, progress=False)


# --- command line ----------------------------------------------------------------------------


@needs_generator
def test_cli_generates_files(tmp_path, capsys):
    out = tmp_path / "gen"
    rc = main(["generate", "--classes", "Hcc,QCD", "--jets-per-class", "12",
               "--chunk-size", "8", "--seed", "3", "--out", str(out), "--no-progress"])  # fmt: skip
    assert rc == 0
    assert "Hcc: 12" in capsys.readouterr().out
    files = sorted(p.name for p in out.glob("*.root"))
    assert files == ["Hcc_000.root", "Hcc_001.root", "QCD_000.root", "QCD_001.root"]
    with uproot.open(out / "Hcc_001.root") as f:
        a = f["tree"].arrays(["label_Hcc", "label_QCD", "jet_pt"])
    assert len(a) == 4 and ak.all(a.label_Hcc) and not ak.any(a.label_QCD)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"Hcc": 12, "QCD": 12}


@needs_generator
def test_cli_rejects_unknown_class(tmp_path, capsys):
    rc = main(["generate", "--classes", "Hbb,Zbb", "--jets-per-class", "5",
               "--out", str(tmp_path)])  # fmt: skip
    assert rc == 2
    assert "Zbb" in capsys.readouterr().err


@needs_generator
def test_cli_refuses_a_class_that_cannot_fit_the_jet(tmp_path, capsys):
    # a top needs pT ≳ m/R ≈ 430 GeV to fit in R = 0.4: a 300–400 GeV window would never fill
    out = tmp_path / "top_r04"
    rc = main(["generate", "--classes", "QCD,Tbqq", "--jets-per-class", "5", "--radius", "0.4",
               "--pt-min", "300", "--pt-max", "400", "--out", str(out), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc != 0 and "Tbqq" in err and "R = 0.4" in err and "431 GeV" in err
    assert not out.exists()  # refused before anything is written


def test_hard_process_cut_starts_where_the_class_can_be_contained():
    from jetfm.generation.processes import (
        DEFAULT_SELECTION,
        JetSelection,
        containment_pt,
        get_process,
        pythia_settings,
    )

    r04 = JetSelection(radius=0.4, pt_min=300.0, pt_max=1200.0)
    assert containment_pt(get_process("Tbqq"), 0.4) == pytest.approx(172.5 / 0.4)
    assert containment_pt(get_process("Hbb"), 0.8) == pytest.approx(125.0 / 0.8)
    # no bound for QCD partons, nor for Tbl (the neutrino escapes with part of the mass)
    assert containment_pt(get_process("QCD"), 0.4) == containment_pt(get_process("Tbl"), 0.4) == 0

    def cut(name, selection):
        (line,) = [s for s in pythia_settings(get_process(name), 1, selection=selection)
                   if s.startswith("PhaseSpace:pTHatMin")]  # fmt: skip
        return float(line.split("=")[1])

    assert cut("Tbqq", r04) == pytest.approx(0.9 * 172.5 / 0.4)  # raised above 0.9 × 300
    assert cut("Hbb", r04) == pytest.approx(0.9 * 125.0 / 0.4)
    for name in ("QCD", "Wqq", "Zqq", "Tbl"):  # contained from 300 GeV on: the jet-pT cut
        assert cut(name, r04) == pytest.approx(270.0), name
    for name in SUPPORTED_CLASSES:  # the default R = 0.8, 500–1000 GeV sets do not change
        assert cut(name, DEFAULT_SELECTION) == pytest.approx(450.0), name


# --- read back through the data pipeline -----------------------------------------------------


def test_files_read_through_jetdataset(pythia_dir, pythia_arrays):
    from jetfm.data import IGNORE_INDEX, JetDataset

    targets = ("labels", "track_labels", "vertex_labels")
    ds = JetDataset(pythia_dir, targets=targets, return_index=True)
    assert len(ds) == len(PYTHIA_CLASSES) * PYTHIA_JETS_PER_CLASS
    assert ds.spec.label_names == SUPPORTED_CLASSES
    assert set(ds.feature_groups) == {"kinematics", "pid", "tracks"}
    paths = [Path(p).name for p in ds.plan.paths]
    for i in range(0, len(ds), 97):
        jet = ds[i]
        name = paths[int(jet["file_index"])].split("_")[0]
        assert SUPPORTED_CLASSES[int(jet["labels"])] == name
        truth = pythia_arrays[name][int(jet["entry"])]
        origin = ak.to_numpy(truth.part_origin).astype(np.int64)
        vtx = ak.to_numpy(truth.part_vtx).astype(np.int64)
        np.testing.assert_array_equal(
            jet["track_labels"], np.where(origin < 0, IGNORE_INDEX, origin)
        )
        np.testing.assert_array_equal(jet["vertex_labels"], np.where(vtx < 0, IGNORE_INDEX, vtx))
