"""What jets are clustered from: flat four-vector columns over a batch of events.

At particle level these are the visible final-state particles of the event record; at
detector level the tracks and calorimeter cells of :mod:`jetfm.generation.detector`. Every
entry keeps ``truth``, the global index of its particle in the
:class:`~jetfm.generation.record.EventRecord` (``-1`` for calorimeter cells), so truth
matching, track origin and vertex labels run unchanged on either.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jetfm.generation.record import EventRecord

#: ``pid`` of calorimeter cells: ECAL cells read as photons, HCAL cells as neutral hadrons
#: (the PDG codes Delphes gives its energy-flow towers).
ECAL_CELL_PID = 22
HCAL_CELL_PID = 0
#: The per-object columns of :class:`Objects`.
COLUMNS = ("event", "px", "py", "pz", "e", "charge", "pid", "truth")


@dataclasses.dataclass
class Objects:
    """Flat columns (GeV) of the objects of a batch of events, sorted by event.

    ``charge`` is the electric charge (0 for cells), ``pid`` the PDG id of the particle (of
    the particle behind a track; :data:`ECAL_CELL_PID` / :data:`HCAL_CELL_PID` for cells)
    and ``truth`` the particle's global index in the event record (−1 for cells).
    """

    n_events: int
    event: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    charge: np.ndarray
    pid: np.ndarray
    truth: np.ndarray

    def __len__(self) -> int:
        return len(self.event)

    def pt(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        return np.hypot(self.px[idx], self.py[idx])

    def eta_phi(self, idx: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        px, py, pz = self.px[idx], self.py[idx], self.pz[idx]
        return np.arcsinh(pz / np.maximum(np.hypot(px, py), 1e-12)), np.arctan2(py, px)

    def take(self, idx: np.ndarray) -> Objects:
        """The entries ``idx`` (must keep the event order)."""
        return Objects(self.n_events, **{f: getattr(self, f)[idx] for f in COLUMNS})


def from_particles(rec: EventRecord, idx: np.ndarray, charge: np.ndarray) -> Objects:
    """The particles ``idx`` (global indices, sorted by event) with their ``charge``."""
    return Objects(
        n_events=rec.n_events,
        event=rec.event[idx],
        px=rec.px[idx],
        py=rec.py[idx],
        pz=rec.pz[idx],
        e=rec.e[idx],
        charge=np.asarray(charge, np.float64),
        pid=rec.id[idx],
        truth=np.asarray(idx, np.int64),
    )


def concatenate(parts: list[Objects]) -> Objects:
    """Join object sets of the same batch, re-sorted by event (stable: order kept within)."""
    cols = {f: np.concatenate([getattr(p, f) for p in parts]) for f in COLUMNS}
    order = np.argsort(cols["event"], kind="stable")
    return Objects(parts[0].n_events, **{f: v[order] for f, v in cols.items()})
