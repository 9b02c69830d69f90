"""Every named layout of the public data sets is read as published: the same jets written in
each layout (by its own library, ``tests/fixtures_layouts.py``) give the same features, labels
and checkpoint outputs; labels come as integers, floats, booleans, one-hot rows or strings;
a layout that does not fit the file is one clear error before any training."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from jetfm.cli import main
from jetfm.data import JetDataset, JetProcessor, StreamingJetDataset, dataset_to_batch
from jetfm.data.coordinates import pid_features
from jetfm.data.layouts import LAYOUTS, get_layout, mapping_from_option
from jetfm.data.pandas_hdf import pickled_names
from jetfm.errors import DataError
from tests.fixtures_layouts import (
    LABELLED,
    LAYOUT_NAMES,
    WITH_PID,
    make_jets,
    padded,
    write_qg,
    write_toptag_pandas,
)

KIN = dict(targets=(), feature_groups=("kinematics",))


def _reference(name: str, files) -> str:
    return files["jetclass-root-massless" if name == "jetnet-h5" else "jetclass-root"]


def _dataset(path, name: str, **kwargs) -> JetDataset:
    groups = ("kinematics", "pid") if name in WITH_PID else ("kinematics",)
    targets = ("labels",) if name in LABELLED else ()
    return JetDataset(path, targets=targets, mapping=name, feature_groups=groups, **kwargs)


def test_every_layout_has_a_name_and_the_cli_lists_them(capsys):
    assert set(LAYOUT_NAMES) == set(LAYOUTS)
    assert main(["stats", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--branch-map LAYOUT_OR_YAML, --layout LAYOUT_OR_YAML" in help_text
    assert all(name in help_text for name in LAYOUTS)
    with pytest.raises(DataError, match=r"unknown layout 'qg'; known layouts: \['aspen-h5'"):
        get_layout("qg")


@pytest.mark.parametrize("name", LAYOUT_NAMES)
def test_the_same_jets_in_every_layout_give_the_same_features(name, layout_files):
    """Kinematic features to float32 precision, the pid group from PDG ids exactly as the
    JetClass flags, the labels in class-index order, the particle counts exactly."""
    ref = _dataset(_reference(name, layout_files), "jetclass-root")
    got = _dataset(layout_files[name], name)
    assert len(got) == len(ref) == 40
    np.testing.assert_array_equal(got.counts, ref.counts)
    np.testing.assert_allclose(got._flat["kinematics"], ref._flat["kinematics"], atol=5e-6)
    if name in WITH_PID:
        np.testing.assert_array_equal(got._flat["pid"], ref._flat["pid"])
        assert got._flat["pid"][:, 0].min() == -1 and got._flat["pid"][:, 3].any()
    if name in LABELLED:
        np.testing.assert_array_equal(got.labels, ref.labels)


def test_class_names_of_the_layouts(layout_files):
    names = {n: _dataset(layout_files[n], n).processor.label_names for n in LABELLED}
    assert names["qg-npz"] == ["gluon", "quark"]  # EnergyFlow: y = 1 for quarks
    assert names["toptag-pandas-h5"] == names["atlas-toptag-h5"] == ["QCD", "Tbqq"]
    assert names["jetclass2-parquet"] == names["omnilearned-h5"] == ["0", "1"]


def test_the_shipped_checkpoint_gives_the_same_outputs_for_every_layout(layout_files):
    """mpm-flow-tiny's backbone (its own normalisation) on the kinematics of each layout."""
    from jetfm.hub import resolve_pretrained
    from jetfm.modeling import JetFMModel

    folder = resolve_pretrained("mpm-flow-tiny")
    model = JetFMModel.from_pretrained(folder).eval()
    shipped = JetProcessor.from_pretrained(folder).to_dict()
    outputs = {}
    for name in LAYOUT_NAMES:
        if name == "jetnet-h5":
            continue  # JetNet holds the massless version of the jets (see the features test)
        processor = JetProcessor(**{**shipped, "branch_mapping": name,
                                    "feature_groups": ["kinematics"]})  # fmt: skip
        batch = dataset_to_batch(JetDataset(layout_files[name], processor, targets=()))
        with torch.no_grad():
            out = model(kinematics=batch["kinematics"], mask=batch["mask"])
        outputs[name] = out.last_hidden_state[batch["mask"]]  # every real particle
    ref = outputs["jetclass-root"]
    assert ref.shape[0] == int(make_jets()["counts"].sum()) and ref.std(0).mean() > 0.1
    for name, out in outputs.items():
        torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4, msg=name)


