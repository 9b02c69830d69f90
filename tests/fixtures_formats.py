"""The same synthetic jets written as a ROOT TTree, a ROOT RNTuple, parquet and HDF5.

Each file is written by its own library (uproot, awkward/pyarrow, h5py):

* ``tree.root``: a TTree (``mktree``/``extend``, particle branches sharing one counter);
* ``rntuple.root``: an RNTuple (uproot ≥ 5.7's default for ``file["tree"] = {...}``);
* ``jets.parquet``: jagged JetClass-named columns and ``label_*`` columns (JetClass-II-like),
  small row groups so that reads cross row-group boundaries;
* ``jets.h5``: the top-tagging layout: ``Pmu`` ``(n_jets, n_particles, 4)`` four-vectors
  (E, px, py, pz) zero-padded, ``is_signal`` class indices, ``jet_*`` datasets; read with
  :data:`H5_MAPPING`.

Use ``format_files`` (session-scoped; never modify the files) or :func:`write_formats`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest
import yaml

from tests.fixtures_data import _branch_types, generate_jets

#: BranchMapping of the HDF5 file (the components of the padded four-vector array)
H5_MAPPING: dict[str, Any] = {
    "energy": "Pmu[0]",
    "px": "Pmu[1]",
    "py": "Pmu[2]",
    "pz": "Pmu[3]",
    "label": "is_signal",
    "label_classes": ["QCD", "Wqq"],
}
FOUR_VECTOR = ("part_energy", "part_px", "part_py", "part_pz")
JET_BRANCHES = ("jet_pt", "jet_eta", "jet_phi", "jet_energy")


def pad(jagged: ak.Array, width: int) -> np.ndarray:
    """Jagged per-particle values → ``(n, width)`` zero-padded numpy."""
    return ak.to_numpy(ak.fill_none(ak.pad_none(jagged, width, axis=1, clip=True), 0))


def write_ttree(branches: dict[str, Any], path: Path) -> Path:
    types, pack = _branch_types(branches)
    with __import__("uproot").recreate(path) as f:
        f.mktree("tree", types).extend(pack(branches))
    return path


def write_rntuple(branches: dict[str, Any], path: Path) -> Path:
    with __import__("uproot").recreate(path) as f:
        f["tree"] = branches
    return path


def write_parquet(branches: dict[str, Any], path: Path, row_group_size: int = 32) -> Path:
    ak.to_parquet(ak.Array(branches), path, row_group_size=row_group_size)
    return path


def write_padded_h5(
    branches: dict[str, Any],
    path: Path,
    width: int | None = None,
    classes: tuple[str, ...] = ("QCD", "Wqq"),
    mask: bool = False,
) -> Path:
    """The top-tagging layout: zero-padded (E, px, py, pz), class indices, jet axis."""
    import h5py

    counts = ak.to_numpy(ak.num(branches["part_px"], axis=1))
    width = width or int(counts.max()) + 3  # some padding even for the longest jet
    vectors = np.stack([pad(branches[k], width) for k in FOUR_VECTOR], axis=-1)
    onehot = np.stack([np.asarray(branches[f"label_{c}"]) for c in classes], axis=1)
    with h5py.File(path, "w") as f:
        f["Pmu"] = vectors.astype(np.float32)
        f["is_signal"] = onehot.argmax(axis=1).astype(np.int64)
        if mask:
            f["mask"] = np.arange(width)[None, :] < counts[:, None]
        for name in JET_BRANCHES:
            if name in branches:
                f[name] = np.asarray(branches[name])
    return path


def write_formats(branches: dict[str, Any], base: Path) -> dict[str, Path]:
    """``{format: path}`` of the same jets in every format, plus ``h5_mapping`` (YAML)."""
    base.mkdir(parents=True, exist_ok=True)
    mapping = base / "h5_mapping.yaml"
    mapping.write_text(yaml.safe_dump(H5_MAPPING))
    return {
        "ttree": write_ttree(branches, base / "tree.root"),
        "rntuple": write_rntuple(branches, base / "rntuple.root"),
        "parquet": write_parquet(branches, base / "jets.parquet"),
        "hdf5": write_padded_h5(branches, base / "jets.h5"),
        "h5_mapping": mapping,
    }


@pytest.fixture(scope="session")
def format_branches() -> dict[str, Any]:
    """150 QCD + Wqq jets, four-vectors, jet axis and labels only (what every format holds)."""
    return generate_jets(150, seed=31, kinematics_only=True)


@pytest.fixture(scope="session")
def format_files(tmp_path_factory, format_branches) -> dict[str, Path]:
    """The jets of ``format_branches`` as TTree, RNTuple, parquet and HDF5 files."""
    return write_formats(format_branches, tmp_path_factory.mktemp("formats"))
