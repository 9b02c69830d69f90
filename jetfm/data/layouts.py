"""Named layouts of the public jet data sets, read as published (no conversion step).

A layout is a :class:`~jetfm.data.schema.BranchMapping`: :data:`LAYOUTS` holds one per public
data set, :func:`get_layout` returns it, and every command that reads data takes a layout name
wherever it takes a mapping YAML (``--branch-map qg-npz``, also spelled ``--layout qg-npz``).
A YAML mapping may start from a layout and change some keys::

    layout: toptag-padded-h5
    label_classes: [QCD, top]

What each layout reads (the sources each one follows are named beside it):

``jetclass-root``
    JetClass ROOT files: tree ``tree``, jagged ``part_*`` branches, ``jet_*``, one-hot
    ``label_*`` (the :class:`BranchMapping` defaults).
``jetclass2-parquet``
    JetClass-II parquet: one row per jet, jagged ``part_*`` list columns (JetClass names) and
    ``jet_label``, the class index among the data set's 188 classes (named ``"0"`` ...
    unless ``label_classes`` says otherwise).
``toptag-pandas-h5``
    The top-tagging reference set (Kasieczka et al., Zenodo 2603256) as published: a pandas
    frame under key ``table``, one row per jet, columns ``E_i, PX_i, PY_i, PZ_i`` for the 200
    leading constituents (zero-padded), ``truthE/PX/PY/PZ``, ``ttv`` and ``is_signal_new``
    (1 = top).
``toptag-padded-h5``
    The same jets as a padded ``Pmu`` ``(n, P, 4)`` array (E, px, py, pz) with ``is_signal``
    (what ``examples/top_tagging_hdf5.yaml`` describes).
``qg-npz``
    EnergyFlow's Pythia/Herwig quark–gluon jets (Komiske, Metodiev, Thaler; Zenodo 3164691 /
    3066475): ``.npz`` with ``X`` ``(n, P, 4)`` = (pT, y, φ, PDG id), zero-padded, and ``y``
    (1 = quark, 0 = gluon). Masses come from the PDG ids; the ids feed the ``pid`` group.
``omnilearned-h5``
    OmniLearned's own HDF5 layout (its README, "Creating Your Own Dataset"): ``data``
    ``(n, P, ≥4)`` = (Δη, Δφ, log pT, log E [, pid index, extra features]), ``pid`` class
    labels, optional ``global`` jet features. There is no jet axis: it is taken at η = φ = 0
    (the relative features are exact). The optional pid column is OmniLearned's own integer
    index, not a PDG id, so it is not read.
``jetnet-h5``
    JetNet (Kansal et al., Zenodo 6975118 / 6975117) ``g.hdf5``, ``t150.hdf5``, ...:
    ``particle_features`` ``(n, 30|150, 4)`` = (η_rel, φ_rel, pT_rel, mask) and
    ``jet_features`` ``(n, 4)`` = (pT, η, mass, n_particles); massless particles with
    pT = pT_rel · pT_jet, η = η_rel + η_jet, φ = φ_rel (the jet φ is not stored). A file
    holds one jet type and no label column: use it for pre-training and prediction, or add
    labels to fine-tune.
``atlas-toptag-h5``
    The ATLAS top-tagging open data set (CERN Open Data record 80030 and its predecessor
    15013): ``fjet_clus_pt/eta/phi/E`` ``(n, 200)`` in MeV (zero-padded), ``labels``
    (1 = top), ``fjet_pt/eta/phi`` jet axis; ``momentum_scale`` 0.001 turns MeV into GeV.
``aspen-h5``
    Aspen Open Jets (Amram et al., CMS 2016 open data): ``PFCands`` ``(n, 150, 11)`` with
    (px, py, pz, E, d0, d0Err, dz, dzErr, charge, pdgId, puppi weight), ``jet_kinematics``
    ``(n, 4)`` = (pT, η, φ, soft-drop mass); unlabelled (pre-training and prediction). The
    track parameters are not read: their units (cm in CMS files) and the −1 stored for
    neutrals differ from jetfm's convention (mm, 0).

Dataset names, shapes and column orders were checked against the publishers' loaders and
documentation; where a detail could not be confirmed, the layout's comment says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jetfm.data.schema import BranchMapping
from jetfm.errors import DataError

#: layout name → the mapping's settings (what differs from the JetClass defaults)
_LAYOUTS: dict[str, dict[str, Any]] = {
    "jetclass-root": {},
    # jet_label: index among 188 classes (dataset card); particle columns follow the JetClass
    # names (part_px, ...) as in examples/jetclass2_parquet.yaml
    "jetclass2-parquet": {"label": "jet_label"},
    # column names and the label name from the data set's card; the published files are
    # PyTables 'table' frames (values_block_0 floats, values_block_1 = ttv, is_signal_new)
    "toptag-pandas-h5": {
        "tree": "table",
        "energy": "E_{i}",
        "px": "PX_{i}",
        "py": "PY_{i}",
        "pz": "PZ_{i}",
        "label": "is_signal_new",
        "label_classes": ["QCD", "Tbqq"],
        "jet_pt": None,
        "jet_eta": None,
        "jet_phi": None,
        "jet_energy": None,
    },
    "toptag-padded-h5": {
        "energy": "Pmu[0]",
        "px": "Pmu[1]",
        "py": "Pmu[2]",
        "pz": "Pmu[3]",
        "label": "is_signal",
        "label_classes": ["QCD", "Tbqq"],
    },
    # energyflow.datasets.qg_jets: X = (pt, y, phi, pid), y: quark = 1, gluon = 0
    "qg-npz": {
        "coordinates": "pt_y_phi",
        "pt": "X[0]",
        "rapidity": "X[1]",
        "phi": "X[2]",
        "pdg_id": "X[3]",
        "label": "y",
        "label_classes": ["gluon", "quark"],
        "jet_pt": None,
        "jet_eta": None,
        "jet_phi": None,
        "jet_energy": None,
    },
    # OmniLearned README: data = (Δη, Δφ, log pT, log E, ...), pid = labels, global optional
    "omnilearned-h5": {
        "coordinates": "relative",
        "deta": "data[0]",
        "dphi": "data[1]",
        "pt": "data[2]",
        "energy": "data[3]",
        "pt_form": "log_pt",
        "energy_form": "log_energy",
        "label": "pid",
        "jet_pt": None,
        "jet_eta": None,
        "jet_phi": None,
        "jet_energy": None,
    },
    # jetnet.datasets.JetNet: particle (etarel, phirel, ptrel, mask); the file's jet_features
    # are (pt, eta, mass, num_particles) - the loader prepends the type itself
    "jetnet-h5": {
        "coordinates": "relative",
        "deta": "particle_features[0]",
        "dphi": "particle_features[1]",
        "pt": "particle_features[2]",
        "mask": "particle_features[3]",
        "pt_form": "pt_rel",
        "energy_form": "massless",
        "jet_pt": "jet_features[0]",
        "jet_eta": "jet_features[1]",
        "jet_phi": None,
        "jet_energy": None,
    },
    # CERN Open Data record 80030 / OmniLearn's preprocess_atlas.py: MeV, labels, fjet_*
    # (the name of the weights dataset, 'weights' or 'training_weights', is not read)
    "atlas-toptag-h5": {
        "coordinates": "pt_eta_phi_e",
        "pt": "fjet_clus_pt",
        "eta": "fjet_clus_eta",
        "phi": "fjet_clus_phi",
        "energy": "fjet_clus_E",
        "momentum_scale": 0.001,
        "label": "labels",
        "label_classes": ["QCD", "Tbqq"],
        "jet_pt": "fjet_pt",
        "jet_eta": "fjet_eta",
        "jet_phi": "fjet_phi",
        "jet_energy": None,
    },
    # the AOJ authors' loader: PFCands (px, py, pz, E, d0, d0Err, dz, dzErr, charge, pdgId,
    # ...) with pdgId second to last; jet_kinematics (pT, eta, phi, msd). The meaning of the
    # last column (puppi weight or a validity flag) is not confirmed and it is not read.
    "aspen-h5": {
        "energy": "PFCands[3]",
        "px": "PFCands[0]",
        "py": "PFCands[1]",
        "pz": "PFCands[2]",
        "pdg_id": "PFCands[9]",
        "jet_pt": "jet_kinematics[0]",
        "jet_eta": "jet_kinematics[1]",
        "jet_phi": "jet_kinematics[2]",
        "jet_energy": None,
    },
}

#: The named layouts, each a full :class:`BranchMapping`.
LAYOUTS: dict[str, BranchMapping] = {
    name: BranchMapping.from_dict(settings) for name, settings in _LAYOUTS.items()
}


def get_layout(name: str) -> BranchMapping:
    """The :class:`BranchMapping` of a named layout (a fresh copy); DataError listing the
    names for an unknown one."""
    if name not in LAYOUTS:
        raise DataError(f"unknown layout {name!r}; known layouts: {sorted(LAYOUTS)}")
    return BranchMapping.from_dict(LAYOUTS[name].to_dict())


def mapping_from_dict(data: Mapping[str, Any]) -> BranchMapping:
    """A mapping from its dict; a ``layout`` key starts from that layout (other keys change
    it). ValueError for unknown keys or values, DataError for an unknown layout."""
    data = dict(data)
    name = data.pop("layout", None)
    if name is None:
        return BranchMapping.from_dict(data)
    return BranchMapping.from_dict({**get_layout(str(name)).to_dict(), **data})


def mapping_from_yaml(path: str | os.PathLike) -> BranchMapping:
    """The mapping of a YAML file (which may name a ``layout`` to start from)."""
    import yaml

    with open(path) as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a branch mapping must be a YAML mapping of key: branch")
    try:
        return mapping_from_dict(data)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def mapping_from_option(value: Any) -> BranchMapping | None:
    """The mapping a ``--branch-map`` / ``--layout`` value (or a ``mapping=`` argument) names:
    a layout name, a YAML file, a dict or a :class:`BranchMapping`; None for None.

    Raises DataError (one line, naming the option) for anything else.
    """
    if value is None or isinstance(value, BranchMapping):
        return value
    try:
        if isinstance(value, Mapping):
            return mapping_from_dict(value)
        if isinstance(value, str | os.PathLike):
            text = os.fspath(value)
            if text in LAYOUTS and not Path(text).is_file():
                return get_layout(text)
            if not Path(text).is_file():
                raise DataError(
                    f"--branch-map/--layout: {text!r} is neither a layout name (known: "
                    f"{sorted(LAYOUTS)}) nor a YAML file"
                )
            return mapping_from_yaml(text)
    except (OSError, ValueError) as err:
        raise DataError(f"--branch-map: {err}") from err
    raise TypeError(
        f"mapping must be a BranchMapping, its dict, a layout name or a YAML path, got {value!r}"
    )


__all__ = [
    "LAYOUTS",
    "get_layout",
    "mapping_from_dict",
    "mapping_from_option",
    "mapping_from_yaml",
]
