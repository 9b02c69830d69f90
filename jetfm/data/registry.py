"""The public jet data sets jetfm knows by name: one small frozen record per data set.

A :class:`DatasetRecord` says where a data set comes from (the source record and its files,
with sizes and checksums where they are published), how to read it (``layout``: the name of
a layout in :mod:`jetfm.data.layouts`), what its labels mean, what licence it is under and
what to cite. ``jetfm datasets list|info|download`` shows and fetches them
(:mod:`jetfm.data.download`); a data argument ``NAME:SPLIT`` of any command
(``jetfm finetune --train top:train``) becomes the downloaded files and their layout
(:func:`jetfm.data.download.resolve_data_argument`).

Nothing in a record is guessed: a size or checksum that could not be confirmed from a
published source is ``None``, and ``jetfm datasets info`` and the download say
"checksum not confirmed" (a download then records the SHA-256 it computed next to the file).
The comment above each record names where its confirmed values come from.

More records (a data set of your own, or a test's) are added with :func:`register_dataset`
or by pointing ``JETFM_DATASETS`` at JSON files (``os.pathsep``-separated), each holding one
record's :meth:`DatasetRecord.to_dict` or a list of them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jetfm.errors import DataError

if TYPE_CHECKING:
    from jetfm.data.schema import BranchMapping

#: layout names a record may use (agreed with :mod:`jetfm.data.layouts`)
LAYOUT_NAMES: tuple[str, ...] = (
    "jetclass-root",
    "jetclass2-parquet",
    "toptag-pandas-h5",
    "qg-npz",
    "omnilearned-h5",
    "jetnet-h5",
    "atlas-toptag-h5",
    "aspen-h5",
)
#: environment variable: JSON files of extra records (``os.pathsep``-separated)
RECORDS_ENV = "JETFM_DATASETS"
#: how a downloaded archive is unpacked
UNPACK_KINDS: tuple[str, ...] = ("tar", "gzip")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclasses.dataclass(frozen=True)
class FileEntry:
    """One file of a data set.

    Args:
        name: the file name it is stored under locally.
        url: where to download it (plain HTTP(S)); ``None`` for a file on the Hugging Face Hub.
        hub_pattern: for a record with ``hf_repo``: the glob (``fnmatch``) that picks the file
            in the Hub repository.
        size: its size in bytes, where published (``None``: not confirmed).
        md5 / sha256: its checksum, where published (``None``: not confirmed).
        unpack: ``"tar"`` (extracted into a folder beside it) or ``"gzip"`` (decompressed
            beside it, without ``.gz``); ``None``: used as it is.
        members: for a tar archive: the glob (below the extraction folder) of the data files.
        default: part of the default selection (``False``: only with ``full``).
    """

    name: str
    url: str | None = None
    hub_pattern: str | None = None
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    unpack: str | None = None
    members: str = "**/*.root"
    default: bool = True

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"file name must be a plain name, got {self.name!r}")
        if (self.url is None) == (self.hub_pattern is None):
            raise ValueError(f"{self.name}: give exactly one of url and hub_pattern")
        if self.unpack is not None and self.unpack not in UNPACK_KINDS:
            raise ValueError(
                f"{self.name}: unpack must be one of {UNPACK_KINDS}, not {self.unpack!r}"
            )
        if self.unpack == "gzip" and not self.name.endswith(".gz"):
            raise ValueError(f"{self.name}: a gzip file's name must end in .gz")

    @property
    def known_hash(self) -> str | None:
        """The checksum in pooch's form (``"sha256:..."``, ``"md5:..."``), or ``None``."""
        if self.sha256:
            return f"sha256:{self.sha256}"
        if self.md5:
            return f"md5:{self.md5}"
        return None

    @property
    def data_name(self) -> str:
        """The name of the usable file: the name without ``.gz`` for a gzip file, the
        extraction folder (name without ``.tar``) for a tar archive, else the name."""
        if self.unpack == "gzip":
            return self.name[: -len(".gz")]
        if self.unpack == "tar":
            return self.name[: -len(".tar")] if self.name.endswith(".tar") else self.name + ".d"
        return self.name

    @property
    def source(self) -> str:
        """The download address (URL, or the Hub pattern)."""
        return self.url or f"hub:{self.hub_pattern}"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileEntry:
        return cls(**dict(data))


