"""Every kind of bad input gives a DataError naming the file and the tree/branch/entry.

Each test writes a real ROOT file with uproot (tmp_path) and breaks it on purpose.
"""

from __future__ import annotations

import logging

import awkward as ak
import numpy as np
import pytest
import uproot

from jetfm.cli import main
from jetfm.data import JetCollator, JetDataset, JetProcessor, StreamingJetDataset
from jetfm.errors import DataError
from tests.fixtures_data import PART_BRANCHES, write_jetclass_file


def _set_value(branch: str, entry: int, particle: int | None, value: float):
    """mutate hook: one value of a jagged (particle index) or per-jet branch."""

    def mutate(branches):
        arr = branches[branch]
        if particle is None:
            values = np.array(arr, dtype=np.float32)
            values[entry] = value
        else:
            counts = ak.num(arr).to_numpy()
            flat = ak.to_numpy(ak.flatten(arr)).copy()
            flat[counts[:entry].sum() + particle] = value
            values = ak.unflatten(flat, counts)
        return branches | {branch: values}

    return mutate


def _empty_jets(entries: list[int]):
    """mutate hook: give the listed jets 0 constituents (every part_* branch)."""

    def mutate(branches):
        out = dict(branches)
        for key, arr in branches.items():
            if not key.startswith("part_"):
                continue
            counts = ak.num(arr).to_numpy()
            jet = np.repeat(np.arange(len(counts)), counts)
            keep = ~np.isin(jet, entries)
            new_counts = np.where(np.isin(np.arange(len(counts)), entries), 0, counts)
            out[key] = ak.unflatten(ak.to_numpy(ak.flatten(arr))[keep], new_counts)
        return out

    return mutate


def test_empty_glob_names_the_pattern(tmp_path):
    with pytest.raises(DataError, match=r"no files match the pattern .*nothing_\*\.root"):
        JetDataset(str(tmp_path / "nothing_*.root"))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        JetDataset(tmp_path / "absent.root")


def test_non_root_file(tmp_path):
    path = tmp_path / "notes.root"
    path.write_text("these are not the jets you are looking for\n" * 50)
    with pytest.raises(DataError, match=r"notes\.root: cannot be read as a ROOT file.*not a ROOT"):
        JetDataset(path)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.995])
def test_truncated_file(tmp_path, jetclass_file, keep):
    data = jetclass_file.read_bytes()
    path = tmp_path / "cut.root"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DataError, match=r"cut\.root: .*(truncated|corrupt)"):
        JetDataset(path, targets=())


def test_corrupt_baskets(tmp_path, jetclass_file):
    data = bytearray(jetclass_file.read_bytes())
    start = len(data) // 3
    data[start : start + 20_000] = bytes(20_000)
    path = tmp_path / "zeros.root"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"zeros\.root: .*(truncated|corrupt)"):
        JetDataset(path, targets=())


def test_wrong_tree_lists_trees(tmp_path):
    path = write_jetclass_file(tmp_path / "f.root", 10, tree="Events")
    with pytest.raises(DataError, match=r"f\.root: no tree 'tree'; trees present: \['Events'\]"):
        JetDataset(path)


def test_a_histogram_named_like_the_tree_is_refused_clearly(tmp_path):
    path = tmp_path / "h.root"
    with uproot.recreate(path) as fh:
        fh["tree"] = np.histogram(np.arange(10.0), bins=5)
    with pytest.raises(DataError, match=r"h\.root: 'tree' is a .*not a TTree or RNTuple"):
        JetDataset(path, targets=())


def test_rntuple_missing_branches_are_named(tmp_path):
    path = tmp_path / "rn.root"
    with uproot.recreate(path) as fh:  # uproot >= 5.7 writes an RNTuple for a plain dict
        fh["tree"] = {"part_px": ak.Array([[1.0, 2.0]]), "part_py": ak.Array([[1.0, 2.0]])}
    with pytest.raises(DataError, match=r"rn\.root: tree 'tree' is missing .*'part_pz'"):
        JetDataset(path, targets=())


def test_missing_required_branch_lists_branches(tmp_path):
    drop = lambda b: {k: v for k, v in b.items() if k != "part_pz"}  # noqa: E731
    path = write_jetclass_file(tmp_path / "f.root", 10, mutate=drop)
    with pytest.raises(DataError) as err:
        JetDataset(path, feature_groups=("kinematics",))
    msg = str(err.value)
    assert "f.root" in msg and "'part_pz'" in msg and "kinematics" in msg
    assert "Branches present" in msg and "part_px" in msg
    assert "not even the 4-vectors" in msg


