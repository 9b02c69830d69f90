"""Pythia 8 settings and truth-matching rules for each jet class.

Every class is one hard process with forced decays, so that (almost) every event contains
the object we want, and a :class:`ProcessSpec` that says how to recognise a jet of that
class in the event record: which resonance (PDG id) and which of its decay products must
lie within ΔR < R (the jet radius) of the jet axis. QCD jets are matched to an outgoing
hard parton.

The names are the JetClass names of :data:`jetfm.data.schema.JETCLASS_LABELS`;
:data:`SUPPORTED_CLASSES` keeps JetClass order and is the label set of every file written.
"""

from __future__ import annotations

import dataclasses

from jetfm.data.schema import JETCLASS_LABELS

#: Centre-of-mass energy (GeV) and the default jet selection (see :class:`JetSelection`).
ECM = 13_000.0
JET_R = 0.8
JET_PT_MIN, JET_PT_MAX, JET_ABS_ETA_MAX = 500.0, 1000.0, 2.0
MATCH_DR = 0.8
MAX_PARTICLES = 128
#: Largest jet radius and |η| limit accepted (the tracker ends at |η| = 2.5).
MAX_RADIUS, MAX_ABS_ETA = 1.0, 2.5

#: Lower cut on the hard-process pT as a fraction of the jet-pT minimum: a 500 GeV jet needs
#: a ~450+ GeV parent (for the resonances, pT̂ is the boson/top pT). Lower wastes events
#: below the jet-pT window.
PTHAT_FRACTION = 0.9
PTHAT_MIN = PTHAT_FRACTION * JET_PT_MIN

#: Nominal masses (GeV) of the matched resonances, for :func:`containment_pt`.
RESONANCE_MASS_GEV = {6: 172.5, 23: 91.19, 24: 80.38, 25: 125.0}

#: Pythia's default pp tune (``Tune:pp = 14``, Monash 2013), written explicitly.
DEFAULT_TUNE = 14
#: ``Tune:pp`` values Pythia 8.3 accepts (1 … 33; see its "Tunes" page).
TUNE_RANGE = (1, 33)

#: Settings used for every class. Decays of particles with cτ > 10 mm are switched off
#: (K0S, Λ, π± stay stable, as in a detector's tracker volume). Only printing, event
#: listing and the per-event consistency check are turned off for speed; MPI, ISR, FSR and
#: hadronisation stay on because they shape the jets.
COMMON_SETTINGS: tuple[str, ...] = (
    f"Beams:eCM = {ECM}",
    "Print:quiet = on",
    "Check:event = off",
    "Next:numberCount = 0",
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10",
    "Random:setSeed = on",
)

_QUARKS = "1 2 3 4 5"  # W/Z hadronic decays (no top)
_LEPTONS = "11 13 15"


@dataclasses.dataclass(frozen=True)
class JetSelection:
    """Jet definition and window: anti-kT ``radius``, ``pt_min < pT < pt_max`` (GeV),
    ``|η| < abs_eta_max``. Truth matching uses ΔR < ``radius``; soft drop and
    N-subjettiness use ``R0 = radius``; Pythia's pT̂ cut is :func:`pthat_min`."""

    radius: float = JET_R
    pt_min: float = JET_PT_MIN
    pt_max: float = JET_PT_MAX
    abs_eta_max: float = JET_ABS_ETA_MAX

    def __post_init__(self) -> None:
        from jetfm.errors import JetFMError

        if not 0 < self.radius <= MAX_RADIUS:
            raise JetFMError(f"jet radius must be in (0, {MAX_RADIUS}], got {self.radius}")
        if not 0 < self.pt_min < self.pt_max:
            raise JetFMError(
                f"jet pT window must satisfy 0 < pt_min < pt_max, got {self.pt_min}–{self.pt_max}"
            )
        if not 0 < self.abs_eta_max <= MAX_ABS_ETA:
            raise JetFMError(f"jet |η| limit must be in (0, {MAX_ABS_ETA}], got {self.abs_eta_max}")

    @property
    def match_dr(self) -> float:
        return self.radius


DEFAULT_SELECTION = JetSelection()


@dataclasses.dataclass(frozen=True)
class ProcessSpec:
    """How to generate and recognise one jet class.

    ``resonance`` is the PDG id (absolute) of the matched object; ``0`` means QCD (match to
    an outgoing hard parton). ``daughters`` lists which decay products must be inside the
    jet: ``"all"`` (both decay products), or for tops ``"bqq"`` (b and both W quarks) /
    ``"bl"`` (b and the charged lepton).
    """

    name: str
    settings: tuple[str, ...]
    resonance: int = 0
    daughters: str = "all"


def _higgs(decay_ids: str) -> tuple[str, ...]:
    # ZH with Z → νν: the only visible object is the Higgs, so the jet is clean.
    return (
        "HiggsSM:ffbar2HZ = on",
        "25:onMode = off",
        f"25:onIfAny = {decay_ids}",
        "23:onMode = off",
        "23:onIfAny = 12 14 16",
    )


