"""The same jets written in every named layout (jetfm.data.layouts), each by its own library.

* ``jetclass-root``: uproot TTree, Cartesian ``part_*``, pid flags, one-hot ``label_*``;
* ``jetclass2-parquet``: awkward/pyarrow parquet, jagged ``part_*`` and ``jet_label``;
* ``toptag-pandas-h5``: ``pandas.DataFrame.to_hdf(key="table", format="table")`` (PyTables),
  columns ``E_i, PX_i, PY_i, PZ_i``, ``truth*``, ``ttv``, ``is_signal_new``, as published;
* ``toptag-padded-h5``: h5py, ``Pmu`` (E, px, py, pz) and ``is_signal``;
* ``qg-npz``: ``numpy.savez_compressed``, ``X`` = (pT, y, φ, PDG id) zero-padded, float ``y``;
* ``omnilearned-h5``: h5py, ``data`` = (Δη, Δφ, log pT, log E, pid index), ``pid``, ``global``;
* ``atlas-toptag-h5``: h5py, ``fjet_clus_*`` in MeV, ``labels``, ``fjet_*``;
* ``aspen-h5``: h5py, ``PFCands`` (n, P, 11), ``jet_kinematics`` (unlabelled);
* ``jetnet-h5``: h5py, ``particle_features`` (η_rel, φ_rel, pT_rel, mask), ``jet_features``
  (pT, η, mass, n) of the *massless* version of the jets (JetNet has no energies): compared
  with ``jetclass-root-massless``.

Particles are drawn as (pT, y, φ, PDG id) with PDG masses; every layout stores float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest

from tests.fixtures_formats import write_ttree

#: PDG id → (mass GeV, charge): an independent copy for the test's own reference
SPECIES = {
    22: (0.0, 0), 211: (0.13957, 1), -211: (0.13957, -1), 321: (0.493677, 1),
    -321: (0.493677, -1), 130: (0.497611, 0), 2112: (0.939565, 0), -2112: (0.939565, 0),
    2212: (0.938272, 1), -2212: (0.938272, -1), 11: (0.000511, -1), -11: (0.000511, 1),
    13: (0.105658, -1), -13: (0.105658, 1),
}  # fmt: skip
CLASSES = ("QCD", "Tbqq")
LAYOUT_NAMES = (
    "jetclass-root", "jetclass2-parquet", "toptag-pandas-h5", "toptag-padded-h5", "qg-npz",
    "omnilearned-h5", "atlas-toptag-h5", "aspen-h5", "jetnet-h5",
)  # fmt: skip
#: layouts whose files carry labels (in class-index order QCD/gluon = 0)
LABELLED = (
    "jetclass-root", "jetclass2-parquet", "toptag-pandas-h5", "toptag-padded-h5", "qg-npz",
    "omnilearned-h5", "atlas-toptag-h5",
)  # fmt: skip
#: layouts with PDG ids (their pid group must equal the reference's flags)
WITH_PID = ("jetclass-root", "qg-npz", "aspen-h5")


def make_jets(n: int = 40, seed: int = 5, massless: bool = False) -> dict[str, Any]:
    """Flat float64 particles (pt, y, phi, pdg, px, py, pz, energy, eta) with ``counts`` and
    per-jet ``labels``; ``massless`` makes every particle a photon."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(4, 22, n)
    total = int(counts.sum())
    jet = np.repeat(np.arange(n), counts)
    labels = np.arange(n) % 2
    jet_pt = rng.uniform(300, 700, n)
    jet_y, jet_phi = rng.uniform(-1.5, 1.5, n), rng.uniform(-np.pi, np.pi, n)
    share = rng.exponential(1.0, total) ** 2 + 1e-3
    share /= np.bincount(jet, share)[jet]
    pt = share * jet_pt[jet]
    y = jet_y[jet] + rng.normal(0, 0.25, total)
    phi = jet_phi[jet] + rng.normal(0, 0.25, total)
    phi = np.pi - np.mod(np.pi - phi, 2 * np.pi)
    ids = np.array(sorted(SPECIES))
    pdg = np.full(total, 22) if massless else ids[rng.integers(0, len(ids), total)]
    mass = np.array([SPECIES[int(i)][0] for i in pdg])
    mt = np.hypot(pt, mass)
    px, py = pt * np.cos(phi), pt * np.sin(phi)
    pz, energy = mt * np.sinh(y), mt * np.cosh(y)
    eta = np.arcsinh(pz / pt)
    return dict(counts=counts, labels=labels, pt=pt, y=y, phi=phi, pdg=pdg.astype(float),
                px=px, py=py, pz=pz, energy=energy, eta=eta, jet=jet)  # fmt: skip