def test_missing_optional_group_branch_suggests_groups(tmp_path):
    drop = lambda b: {k: v for k, v in b.items() if k != "part_d0val"}  # noqa: E731
    path = write_jetclass_file(tmp_path / "f.root", 10, mutate=drop)
    with pytest.raises(DataError, match=r"feature group 'tracks' needs \['part_d0val'\]") as err:
        JetDataset(path)
    assert "available in this file: ['kinematics', 'pid']" in str(err.value)
    # choosing the available groups works
    assert len(JetDataset(path, feature_groups=("kinematics", "pid"))) == 10


@pytest.mark.parametrize(
    ("target", "branch"), [("track_labels", "part_origin"), ("vertex_labels", "part_vtx")]
)
def test_missing_truth_branch(tmp_path, target, branch):
    path = write_jetclass_file(tmp_path / "f.root", 10, with_truth=False)
    with pytest.raises(DataError, match=rf"f\.root.*target '{target}' needs \['{branch}'\]"):
        StreamingJetDataset(path, targets=(target,))


def test_no_label_branches(kinematics_only_file, tmp_path):
    path = write_jetclass_file(tmp_path / "nolab.root", 10, kinematics_only=True, with_truth=False)
    with pytest.raises(DataError, match="no label names"):
        JetDataset(path, targets=("labels",), feature_groups=("kinematics",))
    assert len(JetDataset(path, targets=(), feature_groups=("kinematics",))) == 10


def test_nan_raises_naming_branch_and_entry(tmp_path):
    path = write_jetclass_file(tmp_path / "f.root", 30, mutate=_set_value("part_pz", 17, 2, np.nan))
    with pytest.raises(DataError, match=r"f\.root: branch 'part_pz' has NaN/inf .*entry 17"):
        JetDataset(path)


def test_inf_in_jet_branch(tmp_path):
    path = write_jetclass_file(
        tmp_path / "f.root", 30, mutate=_set_value("jet_pt", 4, None, np.inf)
    )
    with pytest.raises(DataError, match=r"branch 'jet_pt' has NaN/inf .*entry 4"):
        JetDataset(path)


def test_nan_skip_policy_drops_and_counts(tmp_path, caplog):
    mutate = _set_value("part_d0err", 9, 0, np.nan)
    path = write_jetclass_file(tmp_path / "f.root", 30, mutate=mutate)
    with caplog.at_level(logging.WARNING):
        ds = JetDataset(path, nan_policy="skip", return_index=True)
    assert len(ds) == 29 and 9 not in ds.entry.tolist()
    assert ds.stats["skipped_nonfinite"] == 1
    assert "1 with NaN/inf" in caplog.text
    stream = list(StreamingJetDataset(path, nan_policy="skip", step_size=8, return_index=True))
    assert [int(j["entry"]) for j in stream] == ds.entry.tolist()
    assert all(np.isfinite(j["tracks"]).all() for j in stream)


def test_zero_pt_particle_is_a_computed_nan(tmp_path):
    def zero_pt(branches):
        for b in ("part_px", "part_py"):
            branches = _set_value(b, 6, 3, 0.0)(branches)
        return branches

    path = write_jetclass_file(tmp_path / "f.root", 20, mutate=zero_pt)
    with pytest.raises(DataError, match=r"computed feature kinematics\.log_pt .*entry 6"):
        JetDataset(path)
    assert 6 not in JetDataset(path, nan_policy="skip", return_index=True).entry


def test_jagged_length_mismatch_names_both_branches(tmp_path):
    def extra_particle(branches):
        arr = branches["part_d0val"]
        extra = np.zeros(len(arr), dtype=np.int64)
        extra[7] = 1
        return branches | {
            "part_d0val": ak.concatenate([arr, ak.unflatten(np.float32([0.5]), extra)], axis=1)
        }

    path = write_jetclass_file(tmp_path / "f.root", 20, mutate=extra_particle)
    with pytest.raises(DataError) as err:
        JetDataset(path)
    msg = str(err.value)
    assert "f.root" in msg and "'part_px'" in msg and "'part_d0val'" in msg
    assert "entry 7" in msg


def test_truth_length_mismatch(tmp_path):
    def short(branches):
        arr = branches["part_origin"]
        return branches | {"part_origin": arr[:, :-1]}

    path = write_jetclass_file(tmp_path / "f.root", 10, mutate=short)
    with pytest.raises(DataError, match=r"'part_px' and 'part_origin' .*entry 0"):
        JetDataset(path, targets=("track_labels",))


