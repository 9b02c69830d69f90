"""The input convention: branch names, feature groups, labels and truth.

jetfm reads the JetClass layout (tree ``tree``; ROOT TTree or RNTuple, parquet or HDF5):
jagged ``part_*`` branches, per-jet
``jet_*`` branches, one-hot ``label_*`` branches and, for the tracking tasks, the per-particle
truth ``part_origin`` and ``part_vtx``. :class:`BranchMapping` lets users rename every branch
and the tree; :data:`FEATURE_GROUPS` defines what the model sees.

Units are GeV and mm; Δη and Δφ are relative to the jet axis, Δφ wrapped to (−π, π].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# --- feature groups -------------------------------------------------------------------------
#: Per-particle model inputs, grouped. ``kinematics`` is required; the others are optional so
#: that files with only 4-vectors (public Top Landscape / quark-gluon sets) are valid input.
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "kinematics": (
        "log_pt",  # log pT
        "log_energy",  # log E
        "log_pt_rel",  # log pT / pT_jet
        "log_energy_rel",  # log E / E_jet
        "deta",  # η − η_jet
        "dphi",  # φ − φ_jet wrapped to (−π, π]
        "delta_r",  # √(Δη² + Δφ²)
    ),
    "pid": (
        "charge",
        "is_electron",
        "is_muon",
        "is_photon",
        "is_charged_hadron",
        "is_neutral_hadron",
    ),
    "tracks": (
        "tanh_d0",  # tanh(d0 / mm)
        "tanh_dz",  # tanh(dz / mm)
        "d0_err",  # mm
        "dz_err",  # mm
    ),
}
REQUIRED_GROUP = "kinematics"
#: Groups whose features are standardised with the processor's mean/std (``pid`` is
#: categorical: charge and flags are used as they are).
NORMALISED_GROUPS = ("kinematics", "tracks")

# --- truth ----------------------------------------------------------------------------------
#: ``part_origin`` codes (track identification classes); neutral particles carry −1.
TRACK_ORIGINS: tuple[str, ...] = ("primary", "b", "b->c", "c", "tau", "other")
#: Flavour of the hard parton of a QCD jet (``aux_genpart_pid``): 1–3 light quark, 21 gluon,
#: 4–5 heavy flavour (c or b); the jet-class truth of pre-training splits QCD by it.
PARTON_FLAVOURS: tuple[str, ...] = ("light", "gluon", "heavy")
#: the class that :data:`PARTON_FLAVOURS` splits
QCD_CLASS = "QCD"
#: Label value ignored by every loss (torch's cross-entropy default): padding, neutrals.
IGNORE_INDEX = -100

#: JetClass class names in their canonical order; ``label_<name>`` is the branch.
JETCLASS_LABELS: tuple[str, ...] = (
    "QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl",
)  # fmt: skip

# --- coordinates ----------------------------------------------------------------------------
#: The particle coordinate systems a file may use: the mapping fields holding each.
COORDINATE_SYSTEMS: dict[str, tuple[str, ...]] = {
    "cartesian": ("px", "py", "pz", "energy"),
    "pt_eta_phi_e": ("pt", "eta", "phi", "energy"),
    "pt_eta_phi_m": ("pt", "eta", "phi", "mass"),
    "pt_y_phi": ("pt", "rapidity", "phi"),  # masses from pdg_id if set, else 0
    "relative": ("deta", "dphi", "pt", "energy"),  # around the jet axis (jet_eta, jet_phi)
}
#: How pT is stored: GeV, its log, pT / pT_jet or its log.
PT_FORMS: tuple[str, ...] = ("pt", "log_pt", "pt_rel", "log_pt_rel")
#: How E is stored (``massless``: no energy column, E from pT and η with m = 0).
ENERGY_FORMS: tuple[str, ...] = (
    "energy", "log_energy", "energy_rel", "log_energy_rel", "massless",
)  # fmt: skip


@dataclasses.dataclass
class BranchMapping:
    """Where each quantity lives in the user's ROOT files.

    Defaults follow JetClass. Override only what differs, in Python or YAML::

        mapping = BranchMapping(tree="Events", px="constituent_px", ...)
        mapping = BranchMapping.from_yaml("my_branches.yaml")

    ``labels`` lists the class names (branch ``label_prefix + name``); ``None`` means "every
    ``label_*`` branch found in the first file", in JetClass order.

    parquet and HDF5 files use the same names for their columns/datasets, plus:

    * a component of a padded ``(n_jets, n_particles, k)`` array is ``"name[i]"``, e.g. the
      top-tagging layout ``energy: "Pmu[0]"``, ``px: "Pmu[1]"``, ...;
    * ``mask``: the ``(n_jets, n_particles)`` real-particle mask of padded arrays (default:
      a column named ``mask`` if present, else slots whose four-vector is all zero are padding);
    * ``label``: labels as one column of class indices or a ``(n_jets, n_classes)`` one-hot
      array, instead of ``label_*`` columns; ``label_classes`` names the classes in index order
      (default ``"0"``, ``"1"``, ...);
    * ``tree``: the HDF5 group holding the datasets (the file's root when ``tree`` is absent);
      a pandas/PyTables frame (``DataFrame.to_hdf``) stored under that key is read as a table
      of its columns;
    * a per-particle array spread over numbered columns (``E_0, E_1, ...``) is ``"E_{i}"``;
    * a component of a per-jet ``(n_jets, k)`` array is ``"name[i]"`` too (jet fields).

    Particles may be given in any of :data:`COORDINATE_SYSTEMS` (``coordinates``): Cartesian
    ``px, py, pz, energy`` (the default), ``pt, eta, phi, energy``, ``pt, eta, phi, mass``,
    ``pt, rapidity, phi`` (masses from ``pdg_id`` if given, else massless) or ``relative``
    ``deta, dphi, pt, energy`` around the jet axis of ``jet_eta``/``jet_phi`` (taken as η = 0,
    φ = 0 when the file has no such columns: the relative features are unchanged).
    ``pt_form`` / ``energy_form`` say how pT and E are stored (linear, log, relative to the
    jet's, or ``energy_form="massless"`` when there is no energy column); ``momentum_scale``
    converts the stored unit to GeV (0.001 for MeV). They are turned into the internal
    Cartesian four-vectors once, while reading (:mod:`jetfm.data.coordinates`). A ``pdg_id``
    column feeds the ``pid`` group instead of its six flag columns. A jet field set to
    ``None`` says the file has no such column.

    Named layouts of the public data sets are in :mod:`jetfm.data.layouts`.
    """

    tree: str = "tree"
    # 4-vectors (required): which columns depends on ``coordinates``
    coordinates: str = "cartesian"
    px: str = "part_px"
    py: str = "part_py"
    pz: str = "part_pz"
    energy: str = "part_energy"
    pt: str = "part_pt"
    eta: str = "part_eta"
    phi: str = "part_phi"
    rapidity: str = "part_rapidity"
    mass: str = "part_mass"
    deta: str = "part_deta"
    dphi: str = "part_dphi"
    pt_form: str = "pt"  # pt | log_pt | pt_rel | log_pt_rel
    energy_form: str = "energy"  # energy | log_energy | energy_rel | log_energy_rel | massless
    momentum_scale: float = 1.0  # GeV per stored unit (0.001 for files in MeV)
    pdg_id: str | None = None  # PDG id per particle: feeds the pid group
    # particle ID (group ``pid``)
    charge: str = "part_charge"
    is_electron: str = "part_isElectron"
    is_muon: str = "part_isMuon"
    is_photon: str = "part_isPhoton"
    is_charged_hadron: str = "part_isChargedHadron"
    is_neutral_hadron: str = "part_isNeutralHadron"
    # track parameters (group ``tracks``)
    d0: str = "part_d0val"
    d0_err: str = "part_d0err"
    dz: str = "part_dzval"
    dz_err: str = "part_dzerr"
    # jet axis (None: the file has no such column)
    jet_pt: str | None = "jet_pt"
    jet_eta: str | None = "jet_eta"
    jet_phi: str | None = "jet_phi"
    jet_energy: str | None = "jet_energy"
    # truth
    label_prefix: str = "label_"
    labels: list[str] | None = None
    origin: str = "part_origin"
    vertex: str = "part_vtx"
    #: per jet: PDG id of the matched resonance, or of the hard parton of a QCD jet
    parton: str = "aux_genpart_pid"
    # columnar files (parquet, HDF5): see jetfm.data.formats
    label: str | None = None  # one column of class indices, or a (n_jets, n_classes) one-hot
    label_classes: list[str] | None = None  # class names of the indices of ``label``, in order
    mask: str | None = None  # (n_jets, n_particles) real-particle mask of padded arrays

    # Which mapping fields feed which feature group (used for error messages and reading).
    GROUP_FIELDS = {
        "kinematics": ("px", "py", "pz", "energy"),
        "pid": ("charge", "is_electron", "is_muon", "is_photon", "is_charged_hadron",
                "is_neutral_hadron"),
        "tracks": ("d0", "d0_err", "dz", "dz_err"),
    }  # fmt: skip
    JET_FIELDS = ("jet_pt", "jet_eta", "jet_phi", "jet_energy")

    def __post_init__(self) -> None:
        if self.coordinates not in COORDINATE_SYSTEMS:
            raise ValueError(
                f"unknown coordinates {self.coordinates!r}; known: {list(COORDINATE_SYSTEMS)}"
            )
        if self.pt_form not in PT_FORMS:
            raise ValueError(f"unknown pt_form {self.pt_form!r}; known: {list(PT_FORMS)}")
        if self.energy_form not in ENERGY_FORMS:
            raise ValueError(
                f"unknown energy_form {self.energy_form!r}; known: {list(ENERGY_FORMS)}"
            )
        if not (isinstance(self.momentum_scale, int | float) and self.momentum_scale > 0):
            raise ValueError(f"momentum_scale must be a number > 0; got {self.momentum_scale!r}")
        if self.energy_form == "massless" and self.coordinates == "cartesian":
            raise ValueError("energy_form 'massless' needs coordinates with pt (not cartesian)")

    def coordinate_fields(self) -> tuple[str, ...]:
        """The mapping fields holding the four-vectors in this layout's ``coordinates``."""
        fields = COORDINATE_SYSTEMS[self.coordinates]
        if self.energy_form == "massless":
            fields = tuple(f for f in fields if f != "energy")
        return fields

    def branches_for(self, groups: tuple[str, ...] | list[str]) -> dict[str, str]:
        """``{field: branch}`` for the particle branches the given groups need (the
        coordinate columns for ``kinematics``, with ``pdg_id`` for the masses of
        ``pt_y_phi``; ``pdg_id`` for ``pid`` when it is set)."""
        out: dict[str, str] = {}
        for g in groups:
            if g == "kinematics":
                fields: tuple[str, ...] = self.coordinate_fields()
                if self.coordinates == "pt_y_phi" and self.pdg_id is not None:
                    fields += ("pdg_id",)  # the masses E and pz need
            elif g == "pid" and self.pdg_id is not None:
                fields = ("pdg_id",)
            else:
                fields = self.GROUP_FIELDS[g]
            out.update({f: getattr(self, f) for f in fields})
        return out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BranchMapping:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown branch-mapping keys {unknown}; known keys: {sorted(known)}")
        return cls(**dict(data))

    @classmethod
    def from_yaml(cls, path: str | Path) -> BranchMapping:
        import yaml

        with open(path) as fh:
            data = yaml.safe_load(fh) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a branch mapping must be a YAML mapping of key: branch")
        try:
            return cls.from_dict(data)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
