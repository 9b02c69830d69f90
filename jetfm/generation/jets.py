"""Jet clustering and substructure with FastJet's multi-event (awkward) interface.

All events of a batch are clustered in one C++ call; substructure is computed by treating
every selected jet's constituents as one "event": Cambridge/Aachen reclustering, soft drop
(β = 0, z_cut = 0.1, R0 = 0.8, from fastjet-contrib) and N-subjettiness τ1..τ3 (β = 1,
normalised measure, one-pass kT axes), again one C++ call per batch.
"""

from __future__ import annotations

import dataclasses

import awkward as ak
import fastjet
import numpy as np

from jetfm.generation.processes import JET_R
from jetfm.generation.record import EventRecord

# C/A radius for reclustering: anti-kT R = 0.8 constituents are at most 1.6 apart, so with
# R = 2 nothing merges with the beam and exclusive_jets(1) is the whole jet.
_RECLUSTER_R = 2.0


@dataclasses.dataclass
class Jets:
    """Flat jet columns plus each jet's constituents as global particle indices."""

    event: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    constituents: ak.Array  # var * int64 (global particle index)

    def __len__(self) -> int:
        return len(self.event)

    @property
    def pt(self) -> np.ndarray:
        return np.hypot(self.px, self.py)

    @property
    def eta(self) -> np.ndarray:
        return np.arcsinh(self.pz / np.maximum(self.pt, 1e-12))

    @property
    def phi(self) -> np.ndarray:
        return np.arctan2(self.py, self.px)

    def select(self, keep: np.ndarray) -> Jets:
        return Jets(
            self.event[keep],
            self.px[keep],
            self.py[keep],
            self.pz[keep],
            self.e[keep],
            self.constituents[keep],
        )


def _four_vectors(rec: EventRecord, idx: np.ndarray, counts: np.ndarray) -> ak.Array:
    """Jagged (per ``counts``) px/py/pz/E records of the particles ``idx``."""
    return ak.unflatten(
        ak.zip({"px": rec.px[idx], "py": rec.py[idx], "pz": rec.pz[idx], "E": rec.e[idx]}),
        counts,
    )


def cluster(rec: EventRecord, particles: np.ndarray, min_pt: float) -> Jets:
    """Anti-kT (R = 0.8) jets above ``min_pt`` from the given particles (global indices,
    sorted by event)."""
    counts = np.bincount(rec.event[particles], minlength=rec.n_events)
    events = _four_vectors(rec, particles, counts)
    seq = fastjet.ClusterSequence(events, fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R))
    jets = seq.inclusive_jets(min_pt)
    local = seq.constituent_index(min_pt)  # event * jet * index into that event's particles
    n_jets = ak.to_numpy(ak.num(jets, axis=1))
    jet_event = np.repeat(np.arange(rec.n_events), n_jets)
    # local index within the event's particle list → global particle index
    starts = np.cumsum(counts) - counts
    flat_local = ak.flatten(local, axis=1)
    sizes = ak.to_numpy(ak.num(flat_local, axis=1))
    glob = particles[ak.to_numpy(ak.flatten(flat_local)) + np.repeat(starts[jet_event], sizes)]
    flat = ak.flatten(jets, axis=1)
    return Jets(
        event=jet_event,
        px=ak.to_numpy(flat.px).astype(np.float64),
        py=ak.to_numpy(flat.py).astype(np.float64),
        pz=ak.to_numpy(flat.pz).astype(np.float64),
        e=ak.to_numpy(flat.E).astype(np.float64),
        constituents=ak.unflatten(glob, sizes),
    )


def substructure(rec: EventRecord, constituents: ak.Array) -> dict[str, np.ndarray]:
    """Soft-drop mass and τ1, τ2, τ3 of each jet (rows of ``constituents``)."""
    if len(constituents) == 0:
        return {k: np.zeros(0, np.float32) for k in ("sdmass", "tau1", "tau2", "tau3")}
    idx = ak.to_numpy(ak.flatten(constituents))
    events = _four_vectors(rec, idx, ak.to_numpy(ak.num(constituents, axis=1)))
    seq = fastjet.ClusterSequence(
        events, fastjet.JetDefinition(fastjet.cambridge_algorithm, _RECLUSTER_R)
    )
    sd = seq.exclusive_jets_softdrop_grooming(njets=1, beta=0.0, symmetry_cut=0.1, R0=JET_R)
    taus = seq.njettiness(
        measure_definition="NormalizedMeasure",
        axes_definition="OnePass_KT_Axes",
        njets=[1, 2, 3],
        beta=1.0,
        R0=JET_R,
    )
    taus = np.asarray(ak.to_numpy(taus), np.float32).reshape(len(constituents), 3)
    return {
        "sdmass": np.asarray(ak.to_numpy(sd.msoftdrop), np.float32),
        "tau1": taus[:, 0],
        "tau2": taus[:, 1],
        "tau3": taus[:, 2],
    }