def jet_axis(jets: dict[str, Any]) -> dict[str, np.ndarray]:
    """(pt, eta, phi, energy, mass) of each jet: the sum of its constituents."""
    n = len(jets["counts"])
    s = {k: np.bincount(jets["jet"], jets[k], minlength=n) for k in ("px", "py", "pz", "energy")}
    pt = np.hypot(s["px"], s["py"])
    mass = np.sqrt(np.clip(s["energy"] ** 2 - pt**2 - s["pz"] ** 2, 0, None))
    return dict(pt=pt, eta=np.arcsinh(s["pz"] / pt), phi=np.arctan2(s["py"], s["px"]),
                energy=s["energy"], mass=mass)  # fmt: skip


def padded(jets: dict[str, Any], values: np.ndarray, width: int) -> np.ndarray:
    """Flat per-particle values → (n, width) zero-padded."""
    out = np.zeros((len(jets["counts"]), width))
    starts = np.concatenate([[0], np.cumsum(jets["counts"])[:-1]])
    pos = np.arange(len(values)) - np.repeat(starts, jets["counts"])
    out[jets["jet"], pos] = values
    return out


def jagged(jets: dict[str, Any], values: np.ndarray) -> ak.Array:
    return ak.unflatten(values.astype(np.float32), jets["counts"])


def pid_flags(pdg: np.ndarray) -> dict[str, np.ndarray]:
    """JetClass's particle-ID branches from PDG ids (the test's own reference)."""
    charge = np.array([SPECIES[int(i)][1] for i in pdg], dtype=float)
    a = np.abs(pdg)
    return {
        "part_charge": charge,
        "part_isElectron": (a == 11).astype(float),
        "part_isMuon": (a == 13).astype(float),
        "part_isPhoton": (a == 22).astype(float),
        "part_isChargedHadron": ((a > 100) & (charge != 0)).astype(float),
        "part_isNeutralHadron": ((a > 100) & (charge == 0)).astype(float),
    }


def write_root(jets: dict[str, Any], path: Path) -> Path:
    axis = jet_axis(jets)
    branches: dict[str, Any] = {
        f"part_{k}": jagged(jets, jets[k]) for k in ("px", "py", "pz", "energy")
    }
    branches |= {k: jagged(jets, v) for k, v in pid_flags(jets["pdg"]).items()}
    branches |= {f"jet_{k}": axis[k].astype(np.float32) for k in ("pt", "eta", "phi", "energy")}
    for i, name in enumerate(CLASSES):
        branches[f"label_{name}"] = (jets["labels"] == i).astype(np.int32)
    return write_ttree(branches, path)


def write_parquet(jets: dict[str, Any], path: Path) -> Path:
    columns = {f"part_{k}": jagged(jets, jets[k]) for k in ("px", "py", "pz", "energy")}
    columns["jet_label"] = jets["labels"].astype(np.int64)
    ak.to_parquet(ak.Array(columns), path, row_group_size=16)
    return path


def write_toptag_pandas(jets: dict[str, Any], path: Path, fmt: str = "table") -> Path:
    import pandas as pd

    width = int(jets["counts"].max()) + 2
    columns: dict[str, np.ndarray] = {}
    grids = {k: padded(jets, jets[k], width) for k in ("energy", "px", "py", "pz")}
    for i in range(width):
        for name, key in (("E", "energy"), ("PX", "px"), ("PY", "py"), ("PZ", "pz")):
            columns[f"{name}_{i}"] = grids[key][:, i].astype(np.float32)
    for name in ("truthE", "truthPX", "truthPY", "truthPZ"):
        columns[name] = np.zeros(len(jets["counts"]), np.float32)
    columns["ttv"] = np.zeros(len(jets["counts"]), np.int64)
    columns["is_signal_new"] = jets["labels"].astype(np.int64)
    pd.DataFrame(columns).to_hdf(path, key="table", format=fmt)
    return path


def write_toptag_padded(jets: dict[str, Any], path: Path) -> Path:
    import h5py

    width = int(jets["counts"].max()) + 3
    vectors = np.stack([padded(jets, jets[k], width) for k in ("energy", "px", "py", "pz")], -1)
    with h5py.File(path, "w") as f:
        f["Pmu"] = vectors.astype(np.float32)
        f["is_signal"] = jets["labels"].astype(np.int64)
    return path


def write_qg(jets: dict[str, Any], path: Path) -> Path:
    width = int(jets["counts"].max()) + 1
    x = np.stack([padded(jets, jets[k], width) for k in ("pt", "y", "phi", "pdg")], -1)
    np.savez_compressed(path, X=x.astype(np.float32), y=jets["labels"].astype(np.float64))
    return path


