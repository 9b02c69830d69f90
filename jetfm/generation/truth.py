"""Truth from the event record: jet ↔ resonance matching, track origin and vertex labels.

Everything runs on the flat :class:`~jetfm.generation.record.EventRecord` of a whole batch;
ancestry walks advance *all* tracks one mother step per numpy operation.

Track origin (``part_origin``, see :data:`jetfm.data.schema.TRACK_ORIGINS`) comes from the
first *weakly decaying* ancestor of a charged particle, i.e. the first ancestor with
cτ0 > 1 µm (b and c hadrons, τ; K0S/Λ do not decay with ``tau0Max = 10`` mm). π0, η, D*,
B* … decay promptly and are looked through, so π0 Dalitz pairs stay at their parent's
vertex. Codes: 0 primary (no such ancestor), 1 b-hadron, 2 c-hadron with a b-hadron
further up (b → c cascade), 3 other c-hadron, 4 τ, 5 any other weak decay; neutrals −1.

Vertex label (``part_vtx``): tracks are grouped by the *identity* of that ancestor (its
index in the event record), not by rounded coordinates. Within a jet, 0 is the primary
vertex and the secondary vertices are numbered 1, 2, … in order of their leading track;
neutrals −1.
"""

from __future__ import annotations

import numpy as np

from jetfm.generation.processes import MATCH_DR, ProcessSpec
from jetfm.generation.record import EventRecord

#: Proper decay length above which a decay counts as displaced ("weak"): 1 µm. π0 (25 nm)
#: and all strong/electromagnetic decays lie below; D0 (123 µm), B (~450 µm), τ (87 µm)
#: above.
WEAK_TAU0_MM = 1e-3
_MAX_DEPTH = 200  # longest ancestry chain walked (real chains are < 30 steps)


