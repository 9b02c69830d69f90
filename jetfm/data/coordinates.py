"""Particles in any coordinate system → the internal Cartesian four-vectors, once, while reading.

:func:`to_cartesian` takes the validated fields of a chunk (keyed by mapping field: ``pt``,
``eta``, ``deta``, ``pdg_id``, ``jet_pt``, ...) in the coordinates a
:class:`~jetfm.data.schema.BranchMapping` declares and returns them with ``px, py, pz, energy``
(GeV) in place of the stored coordinates, computed with scikit-hep's ``vector``:

* ``pt_eta_phi_e`` / ``pt_eta_phi_m``: vector's own momentum coordinates;
* ``pt_y_phi``: the particle built at rapidity 0 (pz = 0, E = mT) and boosted along z by its
  rapidity y (β = tanh y), which is exactly (pT, y, φ, m); the mass is the PDG mass of the
  ``pdg_id`` column if there is one, else 0;
* ``relative``: η = Δη + η_jet, φ = Δφ + φ_jet with the jet axis of ``jet_eta``/``jet_phi``.
  When the file has no axis at all, it is taken at η = φ = 0 and given to the features as
  the jet axis (with the constituents' summed pT and E), so Δη, Δφ, ΔR, pT/pT_jet and
  E/E_jet are exactly the stored ones; the four-vectors then keep the stored E beside a
  momentum placed at η = Δη, so their mass means nothing (no feature uses it).

``pt_form`` / ``energy_form`` undo a log or a division by the jet's pT / E first, and
``momentum_scale`` converts the stored unit (MeV, ...) to GeV. A ``pdg_id`` column becomes the
``pid`` group's charge and five flags (:func:`pid_features`).

:func:`check_four_vectors` then rejects four-vectors no layout of real particles produces —
negative energies, energies well below the momentum, pT columns that are never negative
beside angle-sized "momenta" — naming the file, the columns and the entry, because these are
the marks of a wrong layout (η/φ read as px/py, E read as pz, ...), not of odd physics.
"""

from __future__ import annotations

import logging
from typing import Any

import awkward as ak
import numpy as np

from jetfm.data.schema import BranchMapping
from jetfm.errors import DataError

logger = logging.getLogger(__name__)

#: Long-lived particles by |PDG id|: (mass in GeV, charge of the positive id). Particles of
#: a negative id have the opposite charge. Masses from the PDG Review of Particle Physics.
PARTICLES: dict[int, tuple[float, int]] = {
    11: (0.000510999, -1),  # e-
    12: (0.0, 0),  # ν_e
    13: (0.105658, -1),  # μ-
    14: (0.0, 0),  # ν_μ
    16: (0.0, 0),  # ν_τ
    22: (0.0, 0),  # γ
    130: (0.497611, 0),  # K0_L
    211: (0.139570, 1),  # π+
    310: (0.497611, 0),  # K0_S
    321: (0.493677, 1),  # K+
    2112: (0.939565, 0),  # n
    2212: (0.938272, 1),  # p
    3112: (1.197449, -1),  # Σ-
    3122: (1.115683, 0),  # Λ
    3222: (1.189370, 1),  # Σ+
    3312: (1.321710, -1),  # Ξ-
    3322: (1.314860, 0),  # Ξ0
    3334: (1.672450, -1),  # Ω-
}
_IDS = np.array(sorted(PARTICLES), dtype=np.int64)
_MASSES = np.array([PARTICLES[i][0] for i in _IDS])
_CHARGES = np.array([PARTICLES[i][1] for i in _IDS], dtype=np.float64)
_UNKNOWN_EXPLAINED: set[str] = set()