@dataclasses.dataclass(frozen=True)
class DatasetRecord:
    """A public data set: source, files per split, licence, citation and layout.

    Args:
        name: the short name used on the command line (``top``, ``qg``, ...).
        title / description: one line / a paragraph on what it is.
        homepage: the source record (Zenodo, CERN Open Data, ...).
        files: split name → its files.
        layout: the layout name its files are read with (one of :data:`LAYOUT_NAMES`).
        citation: the BibTeX to cite.
        license: its licence (``None``: not confirmed here).
        doi: the record's DOI.
        classes / label_meaning: the class names and what the labels in the files mean.
        jet_radius / pt_range: jet algorithm radius and jet pT range (GeV), where stated.
        facts: other facts a user should know (generator, detector, counts, rules of use).
        task: ``"tagging"`` for a labelled set (the fine-tuning task), ``None`` for an
            unlabelled one (pre-training data).
        hf_repo: the Hugging Face Hub dataset repository its ``hub_pattern`` files live in.
        checksum_source: where the published checksums come from (printed by ``info``).
    """

    name: str
    title: str
    description: str
    homepage: str
    files: Mapping[str, tuple[FileEntry, ...]]
    layout: str
    citation: str
    license: str | None = None
    doi: str | None = None
    classes: tuple[str, ...] = ()
    label_meaning: str = ""
    jet_radius: float | None = None
    pt_range: tuple[float, float] | None = None
    facts: str = ""
    task: str | None = "tagging"
    hf_repo: str | None = None
    checksum_source: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"data set name must be lower-case letters, digits, - or _: {self.name!r}"
            )
        if self.layout not in LAYOUT_NAMES:
            raise ValueError(
                f"{self.name}: unknown layout {self.layout!r}; known: {list(LAYOUT_NAMES)}"
            )
        files = {str(k): tuple(v) for k, v in dict(self.files).items()}
        if not files or not all(files.values()):
            raise ValueError(f"{self.name}: every split needs at least one file")
        object.__setattr__(self, "files", files)
        object.__setattr__(self, "classes", tuple(self.classes))
        if self.pt_range is not None:
            object.__setattr__(self, "pt_range", tuple(float(x) for x in self.pt_range))
        names = [f.name for entries in files.values() for f in entries]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: a file name appears twice")
        if any(f.hub_pattern for f in self.all_files()) and not self.hf_repo:
            raise ValueError(f"{self.name}: files given by hub_pattern need hf_repo")

    # --- files -------------------------------------------------------------------------
    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.files)

    def all_files(self) -> list[FileEntry]:
        return [f for entries in self.files.values() for f in entries]

    def entries(self, split: str | None = None, full: bool = False) -> list[FileEntry]:
        """The files of ``split`` (every split when ``None``): the default selection, or every
        file with ``full``. DataError for an unknown split."""
        if split is not None and split not in self.files:
            raise DataError(
                f"data set {self.name!r} has no split {split!r}; its splits: {list(self.files)}"
            )
        splits = [split] if split is not None else list(self.files)
        return [f for s in splits for f in self.files[s] if full or f.default]

    @property
    def checksums_confirmed(self) -> bool:
        """Whether every file has a published checksum."""
        return all(f.known_hash for f in self.all_files())

    # --- what to run -------------------------------------------------------------------
    def example_command(self) -> str:
        """The one command that trains on this data set after download: fine-tuning the
        shipped base model on a labelled set, pre-training on an unlabelled one."""
        train = "train" if "train" in self.files else self.splits[0]
        val = next((s for s in ("val", "valid", "validation") if s in self.files), None)
        if self.task:
            # without a validation split: the user's held-out files (never the test split)
            val_arg = f"{self.name}:{val}" if val else "HELD_OUT_FILES"
            return (
                f"jetfm finetune --model mpm-truth-det-base --task {self.task} "
                f"--train {self.name}:{train} --val {val_arg} --output {self.name}-finetuned"
            )
        val_opt = f" --val {self.name}:{val}" if val else ""
        return (
            f"jetfm pretrain --data {self.name}:{train}{val_opt} --output {self.name}-pretrained "
            "--max-steps 10000"
        )

    # --- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "files"}
        out["classes"] = list(self.classes)
        out["pt_range"] = list(self.pt_range) if self.pt_range else None
        out["files"] = {s: [e.to_dict() for e in entries] for s, entries in self.files.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetRecord:
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown data set record fields {unknown}; known: {sorted(known)}")
        files = {
            str(split): tuple(FileEntry.from_dict(e) for e in entries)
            for split, entries in dict(data.pop("files", {})).items()
        }
        return cls(files=files, **data)


# --- the records --------------------------------------------------------------------------
_TOP_BIB = """@dataset{kasieczka_gregor_2019_2603256,
  author    = {Kasieczka, Gregor and Plehn, Tilman and Thompson, Jennifer and Russel, Michael},
  title     = {Top Quark Tagging Reference Dataset},
  month     = mar,
  year      = 2019,
  publisher = {Zenodo},
  version   = {v0 (2018\\_03\\_27)},
  doi       = {10.5281/zenodo.2603256},
  url       = {https://doi.org/10.5281/zenodo.2603256}
}

@article{Kasieczka:2019dbj,
  author        = "Butter, Anja and others",
  editor        = "Kasieczka, Gregor and Plehn, Tilman",
  title         = "{The Machine Learning landscape of top taggers}",
  eprint        = "1902.09914",
  archivePrefix = "arXiv",
  primaryClass  = "hep-ph",
  doi           = "10.21468/SciPostPhys.7.1.014",
  journal       = "SciPost Phys.",
  volume        = "7",
  pages         = "014",
  year          = "2019"
}
"""

# Top-tagging reference set (Zenodo 2603256). File names and URLs: the record's files as
# fetched by jet-net/JetNet (jetnet/datasets/toptagging.py) and many download scripts;
# facts: the record's description (mirrored on the Hub as dl4phys/top_tagging); licence
# CC-BY-4.0 as stated on that mirror's card; BibTeX: jet-universe/particle_transformer
# README. No published size or checksum was found: all None.
TOP = DatasetRecord(
    name="top",
    title="Top Quark Tagging Reference Dataset (Kasieczka, Plehn, Thompson, Russel)",
    description=(
        "Hadronic top jets (signal) and QCD dijets (background) at 14 TeV, Pythia 8 with the "
        "Delphes ATLAS card, no MPI or pile-up: the community reference for top tagging. "
        "1.2M training, 400k validation and 400k test jets as pandas/PyTables HDF5 tables "
        "(key 'table'): one row per jet, columns E_i, PX_i, PY_i, PZ_i for the 200 leading "
        "constituents (zero-padded, pT-ordered), truth top four-momentum, 'ttv' and the "
        "label 'is_signal_new'."
    ),
    homepage="https://zenodo.org/records/2603256",
    doi="10.5281/zenodo.2603256",
    files={
        split: (
            FileEntry(f"{split}.h5", url=f"https://zenodo.org/records/2603256/files/{split}.h5"),
        )
        for split in ("train", "val", "test")
    },
    layout="toptag-pandas-h5",
    citation=_TOP_BIB,
    license="CC-BY-4.0",
    classes=("QCD", "top"),
    label_meaning="is_signal_new: 1 = top jet, 0 = QCD jet",
    jet_radius=0.8,
    pt_range=(550.0, 650.0),
    facts="anti-kT R = 0.8 particle-flow jets, |eta| < 2; top jets matched to a parton-level "
    "top and its decay partons within dR = 0.8; 1.2M / 400k / 400k jets (train / val / test).",
)

_QG_PAPER_BIB = """@article{Komiske:2018cqr,
  author        = "Komiske, Patrick T. and Metodiev, Eric M. and Thaler, Jesse",
  title         = "{Energy Flow Networks: Deep Sets for Particle Jets}",
  eprint        = "1810.05165",
  archivePrefix = "arXiv",
  primaryClass  = "hep-ph",
  reportNumber  = "MIT-CTP 5064",
  doi           = "10.1007/JHEP01(2019)121",
  journal       = "JHEP",
  volume        = "01",
  pages         = "121",
  year          = "2019"
}
"""
_QG_BIB = (
    """@dataset{komiske_patrick_2019_3164691,
  author    = {Komiske, Patrick and Metodiev, Eric and Thaler, Jesse},
  title     = {Pythia8 Quark and Gluon Jets for Energy Flow},
  month     = may,
  year      = 2019,
  publisher = {Zenodo},
  version   = {v1},
  doi       = {10.5281/zenodo.3164691},
  url       = {https://doi.org/10.5281/zenodo.3164691}
}

"""
    + _QG_PAPER_BIB
)
_QG_HERWIG_BIB = (
    """@article{Zenodo:EnergyFlow:Herwig7QGs,
  author  = {Pathak, Aditya and Komiske, Patrick and Metodiev, Eric and Schwartz, Matthew},
  title   = {Herwig7.1 Quark and Gluon Jets},
  journal = "Zenodo",
  year    = 2019,
  doi     = {10.5281/zenodo.3066475}
}

"""
    + _QG_PAPER_BIB
)

# SHA-256 of QG_jets[_i].npz, i = 0..19 (Pythia 8, no b/c) and QG_jets_herwig_i.npz (Herwig 7,
# no b/c): EnergyFlow's energyflow/datasets/qg_jets.py (thaler-lab/EnergyFlow), HASHES
# ['pythia' | 'herwig']['nobc']['sha256'], in file order; URLs from its URLS[...]['zenodo'].
_QG_PYTHIA_SHA256 = (
    "3f27a02eab06e8b83ccc9d25638021e6e24c9361341730961f9d560dee12c257",
    "648e49cd59b5353e0064e7b1a3388d9c2f4a454d3ca67afaa8d0344c836ecb35",
    "09f7b16fa7edb312c0f652bb8504de45f082c4193df65204d693155017272fe9",
    "7dc9a50bb38e9f6fc1f11db18f9bd04f72823c944851746b848dee0bba808537",
    "3e6217aad8e0502f5ce3b6371c61396dfc48a6cf4f26ee377cc7b991b1d2b543",
    "b5b7d742b2599bcbe1d7a639895bca64c28da513dc3620b0e5bbb5801f8c88fd",
    "7d31bc48c15983401e0dbe8fd5ee938c3809d9ee3c909f4adab6daf8b73c14f1",
    "cec0d7b2afa9d955543c597f9b7f3b3767812a68b2401ec870caf3a2ceb98401",
    "e984620f57abe06fc5d0b063f9f84ba54bd3e8c295d2b2419a7b1c6175079ed4",
    "6e3b69196995d6eb3b8e7af874e2b9f93d904624f7a7a73b8ff39f151e3bd189",
    "fa3d386f230b806058ff17e5bd77326ff4bf01d72aa5eb3325c1df2a8825927c",
    "acd49ab7bea8f72ecf699a9a898bccacc8730474259d68406656a5a43d407fb0",
    "2edd55b8bc30c686a0637855e1ba068586eb97041e8114d5540d96db2a7a2e17",
    "7276a8a0e573f9795a47f9d5addc10d2af903c2a0ffa5c848a720ccae93daa90",
    "2068ecfa912e94cd3ce7273b7c77af0bbd5ec57940997e7483b56f03434a6869",
    "41a732ce6321dd593214225b03fb87329607ccae768c705e3896ffecc28bfcca",
    "9d68caeb18f3ccf127b9032f52e63ee011c4381293a3a503f894e5c0741ae215",
    "086053ca611bb04d97fa0b6509b4ffb6955421b067c7b277498f0e5188879331",
    "cdc595f5fedef7db9411a9f93f2786f110073b4d17a523700f625846588b1e44",
    "d07781139320ae134ce4824bc0cefa43fd5003cd97cdf3aed90d4fb12fad8a1d",
)
_QG_HERWIG_SHA256 = (
    "0527349778c0ab2f7da268975fb9e7c0705c88d60f2c478401d941b9913f4d44",
    "65ef3b4cced4e2618c2bf8f3c66ef707dbd7a9740825f93549732d64e60d7ea8",
    "f13dab1937e40d0c05b97e9813fb4dda5156a8f6b4e41a89cc13821d02a60f58",
    "7b55e26262f2c156b15014b796d0a7e7a5254a982170f45cf2d9857b1f23b5f7",
    "3a5006da4a05192636a74fc818256fce215970c626719738cae9f82e3f068646",
    "2601564aee41aa5851392d6b3d12021f978fa17199e42dde004e35d1175055ea",
    "2c1fc34e99816a0bb5a84f68fa42f6314252521f6b32384a118cdec872ea97a1",
    "4b05f17acb046ad50232987003b89a91800cc713eefd81142ffeb42259369fb2",
    "150cbe132a2ee3178ba3a93a6b1733b3498b728db91f572295b6213d287ec1f7",
    "7d74c90843c751ade4cac47f6c2505da8bcbaf8645bc3f9870bdca481ff805fd",
    "e2b9072da8436618c602fbcf2409fe9be9a46dea7cff1fcc36f1ba8fefa6842d",
    "c69f499b7ea09029da7e78dcc527feca6b1680685e3c9a481db292d5518e3f1c",
    "db25d85d3a35978c607f9b5b0b52f4140c984eb5a5ab236cbf3e6eb34ead761c",
    "9a51ddd383e32154fc504ddcb138e54f0f1bd35079fe5cfa9139839c229cd78e",
    "be0fa462ea907d36972c8573b9a2f6bcdf5cf66648fa397739d12ecb677948e5",
    "7b17400c6867243e8137bd97e0f9743682a5d8c772685a6654f42f1fa2731960",
    "4c484f6508180c0e4e4a5c90b37d1b15cc67afaa3c5998306e8e633848ce6dfc",
    "d1f9baf3a3a148080d1735130f6b18f0f598991a8d886eff3c427b2e2265fce1",
    "bb70219d78e1d92091efacbf933da632670c8318d00777e4144d9a0c782e5749",
    "94975b3d999868485780d2d9e4330273aa8f0db4b9a7f6094d360f637659a264",
)
#: the 20 files of 100k jets split 16 / 2 / 2: EnergyFlow's recommended 1.6M / 200k / 200k
_QG_SPLITS = {"train": range(0, 16), "val": range(16, 18), "test": range(18, 20)}


def _qg_files(record: str, names: Sequence[str], sha256: Sequence[str]) -> dict:
    return {
        split: tuple(
            FileEntry(
                names[i],
                url=f"https://zenodo.org/records/{record}/files/{names[i]}",
                sha256=sha256[i],
            )
            for i in indices
        )  # fmt: skip
        for split, indices in _QG_SPLITS.items()
    }


_QG_FACTS = (
    "Z(->nu nu) + jet at 14 TeV, hadronisation and MPI on, no detector simulation; anti-kT "
    "R = 0.4 jets with pT in [500, 550] GeV and |y| < 1.7; 20 files of 100k jets (50k quark, "
    "50k gluon each), split here 16 / 2 / 2 files = 1.6M / 200k / 200k (EnergyFlow's "
    "recommended split)."
)
QG = DatasetRecord(
    name="qg",
    title="Pythia 8 quark and gluon jets for Energy Flow (Komiske, Metodiev, Thaler)",
    description=(
        "Two million quark (uds) and gluon jets from Pythia 8.226, the quark-gluon benchmark "
        "of EnergyFlow and ParticleNet/ParT. NumPy .npz archives: X of shape (n, M, 4) = "
        "(pT, rapidity, phi, PDG id) per particle, zero-padded; y the labels."
    ),
    homepage="https://zenodo.org/records/3164691",
    doi="10.5281/zenodo.3164691",
    files=_qg_files(
        "3164691", ["QG_jets.npz"] + [f"QG_jets_{i}.npz" for i in range(1, 20)], _QG_PYTHIA_SHA256
    ),
    layout="qg-npz",
    citation=_QG_BIB,
    classes=("gluon", "quark"),
    label_meaning="y: 1 = quark jet, 0 = gluon jet",
    jet_radius=0.4,
    pt_range=(500.0, 550.0),
    facts=_QG_FACTS,
    checksum_source="SHA-256 from EnergyFlow (energyflow/datasets/qg_jets.py)",
)
QG_HERWIG = dataclasses.replace(
    QG,
    name="qg-herwig",
    title="Herwig 7.1 quark and gluon jets (Pathak, Komiske, Metodiev, Schwartz)",
    description=(
        "The Herwig 7.1.4 counterpart of 'qg' (same processes, cuts and .npz layout): two "
        "million quark (uds) and gluon jets, the generator-shift test of quark-gluon taggers."
    ),
    homepage="https://zenodo.org/records/3066475",
    doi="10.5281/zenodo.3066475",
    files=_qg_files("3066475", [f"QG_jets_herwig_{i}.npz" for i in range(20)], _QG_HERWIG_SHA256),
    citation=_QG_HERWIG_BIB,
)

_JETCLASS_BIB = """@dataset{JetClass,
  author    = "Qu, Huilin and Li, Congqiao and Qian, Sitian",
  title     = "{JetClass}: A Large-Scale Dataset for Deep Learning in Jet Physics",
  month     = "jun",
  year      = "2022",
  publisher = "Zenodo",
  version   = "1.0.0",
  doi       = "10.5281/zenodo.6619768",
  url       = "https://doi.org/10.5281/zenodo.6619768"
}

@InProceedings{Qu:2022mxj,
  author        = "Qu, Huilin and Li, Congqiao and Qian, Sitian",
  title         = "{Particle Transformer} for Jet Tagging",
  booktitle     = "{Proceedings of the 39th International Conference on Machine Learning}",
  pages         = "18281--18292",
  year          = "2022",
  eprint        = "2202.03772",
  archivePrefix = "arXiv",
  primaryClass  = "hep-ph"
}
"""
# JetClass (Zenodo 6619768): the tar archives and their MD5 from
# jet-universe/particle_transformer get_datasets.py (the same sums for its Zenodo URLs and
# its CERN mirror); BibTeX from that repository's README. Sizes not published there: None.
_JETCLASS_MD5 = {
    "JetClass_Pythia_train_100M_part0.tar": "de4fd2dca2e68ab3c85d5cfd3bcc65c3",
    "JetClass_Pythia_train_100M_part1.tar": "9722a359c5ef697bea0fbf79bf50f003",
    "JetClass_Pythia_train_100M_part2.tar": "1e9f66cd1f915f9d10e90ae1d7761720",
    "JetClass_Pythia_train_100M_part3.tar": "47348fc8985319fa4806da87500482fa",
    "JetClass_Pythia_train_100M_part4.tar": "6b0ce16bd93b442a8d51914466990279",
    "JetClass_Pythia_train_100M_part5.tar": "416e347512e716de51d392bee327b8e9",
    "JetClass_Pythia_train_100M_part6.tar": "e9b9c1557b1b39bf0a16e4ab631ae451",
    "JetClass_Pythia_train_100M_part7.tar": "5bfc6cb285ccb7680cefa9ac82ad1a2e",
    "JetClass_Pythia_train_100M_part8.tar": "540c1a0d66dfad78d2b363c5740ccf86",
    "JetClass_Pythia_train_100M_part9.tar": "668f40b3275167ff7104c48317c0ae2a",
    "JetClass_Pythia_val_5M.tar": "7235ccb577ed85023ea3ab4d5e6160cf",
    "JetClass_Pythia_test_20M.tar": "64e5156d26d101adeb43b8388207d767",
}


def _jetclass_file(name: str, default: bool = True) -> FileEntry:
    return FileEntry(
        name,
        url=f"https://zenodo.org/records/6619768/files/{name}",
        md5=_JETCLASS_MD5[name],
        unpack="tar",
        members="**/*.root",
        default=default,
    )


JETCLASS = DatasetRecord(
    name="jetclass",
    title="JetClass (Qu, Li, Qian)",
    description=(
        "100M training jets of ten classes (QCD, H->bb, cc, gg, 4q, lvqq, Z->qq, W->qq, "
        "t->bqq, t->blv) from MadGraph + Pythia 8 + Delphes (CMS-like), the data set "
        "ParT was trained on; ROOT files (TTree 'tree', part_* particles, jet_*, one-hot "
        "label_*) packed in tar archives of 10M training jets each. By default one training "
        "archive (10M jets), the validation (5M) and the test (20M) archives; --full adds the "
        "nine other training archives."
    ),
    homepage="https://zenodo.org/records/6619768",
    doi="10.5281/zenodo.6619768",
    files={
        "train": tuple(
            _jetclass_file(f"JetClass_Pythia_train_100M_part{i}.tar", default=i == 0)
            for i in range(10)
        ),
        "val": (_jetclass_file("JetClass_Pythia_val_5M.tar"),),
        "test": (_jetclass_file("JetClass_Pythia_test_20M.tar"),),
    },
    layout="jetclass-root",
    citation=_JETCLASS_BIB,
    classes=("QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl"),
    label_meaning="one-hot label_<class> branches",
    jet_radius=0.8,
    pt_range=(500.0, 1000.0),
    facts="anti-kT R = 0.8 jets, pT in [500, 1000] GeV, |eta| < 2; 100M / 5M / 20M jets "
    "(train / val / test).",
    checksum_source="MD5 from jet-universe/particle_transformer (get_datasets.py)",
)

_JETNET_BIB = """@dataset{kansal_raghav_2022_6975118,
  author    = {Kansal, Raghav and Duarte, Javier and Su, Hao and Orzari, Breno and
               Tomei, Thiago and Pierini, Maurizio and Touranakou, Mary and
               Vlimant, Jean-Roch and Gunopulos, Dimitrios},
  title     = {JetNet},
  month     = aug,
  year      = 2022,
  publisher = {Zenodo},
  version   = 2,
  doi       = {10.5281/zenodo.6975118},
  url       = {https://doi.org/10.5281/zenodo.6975118}
}

@inproceedings{Kansal:2021cqp,
  author        = {Kansal, Raghav and Duarte, Javier and Su, Hao and Orzari, Breno and
                   Tomei, Thiago and Pierini, Maurizio and Touranakou, Mary and
                   Vlimant, Jean-Roch and Gunopulos, Dimitrios},
  title         = {Particle Cloud Generation with Message Passing Generative Adversarial Networks},
  booktitle     = {{Advances in Neural Information Processing Systems}},
  volume        = {34},
  year          = {2021},
  eprint        = {2106.11535},
  archivePrefix = {arXiv},
  primaryClass  = {cs.LG}
}
"""
# JetNet (Zenodo 6975118, 30 particles): file names g/q/t/w/z.hdf5 from jet-net/JetNet
# (jetnet/datasets/jetnet.py, key f"{jet_type}.hdf5"); array shapes and jet counts from the
# Zenodo record's description; BibTeX from jet-net/JetNet paper.bib. The JetNet package reads
# the MD5 from Zenodo's API at download time: none is published in a file, so None here.
JETNET = DatasetRecord(
    name="jetnet",
    title="JetNet (Kansal et al.)",
    description=(
        "Gluon, light-quark, top, W and Z jets of about 1 TeV, the benchmark for jet "
        "generative models (MPGAN). One HDF5 file per jet type: particle_features (n, 30, 4) "
        "= (eta_rel, phi_rel, pT_rel, mask), jet_features (n, 4) = (pT, eta, mass, "
        "number of particles). No fixed split: use it for pre-training (split 'all')."
    ),
    homepage="https://zenodo.org/records/6975118",
    doi="10.5281/zenodo.6975118",
    files={
        "all": tuple(
            FileEntry(f"{t}.hdf5", url=f"https://zenodo.org/records/6975118/files/{t}.hdf5")
            for t in ("g", "q", "t", "w", "z")
        )
    },
    layout="jetnet-h5",
    citation=_JETNET_BIB,
    classes=("g", "q", "t", "w", "z"),
    label_meaning="one file per jet type (g, q, t, w, z); no label column",
    facts="jets of ~1 TeV pT; 177252 / 170679 / 177945 / 177172 / 176952 g / q / t / w / z "
    "jets; at most 30 particles per jet (JetNet150, Zenodo 6975117, has 150).",
    task=None,
)

_ATLAS_BIB = """@misc{ATLAS:toptag:opendata:2024,
  author    = {{ATLAS Collaboration}},
  title     = {{ATLAS} top tagging open data set with systematic uncertainties},
  year      = {2024},
  publisher = {CERN Open Data Portal},
  doi       = {10.7483/OPENDATA.ATLAS.SOAY.LABE}
}

@article{ATLAS:2024toptagging,
  author        = {{ATLAS Collaboration}},
  title         = {Accuracy versus precision in boosted top tagging with the {ATLAS} detector},
  eprint        = {2407.20127},
  archivePrefix = {arXiv},
  primaryClass  = {hep-ex},
  reportNumber  = {CERN-EP-2024-159},
  year          = {2024}
}
"""
# ATLAS top tagging open data (CERN Open Data record 80030): the record's "Cite as" line
# (DOI 10.7483/OPENDATA.ATLAS.SOAY.LABE) and jet counts from the record page; the paper is
# arXiv:2407.20127 (CERN-EP-2024-159); the first nominal file of each set, gzipped HDF5, at
# the record's asset path as used in public training recipes. No size/checksum found: None.
_ATLAS_ASSETS = (
    "https://opendata.cern.ch/record/80030/files/assets/atlas/datascience/CERN-EP-2024-159"
)
ATLAS_TOP = DatasetRecord(
    name="atlas-top",
    title="ATLAS top tagging open data set with systematic uncertainties",
    description=(
        "Boosted top jets (signal) against light-quark and gluon jets (background) from full "
        "ATLAS simulation at 13 TeV: constituents (fjet_clus_pt, _eta, _phi, _E), high-level "
        "substructure variables, labels and training weights, in gzipped HDF5 files; "
        "92.8M training and 10.3M test jets, plus systematically varied sets. By default the "
        "first nominal training and test file. Rules of use: weight each jet's loss by its "
        "training weight, and quote systematic uncertainties with any performance claim."
    ),
    homepage="https://opendata.cern.ch/record/80030",
    doi="10.7483/OPENDATA.ATLAS.SOAY.LABE",
    files={
        "train": (
            FileEntry(
                "train_nominal_000.h5.gz",
                url=f"{_ATLAS_ASSETS}/train_nominal_000.h5.gz",
                unpack="gzip",
            ),
        ),
        "test": (
            FileEntry(
                "test_nominal_000.h5.gz",
                url=f"{_ATLAS_ASSETS}/test_nominal_000.h5.gz",
                unpack="gzip",
            ),
        ),
    },  # fmt: skip
    layout="atlas-toptag-h5",
    citation=_ATLAS_BIB,
    classes=("QCD", "top"),
    label_meaning="signal = jet initiated by a boosted top quark, background = light quark "
    "or gluon jet; equal parts of each",
    facts="13 TeV full ATLAS simulation; train_nominal 92,820,427 jets, test_nominal "
    "10,306,813 jets; systematic variations (cluster energy scale, resolution, ...) as "
    "separate sets. No validation split: hold out part of 'train'.",
)

_ASPEN_BIB = """@article{Amram:2024aspen,
  author        = {Amram, Oz and Anzalone, Luca and Birk, Joschka and Faroughy, Darius A. and
                   Hallin, Anna and Kasieczka, Gregor and Kr{\\"a}mer, Michael and Pang, Ian and
                   Reyes-Gonzalez, Humberto and Shih, David},
  title         = {Aspen Open Jets: Unlocking {LHC} Data for Foundation Models in Particle Physics},
  eprint        = {2412.10504},
  archivePrefix = {arXiv},
  primaryClass  = {hep-ph},
  year          = {2024}
}
"""
# Aspen Open Jets (Universität Hamburg FDR record 16505): file names RunG_batch<i>.h5 and the
# record's file URL from public loaders (AspenOpenJets data modules); content (keys, shapes)
# from the record's description (b2find mirror); authors from arXiv:2412.10504. No
# size/checksum/licence found: None.
ASPEN = DatasetRecord(
    name="aspen",
    title="Aspen Open Jets (Amram et al.)",
    description=(
        "About 180M boosted AK8 jets from CMS 2016 Open Data (JetHT), real collision data for "
        "pre-training foundation models. HDF5 files: PFCands (n, 150, 11) = (px, py, pz, E, "
        "d0, d0Err, dz, dzErr, charge, PDG id, PUPPI weight), jet_kinematics (pT, eta, phi, "
        "softdrop mass), jet_tagging, event_info. Unlabelled. By default two of the files."
    ),
    homepage="https://www.fdr.uni-hamburg.de/record/16505",
    files={
        "train": (
            FileEntry(
                "RunG_batch0.h5",
                url="https://www.fdr.uni-hamburg.de/record/16505/files/RunG_batch0.h5",
            ),
        ),
        "val": (
            FileEntry(
                "RunG_batch1.h5",
                url="https://www.fdr.uni-hamburg.de/record/16505/files/RunG_batch1.h5",
            ),
        ),
    },  # fmt: skip
    layout="aspen-h5",
    citation=_ASPEN_BIB,
    label_meaning="unlabelled (recorded collisions)",
    jet_radius=0.8,
    facts="CMS 2016 Open Data, JetHT stream; up to 150 PF candidates per jet.",
    task=None,
)

_JETCLASS2_BIB = """@article{Li:2024sophon,
  author        = {Li, Congqiao and Agapitos, Antonios and Drews, Jovin and Duarte, Javier and
                   Fu, Dawei and Gao, Leyun and Kansal, Raghav and Kasieczka, Gregor and
                   Moureaux, Louis and Qu, Huilin and Mantilla Suarez, Cristina and Li, Qiang},
  title         = {Accelerating Resonance Searches via Signature-Oriented Pre-training},
  eprint        = {2405.12972},
  archivePrefix = {arXiv},
  primaryClass  = {hep-ph},
  year          = {2024}
}
"""
# JetClass-II (Hugging Face Hub dataset jet-universe/jetclass2, licence MIT on its card): the
# file-name ranges per part and split from the card's table (Res2P 0000-0199 / 0200-0249 /
# 0250-0299, Res34P 0000-0859 / 0860-1074 / 1075-1289, QCD 0000-0279 / 0280-0349; the QCD
# test range is cut off on the card, so QCD has no test file here). Checksums: the Hub's own.
_JC2_RANGES = {
    "train": {"Res2P": range(0, 200), "Res34P": range(0, 860), "QCD": range(0, 280)},
    "val": {"Res2P": range(200, 250), "Res34P": range(860, 1075), "QCD": range(280, 350)},
    "test": {"Res2P": range(250, 300), "Res34P": range(1075, 1290)},
}
JETCLASS2 = DatasetRecord(
    name="jetclass2",
    title="JetClass-II (Li et al.)",
    description=(
        "A large jet data set of generic X -> 2-prong (Res2P) and 3-4-prong (Res34P) resonant "
        "jets and QCD jets over a wide range of jet pT and mass, with fine-grained classes, "
        "for pre-training large jet models (Sophon). Parquet files of 100k jets on the "
        "Hugging Face Hub; by default the first file of each part per split."
    ),
    homepage="https://huggingface.co/datasets/jet-universe/jetclass2",
    files={
        split: tuple(
            FileEntry(
                f"{part}_{i:04d}.parquet",
                hub_pattern=f"*{part}_{i:04d}.parquet",
                default=i == indices[0],
            )
            for part, indices in parts.items()
            for i in indices
        )  # fmt: skip
        for split, parts in _JC2_RANGES.items()
    },
    layout="jetclass2-parquet",
    citation=_JETCLASS2_BIB,
    license="MIT",
    label_meaning="class index over JetClass-II's fine-grained classes (see the data card)",
    facts="training / validation / test sizes in the ratio 4:1:1; 20M Res2P, 86M Res34P and "
    "28M QCD training jets.",
    hf_repo="jet-universe/jetclass2",
    checksum_source="the Hugging Face Hub (verified by huggingface_hub)",
)

BUILTIN: tuple[DatasetRecord, ...] = (
    TOP,
    QG,
    QG_HERWIG,
    JETCLASS,
    JETCLASS2,
    JETNET,
    ATLAS_TOP,
    ASPEN,
)
_EXTRA: dict[str, DatasetRecord] = {}


# --- lookup -------------------------------------------------------------------------------
def register_dataset(record: DatasetRecord, *, replace: bool = False) -> DatasetRecord:
    """Add ``record`` to the registry of this process (``replace`` one of the same name)."""
    if not replace and record.name in _all_records():
        raise ValueError(f"a data set named {record.name!r} is already registered")
    _EXTRA[record.name] = record
    return record


def unregister_dataset(name: str) -> None:
    """Remove a record added with :func:`register_dataset` (built-in ones stay)."""
    _EXTRA.pop(name, None)


def load_records(path: str | os.PathLike) -> list[DatasetRecord]:
    """The records of a JSON file (one record's dict, or a list of them)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        items = data if isinstance(data, list) else [data]
        return [DatasetRecord.from_dict(item) for item in items]
    except (OSError, ValueError, TypeError) as err:
        raise DataError(f"{RECORDS_ENV}: {path}: not a data set record file ({err})") from err


def _env_records() -> dict[str, DatasetRecord]:
    out: dict[str, DatasetRecord] = {}
    for path in filter(None, os.environ.get(RECORDS_ENV, "").split(os.pathsep)):
        out.update({r.name: r for r in load_records(path)})
    return out


def _all_records() -> dict[str, DatasetRecord]:
    return {**{r.name: r for r in BUILTIN}, **_env_records(), **_EXTRA}


def dataset_names() -> list[str]:
    """The names of every known record."""
    return sorted(_all_records())


def list_datasets() -> list[DatasetRecord]:
    """Every known record: the built-in ones, those of ``JETFM_DATASETS``, registered ones."""
    return list(_all_records().values())


def get_dataset(name: str) -> DatasetRecord:
    """The record called ``name``; DataError listing the known names otherwise."""
    records = _all_records()
    if name not in records:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(sorted(records))}")
    return records[name]


def layout_mapping(name: str | None) -> BranchMapping | None:
    """The :class:`~jetfm.data.BranchMapping` of the layout called ``name`` (``None`` → ``None``),
    from :func:`jetfm.data.layouts.get_layout`."""
    if name is None:
        return None
    from jetfm.data.layouts import get_layout

    return get_layout(name)


# --- data arguments -----------------------------------------------------------------------
def parse_data_name(text: str) -> tuple[str, str | None, bool] | None:
    """``(name, split, full)`` of a data-set reference ``NAME``, ``NAME:SPLIT`` or
    ``NAME:SPLIT:full``; ``None`` when ``text`` is not of that form."""
    parts = text.split(":")
    if not 1 <= len(parts) <= 3 or not all(parts) or not _NAME.match(parts[0]):
        return None
    if len(parts) == 3 and parts[2] != "full":
        return None
    return parts[0], (parts[1] if len(parts) > 1 else None), len(parts) == 3


__all__ = [
    "BUILTIN",
    "LAYOUT_NAMES",
    "RECORDS_ENV",
    "DatasetRecord",
    "FileEntry",
    "dataset_names",
    "get_dataset",
    "layout_mapping",
    "list_datasets",
    "load_records",
    "parse_data_name",
    "register_dataset",
    "unregister_dataset",
]