@pytest.mark.parametrize("name", ["qg-npz", "toptag-pandas-h5", "jetnet-h5", "omnilearned-h5"])
def test_streamed_reading_gives_the_eager_jets(name, layout_files):
    eager = JetDataset(layout_files[name], mapping=name, return_index=True, **KIN)
    stream = StreamingJetDataset(layout_files[name], mapping=name, step_size=16,
                                 return_index=True, **KIN)  # fmt: skip
    jets = {int(j["entry"]): j["kinematics"] for j in stream}
    assert sorted(jets) == list(range(40))
    for i in (0, 17, 39):
        np.testing.assert_array_equal(jets[i], eager[i]["kinematics"])


def test_pandas_fixed_frames_read_like_table_frames(tmp_path, layout_files):
    jets = make_jets()
    fixed = write_toptag_pandas(jets, tmp_path / "fixed.h5", fmt="fixed")
    a = _dataset(fixed, "toptag-pandas-h5")
    b = _dataset(layout_files["toptag-pandas-h5"], "toptag-pandas-h5")
    np.testing.assert_array_equal(a._flat["kinematics"], b._flat["kinematics"])
    np.testing.assert_array_equal(a.labels, jets["labels"])


def test_pickled_column_names_are_read_without_unpickling():
    assert pickled_names(pickle.dumps(["E_0", "PX_0"], protocol=0), "f") == ["E_0", "PX_0"]
    assert pickled_names(pickle.dumps(["E_0", "PX_0"], protocol=4), "f") == ["E_0", "PX_0"]
    with pytest.raises(
        DataError, match="not a plain list of strings .pickle opcode (STACK_)?GLOBAL"
    ):
        pickled_names(pickle.dumps([np.float64]), "f")


def test_pdg_ids_give_charges_flags_and_masses():
    feats = pid_features(np.array([11.0, -11, 13, 22, 211, -211, 130, 2112, -2212, 12, 99]))
    np.testing.assert_array_equal(feats["charge"], [-1, 1, -1, 0, 1, -1, 0, 0, -1, 0, 0])
    np.testing.assert_array_equal(feats["is_charged_hadron"], [0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(feats["is_neutral_hadron"], [0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0])
    assert feats["is_electron"][:2].all() and feats["is_muon"][2] and feats["is_photon"][3]


# --- labels as published -------------------------------------------------------------------
def _h5_with_labels(path, labels, **extra) -> str:
    jets = make_jets(len(labels) if np.ndim(labels) == 1 else len(labels), seed=2)
    width = int(jets["counts"].max())
    vectors = np.stack([padded(jets, jets[k], width) for k in ("energy", "px", "py", "pz")], -1)
    with h5py.File(path, "w") as f:
        f["Pmu"] = vectors.astype(np.float32)
        f["is_signal"] = labels
        for k, v in extra.items():
            f[k] = v
    return str(path)


@pytest.mark.parametrize(
    "stored",
    [
        np.array([0, 1, 1, 0, 1, 0]),
        np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0]),
        np.array([False, True, True, False, True, False]),
        np.eye(2)[[0, 1, 1, 0, 1, 0]],
        np.array([b"qcd", b"top", b"top", b"qcd", b"top", b"qcd"]),
    ],
    ids=["int", "float", "bool", "one-hot", "string"],
)
def test_labels_as_published(stored, tmp_path):
    path = _h5_with_labels(tmp_path / "jets.h5", stored)
    ds = JetDataset(path, mapping={"layout": "toptag-padded-h5", "label_classes": None},
                    targets=("labels",), feature_groups=("kinematics",))  # fmt: skip
    np.testing.assert_array_equal(ds.labels, [0, 1, 1, 0, 1, 0])
    want = ["qcd", "top"] if stored.dtype.kind == "S" else ["0", "1"]
    assert ds.processor.label_names == want


def test_string_labels_in_parquet_and_npz_are_the_class_names(tmp_path):
    jets = make_jets(6, seed=3)
    x = np.stack([padded(jets, jets[k], 25) for k in ("pt", "y", "phi", "pdg")], -1)
    np.savez(tmp_path / "s.npz", X=x, y=np.array(["quark", "gluon"] * 3))
    ds = JetDataset(tmp_path / "s.npz", mapping={"layout": "qg-npz", "label_classes": None},
                    targets=("labels",), feature_groups=("kinematics",))  # fmt: skip
    assert ds.processor.label_names == ["gluon", "quark"]
    np.testing.assert_array_equal(ds.labels, [1, 0] * 3)
    table = pa.table({
        "part_px": pa.array([[1.0, 2.0]] * 3), "part_py": pa.array([[1.0, -1.0]] * 3),
        "part_pz": pa.array([[0.5, 0.1]] * 3), "part_energy": pa.array([[3.0, 3.0]] * 3),
        "jet_label": pa.array(["top", "qcd", "top"]),
    })  # fmt: skip
    pq.write_table(table, tmp_path / "s.parquet")
    ds = JetDataset(tmp_path / "s.parquet", mapping="jetclass2-parquet", targets=("labels",),
                    feature_groups=("kinematics",))  # fmt: skip
    assert ds.processor.label_names == ["qcd", "top"]
    np.testing.assert_array_equal(ds.labels, [1, 0, 1])


