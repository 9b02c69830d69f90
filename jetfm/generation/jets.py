"""Jet clustering and substructure with FastJet's multi-event (awkward) interface.

All events of a batch are clustered in one C++ call; substructure is computed by treating
every selected jet's constituents as one "event": Cambridge/Aachen reclustering, soft drop
(β = 0, z_cut = 0.1, R0 = jet radius, from fastjet-contrib) and N-subjettiness τ1..τ3
(β = 1, normalised measure, one-pass kT axes, R0 = jet radius), again one C++ call per
batch.

The inputs are any flat four-vector columns sorted by event (:class:`FourVectors`): the
generator's particles (:class:`~jetfm.generation.record.EventRecord`) or detector objects
(:class:`~jetfm.generation.objects.Objects`).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import awkward as ak
import fastjet
import numpy as np

from jetfm.generation.processes import JET_R


class FourVectors(Protocol):
    """Flat four-momentum columns (GeV) with each entry's event index, sorted by event."""

    event: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray

    @property
    def n_events(self) -> int: ...


def _recluster_r(radius: float) -> float:
    # C/A radius for reclustering: anti-kT constituents are at most ~2R apart, so with
    # 2.5 R (at least 2) nothing merges with the beam and exclusive_jets(1) is the whole jet.
    return max(2.0, 2.5 * radius)


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


def _four_vectors(rec: FourVectors, idx: np.ndarray, counts: np.ndarray) -> ak.Array:
    """Jagged (per ``counts``) px/py/pz/E records of the particles ``idx``."""
    return ak.unflatten(
        ak.zip({"px": rec.px[idx], "py": rec.py[idx], "pz": rec.pz[idx], "E": rec.e[idx]}),
        counts,
    )


def cluster(rec: FourVectors, particles: np.ndarray, min_pt: float, radius: float = JET_R) -> Jets:
    """Anti-kT jets of ``radius`` above ``min_pt`` from the given entries of ``rec`` (global
    indices, sorted by event)."""
    counts = np.bincount(rec.event[particles], minlength=rec.n_events)
    events = _four_vectors(rec, particles, counts)
    seq = fastjet.ClusterSequence(events, fastjet.JetDefinition(fastjet.antikt_algorithm, radius))
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


def substructure(
    rec: FourVectors, constituents: ak.Array, radius: float = JET_R
) -> dict[str, np.ndarray]:
    """Soft-drop mass and τ1, τ2, τ3 of each jet (rows of ``constituents``), R0 = ``radius``."""
    if len(constituents) == 0:
        return {k: np.zeros(0, np.float32) for k in ("sdmass", "tau1", "tau2", "tau3")}
    idx = ak.to_numpy(ak.flatten(constituents))
    events = _four_vectors(rec, idx, ak.to_numpy(ak.num(constituents, axis=1)))
    seq = fastjet.ClusterSequence(
        events, fastjet.JetDefinition(fastjet.cambridge_algorithm, _recluster_r(radius))
    )
    sd = seq.exclusive_jets_softdrop_grooming(njets=1, beta=0.0, symmetry_cut=0.1, R0=radius)
    taus = seq.njettiness(
        measure_definition="NormalizedMeasure",
        axes_definition="OnePass_KT_Axes",
        njets=[1, 2, 3],
        beta=1.0,
        R0=radius,
    )
    taus = np.asarray(ak.to_numpy(taus), np.float32).reshape(len(constituents), 3)
    return {
        "sdmass": np.asarray(ak.to_numpy(sd.msoftdrop), np.float32),
        "tau1": taus[:, 0],
        "tau2": taus[:, 1],
        "tau3": taus[:, 2],
    }
