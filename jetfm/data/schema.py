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
    * ``tree``: the HDF5 group holding the datasets (the file's root when ``tree`` is absent).
    """

    tree: str = "tree"
    # 4-vectors (required)
    px: str = "part_px"
    py: str = "part_py"
    pz: str = "part_pz"
    energy: str = "part_energy"
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
    # jet axis
    jet_pt: str = "jet_pt"
    jet_eta: str = "jet_eta"
    jet_phi: str = "jet_phi"
    jet_energy: str = "jet_energy"
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

    def branches_for(self, groups: tuple[str, ...] | list[str]) -> dict[str, str]:
        """``{field: branch}`` for the particle branches the given groups need."""
        return {f: getattr(self, f) for g in groups for f in self.GROUP_FIELDS[g]}

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
    def from_option(cls, path: str | Path | None) -> BranchMapping | None:
        """The mapping of a ``--branch-map`` YAML file (None without one); DataError if bad."""
        if path is None:
            return None
        from jetfm.errors import DataError

        try:
            return cls.from_yaml(path)
        except (OSError, ValueError) as err:
            raise DataError(f"--branch-map: {err}") from err

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
