"""A parametric fast detector simulation in the spirit of Delphes' energy flow.

:func:`simulate` maps the visible final-state particles of a batch of events (flat
:class:`~jetfm.generation.objects.Objects`) to detector objects, vectorised over the batch:

* **Tracks.** Charged particles are tracked with a (|η|, pT)-binned efficiency, separately
  for hadrons, electrons and muons; a tracked particle's pT is smeared with the relative
  resolution σ(pT)/pT = √(a² + (b·pT)²) of its |η| bin (log-normal, capped at 100 %, as
  Delphes' ``MomentumSmearing``). Direction, charge, particle type and the truth link are
  kept; the energy follows from the measured momentum and the particle's mass. Impact
  parameters are smeared downstream (:mod:`jetfm.generation.tracks`) with the detector's
  d0/dz resolution.
* **Calorimeters.** Every particle deposits its energy in an ECAL and an HCAL η–φ grid:
  e±, γ (and π0) all in the ECAL, K0S and Λ 30 % / 70 %, muons and neutrinos nothing, all
  other hadrons in the HCAL. Charged particles reach the calorimeter along their helix in
  the solenoid field (φ turned by the bending, soft loopers that never reach it deposit
  nothing). Deposits are summed per cell; each cell's energy is smeared log-normally with
  σ(E) = k(η)·√((c·E)² + s²·E + n²) (constant, stochastic, noise) and zeroed below the
  cell thresholds (E < E_min or E < S_min·σ).
* **Energy flow** (Delphes ``SimpleCalorimeter``): the energy of the tracks pointing to a
  cell is subtracted; a significant excess (E_min and S_min·σ) becomes a neutral object
  with that energy — a photon for an ECAL cell, a neutral hadron for an HCAL cell — placed
  uniformly within the cell and massless. Where the excess is not significant, the tracks
  of the cell are rescaled to the resolution-weighted mean of track and cell energy.
  Charged particles that fail tracking therefore reach the jet as calorimeter energy.

Simplifications against Delphes: no pile-up, no photon conversions or bremsstrahlung, the
calorimeter entry point uses the momentum η and a helix from the origin, tracks that loop
before the calorimeter are kept as tracks, and each track's energy subtraction uses its
own measured energy.

Randomness comes from two generators, one draw array per batch each (three uniforms per
particle, four per cell), so the result does not depend on how events are batched.

The numbers of each named detector (:data:`DETECTORS`) come from the Delphes cards
``cards/delphes_card_CMS.tcl`` and ``cards/delphes_card_ATLAS.tcl`` (github.com/delphes/
delphes); every value says where it comes from.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import Any

import numpy as np

from jetfm.defaults import DETECTOR_NAMES
from jetfm.generation import tracks
from jetfm.generation.objects import ECAL_CELL_PID, HCAL_CELL_PID, Objects, concatenate

#: Fraction of each particle's energy deposited in the ECAL (rest: HCAL), by |PDG id|: the
#: ``EnergyFraction`` lines shared by the CMS and ATLAS cards (ECal/HCal modules). Ids not
#: listed deposit everything in the HCAL; :data:`NO_DEPOSIT` ids deposit nothing.
ECAL_FRACTION = {11: 1.0, 22: 1.0, 111: 1.0, 310: 0.3, 3122: 0.3}
NO_DEPOSIT = (12, 13, 14, 16)

# charged-particle curvature radius r[m] = pT[GeV] / (C · B[T])
_C_GEV_PER_T_M = 0.299792458


@dataclasses.dataclass(frozen=True)
class TrackEfficiency:
    """Tracking efficiency binned in |η| and pT (Delphes ``Efficiency`` formulas).

    ``values[i][j]`` applies for ``abs_eta_edges[i-1] < |η| ≤ abs_eta_edges[i]`` and
    ``pt_edges[j] < pT ≤ pt_edges[j+1]`` (the last pT bin is open); 0 for
    ``pT ≤ pt_edges[0]`` or ``|η|`` beyond the last edge (outside the tracker).
    """

    abs_eta_edges: tuple[float, ...]
    pt_edges: tuple[float, ...]
    values: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        _check_edges(self.abs_eta_edges, "abs_eta_edges")
        _check_edges(self.pt_edges, "pt_edges")
        shape = np.shape(self.values)
        if shape != (len(self.abs_eta_edges), len(self.pt_edges)):
            raise ValueError(f"values must be |η| bins × pT bins, got shape {shape}")

    def __call__(self, pt: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.abs_eta_edges, abs_eta, side="left")
        j = np.searchsorted(self.pt_edges, pt, side="left") - 1
        ok = (i < len(self.abs_eta_edges)) & (j >= 0)
        table = np.asarray(self.values, np.float64)
        return np.where(ok, table[np.minimum(i, len(table) - 1), np.maximum(j, 0)], 0.0)


@dataclasses.dataclass(frozen=True)
class MomentumResolution:
    """σ(pT)/pT = √(a² + (b·pT)²) with ``terms[i] = (a, b)`` for
    ``abs_eta_edges[i-1] < |η| ≤ abs_eta_edges[i]`` (Delphes ``MomentumSmearing``)."""

    abs_eta_edges: tuple[float, ...]
    terms: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        _check_edges(self.abs_eta_edges, "abs_eta_edges")
        if np.shape(self.terms) != (len(self.abs_eta_edges), 2):
            raise ValueError("terms must hold one (a, b) pair per |η| bin")

    def __call__(self, pt: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.abs_eta_edges, abs_eta, side="left")
        terms = np.asarray(self.terms, np.float64)
        a, b = terms[np.minimum(i, len(terms) - 1)].T
        return np.where(i < len(terms), np.hypot(a, b * pt), 0.0)


@dataclasses.dataclass(frozen=True)
class EnergyResolution:
    """σ(E) = (scale + scale_eta2·(|η| − scale_eta0)²) · √((constant·E)² + stochastic²·E +
    noise²) for |η| up to ``abs_eta_max`` (from the previous region's maximum)."""

    abs_eta_max: float
    constant: float
    stochastic: float
    noise: float = 0.0
    scale: float = 1.0
    scale_eta2: float = 0.0
    scale_eta0: float = 0.0


@dataclasses.dataclass(frozen=True)
class CaloGrid:
    """An η–φ cell grid, symmetric in η: ``segments`` of ``(|η| from, |η| to, η bins, φ
    bins)``, contiguous from |η| = 0, each with uniform cells (φ bins start at −π)."""

    segments: tuple[tuple[float, float, int, int], ...]

    def __post_init__(self) -> None:
        lo = 0.0
        for seg in self.segments:
            a, b, n_eta, n_phi = seg
            if not (math.isclose(a, lo, abs_tol=1e-9) and b > a and n_eta >= 1 and n_phi >= 1):
                raise ValueError(f"calorimeter segments must be contiguous from |η| = 0: {seg}")
            lo = b

    @functools.cached_property
    def _bins(self) -> tuple[np.ndarray, np.ndarray]:
        edges = [np.zeros(1)]
        n_phi = []
        for a, b, n_eta, nphi in self.segments:
            edges.append(np.linspace(a, b, n_eta + 1)[1:])
            n_phi.append(np.full(n_eta, nphi, np.int64))
        return np.concatenate(edges), np.concatenate(n_phi)

    @property
    def n_eta_bins(self) -> int:
        return len(self._bins[1])

    @property
    def max_phi_bins(self) -> int:
        return int(self._bins[1].max())

    def locate(self, eta: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(inside, eta_index, phi_bin)``; ``eta_index = 2·|η| bin + (η < 0)``."""
        edges, n_phi = self._bins
        b = np.searchsorted(edges, np.abs(eta), side="right") - 1
        inside = (b >= 0) & (b < len(n_phi))
        b = np.clip(b, 0, len(n_phi) - 1)
        nphi = n_phi[b]
        j = np.floor((phi + np.pi) / (2 * np.pi) * nphi).astype(np.int64)
        return inside, 2 * b + (eta < 0), np.clip(j, 0, nphi - 1)

    def cell_bounds(
        self, eta_index: np.ndarray, phi_bin: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(eta_lo, eta_hi, phi_lo, phi_hi)`` of cells (signed η)."""
        edges, n_phi = self._bins
        b, negative = eta_index // 2, (eta_index % 2).astype(bool)
        lo, hi = edges[b], edges[b + 1]
        eta_lo, eta_hi = np.where(negative, -hi, lo), np.where(negative, -lo, hi)
        width = 2 * np.pi / n_phi[b]
        return eta_lo, eta_hi, -np.pi + phi_bin * width, -np.pi + (phi_bin + 1) * width


@dataclasses.dataclass(frozen=True)
class Calorimeter:
    """One calorimeter: cell grid, energy resolution by |η| region and cell thresholds
    (a cell counts when E ≥ ``energy_min`` GeV and E ≥ ``significance_min``·σ(E))."""

    grid: CaloGrid
    resolution: tuple[EnergyResolution, ...]
    energy_min: float
    significance_min: float

    def sigma(self, energy: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
        """σ(E) in GeV; 0 beyond the last resolution region."""
        table = np.array([dataclasses.astuple(r) for r in self.resolution], np.float64)
        i = np.searchsorted(table[:, 0], abs_eta, side="left")
        _, c, s, n, k0, k2, eta0 = table[np.minimum(i, len(table) - 1)].T
        e = np.maximum(energy, 0.0)
        value = (k0 + k2 * (abs_eta - eta0) ** 2) * np.sqrt((c * e) ** 2 + s**2 * e + n**2)
        return np.where(i < len(table), value, 0.0)


@dataclasses.dataclass(frozen=True)
class DetectorSettings:
    """Every number of one detector model (see the module docstring for what each does)."""

    name: str
    reference: str
    magnetic_field_t: float
    calo_radius_m: float  # radius and half-length of the solenoid volume (calorimeter entry)
    calo_half_length_m: float
    hadron_efficiency: TrackEfficiency
    electron_efficiency: TrackEfficiency
    muon_efficiency: TrackEfficiency
    hadron_resolution: MomentumResolution
    electron_resolution: MomentumResolution
    muon_resolution: MomentumResolution
    ecal: Calorimeter
    hcal: Calorimeter
    d0_res_mm: tuple[float, float] = tracks.D0_RES_MM
    dz_res_mm: tuple[float, float] = tracks.DZ_RES_MM

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (for the dataset manifest)."""
        return dataclasses.asdict(self)


def _check_edges(edges: tuple[float, ...], what: str) -> None:
    if len(edges) == 0 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"{what} must be a non-empty increasing sequence, got {edges}")


# --- the named detectors -------------------------------------------------------------------
# Tracking efficiencies: identical in delphes_card_CMS.tcl and delphes_card_ATLAS.tcl
# (modules ChargedHadronTrackingEfficiency, ElectronTrackingEfficiency,
# MuonTrackingEfficiency): |η| ≤ 1.5 / 1.5–2.5, pT 0.1–1 / > 1 GeV (electrons also > 100 GeV).
_HADRON_EFF = TrackEfficiency((1.5, 2.5), (0.1, 1.0), ((0.70, 0.95), (0.60, 0.85)))
_ELECTRON_EFF = TrackEfficiency(
    (1.5, 2.5), (0.1, 1.0, 100.0), ((0.73, 0.95, 0.99), (0.50, 0.83, 0.90))
)
_MUON_EFF = TrackEfficiency((1.5, 2.5), (0.1, 1.0), ((0.75, 0.99), (0.70, 0.98)))
_RES_ETA = (0.5, 1.5, 2.5)
# ElectronMomentumSmearing and MuonMomentumSmearing: identical in both cards.
_ELECTRON_RES = MomentumResolution(_RES_ETA, ((0.03, 1.3e-3), (0.05, 1.7e-3), (0.15, 3.1e-3)))
_MUON_RES = MomentumResolution(_RES_ETA, ((0.01, 1.0e-4), (0.015, 1.5e-4), (0.025, 3.5e-4)))
# ECal grid, identical in both cards: 0.0174 × 1° up to |η| = 2.958 (barrel i·0.0174 and
# endcap 1.4964 + i·0.0174 edges), then the forward bins (2.958, 3.125, 3.3 … 4.7, 5) × 10°.
_ECAL_GRID = CaloGrid(
    ((0.0, 2.958, 170, 360), (2.958, 3.125, 1, 36), (3.125, 4.7, 9, 36), (4.7, 5.0, 1, 36))
)

# HCal tower edges of the CMS card between the 5° barrel and the forward calorimeter
_CMS_HCAL_ENDCAP = (1.653, 1.74, 1.83, 1.93, 2.043, 2.172, 2.322, 2.5, 2.65, 2.868, 2.95, 3.125)

CMS = DetectorSettings(
    name="cms",
    reference="Delphes cards/delphes_card_CMS.tcl (github.com/delphes/delphes, 0593ac3)",
    # ParticlePropagator: Bz = 3.8 T, Radius = 1.29 m, HalfLength = 3.00 m
    magnetic_field_t=3.8,
    calo_radius_m=1.29,
    calo_half_length_m=3.00,
    hadron_efficiency=_HADRON_EFF,
    electron_efficiency=_ELECTRON_EFF,
    muon_efficiency=_MUON_EFF,
    # ChargedHadronMomentumSmearing (based on arXiv:1405.6569)
    hadron_resolution=MomentumResolution(
        _RES_ETA, ((0.01, 1.5e-4), (0.015, 2.5e-4), (0.025, 5.5e-4))
    ),
    electron_resolution=_ELECTRON_RES,
    muon_resolution=_MUON_RES,
    # module SimpleCalorimeter ECal: EnergyMin 0.5, EnergySignificanceMin 2.0; resolution
    # (1+0.64η²)·√(E²·0.008² + E·0.11² + 0.40²) for |η| ≤ 1.5,
    # (2.16 + 5.6(|η|−2)²)·√(…same…) for 1.5–2.5, √(E²·0.107² + E·2.08²) for 2.5–5
    ecal=Calorimeter(
        grid=_ECAL_GRID,
        resolution=(
            EnergyResolution(1.5, 0.008, 0.11, 0.40, 1.0, 0.64, 0.0),
            EnergyResolution(2.5, 0.008, 0.11, 0.40, 2.16, 5.6, 2.0),
            EnergyResolution(5.0, 0.107, 2.08),
        ),
        energy_min=0.5,
        significance_min=2.0,
    ),
    # module SimpleCalorimeter HCal: EnergyMin 1.0, EnergySignificanceMin 2.0; 0.087 × 5°
    # towers up to |η| = 1.653, then the listed endcap edges × 10°, forward 0.175 × 10°
    # and 4.525–5 × 20°; resolution √(E²·0.050² + E·1.50²) (|η| ≤ 3), √(E²·0.130² + E·2.70²)
    hcal=Calorimeter(
        grid=CaloGrid(
            (
                (0.0, 1.653, 19, 72),
                *((a, b, 1, 36) for a, b in itertools.pairwise(_CMS_HCAL_ENDCAP)),
                (3.125, 4.525, 8, 36),
                (4.525, 4.7, 1, 18),
                (4.7, 5.0, 1, 18),
            )
        ),
        resolution=(EnergyResolution(3.0, 0.050, 1.50), EnergyResolution(5.0, 0.130, 2.70)),
        energy_min=1.0,
        significance_min=2.0,
    ),
)

ATLAS = DetectorSettings(
    name="atlas",
    reference="Delphes cards/delphes_card_ATLAS.tcl (github.com/delphes/delphes, 15772b7)",
    # ParticlePropagator: Bz = 2.0 T, Radius = 1.15 m, HalfLength = 3.51 m
    magnetic_field_t=2.0,
    calo_radius_m=1.15,
    calo_half_length_m=3.51,
    hadron_efficiency=_HADRON_EFF,
    electron_efficiency=_ELECTRON_EFF,
    muon_efficiency=_MUON_EFF,
    # ChargedHadronMomentumSmearing
    hadron_resolution=MomentumResolution(
        _RES_ETA, ((0.06, 1.3e-3), (0.10, 1.7e-3), (0.25, 3.1e-3))
    ),
    electron_resolution=_ELECTRON_RES,
    muon_resolution=_MUON_RES,
    # module SimpleCalorimeter ECal: EnergyMin 0.5, EnergySignificanceMin 2.0;
    # √(E²·0.0017² + E·0.101²) for |η| ≤ 3.2, √(E²·0.0350² + E·0.285²) for 3.2–4.9
    ecal=Calorimeter(
        grid=_ECAL_GRID,
        resolution=(EnergyResolution(3.2, 0.0017, 0.101), EnergyResolution(4.9, 0.0350, 0.285)),
        energy_min=0.5,
        significance_min=2.0,
    ),
    # module SimpleCalorimeter HCal: EnergyMin 1.0, EnergySignificanceMin 2.0; 0.1 × 10°
    # towers up to |η| = 2.6, 2.6–3.2 in 0.2 × 20°, 3.2–3.3 × 10°, 3.3–4.9 in 0.2 × 20°;
    # √(E²·0.0302² + E·0.5205² + 1.59²) (|η| ≤ 1.7), √(E²·0.0500² + E·0.706²) (1.7–3.2),
    # √(E²·0.0942² + E·1.00²) (3.2–4.9)
    hcal=Calorimeter(
        grid=CaloGrid(
            ((0.0, 2.6, 26, 36), (2.6, 3.2, 3, 18), (3.2, 3.3, 1, 36), (3.3, 4.9, 8, 18))
        ),
        resolution=(
            EnergyResolution(1.7, 0.0302, 0.5205, 1.59),
            EnergyResolution(3.2, 0.0500, 0.706),
            EnergyResolution(4.9, 0.0942, 1.00),
        ),
        energy_min=1.0,
        significance_min=2.0,
    ),
)

#: Not a real detector: :data:`CMS` with calorimeter cells twice as wide in η and φ
#: (ECAL 0.0348 × 2°, HCAL 0.174 × 10° up to |η| = 2.958, coarser forward cells), for
#: domain-shift tests.
CMS_COARSE = dataclasses.replace(
    CMS,
    name="cms-coarse",
    reference="delphes_card_CMS.tcl with calorimeter cells twice as wide in η and φ",
    ecal=dataclasses.replace(CMS.ecal, grid=CaloGrid(((0.0, 2.958, 85, 180), (2.958, 5.0, 6, 18)))),
    hcal=dataclasses.replace(CMS.hcal, grid=CaloGrid(((0.0, 2.958, 17, 36), (2.958, 5.0, 6, 18)))),
)

#: The named detectors of ``jetfm generate --detector``.
DETECTORS: dict[str, DetectorSettings] = {d.name: d for d in (CMS, ATLAS, CMS_COARSE)}
# ``--detector`` choices (jetfm.defaults.DETECTOR_NAMES, import-free for the command line):
# ``none`` (particle level) and the named detectors
if ("none", *DETECTORS) != DETECTOR_NAMES:  # pragma: no cover - a new detector, one place missed
    raise ImportError(f"jetfm.defaults.DETECTOR_NAMES {DETECTOR_NAMES} lacks {list(DETECTORS)}")


def get_detector(name: str | None) -> DetectorSettings | None:
    """The settings of a named detector; ``None`` for ``"none"`` (particle level)."""
    if name is None or name == "none":
        return None
    from jetfm.errors import JetFMError

    try:
        return DETECTORS[name]
    except KeyError:
        raise JetFMError(
            f"unknown detector {name!r}; choose from {', '.join(DETECTOR_NAMES)}"
        ) from None


# --- the simulation --------------------------------------------------------------------------
def _normal(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """Standard normals from two uniforms in [0, 1) (Box–Muller)."""
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def log_normal(mean: np.ndarray, sigma: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Delphes' ``LogNormal(mean, sigma)``: a positive variate with that mean and standard
    deviation, from standard normals ``z``; 0 where ``mean ≤ 0``."""
    m = np.maximum(mean, 1e-300)
    b = np.sqrt(np.log1p((sigma / m) ** 2))
    return np.where(mean > 0, m * np.exp(b * z - 0.5 * b * b), 0.0)


def _calo_entry(
    objs: Objects, settings: DetectorSettings, pt: np.ndarray, eta: np.ndarray, phi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(reaches, eta, phi)`` at the calorimeter entry: charged particles follow a helix
    from the origin to the barrel radius or the endcap plane, whichever comes first."""
    charged = objs.charge != 0
    if settings.magnetic_field_t <= 0:
        return np.ones(len(pt), bool), eta, phi
    r = np.maximum(pt, 1e-9) / (_C_GEV_PER_T_M * settings.magnetic_field_t)  # m
    half_chord = settings.calo_radius_m / (2 * r)
    # transverse arc length to the barrel (if the circle gets there) and to the endcap
    s_barrel = np.where(half_chord < 1, 2 * r * np.arcsin(np.minimum(half_chord, 1)), np.inf)
    sinh = np.abs(np.sinh(eta))
    s_endcap = np.where(sinh > 0, settings.calo_half_length_m / np.maximum(sinh, 1e-300), np.inf)
    s = np.minimum(s_barrel, s_endcap)
    turn = np.where(np.isfinite(s), s / r, 0.0)  # turning angle
    reaches = ~charged | np.isfinite(s)
    new_phi = np.mod(phi - np.sign(objs.charge) * turn / 2 + np.pi, 2 * np.pi) - np.pi
    # endcap entry of a soft particle: its position's η, not the momentum's
    rho = 2 * r * np.abs(np.sin(turn / 2))
    at_endcap = charged & (s_endcap < s_barrel)
    pos_eta = np.sign(eta) * np.arcsinh(settings.calo_half_length_m / np.maximum(rho, 1e-12))
    new_eta = np.where(at_endcap, pos_eta, eta)
    return reaches, np.where(charged, new_eta, eta), np.where(charged, new_phi, phi)


@dataclasses.dataclass
class _Cells:
    """The hit cells of one calorimeter in a batch (sorted by event, then cell)."""

    calo: Calorimeter
    pid: int
    event: np.ndarray
    eta_index: np.ndarray
    phi_bin: np.ndarray
    energy: np.ndarray  # true deposited energy
    trk_energy: np.ndarray  # measured energy of the tracks pointing here
    trk_var: np.ndarray  # their squared energy resolution, summed
    trk: np.ndarray  # particle index of those tracks …
    trk_cell: np.ndarray  # … and their cell


def _deposit(
    particles: Objects,
    calo: Calorimeter,
    pid: int,
    fraction: np.ndarray,
    where: tuple[np.ndarray, np.ndarray, np.ndarray],
    tracked: np.ndarray,
    trk_e: np.ndarray,
    res: np.ndarray,
) -> _Cells:
    """Sum the deposits (``fraction`` of each particle's energy) per cell."""
    reaches, eta, phi = where
    inside, eta_index, phi_bin = calo.grid.locate(eta, phi)
    dep = np.nonzero(reaches & inside & (fraction > 0))[0]
    n_eta, n_phi = 2 * calo.grid.n_eta_bins, calo.grid.max_phi_bins
    key = (particles.event[dep] * n_eta + eta_index[dep]) * n_phi + phi_bin[dep]
    cell_key, cell_of = np.unique(key, return_inverse=True)
    n = len(cell_key)
    trk = tracked[dep]
    trk_energy = np.where(trk, trk_e[dep] * fraction[dep], 0.0)
    return _Cells(
        calo=calo,
        pid=pid,
        event=cell_key // (n_eta * n_phi),
        eta_index=(cell_key // n_phi) % n_eta,
        phi_bin=cell_key % n_phi,
        energy=np.bincount(cell_of, particles.e[dep] * fraction[dep], minlength=n),
        trk_energy=np.bincount(cell_of, trk_energy, minlength=n),
        trk_var=np.bincount(cell_of, (res[dep] * trk_energy) ** 2, minlength=n),
        trk=dep[trk],
        trk_cell=cell_of[trk],
    )


def _energy_flow(cells: _Cells, u: np.ndarray, n_events: int, factor: np.ndarray) -> Objects:
    """Smear and threshold the cells; return the neutral objects and write the energy-flow
    rescaling of the cells' tracks into ``factor`` (per particle)."""
    calo = cells.calo
    eta_lo, eta_hi, phi_lo, phi_hi = calo.grid.cell_bounds(cells.eta_index, cells.phi_bin)
    abs_center = np.abs(0.5 * (eta_lo + eta_hi))
    sigma = calo.sigma(cells.energy, abs_center)
    measured = log_normal(cells.energy, sigma, _normal(u[:, 0], u[:, 1]))
    sigma = calo.sigma(measured, abs_center)
    below = (measured < calo.energy_min) | (measured < calo.significance_min * sigma)
    measured = np.where(below, 0.0, measured)
    # a significant excess over the tracks is a neutral object …
    trk_energy, trk_var = cells.trk_energy, cells.trk_var
    neutral = np.maximum(measured - trk_energy, 0.0)
    keep = (neutral > calo.energy_min) & (
        neutral > calo.significance_min * np.sqrt(trk_var + sigma**2)
    )
    # … otherwise the tracks take the resolution-weighted mean of track and cell energy
    w_trk = np.where(trk_var > 0, 1.0 / np.maximum(trk_var, 1e-300), 0.0)
    w_cal = np.where(sigma > 0, 1.0 / np.maximum(sigma, 1e-150) ** 2, 0.0)
    w_sum = np.maximum(w_trk + w_cal, 1e-300)
    best = np.where(w_trk + w_cal > 0, (w_trk * trk_energy + w_cal * measured) / w_sum, trk_energy)
    rescale = ~keep & (trk_energy > 0)
    cell_factor = np.where(rescale, best / np.maximum(trk_energy, 1e-300), 1.0)
    factor[cells.trk] = cell_factor[cells.trk_cell]
    # neutral objects: placed uniformly within their cell, massless
    k = np.nonzero(keep)[0]
    eta = eta_lo[k] + u[k, 2] * (eta_hi[k] - eta_lo[k])
    phi = phi_lo[k] + u[k, 3] * (phi_hi[k] - phi_lo[k])
    energy = neutral[k]
    pt = energy / np.cosh(eta)
    return Objects(
        n_events,
        event=cells.event[k],
        px=pt * np.cos(phi),
        py=pt * np.sin(phi),
        pz=pt * np.sinh(eta),
        e=energy,
        charge=np.zeros(len(k)),
        pid=np.full(len(k), cells.pid, np.int64),
        truth=np.full(len(k), -1, np.int64),
    )


def simulate(
    particles: Objects,
    settings: DetectorSettings,
    rngs: tuple[np.random.Generator, np.random.Generator],
) -> Objects:
    """Detector objects (tracks and calorimeter neutrals, sorted by event) of a batch.

    Args:
        particles: visible final-state particles (``truth`` = record index).
        settings: the detector model.
        rngs: (per-particle generator, per-cell generator).

    Returns:
        :class:`~jetfm.generation.objects.Objects`: tracks keep the particle's charge, PDG
        id and ``truth``; calorimeter neutrals have charge 0, ``pid``
        :data:`~jetfm.generation.objects.ECAL_CELL_PID` (photon) or
        :data:`~jetfm.generation.objects.HCAL_CELL_PID` (neutral hadron) and ``truth`` −1.
    """
    particle_rng, cell_rng = rngs
    n = len(particles)
    u = particle_rng.random((n, 3))
    pt = particles.pt()
    eta, phi = particles.eta_phi()
    abs_eta = np.abs(eta)
    absid = np.abs(particles.pid)
    charged = particles.charge != 0
    is_e, is_mu = charged & (absid == 11), charged & (absid == 13)
    is_h = charged & ~is_e & ~is_mu

    # --- tracks: efficiency and momentum smearing --------------------------------------
    eff, res = np.zeros(n), np.zeros(n)
    for mask, eff_fn, res_fn in (
        (is_h, settings.hadron_efficiency, settings.hadron_resolution),
        (is_e, settings.electron_efficiency, settings.electron_resolution),
        (is_mu, settings.muon_efficiency, settings.muon_resolution),
    ):
        eff[mask] = eff_fn(pt[mask], abs_eta[mask])
        res[mask] = res_fn(pt[mask], abs_eta[mask])
    tracked = charged & (u[:, 0] < eff)
    res = np.minimum(res, 1.0)
    scale = np.where(tracked, log_normal(np.ones(n), res, _normal(u[:, 1], u[:, 2])), 1.0)
    mass2 = np.maximum(particles.e**2 - particles.px**2 - particles.py**2 - particles.pz**2, 0)
    p2 = particles.px**2 + particles.py**2 + particles.pz**2
    trk_e = np.sqrt(scale**2 * p2 + mass2)

    # --- calorimeters: deposits per cell, then smearing, thresholds and energy flow ------
    where = _calo_entry(particles, settings, pt, eta, phi)
    f_ecal = np.zeros(n)
    for pid, frac in ECAL_FRACTION.items():
        f_ecal[absid == pid] = frac
    f_hcal = np.where(np.isin(absid, NO_DEPOSIT), 0.0, 1.0 - f_ecal)
    calos = [
        _deposit(particles, settings.ecal, ECAL_CELL_PID, f_ecal, where, tracked, trk_e, res),
        _deposit(particles, settings.hcal, HCAL_CELL_PID, f_hcal, where, tracked, trk_e, res),
    ]
    # one draw array for all cells of the batch in event order (ECAL before HCAL within an
    # event), so that the stream does not depend on how events are batched
    order = np.argsort(np.concatenate([c.event for c in calos]), kind="stable")
    u_cells = np.empty((len(order), 4))
    u_cells[order] = cell_rng.random((len(order), 4))
    factor = np.ones(n)
    neutrals, start = [], 0
    for cells in calos:
        stop = start + len(cells.event)
        neutrals.append(_energy_flow(cells, u_cells[start:stop], particles.n_events, factor))
        start = stop

    # --- tracks, with their energy-flow rescaling ----------------------------------------
    t = np.nonzero(tracked)[0]
    s = scale[t] * factor[t]
    track_objs = Objects(
        particles.n_events,
        event=particles.event[t],
        px=particles.px[t] * s,
        py=particles.py[t] * s,
        pz=particles.pz[t] * s,
        e=np.sqrt(s**2 * p2[t] + mass2[t]),
        charge=particles.charge[t],
        pid=particles.pid[t],
        truth=particles.truth[t],
    )
    return concatenate([track_objs, *neutrals])