def heavy_flavour(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(has_b, has_c)`` for hadron PDG ids (False for quarks, leptons, diquarks)."""
    a = np.abs(ids) % 10_000  # drop the excitation digits (10423 → 423)
    q1, q2, q3 = (a // 1000) % 10, (a // 100) % 10, (a // 10) % 10
    hadron = (a >= 100) & ~((a >= 1000) & (q3 == 0))  # diquarks are qq0s
    has_b = hadron & ((q1 == 5) | (q2 == 5) | (q3 == 5))
    has_c = hadron & ((q1 == 4) | (q2 == 4) | (q3 == 4))
    return has_b, has_c


def _follow_copies(rec: EventRecord, idx: np.ndarray) -> np.ndarray:
    """Last copy of each particle (Pythia copies a particle when the shower recoils it)."""
    idx = idx.copy()
    for _ in range(_MAX_DEPTH):
        d1 = rec.daughter1[idx]
        step = (rec.id[d1] == rec.id[idx]) & (d1 != idx)
        if not step.any():
            break
        idx[step] = d1[step]
    return idx


def candidates(rec: EventRecord, spec: ProcessSpec) -> tuple[np.ndarray, np.ndarray]:
    """Truth objects a jet of this class must contain.

    Returns ``(cand, required)``: ``cand`` are global indices of the matched object (the
    resonance's last copy, or a hard parton for QCD), sorted by event; ``required`` is
    ``(n_cand, 4)`` global indices of everything that must lie within ΔR < R of the jet,
    −1 where unused.
    """
    absid = np.abs(rec.id)
    if spec.resonance == 0:
        cand = np.nonzero((np.abs(rec.status) == 23) & ((absid <= 5) | (absid == 21)))[0]
        required = np.full((len(cand), 4), -1, np.int64)
        required[:, 0] = cand
        return cand, required

    is_res = absid == spec.resonance
    d1, d2 = rec.daughter1, rec.daughter2
    cand = np.nonzero(is_res & (absid[d1] != spec.resonance) & (d1 != rec.offsets[rec.event]))[0]
    required = np.full((len(cand), 4), -1, np.int64)
    required[:, 0] = cand
    if spec.daughters == "all":
        required[:, 1], required[:, 2] = d1[cand], d2[cand]
        return cand, required
    # top → W b: the non-W daughter is the b (or a CKM-suppressed s/d)
    w_first = np.where(absid[d1[cand]] == 24, d1[cand], d2[cand])
    b = np.where(absid[d1[cand]] == 24, d2[cand], d1[cand])
    w = _follow_copies(rec, w_first)
    q1, q2 = d1[w], d2[w]
    required[:, 1] = b
    if spec.daughters == "bqq":
        required[:, 2], required[:, 3] = q1, q2
    else:  # "bl": the charged lepton of W → ℓν
        required[:, 2] = np.where(np.isin(absid[q1], (11, 13, 15)), q1, q2)
    return cand, required


def _delta_r(eta1, phi1, eta2, phi2) -> np.ndarray:
    dphi = np.mod(phi1 - phi2 + np.pi, 2 * np.pi) - np.pi
    return np.hypot(eta1 - eta2, dphi)


def match_jets(
    rec: EventRecord,
    jet_event: np.ndarray,
    jet_eta: np.ndarray,
    jet_phi: np.ndarray,
    cand: np.ndarray,
    required: np.ndarray,
    match_dr: float = MATCH_DR,
) -> np.ndarray:
    """For each jet, the matched candidate (global index) or −1.

    A jet matches a candidate of the same event when every required object is within
    ΔR < ``match_dr`` (the jet radius) of the jet axis; the first such candidate is taken.
    """
    n_ev = rec.n_events
    per_event = np.bincount(rec.event[cand], minlength=n_ev)
    cand_start = np.cumsum(per_event) - per_event
    n_pairs = per_event[jet_event]
    pair_jet = np.repeat(np.arange(len(jet_event)), n_pairs)
    pair_start = np.cumsum(n_pairs) - n_pairs
    pair_cand = np.repeat(cand_start[jet_event], n_pairs) + (
        np.arange(len(pair_jet)) - np.repeat(pair_start, n_pairs)
    )
    req = required[pair_cand]  # (n_pairs, 4)
    safe = np.where(req >= 0, req, 0)
    eta, phi = rec.eta_phi(safe.ravel())
    dr = _delta_r(eta.reshape(req.shape), phi.reshape(req.shape), jet_eta[pair_jet, None],
                  jet_phi[pair_jet, None])  # fmt: skip
    ok = np.all((req < 0) | (dr < match_dr), axis=1)
    matched = np.full(len(jet_event), -1, np.int64)
    jets_ok, first = np.unique(pair_jet[ok], return_index=True)
    matched[jets_ok] = cand[pair_cand[ok][first]]
    return matched


def weak_mask(rec: EventRecord, tau0: np.ndarray) -> np.ndarray:
    """Particles that decayed weakly (displaced): cτ0 above :data:`WEAK_TAU0_MM`."""
    return (tau0 > WEAK_TAU0_MM) & (rec.status < 0)


def track_origins(
    rec: EventRecord, tracks: np.ndarray, weak: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(origin, ancestor)`` for the given particles (global indices).

    ``ancestor`` is the global index of the first weakly decaying ancestor, −1 if none.
    The walk follows ``mother1`` through hadronisation (|status| 71–89) and decays
    (91–99) and stops at shower/hard-process partons or the event's system entry.
    """
    n = len(tracks)
    first = np.full(n, -1, np.int64)
    any_b = np.zeros(n, bool)
    cur = tracks.copy()
    alive = np.arange(n)
    for _ in range(_MAX_DEPTH):
        alive = alive[np.abs(rec.status[cur[alive]]) >= 71]
        if len(alive) == 0:
            break
        mother = rec.mother1[cur[alive]]
        is_b, _ = heavy_flavour(rec.id[mother])
        any_b[alive] |= is_b
        new = weak[mother] & (first[alive] < 0)
        first[alive[new]] = mother[new]
        cur[alive] = mother
    anc = np.where(first >= 0, first, 0)
    has_b, has_c = heavy_flavour(rec.id[anc])
    origin = np.select(
        [first < 0, has_b, has_c & any_b, has_c, np.abs(rec.id[anc]) == 15],
        [0, 1, 2, 3, 4],
        default=5,
    )
    return origin.astype(np.int32), first


def vertex_labels(jet_of_track: np.ndarray, ancestor: np.ndarray) -> np.ndarray:
    """Per-jet vertex index: 0 for ``ancestor == -1``, else 1, 2, … by first appearance.

    ``jet_of_track`` must be non-decreasing and the tracks ordered within each jet (the
    leading track of a vertex gives its number).
    """
    vtx = np.zeros(len(ancestor), np.int32)
    sec = np.nonzero(ancestor >= 0)[0]
    if len(sec) == 0:
        return vtx
    key = jet_of_track[sec] * (int(ancestor.max()) + 1) + ancestor[sec]
    uniq, first_pos, inverse = np.unique(key, return_index=True, return_inverse=True)
    # order the distinct (jet, ancestor) pairs by jet, then by their first track
    order = np.lexsort((first_pos, jet_of_track[sec][first_pos]))
    jets_sorted = jet_of_track[sec][first_pos][order]
    group_start = np.searchsorted(jets_sorted, jets_sorted, side="left")
    within = np.empty(len(uniq), np.int64)
    within[order] = np.arange(len(uniq)) - group_start
    vtx[sec] = within[inverse] + 1
    return vtx


__all__ = [
    "candidates",
    "heavy_flavour",
    "match_jets",
    "track_origins",
    "vertex_labels",
    "weak_mask",
]