def test_labels_not_one_hot(tmp_path):
    def two_hot(branches):
        label = np.array(branches["label_QCD"])
        label[3] = not label[3]  # now either both or neither class is set
        return branches | {"label_QCD": label}

    path = write_jetclass_file(tmp_path / "f.root", 10, mutate=two_hot)
    with pytest.raises(DataError, match=r"f\.root: labels are not one-hot at entry 3"):
        JetDataset(path)
    # not asked for labels → not checked
    assert len(JetDataset(path, targets=())) == 10


def test_labels_subset_not_covering_a_jet(tmp_path):
    path = write_jetclass_file(tmp_path / "f.root", 10, classes=("QCD", "Wqq"))
    processor = JetProcessor(label_names=["QCD"])
    with pytest.raises(
        DataError, match=r"not one-hot at entry \d+ .*none of the classes in use \['QCD'\]"
    ):
        JetDataset(path, processor, targets=("labels",))


def test_bad_truth_code(tmp_path):
    def bad(branches):
        arr = branches["part_origin"]
        counts = ak.num(arr).to_numpy()
        flat = ak.to_numpy(ak.flatten(arr)).copy()
        flat[counts[:5].sum()] = 9
        return branches | {"part_origin": ak.unflatten(flat, counts)}

    path = write_jetclass_file(tmp_path / "f.root", 10, mutate=bad)
    with pytest.raises(DataError, match=r"'part_origin' has the invalid value 9 at entry 5"):
        JetDataset(path, targets=("track_labels",))


def test_per_jet_branch_where_jagged_expected(tmp_path):
    def flat_charge(branches):
        return branches | {"part_charge": np.zeros(len(branches["jet_pt"]), np.float32)}

    path = write_jetclass_file(tmp_path / "f.root", 10, mutate=flat_charge)
    with pytest.raises(DataError, match=r"'part_charge' should hold one value per particle"):
        JetDataset(path)


def test_empty_file_is_skipped_and_counted(tmp_path, caplog):
    empty = write_jetclass_file(tmp_path / "a_empty.root", 0)
    full = write_jetclass_file(tmp_path / "b_full.root", 15)
    with caplog.at_level(logging.WARNING):
        ds = JetDataset(str(tmp_path / "*.root"))
    assert len(ds) == 15 and ds.plan.empty_files == [str(empty)]
    assert "a_empty.root" in caplog.text and "0 entries" in caplog.text
    assert str(full) in ds.paths
    with pytest.raises(DataError, match="every input file is empty"):
        JetDataset(empty)


def test_zero_constituent_jets_are_skipped_and_counted(tmp_path, caplog):
    path = write_jetclass_file(tmp_path / "f.root", 20, mutate=_empty_jets([2, 11]))
    with caplog.at_level(logging.WARNING):
        ds = JetDataset(path, return_index=True)
    assert len(ds) == 18 and ds.stats["skipped_empty"] == 2
    assert not {2, 11} & set(ds.entry.tolist())
    assert "skipped 2 jets with 0 constituents" in caplog.text
    # the processor's chunk API keeps alignment and flags them
    with uproot.open(path) as fh:
        arrays = fh["tree"].arrays()
    processor = JetProcessor().fit(path, progress=False)
    chunk = processor(arrays)
    assert len(chunk) == 20 and np.flatnonzero(~chunk.valid).tolist() == [2, 11]
    batch = JetCollator(targets=())([ds[i] for i in range(4)])
    assert batch["mask"].any(dim=1).all()


def test_processor_call_missing_branch(jetclass_file):
    processor = JetProcessor().fit(jetclass_file, progress=False)
    with uproot.open(jetclass_file) as fh:
        arrays = fh["tree"].arrays(["part_px", "part_py", "part_pz"])
    with pytest.raises(DataError, match=r"missing branches.*'part_energy'"):
        processor(arrays)


def test_collator_asked_for_absent_target(jetclass_file):
    ds = JetDataset(jetclass_file, targets=())
    with pytest.raises(DataError, match="carry no 'labels'"):
        JetCollator(targets=("labels",))([ds[0], ds[1]])


def test_cli_reports_one_clear_line(tmp_path, capsys):
    path = tmp_path / "junk.root"
    path.write_bytes(b"\x00" * 1000)
    assert main(["stats", "--data", str(path), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jetfm stats: error:") and "junk.root" in err
    assert "Traceback" not in err


def test_fixture_branch_list_is_jetclass():
    # the writer covers every branch of the input convention
    from jetfm.data import BranchMapping

    mapping = BranchMapping()
    needed = set(mapping.branches_for(("kinematics", "pid", "tracks")).values())
    assert needed <= set(PART_BRANCHES)
