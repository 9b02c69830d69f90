"""Track impact parameters with a simple, documented detector model.

Pythia gives each particle's true production vertex (mm; the hard interaction sits at the
origin). A track is treated as a straight line from that vertex along its momentum (the
curvature in a 3.8 T field changes d0 by < 1 µm over the few-mm flight of a b hadron for
pT > 1 GeV), and:

* **Beam spot.** Each event's primary vertex is displaced transversely by a Gaussian
  beam spot, σ_x = σ_y = 10 µm (LHC Run 2). The transverse impact parameter is measured
  w.r.t. the nominal beam line (x = y = 0), so even prompt tracks get a true d0 of the
  order of the beam-spot size.
* **d0** (transverse, signed): ``d0 = (y·px − x·py) / pT`` at the point of closest approach
  to the beam line, (x, y) the production point including the beam-spot offset.
* **dz** (longitudinal): ``z(PCA) − z(PV) = vz − (vx·px + vy·py)·pz / pT²`` w.r.t. the
  reconstructed primary vertex (so the ~4 cm longitudinal beam-spot length cancels).
* **Resolution.** Both are smeared with Gaussian resolutions of the usual
  "constant ⊕ multiple-scattering" form, σ(d0) = 10 µm ⊕ 70 µm / pT[GeV] and
  σ(dz) = 30 µm ⊕ 100 µm / pT[GeV]; the resolution is stored as ``part_d0err`` /
  ``part_dzerr``, so d0/σ(d0) is a proper significance.

Neutral particles get d0 = dz = 0 and zero errors.
"""

from __future__ import annotations

import numpy as np

BEAM_SPOT_XY_MM = 0.010
D0_RES_MM = (0.010, 0.070)  # constant, per-GeV term
DZ_RES_MM = (0.030, 0.100)


def resolution(pt: np.ndarray, terms: tuple[float, float]) -> np.ndarray:
    """σ = a ⊕ b / pT (mm), pT in GeV."""
    a, b = terms
    return np.hypot(a, b / np.maximum(pt, 1e-3))


def impact_parameters(
    px: np.ndarray,
    py: np.ndarray,
    pz: np.ndarray,
    vx: np.ndarray,
    vy: np.ndarray,
    vz: np.ndarray,
    beam_x: np.ndarray,
    beam_y: np.ndarray,
    charged: np.ndarray,
    rng: np.random.Generator,
    d0_terms: tuple[float, float] = D0_RES_MM,
    dz_terms: tuple[float, float] = DZ_RES_MM,
) -> dict[str, np.ndarray]:
    """Smeared d0, dz and their errors (mm) for particles; zeros for neutrals.

    ``beam_x``/``beam_y`` are the primary-vertex offsets of each particle's event;
    ``d0_terms``/``dz_terms`` the resolution terms (constant, per GeV) of :func:`resolution`.
    """
    pt2 = np.maximum(px**2 + py**2, 1e-12)
    pt = np.sqrt(pt2)
    x, y = vx + beam_x, vy + beam_y
    d0 = (y * px - x * py) / pt
    dz = vz - (vx * px + vy * py) * pz / pt2
    d0_err = resolution(pt, d0_terms)
    dz_err = resolution(pt, dz_terms)
    # (n, 2), not (2, n): the stream then does not depend on how particles are batched
    noise = rng.standard_normal((len(px), 2)).T
    zero = np.zeros_like(pt)
    return {
        "d0": np.where(charged, d0 + d0_err * noise[0], zero),
        "dz": np.where(charged, dz + dz_err * noise[1], zero),
        "d0_err": np.where(charged, d0_err, zero),
        "dz_err": np.where(charged, dz_err, zero),
    }
