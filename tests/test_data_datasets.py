"""Eager vs streaming datasets, sharding over workers × ranks, collator and batch helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import uproot
from torch.utils.data import DataLoader

from jetfm.data import (
    IGNORE_INDEX,
    JetCollator,
    JetDataset,
    JetProcessor,
    StreamingJetDataset,
    chunk_to_batch,
    dataset_to_batch,
)
from jetfm.errors import DataError, JetFMError
from tests.fixtures_data import write_jetclass_file

TARGETS = ("labels", "track_labels", "vertex_labels")


@pytest.fixture(scope="module")
def processor(jetclass_files):
    return JetProcessor().fit(jetclass_files, step_size=50, progress=False)


def _key(jet):
    return int(jet["file_index"]), int(jet["entry"])


def test_eager_and_streaming_yield_the_same_jets(jetclass_files, processor):
    eager = JetDataset(jetclass_files, processor, TARGETS, return_index=True)
    stream = StreamingJetDataset(
        jetclass_files, processor, TARGETS, step_size=37, return_index=True
    )
    jets = list(stream)
    assert len(jets) == len(eager) == 360
    for i, jet in enumerate(jets):
        ref = eager[i]
        assert jet.keys() == ref.keys()
        for key in ref:
            np.testing.assert_array_equal(jet[key], ref[key], err_msg=key)
    # per-jet dicts are unpadded and consistent
    assert jets[0]["kinematics"].shape == (len(jets[0]["track_labels"]), 7)
    assert jets[0]["pid"].shape[1] == 6 and jets[0]["tracks"].shape[1] == 4
    assert np.ndim(jets[0]["labels"]) == 0


def test_sharding_two_ranks_two_workers_each_jet_once(jetclass_files, processor):
    seen = []
    per_rank = []
    for rank in range(2):
        ds = StreamingJetDataset(
            jetclass_files, processor, ("labels",), step_size=25, rank=rank, world_size=2,
            return_index=True,
        )  # fmt: skip
        loader = DataLoader(ds, batch_size=None, num_workers=2)
        keys = [_key(j) for j in loader]
        per_rank.append(len(keys))
        seen += keys
    assert len(seen) == len(set(seen)) == 360
    assert set(seen) == {(f, e) for f in range(3) for e in range(120)}
    assert all(n > 100 for n in per_rank)  # both ranks get a fair share


def test_shard_split_is_a_partition(jetclass_files):
    ds = StreamingJetDataset(jetclass_files, targets=(), step_size=20, shuffle=True, seed=3)
    for total in (1, 3, 4, 7):
        units = [u for w in range(total) for u in ds.shard(w, total)]
        assert sorted(units, key=lambda u: (u.file_index, u.entry_start)) == ds.plan.units


def test_rank_from_environment(jetclass_files, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    ds = StreamingJetDataset(jetclass_files, targets=(), step_size=60, return_index=True)
    keys = [_key(j) for j in ds]
    # 6 units of 60 jets, round-robin: rank 1 gets units 1, 3, 5
    assert keys == [(f, e) for f in range(3) for e in range(60, 120)]
    # when the trainer splits the stream itself, every rank reads everything
    ds.shard_across_ranks = False
    assert len([_key(j) for j in ds]) == 360
    ds.shard_across_ranks = True
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(JetFMError, match="rank 1 out of range"):
        next(iter(ds))


def test_streaming_shuffle_changes_with_epoch(jetclass_files):
    ds = StreamingJetDataset(jetclass_files, targets=(), step_size=40, shuffle=True,
                             return_index=True)  # fmt: skip
    first = [_key(j) for j in ds]
    again = [_key(j) for j in ds]
    ds.set_epoch(1)
    other = [_key(j) for j in ds]
    assert first == again and first != other
    assert sorted(first) == sorted(other) == [(f, e) for f in range(3) for e in range(120)]


def test_collator_pads_and_emits_only_requested_targets(jetclass_file, processor):
    ds = JetDataset(jetclass_file, processor, TARGETS)
    jets = [ds[i] for i in range(6)]
    counts = [len(j["kinematics"]) for j in jets]
    batch = JetCollator(targets=("labels",))(jets)
    assert set(batch) == {"kinematics", "pid", "tracks", "mask", "labels"}
    assert batch["kinematics"].shape == (6, max(counts), 7)
    assert batch["kinematics"].dtype == torch.float32 and batch["labels"].dtype == torch.long
    assert batch["mask"].sum(dim=1).tolist() == counts
    for i, jet in enumerate(jets):
        n = counts[i]
        np.testing.assert_array_equal(batch["tracks"][i, :n].numpy(), jet["tracks"])
        assert torch.all(batch["tracks"][i, n:] == 0)
    full = JetCollator(targets=TARGETS, pad_to=150)(jets)
    assert full["track_labels"].shape == (6, 150) and full["track_labels"].dtype == torch.long
    assert torch.all(full["track_labels"][~full["mask"]] == IGNORE_INDEX)
    assert torch.equal(full["labels"], batch["labels"])
    kin_only = JetCollator(targets=(), feature_groups=("kinematics",))(jets)
    assert set(kin_only) == {"kinematics", "mask"}
    with pytest.raises(DataError, match="pad_to=5"):
        JetCollator(pad_to=5)(jets)


def test_dataloader_with_collator(jetclass_file, processor):
    ds = StreamingJetDataset(jetclass_file, processor, ("track_labels",), step_size=100)
    loader = DataLoader(ds, batch_size=64, collate_fn=JetCollator(targets=("track_labels",)))
    batches = list(loader)
    assert sum(len(b["mask"]) for b in batches) == 300
    assert all(set(b) == {"kinematics", "pid", "tracks", "mask", "track_labels"} for b in batches)


def test_dataset_to_batch_matches_collator(jetclass_file, processor):
    ds = JetDataset(jetclass_file, processor, TARGETS)
    whole = dataset_to_batch(ds)
    assert whole["kinematics"].shape[0] == len(ds)
    picked = [5, 0, 77, 299]
    sub = dataset_to_batch(ds, targets=("labels", "vertex_labels"), indices=picked)
    ref = JetCollator(targets=("labels", "vertex_labels"))([ds[i] for i in picked])
    assert sub.keys() == ref.keys()
    for key in ref:
        assert torch.equal(sub[key], ref[key]), key
    with pytest.raises(DataError, match="without targets"):
        dataset_to_batch(JetDataset(jetclass_file, targets=()), targets=("labels",))


def test_chunk_to_batch_keeps_entry_alignment(tmp_path, processor):
    path = write_jetclass_file(tmp_path / "f.root", 12, seed=5)
    with uproot.open(path) as fh:
        chunk = processor(fh["tree"].arrays(), targets=("labels",))
    chunk.valid[3] = False  # as if jet 3 were invalid
    aligned = chunk_to_batch(chunk, targets=("labels",), only_valid=False)
    valid = chunk_to_batch(chunk, targets=("labels",))
    assert aligned["kinematics"].shape[0] == 12 and valid["kinematics"].shape[0] == 11
    assert torch.equal(aligned["kinematics"][4], valid["kinematics"][3])
    ds = JetDataset(path, processor)
    assert torch.equal(dataset_to_batch(ds)["kinematics"][:3], aligned["kinematics"][:3])


def test_kinematics_only_file(kinematics_only_file, processor):
    ds = JetDataset(kinematics_only_file, processor, feature_groups=("kinematics",))
    assert set(ds[0]) == {"kinematics", "labels"}
    batch = dataset_to_batch(ds)
    assert set(batch) == {"kinematics", "mask", "labels"}
    # statistics from the full files apply to the 4-vector-only file
    kin = batch["kinematics"][batch["mask"]]
    assert kin.mean(dim=0).abs().max() < 0.5
    with pytest.raises(DataError, match="available in this file: \\['kinematics'\\]"):
        JetDataset(kinematics_only_file, processor)


def test_processor_owns_reading_options(jetclass_file, processor):
    with pytest.raises(JetFMError, match="come from the processor"):
        JetDataset(jetclass_file, processor, max_particles=20)
    with pytest.raises(DataError, match="not among the processor"):
        JetDataset(jetclass_file, JetProcessor(feature_groups=("kinematics",)),
                   feature_groups=("kinematics", "pid"))  # fmt: skip


def test_other_classes_skip_keeps_the_chosen_classes_aligned_with_entries(tmp_path):
    """Learning some classes of files that mix them all: with ``other_classes="skip"`` the
    other classes' jets are dropped and counted, and every kept jet's entry is a jet of a
    chosen class, with its own label."""
    path = write_jetclass_file(tmp_path / "mixed.root", 90, seed=5, classes=("QCD", "Wqq", "Hbb"))
    with uproot.open(path) as f:
        truth = {c: f["tree"][f"label_{c}"].array(library="np") for c in ("QCD", "Hbb")}
    chosen = JetProcessor(label_names=["Hbb", "QCD"])  # output order: Hbb 0, QCD 1
    with pytest.raises(DataError, match=r"mixed\.root.*none of the classes in use"):
        JetDataset(path, chosen, ("labels",))
    eager = JetDataset(path, chosen, ("labels",), return_index=True, other_classes="skip")
    stream = StreamingJetDataset(
        path, chosen, ("labels",), step_size=17, return_index=True, other_classes="skip"
    )
    n_chosen = int(truth["QCD"].sum() + truth["Hbb"].sum())
    assert 0 < len(eager) == n_chosen < 90
    assert eager.stats["skipped_other_class"] == 90 - n_chosen
    for dataset in (eager, stream):
        jets = list(dataset)
        entries = np.array([int(j["entry"]) for j in jets])
        labels = np.array([int(j["labels"]) for j in jets])
        assert len(jets) == n_chosen
        np.testing.assert_array_equal(labels == 0, truth["Hbb"][entries].astype(bool))
        np.testing.assert_array_equal(labels == 1, truth["QCD"][entries].astype(bool))
    with pytest.raises(DataError, match=r"other_classes must be one of \('raise', 'skip'\)"):
        JetDataset(path, chosen, ("labels",), other_classes="drop")


def test_other_classes_skip_still_rejects_broken_labels(tmp_path):
    def two_hot(branches):
        return branches | {"label_Wqq": np.ones_like(branches["label_Wqq"])}

    path = write_jetclass_file(tmp_path / "f.root", 10, mutate=two_hot)
    with pytest.raises(DataError, match=r"f\.root: labels are not one-hot at entry 0"):
        JetDataset(path, JetProcessor(), ("labels",), other_classes="skip")
