"""One batch of events → the JetClass-layout columns of its selected, truth-matched jets.

Steps, each vectorised over the batch: visible final-state particles → (optionally) the
detector objects of :func:`jetfm.generation.detector.simulate` → anti-kT jets (default
R = 0.8) → the pT/η window (default 500 < pT < 1000 GeV, |η| < 2) → truth match to the
class's resonance (or hard parton) → constituents pT-ordered and cut at 128 → kinematics,
particle ID, impact parameters, track origin / vertex labels, soft-drop mass and
N-subjettiness.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from jetfm.generation import jets as jetlib
from jetfm.generation import objects, tracks, truth
from jetfm.generation.detector import DetectorSettings, simulate
from jetfm.generation.processes import (
    DEFAULT_SELECTION,
    MAX_PARTICLES,
    JetSelection,
    ProcessSpec,
)
from jetfm.generation.record import EventRecord, ParticleTable

#: Per-particle branches (jagged) and their dtypes, in the order they are written.
PARTICLE_BRANCHES: dict[str, type] = {
    "part_px": np.float32,
    "part_py": np.float32,
    "part_pz": np.float32,
    "part_energy": np.float32,
    "part_deta": np.float32,
    "part_dphi": np.float32,
    "part_charge": np.float32,
    "part_isElectron": np.float32,
    "part_isMuon": np.float32,
    "part_isPhoton": np.float32,
    "part_isChargedHadron": np.float32,
    "part_isNeutralHadron": np.float32,
    "part_d0val": np.float32,
    "part_d0err": np.float32,
    "part_dzval": np.float32,
    "part_dzerr": np.float32,
    "part_origin": np.int32,
    "part_vtx": np.int32,
}


#: Per-jet branches, then truth of the matched resonance / parton (int32 where noted).
JET_BRANCHES = ("jet_pt", "jet_eta", "jet_phi", "jet_energy", "jet_sdmass", "jet_nparticles",
                "jet_tau1", "jet_tau2", "jet_tau3")  # fmt: skip
AUX_BRANCHES = ("aux_genpart_pt", "aux_genpart_eta", "aux_genpart_phi", "aux_genpart_mass",
                "aux_genpart_pid")  # fmt: skip
_INT_BRANCHES = ("jet_nparticles", "aux_genpart_pid")


def empty_columns(labels: tuple[str, ...]) -> dict[str, np.ndarray | ak.Array]:
    """Columns of zero jets (same names and types as :func:`analyse`)."""
    particle = {k: np.zeros(0, v) for k, v in PARTICLE_BRANCHES.items()}
    jet = {k: np.zeros(0) for k in JET_BRANCHES + AUX_BRANCHES}
    return _columns(particle, np.zeros(0, np.int64), jet, labels, "")


def _columns(particle, counts, jet, labels, name) -> dict[str, np.ndarray | ak.Array]:
    """Typed output columns: jagged ``part_*``, flat ``jet_*`` / ``aux_*``, one-hot labels."""
    out: dict[str, np.ndarray | ak.Array] = {
        k: ak.unflatten(np.asarray(particle[k], dtype), counts)
        for k, dtype in PARTICLE_BRANCHES.items()
    }
    for k in JET_BRANCHES + AUX_BRANCHES:
        out[k] = np.asarray(jet[k], np.int32 if k in _INT_BRANCHES else np.float32)
    for label in labels:
        out[f"label_{label}"] = np.full(len(counts), label == name, bool)
    return out


def analyse(
    rec: EventRecord,
    spec: ProcessSpec,
    table: ParticleTable,
    rngs: tuple[np.random.Generator, ...],
    labels: tuple[str, ...],
    selection: JetSelection = DEFAULT_SELECTION,
    detector: DetectorSettings | None = None,
) -> dict[str, np.ndarray | ak.Array]:
    """Columns (branch name → array, jagged for ``part_*``) of the jets of one batch.

    ``rngs`` = (beam-spot generator, one draw pair per event; smearing generator, one draw
    pair per stored particle; with a ``detector``, its per-particle and per-cell
    generators): separate streams, so results do not depend on the batch size.
    ``detector=None`` clusters the particles themselves (particle level).
    """
    beam_rng, smear_rng = rngs[0], rngs[1]
    # every event draws its beam spot, selected or not, to keep the stream batch-independent
    beam = beam_rng.normal(0.0, tracks.BEAM_SPOT_XY_MM, size=(rec.n_events, 2))
    charge, tau0 = table.lookup(rec.id)

    # --- jets: cluster particles or detector objects, select, truth-match -------------
    visible = np.nonzero(rec.final_visible())[0]
    objs = objects.from_particles(rec, visible, charge[visible])
    if detector is not None:
        objs = simulate(objs, detector, (rngs[2], rngs[3]))
    jets = jetlib.cluster(objs, np.arange(len(objs)), selection.pt_min, selection.radius)
    pt, eta = jets.pt, jets.eta
    jets = jets.select(
        (pt > selection.pt_min) & (pt < selection.pt_max) & (np.abs(eta) < selection.abs_eta_max)
    )
    cand, required = truth.candidates(rec, spec)
    matched = truth.match_jets(
        rec, jets.event, jets.eta, jets.phi, cand, required, selection.match_dr
    )
    keep = matched >= 0
    jets, matched = jets.select(keep), matched[keep]
    n_jets = len(jets)
    if n_jets == 0:
        return empty_columns(labels)

    sub = jetlib.substructure(objs, jets.constituents, selection.radius)

    # --- constituents: pT-ordered, at most MAX_PARTICLES --------------------------------
    cons = jets.constituents
    sizes = ak.to_numpy(ak.num(cons, axis=1))
    flat = ak.to_numpy(ak.flatten(cons))
    order = ak.argsort(ak.unflatten(objs.pt(flat), sizes), axis=1, ascending=False)
    cons = cons[order][:, :MAX_PARTICLES]
    counts = ak.to_numpy(ak.num(cons, axis=1))
    idx = ak.to_numpy(ak.flatten(cons))
    jet_of = np.repeat(np.arange(n_jets), counts)

    jet_pt, jet_eta, jet_phi = jets.pt, jets.eta, jets.phi
    p_eta, p_phi = objs.eta_phi(idx)
    q = objs.charge[idx]
    charged = q != 0
    absid = np.abs(objs.pid[idx])
    is_e, is_mu, is_gamma = absid == 11, absid == 13, absid == 22
    src = objs.truth[idx]  # record index of the particle (−1: calorimeter cell)

    # --- tracking truth and impact parameters ------------------------------------------
    origin = np.full(len(idx), -1, np.int32)
    vtx = np.full(len(idx), -1, np.int32)
    trk = np.nonzero(charged)[0]
    org, ancestor = truth.track_origins(rec, src[trk], truth.weak_mask(rec, tau0))
    origin[trk] = org
    vtx[trk] = truth.vertex_labels(jet_of[trk], ancestor)

    ev = objs.event[idx]
    at = np.maximum(src, 0)
    res = {} if detector is None else {"d0_terms": detector.d0_res_mm,
                                       "dz_terms": detector.dz_res_mm}  # fmt: skip
    ip = tracks.impact_parameters(
        objs.px[idx], objs.py[idx], objs.pz[idx], rec.vx[at], rec.vy[at], rec.vz[at],
        beam[ev, 0], beam[ev, 1], charged, smear_rng, **res,
    )  # fmt: skip

    particle = {
        "part_px": objs.px[idx],
        "part_py": objs.py[idx],
        "part_pz": objs.pz[idx],
        "part_energy": objs.e[idx],
        "part_deta": p_eta - jet_eta[jet_of],
        "part_dphi": np.mod(p_phi - jet_phi[jet_of] + np.pi, 2 * np.pi) - np.pi,
        "part_charge": q,
        "part_isElectron": is_e,
        "part_isMuon": is_mu,
        "part_isPhoton": is_gamma,
        "part_isChargedHadron": charged & ~is_e & ~is_mu,
        "part_isNeutralHadron": ~charged & ~is_gamma,
        "part_d0val": ip["d0"],
        "part_d0err": ip["d0_err"],
        "part_dzval": ip["dz"],
        "part_dzerr": ip["dz_err"],
        "part_origin": origin,
        "part_vtx": vtx,
    }
    g_eta, g_phi = rec.eta_phi(matched)
    m2 = rec.e[matched] ** 2 - rec.px[matched] ** 2 - rec.py[matched] ** 2 - rec.pz[matched] ** 2
    jet = {
        "jet_pt": jet_pt,
        "jet_eta": jet_eta,
        "jet_phi": jet_phi,
        "jet_energy": jets.e,
        "jet_sdmass": sub["sdmass"],
        "jet_nparticles": counts,
        "jet_tau1": sub["tau1"],
        "jet_tau2": sub["tau2"],
        "jet_tau3": sub["tau3"],
        "aux_genpart_pt": rec.pt(matched),
        "aux_genpart_eta": g_eta,
        "aux_genpart_phi": g_phi,
        "aux_genpart_mass": np.sqrt(np.maximum(m2, 0.0)),
        "aux_genpart_pid": rec.id[matched],
    }
    return _columns(particle, counts, jet, labels, spec.name)
