"""Synthetic JetClass-layout ROOT files for fast tests (no Pythia), and their pytest fixtures.

The writer is vectorised (numpy + awkward, no per-jet loops) and produces physically plausible
jets: massless constituents spread around one prong (``QCD``), two prongs (``Wqq``/``Zqq``/
``H*``, separated so that the jet mass sits near the resonance mass) or three prongs
(``Tbqq``). About 60 % of constituents are charged. Jets of heavy-flavour classes (and a few
QCD jets) carry displaced tracks whose truth is consistent: ``part_origin`` 1 (b) / 2 (b→c) /
3 (c) with ``part_vtx`` 1 / 2 / 1 and large |d0|; prompt tracks have origin 0 and vertex 0;
neutrals carry −1 for both and zero track parameters (the JetClass convention).

Use from other test modules (fixtures are loaded by ``tests/conftest.py``)::

    def test_something(jetclass_file):            # one file, 300 jets, QCD + Wqq, with truth
        ...
    def test_many(jetclass_files):                # three files, 120 jets each (list of Path)
        ...
    def test_4vec(kinematics_only_file):          # only part_px/py/pz/energy + jet_* branches
        ...

All three are session-scoped (written once per test session, never modify them). For a file
of your own call :func:`write_jetclass_file` (``tmp_path`` for a per-test file); its
``mutate`` hook receives the ``{branch: array}`` dict before writing, to break it on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest

#: Resonance mass (GeV) and prong count of each synthetic class (None: no resonance).
CLASS_SHAPES: dict[str, tuple[float | None, int]] = {
    "QCD": (None, 1),
    "Hbb": (125.0, 2),
    "Hcc": (125.0, 2),
    "Hgg": (125.0, 2),
    "H4q": (125.0, 2),
    "Hqql": (125.0, 2),
    "Zqq": (91.2, 2),
    "Wqq": (80.4, 2),
    "Tbqq": (172.5, 3),
    "Tbl": (172.5, 2),
}
#: Probability that a jet of the class carries a heavy-flavour decay, and its flavour.
HEAVY_FLAVOUR: dict[str, tuple[float, str]] = {
    "QCD": (0.1, "b"),
    "Hbb": (1.0, "b"),
    "Hcc": (1.0, "c"),
    "Wqq": (0.5, "c"),
    "Zqq": (0.4, "b"),
    "Tbqq": (1.0, "b"),
    "Tbl": (1.0, "b"),
}
PART_BRANCHES = (
    "part_px", "part_py", "part_pz", "part_energy", "part_deta", "part_dphi", "part_charge",
    "part_isElectron", "part_isMuon", "part_isPhoton", "part_isChargedHadron",
    "part_isNeutralHadron", "part_d0val", "part_d0err", "part_dzval", "part_dzerr",
)  # fmt: skip


def _prongs(rng, cls_names, jet_pt):
    """Per-jet prong offsets (n, 3) in η/φ and pT fractions (n, 3), pT-centred on the axis."""
    n = len(jet_pt)
    deta = np.zeros((n, 3))
    dphi = np.zeros((n, 3))
    frac = np.zeros((n, 3))
    frac[:, 0] = 1.0
    shapes = [CLASS_SHAPES.get(c, (None, 1)) for c in cls_names]  # unknown class: QCD-like
    mass = np.array([m or 0.0 for m, _ in shapes], dtype=float)
    nprong = np.array([k for _, k in shapes], dtype=np.int64)

    def split(m, pt, z):
        # small-angle two-body: m² ≈ z(1−z) pT² ΔR²
        return m / (pt * np.sqrt(z * (1 - z)))

    two = nprong >= 2
    three = nprong == 3
    z = rng.uniform(0.25, 0.75, n)
    alpha = rng.uniform(0, 2 * np.pi, n)
    # top = b + W: the W's own mass already supplies m_W² / (1 − z) of m_t²
    m_eff = np.sqrt(np.maximum(mass**2 - np.where(three, 80.4**2 / (1 - z), 0.0), 1.0))
    dr = np.where(two, split(m_eff, jet_pt, z), 0.0)
    deta[:, 0] = (1 - z) * dr * np.cos(alpha)
    dphi[:, 0] = (1 - z) * dr * np.sin(alpha)
    deta[:, 1] = -z * dr * np.cos(alpha)
    dphi[:, 1] = -z * dr * np.sin(alpha)
    frac[:, 0] = np.where(two, z, 1.0)
    frac[:, 1] = np.where(two, 1 - z, 0.0)
    # top: prong 1 (the W, fraction 1−z) splits again into two quarks at the W mass
    z2 = rng.uniform(0.3, 0.7, n)
    beta = rng.uniform(0, 2 * np.pi, n)
    w_pt = jet_pt * (1 - z)
    dr2 = np.where(three, split(80.4, w_pt, z2), 0.0)
    c_eta, c_phi = deta[:, 1].copy(), dphi[:, 1].copy()
    deta[:, 1] = np.where(three, c_eta + (1 - z2) * dr2 * np.cos(beta), deta[:, 1])
    dphi[:, 1] = np.where(three, c_phi + (1 - z2) * dr2 * np.sin(beta), dphi[:, 1])
    deta[:, 2] = np.where(three, c_eta - z2 * dr2 * np.cos(beta), 0.0)
    dphi[:, 2] = np.where(three, c_phi - z2 * dr2 * np.sin(beta), 0.0)
    frac[:, 2] = np.where(three, (1 - z) * (1 - z2), 0.0)
    frac[:, 1] = np.where(three, (1 - z) * z2, frac[:, 1])
    return deta, dphi, frac, nprong


def generate_jets(
    n_jets: int,
    seed: int = 0,
    classes: Sequence[str] = ("QCD", "Wqq"),
    with_truth: bool = True,
    kinematics_only: bool = False,
    with_jet_branches: bool = True,
) -> dict[str, Any]:
    """``{branch: array}`` for ``n_jets`` synthetic jets (awkward for jagged, numpy per jet)."""
    rng = np.random.default_rng(seed)
    classes = tuple(classes)
    cls_idx = rng.permutation(np.arange(n_jets) % len(classes))
    cls_names = [classes[i] for i in cls_idx]
    jet_pt_in = rng.uniform(500.0, 1000.0, n_jets)
    jet_eta_in = rng.uniform(-2.0, 2.0, n_jets)
    jet_phi_in = rng.uniform(-np.pi, np.pi, n_jets)
    p_eta, p_phi, p_frac, nprong = _prongs(rng, cls_names, jet_pt_in)

    counts = 8 + rng.poisson(np.where(nprong == 1, 22, 12 + 12 * nprong))
    total = int(counts.sum())
    jet = np.repeat(np.arange(n_jets), counts)
    # each particle picks a prong with probability = prong pT fraction
    cum = np.cumsum(p_frac, axis=1)[jet]
    prong = (rng.random(total)[:, None] > cum[:, :2]).sum(axis=1)
    prong = np.minimum(prong, nprong[jet] - 1)
    # pT shares: exponential, normalised inside each (jet, prong) to the prong fraction
    raw = rng.exponential(1.0, total) ** 2
    key = jet * 3 + prong
    norm = np.bincount(key, weights=raw, minlength=3 * n_jets)[key]
    share = raw / norm * p_frac[jet, prong]
    # soft particles spread wider around their prong (QCD prongs are broader)
    width = np.where(nprong[jet] == 1, 0.03, 0.015) / np.sqrt(np.clip(share * 10, 0.05, 1.0))
    eta = jet_eta_in[jet] + p_eta[jet, prong] + rng.normal(0, 1, total) * width
    phi = jet_phi_in[jet] + p_phi[jet, prong] + rng.normal(0, 1, total) * width
    pt = share * jet_pt_in[jet]
    px, py = pt * np.cos(phi), pt * np.sin(phi)
    pz, energy = pt * np.sinh(eta), pt * np.cosh(eta)

    # jet axis = sum of constituents (what JetClass stores)
    sums = [np.bincount(jet, weights=v, minlength=n_jets) for v in (px, py, pz, energy)]
    jpx, jpy, jpz, jen = sums
    jpt = np.hypot(jpx, jpy)
    jeta = np.arcsinh(jpz / jpt)
    jphi = np.arctan2(jpy, jpx)

    f32 = np.float32
    out: dict[str, Any] = {}
    flat: dict[str, np.ndarray] = {
        "part_px": px.astype(f32),
        "part_py": py.astype(f32),
        "part_pz": pz.astype(f32),
        "part_energy": energy.astype(f32),
    }
    if not kinematics_only:
        charged = rng.random(total) < 0.6
        u = rng.random(total)
        is_e = charged & (u < 0.02)
        is_mu = charged & (u >= 0.02) & (u < 0.04)
        is_ch = charged & ~is_e & ~is_mu
        is_ph = ~charged & (u < 0.6)
        is_nh = ~charged & ~is_ph
        charge = np.where(charged, rng.choice([-1.0, 1.0], total), 0.0)
        # heavy-flavour truth: displaced tracks from a b (→c) or c decay in some jets
        p_hf = np.array([HEAVY_FLAVOUR.get(c, (0.0, "b"))[0] for c in cls_names], dtype=float)
        flav_b = np.array(
            [HEAVY_FLAVOUR.get(c, (0.0, "b"))[1] == "b" for c in cls_names], dtype=bool
        )
        qcd_flip = np.array([c == "QCD" for c in cls_names], dtype=bool) & (
            rng.random(n_jets) < 0.5
        )
        flav_b = flav_b & ~qcd_flip
        has_hf = rng.random(n_jets) < p_hf
        hf = charged & has_hf[jet] & (rng.random(total) < 0.35)
        b_to_c = hf & flav_b[jet] & (rng.random(total) < 0.4)
        other = charged & ~hf & (rng.random(total) < 0.03)
        origin = np.where(charged, 0, -1)
        origin = np.where(hf, np.where(flav_b[jet], 1, 3), origin)
        origin = np.where(b_to_c, 2, origin)
        origin = np.where(other, 5, origin)
        vtx = np.where(charged, 0, -1)
        vtx = np.where(hf, 1, vtx)
        vtx = np.where(b_to_c, 2, vtx)
        vtx = np.where(other, 3, vtx)
        d0 = rng.normal(0, 0.02, total)
        d0 = np.where(hf, rng.choice([-1, 1], total) * rng.exponential(0.4, total), d0)
        d0 = np.where(other, rng.normal(0, 2.0, total), d0)
        dz = d0 * rng.uniform(0.5, 1.5, total) + rng.normal(0, 0.03, total)
        d0err = 0.01 + rng.exponential(0.01, total)
        dzerr = 0.015 + rng.exponential(0.015, total)
        d0, dz, d0err, dzerr = (np.where(charged, v, 0.0) for v in (d0, dz, d0err, dzerr))
        flat |= {
            "part_deta": (eta - jeta[jet]).astype(f32),
            "part_dphi": (np.angle(np.exp(1j * (phi - jphi[jet])))).astype(f32),
            "part_charge": charge.astype(f32),
            "part_isElectron": is_e.astype(f32),
            "part_isMuon": is_mu.astype(f32),
            "part_isPhoton": is_ph.astype(f32),
            "part_isChargedHadron": is_ch.astype(f32),
            "part_isNeutralHadron": is_nh.astype(f32),
            "part_d0val": d0.astype(f32),
            "part_d0err": d0err.astype(f32),
            "part_dzval": dz.astype(f32),
            "part_dzerr": dzerr.astype(f32),
        }
        if with_truth:
            flat["part_origin"] = origin.astype(np.int32)
            flat["part_vtx"] = vtx.astype(np.int32)
    for name, values in flat.items():
        out[name] = ak.unflatten(values, counts)
    if with_jet_branches:
        out |= {
            "jet_pt": jpt.astype(f32),
            "jet_eta": jeta.astype(f32),
            "jet_phi": jphi.astype(f32),
            "jet_energy": jen.astype(f32),
        }
    if not kinematics_only or with_truth:
        for i, name in enumerate(classes):
            out[f"label_{name}"] = cls_idx == i
    return out


def _branch_types(branches: dict[str, Any]) -> tuple[dict[str, Any], Callable[[dict], dict]]:
    """mktree types, sharing one counter (``npart``) among equal-length ``part_*`` branches."""
    jagged = {k: v for k, v in branches.items() if isinstance(v, ak.Array) and v.ndim == 2}
    part = {k: v for k, v in jagged.items() if k.startswith("part_")}
    shared: list[str] = []
    if part:
        ref = ak.num(next(iter(part.values())), axis=1).to_numpy()
        shared = [k for k, v in part.items() if np.array_equal(ak.num(v, axis=1).to_numpy(), ref)]
    types: dict[str, Any] = {}
    if shared:
        types["part"] = ak.zip({k[5:]: branches[k] for k in shared}).type.content
    for k, v in branches.items():
        if k in shared:
            continue
        types[k] = v.type.content if isinstance(v, ak.Array) else np.asarray(v).dtype

    def pack(data: dict) -> dict:
        packed = {k: v for k, v in data.items() if k not in shared}
        if shared:
            packed["part"] = ak.zip({k[5:]: data[k] for k in shared})
        return packed

    return types, pack


def write_jetclass_file(
    path: str | Path,
    n_jets: int = 200,
    seed: int = 0,
    classes: Sequence[str] = ("QCD", "Wqq"),
    tree: str = "tree",
    with_truth: bool = True,
    kinematics_only: bool = False,
    with_jet_branches: bool = True,
    chunk_size: int | None = None,
    mutate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Path:
    """Write ``n_jets`` synthetic jets in the JetClass layout (a real TTree, via uproot).

    Args:
        path: output ``.root`` file (parent directories are created).
        n_jets: number of jets; classes are balanced (``n_jets % len(classes)`` aside).
        seed: random seed (same seed → same file content).
        classes: JetClass class names; one bool ``label_<name>`` branch each.
        tree: TTree name.
        with_truth: write ``part_origin`` / ``part_vtx``.
        kinematics_only: only the four ``part_p*``/``part_energy`` branches (+ ``jet_*``);
            labels are still written unless ``with_truth`` is False too.
        with_jet_branches: write ``jet_pt/eta/phi/energy``.
        chunk_size: write in baskets of this many jets (generation too), bounding the
            writer's memory for big benchmark files; default one chunk.
        mutate: hook ``f(branches) -> branches`` applied before writing (tests use it to
            corrupt a file on purpose); only with a single chunk.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    step = chunk_size or max(n_jets, 1)
    kwargs = dict(
        classes=classes,
        with_truth=with_truth,
        kinematics_only=kinematics_only,
        with_jet_branches=with_jet_branches,
    )
    with __import__("uproot").recreate(path) as fh:
        first = True
        tree_obj = None
        pack = None
        for i, start in enumerate(range(0, max(n_jets, 1), step)):
            n = min(step, n_jets - start)
            branches = generate_jets(n, seed=seed * 1000 + i, **kwargs)
            if mutate is not None:
                branches = mutate(branches)
            if first:
                types, pack = _branch_types(branches)
                tree_obj = fh.mktree(tree, types)
                first = False
            if n > 0:
                tree_obj.extend(pack(branches))
    return path


# --- fixtures (session-scoped: written once, shared by every test module) -------------------
@pytest.fixture(scope="session")
def jetclass_file(tmp_path_factory) -> Path:
    """300 QCD + Wqq jets with every branch (pid, tracks, truth, jet axis, labels)."""
    return write_jetclass_file(tmp_path_factory.mktemp("jetclass") / "jets.root", 300, seed=1)


@pytest.fixture(scope="session")
def jetclass_files(tmp_path_factory) -> list[Path]:
    """Three files of 120 QCD + Wqq jets each (different seeds), in one directory."""
    base = tmp_path_factory.mktemp("jetclass_many")
    return [write_jetclass_file(base / f"part{i}.root", 120, seed=10 + i) for i in range(3)]


@pytest.fixture(scope="session")
def kinematics_only_file(tmp_path_factory) -> Path:
    """200 jets with only part_px/py/pz/energy, jet_* and label_* branches."""
    return write_jetclass_file(
        tmp_path_factory.mktemp("kin_only") / "kin.root", 200, seed=2, kinematics_only=True
    )
