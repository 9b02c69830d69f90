"""The Pythia event record of a batch of events as flat numpy arrays.

``Pythia.nextBatch(n)`` (pythia8mc ≥ 8.315) returns the full event record of ``n`` events
as one awkward array, filled in C++. Here it becomes flat numpy columns over all particles
of the batch, with mother/daughter pointers turned into *global* indices (local index +
offset of the event), so that ancestry walks run vectorised over the whole batch.

A pointer of 0 (Pythia's "none") becomes the index of the event's system entry (id 90,
status −11): ancestry walks stop there naturally.
"""

from __future__ import annotations

import dataclasses

import awkward as ak
import numpy as np

NEUTRINOS = (12, 14, 16)
MIN_PT_GEV = 1e-3


@dataclasses.dataclass
class EventRecord:
    """Flat particle columns for a batch of events (units GeV, mm)."""

    offsets: np.ndarray  # (n_events + 1,) start of each event
    event: np.ndarray  # event index of each particle
    id: np.ndarray
    status: np.ndarray
    mother1: np.ndarray  # global indices
    daughter1: np.ndarray
    daughter2: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    vx: np.ndarray  # production vertex (mm); 0 for particles from the primary interaction
    vy: np.ndarray
    vz: np.ndarray

    @property
    def n_events(self) -> int:
        return len(self.offsets) - 1

    def pt(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        return np.hypot(self.px[idx], self.py[idx])

    def eta_phi(self, idx: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        px, py, pz = self.px[idx], self.py[idx], self.pz[idx]
        return np.arcsinh(pz / np.maximum(np.hypot(px, py), 1e-12)), np.arctan2(py, px)

    def final_visible(self) -> np.ndarray:
        """Mask of final-state particles a detector can see: everything but neutrinos, and
        above pT = 1 MeV (Pythia's record holds a few ~1e-12 GeV photons with no physical
        meaning and no defined direction)."""
        return (
            (self.status > 0)
            & ~np.isin(np.abs(self.id), NEUTRINOS)
            & (self.px**2 + self.py**2 > MIN_PT_GEV**2)
        )


def _np(x: ak.Array, dtype) -> np.ndarray:
    return np.ascontiguousarray(ak.to_numpy(x), dtype=dtype)


def from_batch(batch: ak.Array) -> EventRecord:
    """Flatten the ``nextBatch`` output (``batch.prt``) into an :class:`EventRecord`."""
    prt = batch.prt
    counts = ak.to_numpy(ak.num(prt, axis=1)).astype(np.int64)
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    event = np.repeat(np.arange(len(counts)), counts)
    flat = ak.flatten(prt, axis=1)
    start = offsets[:-1][event]

    def pointer(field: str) -> np.ndarray:
        return _np(flat[field], np.int64) + start

    # vProd is missing (None) for particles made at the origin: fill with 0.
    vprod = flat.vProd
    return EventRecord(
        offsets=offsets,
        event=event,
        id=_np(flat.id, np.int64),
        status=_np(flat.status, np.int64),
        mother1=pointer("mother1"),
        daughter1=pointer("daughter1"),
        daughter2=pointer("daughter2"),
        px=_np(flat.p.px, np.float64),
        py=_np(flat.p.py, np.float64),
        pz=_np(flat.p.pz, np.float64),
        e=_np(flat.p.e, np.float64),
        vx=_np(ak.fill_none(vprod.px, 0.0), np.float64),
        vy=_np(ak.fill_none(vprod.py, 0.0), np.float64),
        vz=_np(ak.fill_none(vprod.pz, 0.0), np.float64),
    )


class ParticleTable:
    """Charge and proper lifetime per PDG id, looked up once per distinct id.

    Pythia's particle data is the reference; a batch has a few hundred distinct ids, so the
    lookups are a small dictionary fill, and per-particle values come from ``np.unique``'s
    inverse index.
    """

    def __init__(self, particle_data) -> None:
        self._pd = particle_data
        self._cache: dict[int, tuple[float, float]] = {}

    def lookup(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(charge, tau0_mm)`` arrays for the given PDG ids."""
        uniq, inverse = np.unique(ids, return_inverse=True)
        values = np.empty((len(uniq), 2))
        for k, pid in enumerate(uniq.tolist()):
            if pid not in self._cache:
                self._cache[pid] = (self._pd.charge(pid), self._pd.tau0(pid))
            values[k] = self._cache[pid]
        return values[inverse, 0], values[inverse, 1]
