"""Reading: path expansion, group/label detection, branch plans, chunked reads, mappings."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from jetfm.data import (
    BranchMapping,
    ReadSpec,
    detect_feature_groups,
    expand_paths,
    iter_raw_chunks,
    plan_work,
    resolve_label_names,
)
from jetfm.data.reading import label_names_in
from jetfm.errors import DataError
from tests.fixtures_data import write_jetclass_file


def test_expand_paths_glob_list_directory(jetclass_files):
    base = jetclass_files[0].parent
    assert expand_paths(str(base / "*.root")) == sorted(jetclass_files)
    assert expand_paths(base) == sorted(jetclass_files)
    # lists keep order and drop duplicates
    got = expand_paths([jetclass_files[2], str(base / "part*.root")])
    assert got[0] == jetclass_files[2] and len(got) == 3


def test_detect_feature_groups(jetclass_file, kinematics_only_file):
    assert detect_feature_groups(jetclass_file) == ("kinematics", "pid", "tracks")
    assert detect_feature_groups(kinematics_only_file) == ("kinematics",)
    # several files: the groups they all have
    assert detect_feature_groups([jetclass_file, kinematics_only_file]) == ("kinematics",)


def test_label_names_follow_jetclass_order(tmp_path):
    path = write_jetclass_file(tmp_path / "f.root", 20, classes=("Wqq", "Zprime", "QCD", "Hbb"))
    # JetClass classes in canonical order first, then unknown ones sorted
    assert resolve_label_names(path) == ("QCD", "Hbb", "Wqq", "Zprime")
    assert resolve_label_names(path, BranchMapping(labels=["Wqq", "QCD"])) == ("Wqq", "QCD")
    keys = ["label_b", "label_a", "label_Tbqq", "part_px"]
    assert label_names_in(keys, BranchMapping()) == ("Tbqq", "a", "b")


def test_plan_work_splits_files_into_units(jetclass_files):
    spec = ReadSpec(targets=("labels",), label_names=("QCD", "Wqq"))
    plan = plan_work(jetclass_files, spec, step_size=50)
    assert plan.num_entries == 360
    per_file = [
        [(u.entry_start, u.entry_stop) for u in plan.units if u.file_index == i] for i in range(3)
    ]
    assert per_file[0] == [(0, 50), (50, 100), (100, 120)]
    assert all(p == per_file[0] for p in per_file)


def test_chunks_match_direct_uproot_read(jetclass_file):
    spec = ReadSpec(targets=("labels", "track_labels"), label_names=("QCD", "Wqq"))
    plan = plan_work(jetclass_file, spec, step_size=64)
    chunks = list(iter_raw_chunks(plan.units, spec))
    assert [c.entry_start for c in chunks] == [0, 64, 128, 192, 256]
    with uproot.open(jetclass_file) as fh:
        ref = fh["tree"].arrays(["part_px", "part_origin", "label_QCD", "label_Wqq"])
    px = np.concatenate([ak.to_numpy(ak.flatten(c.fields["px"])) for c in chunks])
    np.testing.assert_array_equal(px, ak.to_numpy(ak.flatten(ref["part_px"])))
    labels = np.concatenate([c.fields["labels"] for c in chunks])
    np.testing.assert_array_equal(labels, ref["label_Wqq"].to_numpy().astype(int))
    assert not any(c.nonfinite.any() for c in chunks)


def test_branch_mapping_renames_everything(tmp_path):
    """A user file with other tree/branch names reads identically through a BranchMapping."""

    def rename(branches):
        return {
            k.replace("part_", "cand_").replace("label_", "is_"): v for k, v in branches.items()
        }

    theirs = write_jetclass_file(tmp_path / "theirs.root", 40, seed=3, tree="Events", mutate=rename)
    ours = write_jetclass_file(tmp_path / "ours.root", 40, seed=3)
    fields = {f: getattr(BranchMapping(), f) for f in BranchMapping.GROUP_FIELDS["kinematics"]}
    fields |= {f: getattr(BranchMapping(), f) for f in BranchMapping.GROUP_FIELDS["pid"]}
    fields |= {f: getattr(BranchMapping(), f) for f in BranchMapping.GROUP_FIELDS["tracks"]}
    mapping = BranchMapping(
        tree="Events",
        label_prefix="is_",
        origin="cand_origin",
        vertex="cand_vtx",
        **{f: b.replace("part_", "cand_") for f, b in fields.items()},
    )
    spec_t = ReadSpec(mapping, targets=("labels", "vertex_labels"), label_names=("QCD", "Wqq"))
    spec_o = ReadSpec(targets=("labels", "vertex_labels"), label_names=("QCD", "Wqq"))
    a = next(iter_raw_chunks(plan_work(theirs, spec_t, 100).units, spec_t))
    b = next(iter_raw_chunks(plan_work(ours, spec_o, 100).units, spec_o))
    assert a.fields.keys() == b.fields.keys()
    for key in a.fields:
        assert ak.to_list(a.fields[key]) == ak.to_list(b.fields[key]), key


def test_branch_mapping_from_yaml(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text("tree: Events\npx: cand_px\n")
    mapping = BranchMapping.from_yaml(path)
    assert mapping.tree == "Events" and mapping.px == "cand_px" and mapping.py == "part_py"


def test_bad_spec_arguments():
    with pytest.raises(DataError, match="unknown feature group"):
        ReadSpec(feature_groups=("kinematics", "calo"))
    with pytest.raises(DataError, match="must include 'kinematics'"):
        ReadSpec(feature_groups=("pid",))
    with pytest.raises(DataError, match="unknown target"):
        ReadSpec(targets=("flavour",))
    with pytest.raises(DataError, match="nan_policy"):
        ReadSpec(nan_policy="ignore")
    # canonical group order regardless of how they were given
    assert ReadSpec(feature_groups=("tracks", "kinematics")).feature_groups == (
        "kinematics",
        "tracks",
    )