def test_nan_label_names_the_file_the_dataset_and_the_entry(tmp_path, capsys):
    path = _h5_with_labels(tmp_path / "nan.h5", np.array([0.0, 1.0, np.nan, 1.0]))
    with pytest.raises(DataError, match=r"nan\.h5: label dataset/column 'is_signal' has the "
                                        r"value nan at entry 2"):  # fmt: skip
        JetDataset(path, mapping={"layout": "toptag-padded-h5", "label_classes": None},
                   targets=("labels",), feature_groups=("kinematics",))  # fmt: skip
    config = tmp_path / "nan.yaml"
    config.write_text("layout: toptag-padded-h5\nlabel_classes: null\n")
    assert main(["stats", "--data", path, "--branch-map", str(config), "--output",
                 str(tmp_path / "p")]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'is_signal' has the value nan at entry 2" in err[0]


# --- layout names and YAML on the command line ------------------------------------------------
def test_layout_names_and_layout_yaml_on_the_command_line(layout_files, tmp_path, capsys):
    out = tmp_path / "stats"
    assert main(["stats", "--data", str(layout_files["qg-npz"]), "--layout", "qg-npz",
                 "--output", str(out)]) == 0  # fmt: skip
    saved = JetProcessor.from_pretrained(out)
    assert saved.feature_groups == ["kinematics", "pid"]  # the PDG ids feed the pid group
    assert saved.mapping.coordinates == "pt_y_phi"
    config = tmp_path / "mine.yaml"
    config.write_text(yaml.safe_dump({"layout": "qg-npz", "label_classes": ["g", "q"]}))
    mapping = mapping_from_option(str(config))
    assert mapping.pdg_id == "X[3]" and mapping.label_classes == ["g", "q"]
    assert main(["stats", "--data", str(layout_files["qg-npz"]), "--branch-map", "qg_npz",
                 "--output", str(tmp_path / "x")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "'qg_npz' is neither a layout name (known: ['aspen-h5'" in err


# --- bad input: one line naming the file, the column and what was expected ----------------------
def test_a_layout_that_does_not_match_the_file(layout_files):
    with pytest.raises(DataError, match=r"atlas\.h5: no mask column 'particle_features\[3\]' "
                                        r"\(mapping field 'mask'\); columns present: "):  # fmt: skip
        JetDataset(layout_files["atlas-toptag-h5"], mapping="jetnet-h5", **KIN)
    with pytest.raises(DataError, match=r"toptag\.h5: group '/' holds no datasets .*groups "
                                        r"present: \['table'\]"):  # fmt: skip
        JetDataset(layout_files["toptag-pandas-h5"], mapping="qg-npz", **KIN)
    with pytest.raises(DataError, match=r"QG_jets\.npz: the npz file is missing branches: "
                                        r"feature group 'kinematics' needs \['PX_\{i\}'"):  # fmt: skip
        JetDataset(layout_files["qg-npz"], mapping={"layout": "toptag-pandas-h5", "label": "y"},
                   **KIN)  # fmt: skip


def test_three_components_where_four_are_needed(tmp_path):
    with h5py.File(tmp_path / "omni3.h5", "w") as f:
        f["data"] = np.ones((5, 8, 3), np.float32)
        f["pid"] = np.zeros(5, int)
    with pytest.raises(DataError, match=r"omni3\.h5: 'data\[3\]': 'data' has only 3 components "
                                        r"per particle \(shape \(n_jets, 8, 3\)\)"):  # fmt: skip
        JetDataset(tmp_path / "omni3.h5", mapping="omnilearned-h5", **KIN)


@pytest.mark.parametrize("extra_energy", [0.0, 5.0])
def test_pt_eta_phi_read_as_cartesian_is_caught(extra_energy, tmp_path):
    """(E, pT, η, φ) read as (E, px, py, pz): soft particles get E < |p|; with energies large
    enough for that to pass, px is never negative while py stays angle-sized."""
    jets = make_jets(24, seed=4)
    width = int(jets["counts"].max())
    wrong = np.stack([padded(jets, jets[k], width) for k in ("energy", "pt", "eta", "phi")], -1)
    wrong[..., 0] += np.where(wrong[..., 1] > 0, extra_energy, 0.0)
    with h5py.File(tmp_path / "ptetaphi.h5", "w") as f:
        f["Pmu"] = wrong.astype(np.float32)
        f["is_signal"] = jets["labels"]
    message = (
        r"px \('Pmu\[1\]'\) is never negative and pz \('Pmu\[3\]'\) never leaves \[−π, π\]"
        if extra_energy
        else r"\d+% of the particles have an energy well below their momentum"
    )
    with pytest.raises(DataError, match=rf"ptetaphi\.h5: {message}.*is the layout right"):
        JetDataset(tmp_path / "ptetaphi.h5", mapping="toptag-padded-h5", **KIN)


def test_energy_in_the_wrong_slot_is_caught(tmp_path):
    """(px, py, pz, E) read as (E, px, py, pz): energies below the momenta."""
    jets = make_jets(6, seed=4)
    width = int(jets["counts"].max())
    wrong = np.stack([padded(jets, jets[k], width) for k in ("px", "py", "pz", "energy")], -1)
    with h5py.File(tmp_path / "order.h5", "w") as f:
        f["Pmu"] = wrong.astype(np.float32)
        f["is_signal"] = jets["labels"]
    with pytest.raises(DataError, match=r"order\.h5: (negative particle energy|\d+% of the "
                                        r"particles have an energy well below).*Pmu\[0\]"):  # fmt: skip
        JetDataset(tmp_path / "order.h5", mapping="toptag-padded-h5", **KIN)


def test_all_zero_jets_and_nan_are_caught(tmp_path):
    np.savez(tmp_path / "zero.npz", X=np.zeros((30, 10, 4)), y=np.zeros(30))
    with pytest.raises(DataError, match=r"zero\.npz: none of the 30 jets of entries 0–30 has a "
                                        r"particle .*\['X\[0\]', 'X\[1\]', 'X\[2\]'\]"):  # fmt: skip
        JetDataset(tmp_path / "zero.npz", mapping="qg-npz", **KIN)
    jets = make_jets(5, seed=6)
    path = write_qg(jets, tmp_path / "nan.npz")
    with np.load(path) as f:
        x, y = f["X"].copy(), f["y"]
    x[3, 1, 1] = np.nan
    np.savez(path, X=x, y=y)
    with pytest.raises(DataError, match=r"nan\.npz: branch 'X\[1\]' has NaN/inf values \(first "
                                        r"at entry 3\)"):  # fmt: skip
        JetDataset(path, mapping="qg-npz", **KIN)


def test_npz_with_python_objects_is_refused(tmp_path):
    np.savez(tmp_path / "obj.npz", X=np.ones((2, 3, 4), dtype=object), y=np.zeros(2))
    with pytest.raises(DataError, match=r"obj\.npz: array 'X' holds Python objects"):
        JetDataset(tmp_path / "obj.npz", mapping="qg-npz", **KIN)


@pytest.mark.parametrize("system", ["pt_eta_phi_m", "relative_log_rel"])
def test_other_coordinate_systems_give_the_same_features(system, layout_files, tmp_path):
    """(pT, η, φ, m) and relative coordinates around a stored axis with log(pT/pT_jet) and
    log(E/E_jet) read like the Cartesian reference."""
    from tests.fixtures_layouts import jet_axis

    jets = make_jets()
    axis = jet_axis(jets)
    j = jets["jet"]
    if system == "pt_eta_phi_m":
        mass = np.sqrt(np.clip(jets["energy"] ** 2 - jets["px"] ** 2 - jets["py"] ** 2
                               - jets["pz"] ** 2, 0, None))  # fmt: skip
        values = (jets["pt"], jets["eta"], jets["phi"], mass)
        mapping = {"coordinates": "pt_eta_phi_m", "pt": "P[0]", "eta": "P[1]", "phi": "P[2]",
                   "mass": "P[3]"}  # fmt: skip
    else:
        dphi = jets["phi"] - axis["phi"][j]
        values = (jets["eta"] - axis["eta"][j], np.pi - np.mod(np.pi - dphi, 2 * np.pi),
                  np.log(jets["pt"] / axis["pt"][j]),
                  np.log(jets["energy"] / axis["energy"][j]))  # fmt: skip
        mapping = {"coordinates": "relative", "deta": "P[0]", "dphi": "P[1]", "pt": "P[2]",
                   "energy": "P[3]", "pt_form": "log_pt_rel",
                   "energy_form": "log_energy_rel"}  # fmt: skip
    width = int(jets["counts"].max()) + 1
    with h5py.File(tmp_path / "coords.h5", "w") as f:
        f["P"] = np.stack([padded(jets, v, width) for v in values], -1).astype(np.float32)
        for k in ("pt", "eta", "phi", "energy"):
            f[f"jet_{k}"] = axis[k]
    got = JetDataset(tmp_path / "coords.h5", mapping=mapping, **KIN)
    ref = JetDataset(layout_files["jetclass-root"], mapping="jetclass-root", **KIN)
    np.testing.assert_array_equal(got.counts, ref.counts)
    np.testing.assert_allclose(got._flat["kinematics"], ref._flat["kinematics"], atol=2e-5)