def _lookup(pdg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index into the table, known?) of every |PDG id|."""
    ids = np.abs(np.rint(pdg)).astype(np.int64)
    pos = np.clip(np.searchsorted(_IDS, ids), 0, len(_IDS) - 1)
    return pos, _IDS[pos] == ids


def _explain_unknown(pdg: np.ndarray, known: np.ndarray, source: str) -> None:
    if known.all() or source in _UNKNOWN_EXPLAINED:
        return
    _UNKNOWN_EXPLAINED.add(source)
    logger.info(
        "%s: PDG ids %s are not long-lived particles jetfm knows; they get charge 0, no "
        "particle-type flag and mass 0",
        source,
        sorted({int(v) for v in np.unique(np.rint(pdg[~known]))})[:10],
    )


def pdg_masses(pdg: np.ndarray, source: str = "<in-memory>") -> np.ndarray:
    """The PDG mass (GeV) of every id (0 for ids not in :data:`PARTICLES`)."""
    pos, known = _lookup(pdg)
    _explain_unknown(pdg, known, source)
    return np.where(known, _MASSES[pos], 0.0)


def pid_features(pdg: np.ndarray, source: str = "<in-memory>") -> dict[str, np.ndarray]:
    """The ``pid`` group (charge, is_electron, is_muon, is_photon, is_charged_hadron,
    is_neutral_hadron) of flat PDG ids; hadrons are the ids above 100."""
    pos, known = _lookup(pdg)
    _explain_unknown(pdg, known, source)
    ids = np.abs(np.rint(pdg)).astype(np.int64)
    charge = np.where(known, _CHARGES[pos] * np.sign(pdg), 0.0)
    hadron = known & (ids > 100)
    flags = {
        "charge": charge,
        "is_electron": ids == 11,
        "is_muon": ids == 13,
        "is_photon": ids == 22,
        "is_charged_hadron": hadron & (charge != 0),
        "is_neutral_hadron": hadron & (charge == 0),
    }
    return {k: np.asarray(v, dtype=np.float64) for k, v in flags.items()}


def _flat(arr: Any) -> np.ndarray:
    return np.asarray(ak.to_numpy(ak.flatten(arr, axis=None)), dtype=np.float64)


def _per_particle(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return np.repeat(values, counts)


def _jet(fields: dict, name: str, counts: np.ndarray) -> np.ndarray | None:
    if name not in fields:
        return None
    return _per_particle(np.asarray(ak.to_numpy(fields[name]), dtype=np.float64), counts)


def _undo_form(values: np.ndarray, form: str, jet: np.ndarray | None, what: str, source: str):
    """pT or E in GeV from its stored form (log, relative to the jet's)."""
    if form.startswith("log"):
        with np.errstate(over="ignore"):
            values = np.exp(values)
    if form.endswith("_rel"):
        if jet is None:
            raise DataError(
                f"{source}: the layout stores {what} relative to the jet's ({form!r}) but the "
                f"file has no jet {what} column (mapping field 'jet_{what}')"
            )
        values = values * jet
    return values


def to_cartesian(
    fields: dict[str, Any], mapping: BranchMapping, source: str = "<in-memory>"
) -> dict[str, Any]:
    """``fields`` with ``px, py, pz, energy`` (GeV) in place of the mapping's coordinates and
    the ``pid`` flags in place of ``pdg_id`` (a new dict; jagged arrays stay jagged)."""
    import vector

    coords = mapping.coordinate_fields()
    scale = float(mapping.momentum_scale)
    needs_work = mapping.coordinates != "cartesian" or scale != 1.0 or "pdg_id" in fields
    if not needs_work:
        return fields
    out = dict(fields)
    ref = fields[coords[0]]
    counts = np.asarray(ak.to_numpy(ak.num(ref, axis=1)), dtype=np.int64)
    for name in ("jet_pt", "jet_energy"):
        if name in out and scale != 1.0:
            out[name] = np.asarray(ak.to_numpy(out[name]), dtype=np.float64) * scale
    system = mapping.coordinates
    if system == "cartesian":
        px, py, pz, energy = (_flat(fields[f]) * scale for f in coords)
    else:
        values = {f: _flat(fields[f]) for f in coords}
        phi_name = "dphi" if system == "relative" else "phi"
        phi = values[phi_name]
        pt = _undo_form(values["pt"], mapping.pt_form, _jet(fields, "jet_pt", counts), "pt",
                        source) * scale  # fmt: skip
        if system == "relative":
            jet_eta = _jet(fields, "jet_eta", counts)
            jet_phi = _jet(fields, "jet_phi", counts)
            eta = values["deta"] + (0.0 if jet_eta is None else jet_eta)
            phi = phi + (0.0 if jet_phi is None else jet_phi)
        if system == "pt_y_phi":
            pdg = _flat(fields["pdg_id"]) if "pdg_id" in fields else None
            mass = np.zeros_like(pt) if pdg is None else pdg_masses(pdg, source)
            vec = vector.array(
                {"pt": pt, "eta": np.zeros_like(pt), "phi": phi, "mass": mass}
            ).boostZ(beta=np.tanh(values["rapidity"]))
        elif system == "pt_eta_phi_m":
            eta = values["eta"]
            vec = vector.array({"pt": pt, "eta": eta, "phi": phi, "mass": values["mass"] * scale})
        else:
            eta = values["eta"] if system == "pt_eta_phi_e" else eta
            if mapping.energy_form == "massless":
                vec = vector.array({"pt": pt, "eta": eta, "phi": phi, "mass": np.zeros_like(pt)})
            else:
                jet_e = _jet(fields, "jet_energy", counts)
                energy = _undo_form(values["energy"], mapping.energy_form, jet_e, "energy", source)
                vec = vector.array({"pt": pt, "eta": eta, "phi": phi, "energy": energy * scale})
        px, py, pz, energy = (np.asarray(getattr(vec, c)) for c in ("px", "py", "pz", "E"))
        for f in coords:
            out.pop(f, None)
    for name, flat in (("px", px), ("py", py), ("pz", pz), ("energy", energy)):
        out[name] = ak.unflatten(flat, counts)
    if system == "relative" and "jet_eta" not in fields and "jet_phi" not in fields:
        # no axis in the file: the particles sit around η = φ = 0, so that is the axis the
        # features use (with the constituents' pT and E sums): Δη, Δφ come out as stored
        jet = np.repeat(np.arange(len(counts)), counts)
        n = len(counts)
        sums = [np.bincount(jet, weights=v, minlength=n) for v in (px, py, energy)]
        out["jet_eta"] = np.zeros(n)
        out["jet_phi"] = np.zeros(n)
        out.setdefault("jet_pt", np.hypot(sums[0], sums[1]))
        out.setdefault("jet_energy", sums[2])
    if "pdg_id" in out:
        pdg = _flat(out.pop("pdg_id"))
        for name, flat in pid_features(pdg, source).items():
            out[name] = ak.unflatten(flat, counts)
    return out


#: share of a chunk's particles allowed to have E < (1 − tolerance)·|p| (detector round-off)
ENERGY_TOLERANCE = 0.1
OFF_SHELL_FRACTION = 0.01
#: jets a chunk needs before a never-negative px is taken as the sign of a pT column
MIN_JETS_FOR_SIGN_CHECK = 20


def check_four_vectors(
    fields: dict[str, Any],
    mapping: BranchMapping,
    plan: dict[str, str],
    source: str = "<in-memory>",
    entry_start: int = 0,
) -> None:
    """DataError naming the file and columns if the four-vectors cannot be real particles.

    Only marks no real file has are used: a negative energy; energies well below the
    momentum for more than 1 % of the particles (E read from a momentum column: a wrong
    order); or, for Cartesian layouts over at least 20 jets, a ``px`` that is never negative
    beside a ``pz`` or ``py`` that never leaves [−π, π] (pT and φ read as momenta).
    """
    if "px" not in fields or not len(fields["px"]):
        return
    counts = np.asarray(ak.to_numpy(ak.num(fields["px"], axis=1)), dtype=np.int64)
    if not counts.sum():
        return
    px, py, pz, energy = (_flat(fields[f]) for f in ("px", "py", "pz", "energy"))
    jet = np.repeat(np.arange(len(counts)), counts)
    names = [plan.get(f, f) for f in mapping.coordinate_fields()]
    hint = (
        f"is the layout right? the file's columns {names} are read as "
        f"{mapping.coordinates!r} coordinates {list(mapping.coordinate_fields())}"
    )
    finite = np.isfinite(energy)
    # without a jet axis, relative coordinates put the momentum at η = Δη beside the stored
    # E: E < |p| is then no sign of a wrong layout
    placed = mapping.coordinates == "relative" and "jet_eta" not in plan
    negative = finite & (energy < 0)
    if negative.any():
        i = int(np.flatnonzero(negative)[0])
        raise DataError(
            f"{source}: negative particle energy {energy[i]:.4g} at entry "
            f"{entry_start + jet[i]}; {hint}"
        )
    momentum = np.sqrt(px**2 + py**2 + pz**2)
    off = finite & (energy < (1 - ENERGY_TOLERANCE) * momentum - 1e-6)
    if not placed and off.mean() > OFF_SHELL_FRACTION:
        i = int(np.flatnonzero(off)[0])
        raise DataError(
            f"{source}: {off.mean():.0%} of the particles have an energy well below their "
            f"momentum (first at entry {entry_start + jet[i]}: E = {energy[i]:.4g}, "
            f"|p| = {momentum[i]:.4g} GeV); {hint}"
        )
    if mapping.coordinates != "cartesian" or len(counts) < MIN_JETS_FOR_SIGN_CHECK:
        return
    angle = next(
        (f for f, v in (("pz", pz), ("py", py)) if np.all(np.abs(v) <= np.pi + 1e-6)), None
    )
    if angle is not None and np.all(px >= 0):
        raise DataError(
            f"{source}: px ({plan.get('px', 'px')!r}) is never negative and {angle} "
            f"({plan.get(angle, angle)!r}) never leaves [−π, π] over {len(counts)} jets from "
            f"entry {entry_start}: these look like pT and an angle, not momenta; {hint} (set "
            "coordinates: pt_eta_phi_e, or another system, in the mapping)"
        )


__all__ = [
    "PARTICLES",
    "check_four_vectors",
    "pdg_masses",
    "pid_features",
    "to_cartesian",
]