def _top(w_decays: str) -> tuple[str, ...]:
    return (
        "Top:gg2ttbar = on",
        "Top:qqbar2ttbar = on",
        "24:onMode = off",
        f"24:onIfAny = {w_decays}",
    )


PROCESSES: dict[str, ProcessSpec] = {
    spec.name: spec
    for spec in (
        ProcessSpec("QCD", ("HardQCD:all = on",)),
        ProcessSpec("Hbb", _higgs("5"), resonance=25),
        ProcessSpec("Hcc", _higgs("4"), resonance=25),
        ProcessSpec("Hgg", _higgs("21"), resonance=25),
        ProcessSpec(
            "Zqq",
            (
                "WeakBosonAndParton:qqbar2gmZg = on",
                "WeakBosonAndParton:qg2gmZq = on",
                "WeakZ0:gmZmode = 2",  # pure Z, no γ*
                "23:onMode = off",
                f"23:onIfAny = {_QUARKS}",
            ),
            resonance=23,
        ),
        ProcessSpec(
            "Wqq",
            (
                "WeakBosonAndParton:qqbar2Wg = on",
                "WeakBosonAndParton:qg2Wq = on",
                "24:onMode = off",
                f"24:onIfAny = {_QUARKS}",
            ),
            resonance=24,
        ),
        ProcessSpec("Tbqq", _top(_QUARKS), resonance=6, daughters="bqq"),
        ProcessSpec("Tbl", _top(_LEPTONS), resonance=6, daughters="bl"),
    )
}

#: Classes this generator can produce, in JetClass order (also the ``label_*`` branches).
SUPPORTED_CLASSES: tuple[str, ...] = tuple(c for c in JETCLASS_LABELS if c in PROCESSES)


def get_process(name: str) -> ProcessSpec:
    """The :class:`ProcessSpec` of a class name; a clear error for unknown names."""
    from jetfm.errors import JetFMError

    try:
        return PROCESSES[name]
    except KeyError:
        raise JetFMError(
            f"unknown jet class {name!r}; the generator supports {', '.join(SUPPORTED_CLASSES)}"
        ) from None


def containment_pt(spec: ProcessSpec, radius: float) -> float:
    """Lowest pT (GeV) at which a jet of radius ``radius`` can contain every required decay
    product of the class: ``m / R``, 0 where there is no such bound.

    Objects within ΔR < R of an axis, carrying pT fractions ``z_i`` of the system, have
    ``m² ≈ pT² Σ_{i<j} z_i z_j ΔR_ij² ≤ pT² R²`` (small angles), so a visible system of mass
    ``m`` needs ``pT ≥ m / R``: a top needs 430 GeV at R = 0.4. QCD partons have no bound, and
    neither has ``Tbl`` (the neutrino carries away part of the top mass).
    """
    if spec.resonance == 0 or spec.daughters == "bl":
        return 0.0
    return RESONANCE_MASS_GEV[spec.resonance] / radius


def pthat_min(spec: ProcessSpec, selection: JetSelection) -> float:
    """Pythia's ``PhaseSpace:pTHatMin`` for a class: ``0.9 ×`` the larger of the jet-pT
    minimum and :func:`containment_pt`.

    Below the containment pT no jet of the class can be matched, so generating there only
    wastes events (the steep pT̂ spectrum puts most events at its lower edge). The 0.9
    leaves room for off-shell masses and initial-state recoil, as for the pT window.
    """
    return PTHAT_FRACTION * max(selection.pt_min, containment_pt(spec, selection.radius))


def check_containment(spec: ProcessSpec, selection: JetSelection) -> None:
    """A clear error when no jet of the class fits the selection (pT window below its
    :func:`containment_pt` at this radius), instead of a generator that never finishes."""
    from jetfm.errors import JetFMError

    need = containment_pt(spec, selection.radius)
    if need >= selection.pt_max:
        raise JetFMError(
            f"{spec.name} jets cannot be contained in R = {selection.radius:g} below "
            f"pT ≈ {need:.0f} GeV (m / R), but the jet pT window is {selection.pt_min:g}–"
            f"{selection.pt_max:g} GeV: raise --pt-max or --radius, or drop {spec.name}"
        )


def check_tune(tune: int) -> int:
    """``tune`` if Pythia accepts it as ``Tune:pp``, else a clear error."""
    from jetfm.errors import JetFMError

    lo, hi = TUNE_RANGE
    if not lo <= int(tune) <= hi:
        raise JetFMError(f"Pythia tune (Tune:pp) must be in {lo}…{hi}, got {tune}")
    return int(tune)


def pythia_settings(
    spec: ProcessSpec,
    seed: int,
    *,
    selection: JetSelection = DEFAULT_SELECTION,
    tune: int = DEFAULT_TUNE,
) -> list[str]:
    """The full list of ``readString`` lines for one Pythia instance.

    ``Tune:pp`` comes first, so that no later setting is overwritten by the tune.
    """
    return [
        f"Tune:pp = {int(tune)}",
        *COMMON_SETTINGS,
        f"Random:seed = {seed}",
        f"PhaseSpace:pTHatMin = {pthat_min(spec, selection)}",
        *spec.settings,
    ]