def write_omnilearned(jets: dict[str, Any], path: Path) -> Path:
    import h5py

    axis = jet_axis(jets)
    j = jets["jet"]
    deta = jets["eta"] - axis["eta"][j]
    dphi = jets["phi"] - axis["phi"][j]
    dphi = np.pi - np.mod(np.pi - dphi, 2 * np.pi)
    pid_index = np.searchsorted(np.unique(jets["pdg"]), jets["pdg"]) + 1.0
    values = (deta, dphi, np.log(jets["pt"]), np.log(jets["energy"]), pid_index)
    width = int(jets["counts"].max()) + 4
    data = np.stack([padded(jets, v, width) for v in values], -1)
    with h5py.File(path, "w") as f:
        f["data"] = data.astype(np.float32)
        f["pid"] = jets["labels"].astype(np.int64)
        f["global"] = np.stack([axis["pt"], axis["eta"], axis["mass"], jets["counts"]], -1)
    return path


def write_atlas(jets: dict[str, Any], path: Path) -> Path:
    import h5py

    axis = jet_axis(jets)
    width = 30
    with h5py.File(path, "w") as f:
        for name, key, scale in (("pt", "pt", 1e3), ("eta", "eta", 1), ("phi", "phi", 1),
                                 ("E", "energy", 1e3)):  # fmt: skip
            f[f"fjet_clus_{name}"] = (padded(jets, jets[key], width) * scale).astype(np.float32)
        f["labels"] = jets["labels"].astype(np.int32)
        f["training_weights"] = np.ones(len(jets["counts"]), np.float32)
        f["fjet_pt"] = (axis["pt"] * 1e3).astype(np.float32)
        f["fjet_eta"] = axis["eta"].astype(np.float32)
        f["fjet_phi"] = axis["phi"].astype(np.float32)
        f["fjet_m"] = (axis["mass"] * 1e3).astype(np.float32)
    return path


def write_aspen(jets: dict[str, Any], path: Path) -> Path:
    import h5py

    axis = jet_axis(jets)
    width = 26
    charge = pid_flags(jets["pdg"])["part_charge"]
    track = np.where(charge != 0, 0.01, -1.0)  # CMS: −1 for neutrals (no track)
    columns = (jets["px"], jets["py"], jets["pz"], jets["energy"], track, track, track, track,
               charge, jets["pdg"], np.ones_like(charge))  # fmt: skip
    with h5py.File(path, "w") as f:
        f["PFCands"] = np.stack([padded(jets, c, width) for c in columns], -1).astype(np.float32)
        f["jet_kinematics"] = np.stack(
            [axis["pt"], axis["eta"], axis["phi"], axis["mass"]], -1
        ).astype(np.float32)
    return path


def write_jetnet(jets: dict[str, Any], path: Path) -> Path:
    """JetNet of massless jets: η_rel, φ_rel, pT_rel relative to the jet (pT, η, φ)."""
    import h5py

    axis = jet_axis(jets)
    j = jets["jet"]
    dphi = jets["phi"] - axis["phi"][j]
    dphi = np.pi - np.mod(np.pi - dphi, 2 * np.pi)
    values = (jets["eta"] - axis["eta"][j], dphi, jets["pt"] / axis["pt"][j],
              np.ones_like(dphi))  # fmt: skip
    width = 30
    with h5py.File(path, "w") as f:
        f["particle_features"] = np.stack([padded(jets, v, width) for v in values], -1).astype(
            np.float32
        )
        f["jet_features"] = np.stack(
            [axis["pt"], axis["eta"], axis["mass"], jets["counts"]], -1
        ).astype(np.float32)
    return path


WRITERS = {
    "jetclass-root": (write_root, "jets.root"),
    "jetclass2-parquet": (write_parquet, "jets.parquet"),
    "toptag-pandas-h5": (write_toptag_pandas, "toptag.h5"),
    "toptag-padded-h5": (write_toptag_padded, "toptag_padded.h5"),
    "qg-npz": (write_qg, "QG_jets.npz"),
    "omnilearned-h5": (write_omnilearned, "omnilearned.h5"),
    "atlas-toptag-h5": (write_atlas, "atlas.h5"),
    "aspen-h5": (write_aspen, "aspen.h5"),
}


def write_layouts(base: Path, n: int = 40, seed: int = 5) -> dict[str, Path]:
    """``{layout: path}`` of the same jets in every layout, plus ``jetclass-root-massless``
    (the reference of ``jetnet-h5``)."""
    base.mkdir(parents=True, exist_ok=True)
    jets = make_jets(n, seed)
    out = {name: writer(jets, base / file) for name, (writer, file) in WRITERS.items()}
    massless = make_jets(n, seed, massless=True)
    out["jetnet-h5"] = write_jetnet(massless, base / "g.hdf5")
    out["jetclass-root-massless"] = write_root(massless, base / "massless.root")
    return out


@pytest.fixture(scope="session")
def layout_jets() -> dict[str, Any]:
    return make_jets()


@pytest.fixture(scope="session")
def layout_files(tmp_path_factory) -> dict[str, Path]:
    """The jets of :func:`make_jets` in every layout (session-scoped; never modify them)."""
    return write_layouts(tmp_path_factory.mktemp("layouts"))
