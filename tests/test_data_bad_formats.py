"""Bad parquet and HDF5 input gives a DataError naming the file and the column/dataset.

Each test writes a real file with pyarrow or h5py (tmp_path) and breaks it on purpose.
"""

from __future__ import annotations

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jetfm.cli import main
from jetfm.data import BranchMapping, JetDataset
from jetfm.errors import DataError
from tests.fixtures_formats import H5_MAPPING, write_padded_h5, write_parquet

KIN = dict(feature_groups=("kinematics",))
H5 = BranchMapping.from_dict(H5_MAPPING)


def _jets(n: int = 6, seed: int = 0) -> dict[str, pa.Array]:
    """Jagged four-vectors of ``n`` jets as pyarrow list columns (JetClass names)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(2, 6, n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    cols = {}
    for name in ("part_px", "part_py", "part_pz"):
        cols[name] = pa.ListArray.from_arrays(offsets, rng.normal(0, 10, counts.sum()))
    energy = 50 + rng.random(counts.sum())
    cols["part_energy"] = pa.ListArray.from_arrays(offsets, energy)
    cols["label_QCD"] = pa.array(np.arange(n) % 2 == 0)
    cols["label_Wqq"] = pa.array(np.arange(n) % 2 == 1)
    return cols


def _write(cols: dict[str, pa.Array], path) -> str:
    pq.write_table(pa.table(cols), path)
    return str(path)


def _h5(path, **datasets) -> str:
    with h5py.File(path, "w") as f:
        for name, values in datasets.items():
            f[name] = values
    return str(path)


def _padded(n: int = 5, width: int = 8, k: int = 4) -> np.ndarray:
    rng = np.random.default_rng(1)
    vectors = rng.normal(0, 10, (n, width, k)).astype(np.float32)
    vectors[..., 0] = 100 + rng.random((n, width))  # E > |p|
    vectors[:, 5:] = 0.0  # zero padding
    return vectors


def test_parquet_missing_column_names_file_and_column(tmp_path):
    cols = _jets()
    del cols["part_pz"]
    path = _write(cols, tmp_path / "nopz.parquet")
    with pytest.raises(DataError, match=r"nopz\.parquet: the parquet file is missing .*'part_pz'"):
        JetDataset(path, targets=(), **KIN)


def test_parquet_jagged_length_mismatch_names_both_columns_and_entry(tmp_path):
    cols = _jets()
    short = pa.ListArray.from_arrays(np.array([0, 2, 4, 6, 8, 10, 12], np.int32), np.ones(12))
    cols["part_py"] = short
    path = _write(cols, tmp_path / "lengths.parquet")
    with pytest.raises(DataError, match=r"lengths\.parquet: branches 'part_px' and 'part_py' "
                                        r"have different lengths \(first at entry \d"):  # fmt: skip
        JetDataset(path, targets=(), **KIN)


def test_parquet_non_numeric_column(tmp_path):
    cols = _jets()
    cols["part_px"] = pa.array([["a", "b"]] * 6)
    path = _write(cols, tmp_path / "text.parquet")
    with pytest.raises(DataError, match=r"text\.parquet: branch 'part_px' is not numeric"):
        JetDataset(path, targets=(), **KIN)


def test_parquet_null_values_are_named(tmp_path):
    cols = _jets()
    cols["part_pz"] = pa.array([[1.0, None]] + [[1.0, 2.0]] * 5)
    cols = {k: v for k, v in cols.items() if k != "part_px"}
    cols["part_px"] = pa.array([[1.0, 2.0]] * 6)
    cols["part_py"] = pa.array([[1.0, 2.0]] * 6)
    cols["part_energy"] = pa.array([[9.0, 9.0]] * 6)
    path = _write(cols, tmp_path / "nulls.parquet")
    with pytest.raises(DataError, match=r"nulls\.parquet: column 'part_pz' has missing \(null\) "
                                        r"values \(first at row 0\)"):  # fmt: skip
        JetDataset(path, targets=(), **KIN)


def test_parquet_empty_file(tmp_path):
    cols = {k: v[:0] for k, v in _jets().items()}
    path = _write(cols, tmp_path / "empty.parquet")
    with pytest.raises(DataError, match=r"every input file is empty.*empty\.parquet"):
        JetDataset(path, targets=(), **KIN)


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.97])
def test_parquet_truncated(tmp_path, format_files, keep):
    data = format_files["parquet"].read_bytes()
    path = tmp_path / "cut.parquet"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DataError, match=r"cut\.parquet: cannot be read as a parquet file.*"
                                        r"truncated"):  # fmt: skip
        JetDataset(path, targets=(), **KIN)


def test_hdf5_component_of_a_rank_2_dataset(tmp_path):
    path = _h5(tmp_path / "rank.h5", Pmu=np.ones((5, 8), np.float32), is_signal=np.zeros(5))
    with pytest.raises(DataError, match=r"rank\.h5: 'Pmu\[\d\]' needs 'Pmu' to be a padded "
                                        r"\(n_jets, n_particles, k\) array, but it is "
                                        r"\(n_jets, 8\)"):  # fmt: skip
        JetDataset(path, targets=(), mapping=H5, **KIN)


def test_hdf5_too_few_components(tmp_path):
    path = _h5(tmp_path / "width.h5", Pmu=_padded(k=3), is_signal=np.zeros(5, int))
    with pytest.raises(DataError, match=r"width\.h5: 'Pmu\[3\]': 'Pmu' has only 3 components "
                                        r"per particle \(shape \(n_jets, 8, 3\)\)"):  # fmt: skip
        JetDataset(path, targets=(), mapping=H5, **KIN)


def test_hdf5_mask_shape_mismatch(tmp_path):
    mask = np.ones((5, 10), bool)
    path = _h5(tmp_path / "mask.h5", Pmu=_padded(), mask=mask, is_signal=np.zeros(5, int))
    with pytest.raises(DataError, match=r"mask\.h5: the mask mask has shape \(10,\) per jet but "
                                        r"'Pmu' has \(8,\)"):  # fmt: skip
        JetDataset(path, targets=(), mapping=H5, **KIN)


def test_hdf5_dataset_with_other_row_count(tmp_path):
    path = _h5(tmp_path / "rows.h5", Pmu=_padded(), is_signal=np.zeros(4, int))
    with pytest.raises(DataError, match=r"rows\.h5: dataset 'is_signal' has 4 rows, others "
                                        r"have 5"):  # fmt: skip
        JetDataset(path, mapping=H5, **KIN)


def test_hdf5_non_numeric_dataset(tmp_path):
    """Strings are class names in a label column; elsewhere they are an error."""
    path = _h5(tmp_path / "str.h5", Pmu=_padded(), is_signal=np.array([b"top"] * 5))
    with pytest.raises(DataError, match=r"str\.h5: label 'top' at entry 0 of column "
                                        r"'is_signal' is not one of the classes"):  # fmt: skip
        JetDataset(path, mapping=H5, **KIN)
    names = np.array([b"a"] * 5)
    path = _h5(tmp_path / "strpt.h5", Pmu=_padded(), pt=names, is_signal=np.zeros(5, int))
    mapping = BranchMapping.from_dict({**H5_MAPPING, "energy": "pt"})
    with pytest.raises(DataError, match=r"strpt\.h5: dataset 'pt' is not numeric"):
        JetDataset(path, mapping=mapping, **KIN)


def test_hdf5_missing_dataset_lists_those_present(tmp_path):
    path = _h5(tmp_path / "nolabel.h5", Pmu=_padded())
    with pytest.raises(DataError, match=r"nolabel\.h5: no label column 'is_signal' .*\['Pmu'\]"):
        JetDataset(path, mapping=H5, **KIN)


def test_hdf5_empty_file_and_empty_datasets(tmp_path):
    path = _h5(tmp_path / "nothing.h5")
    with pytest.raises(DataError, match=r"nothing\.h5: group '/' holds no datasets"):
        JetDataset(path, mapping=H5, **KIN)
    path = _h5(tmp_path / "zero.h5", Pmu=np.zeros((0, 8, 4), np.float32), is_signal=np.zeros(0))
    with pytest.raises(DataError, match=r"every input file is empty.*zero\.h5"):
        JetDataset(path, mapping=H5, **KIN)


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.9])
def test_hdf5_truncated(tmp_path, format_files, keep):
    data = format_files["hdf5"].read_bytes()
    path = tmp_path / "cut.h5"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DataError, match=r"cut\.h5: .*(truncated|corrupt)"):
        JetDataset(path, mapping=H5, **KIN)


def test_hdf5_wrong_group_lists_groups(tmp_path):
    path = tmp_path / "groups.h5"
    with h5py.File(path, "w") as f:
        f.create_group("jets")["Pmu"] = _padded()
    mapping = BranchMapping.from_dict({**H5_MAPPING, "tree": "events"})
    with pytest.raises(DataError, match=r"groups\.h5: no group 'events'; groups present: "
                                        r"\['jets'\]"):  # fmt: skip
        JetDataset(path, mapping=mapping, **KIN)


def test_unknown_format_and_the_cli_prints_one_line(tmp_path, capsys, format_branches):
    path = tmp_path / "jets.csv"
    path.write_text("px,py\n1,2\n")
    with pytest.raises(DataError, match=r"jets\.csv: not a ROOT, parquet, HDF5 or .npz file"):
        JetDataset(path, targets=(), **KIN)
    bad = write_parquet({k: v for k, v in format_branches.items() if k != "part_energy"},
                        tmp_path / "noe.parquet")  # fmt: skip
    assert main(["stats", "--data", str(bad), "--output", str(tmp_path / "p")]) != 0
    err = capsys.readouterr().err
    assert "noe.parquet" in err and "part_energy" in err and "Traceback" not in err


def test_padded_nan_is_caught_like_root(tmp_path, format_branches):
    path = write_padded_h5(format_branches, tmp_path / "nan.h5")
    with h5py.File(path, "r+") as f:
        f["Pmu"][3, 0, 1] = np.nan
    with pytest.raises(DataError, match=r"nan\.h5: branch 'Pmu\[1\]' has NaN/inf values "
                                        r"\(first at entry 3\)"):  # fmt: skip
        JetDataset(path, targets=(), mapping=H5, **KIN)
