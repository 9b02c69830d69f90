"""The same jets as a ROOT TTree, a ROOT RNTuple, parquet and HDF5 give the same jets, the
same fine-tuned metrics and the same predictions (files written by their own libraries in
``tests/fixtures_formats.py``)."""

from __future__ import annotations

import json
import logging

import awkward as ak
import h5py
import numpy as np
import pytest
import uproot

from jetfm.cli import main
from jetfm.data import BranchMapping, JetDataset, ReadSpec, StreamingJetDataset, plan_work
from jetfm.data.formats import ParquetTable, detect_format
from jetfm.data.reading import detect_feature_groups, iter_raw_chunks, resolve_label_names
from tests.fixtures_formats import H5_MAPPING, write_padded_h5, write_parquet

FORMATS = ("ttree", "rntuple", "parquet", "hdf5")


def _mapping(fmt: str) -> BranchMapping | None:
    return BranchMapping.from_dict(H5_MAPPING) if fmt == "hdf5" else None


def _jet_mass(px, py, pz, energy) -> np.ndarray:
    sums = [ak.to_numpy(ak.sum(v, axis=1)).astype(np.float64) for v in (px, py, pz, energy)]
    m2 = sums[3] ** 2 - sums[0] ** 2 - sums[1] ** 2 - sums[2] ** 2
    return np.sqrt(np.clip(m2, 0, None))


def test_formats_are_detected_from_their_bytes(format_files):
    assert detect_format(format_files["ttree"]) == "root"
    assert detect_format(format_files["rntuple"]) == "root"
    assert detect_format(format_files["parquet"]) == "parquet"
    assert detect_format(format_files["hdf5"]) == "hdf5"


@pytest.mark.parametrize("fmt", FORMATS)
def test_raw_four_vectors_and_jet_mass_read_back(fmt, format_files, format_branches):
    """Every format reads back the written four-vectors; the W jets' mass is the W's."""
    mapping = _mapping(fmt) or BranchMapping()
    spec = ReadSpec(mapping, ("kinematics",), ("labels",), ("QCD", "Wqq"))
    chunks = list(iter_raw_chunks(plan_work(format_files[fmt], spec, 40).units, spec))
    assert [c.entry_start for c in chunks] == [0, 40, 80, 120]
    fields = {k: ak.concatenate([c.fields[k] for c in chunks]) for k in ("px", "py", "pz")}
    fields["energy"] = ak.concatenate([c.fields["energy"] for c in chunks])
    for field, branch in (("px", "part_px"), ("energy", "part_energy")):
        assert ak.all(fields[field] == format_branches[branch]), (fmt, field)
    mass = _jet_mass(fields["px"], fields["py"], fields["pz"], fields["energy"])
    written = _jet_mass(*(format_branches[k] for k in ("part_px", "part_py", "part_pz",
                                                      "part_energy")))  # fmt: skip
    np.testing.assert_allclose(mass, written, rtol=1e-6)
    labels = np.concatenate([c.fields["labels"] for c in chunks])
    np.testing.assert_array_equal(labels, np.asarray(format_branches["label_Wqq"], dtype=int))
    assert 65 < np.median(mass[labels == 1]) < 95  # m_W = 80.4 GeV
    assert np.median(mass[labels == 0]) < 65


def test_same_features_labels_and_groups_from_every_format(format_files):
    reference = None
    for fmt in FORMATS:
        mapping = _mapping(fmt)
        assert detect_feature_groups(format_files[fmt], mapping) == ("kinematics",)
        assert resolve_label_names(format_files[fmt], mapping) == ("QCD", "Wqq")
        ds = JetDataset(format_files[fmt], targets=("labels",), mapping=mapping,
                        feature_groups=("kinematics",), step_size=40)  # fmt: skip
        got = (ds.counts, ds.labels, ds._flat["kinematics"])
        if reference is None:
            reference = got
            continue
        for a, b in zip(reference, got, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=fmt)


@pytest.mark.parametrize("fmt", ["parquet", "hdf5"])
def test_streaming_shards_every_jet_once(fmt, format_files):
    """Two ranks × two workers over 16-jet units (parquet row groups are 32 jets): every
    entry exactly once, with the same features as the eager read."""
    mapping = _mapping(fmt)
    eager = JetDataset(format_files[fmt], targets=("labels",), mapping=mapping,
                       feature_groups=("kinematics",), return_index=True)  # fmt: skip
    seen: dict[int, np.ndarray] = {}
    for rank in range(2):
        stream = StreamingJetDataset(format_files[fmt], targets=("labels",), mapping=mapping,
                                     feature_groups=("kinematics",), step_size=16, rank=rank,
                                     world_size=2, return_index=True)  # fmt: skip
        for worker in range(2):
            for unit in stream.shard(rank * 2 + worker, 4):
                for raw in iter_raw_chunks([unit], stream.spec):
                    chunk = stream.processor.process(raw, stream.spec)
                    for jet in chunk.iter_jets(True):
                        assert int(jet["entry"]) not in seen
                        seen[int(jet["entry"])] = jet["kinematics"]
    assert sorted(seen) == list(range(len(eager)))
    for i in (0, 77, len(eager) - 1):
        np.testing.assert_array_equal(seen[i], eager[i]["kinematics"])


def test_parquet_reads_only_the_row_groups_of_a_chunk(format_files):
    table = ParquetTable(str(format_files["parquet"]), BranchMapping())
    part = table.arrays(["part_px"], entry_start=40, entry_stop=56)
    assert len(part["part_px"]) == 16
    groups, _, cached = table._cache
    assert groups == (1,) and len(cached) == 32  # one 32-jet row group, not the file


def test_padded_hdf5_with_mask_and_auto_detected_layout(tmp_path, format_branches, caplog):
    """A mask dataset is used when present; a single (n, P, 4) array is taken as (E, px, py,
    pz) without a mapping (said in the log); class indices become labels "0", "1"."""
    path = write_padded_h5(format_branches, tmp_path / "masked.h5", mask=True)
    with h5py.File(path, "r+") as f:  # junk in the padding: only the mask says it is padding
        mask = f["mask"][:]
        vectors = f["Pmu"][:]
        vectors[~mask] = 7.0
        f["Pmu"][...] = vectors
    with caplog.at_level(logging.INFO, logger="jetfm.data.formats"):
        ds = JetDataset(path, targets=("labels",), feature_groups=("kinematics",))
    assert "reading the (n, " in caplog.text and "'Pmu' as (E, px, py, pz)" in caplog.text
    assert ds.processor.label_names == ["0", "1"]
    np.testing.assert_array_equal(ds.counts, ak.to_numpy(ak.num(format_branches["part_px"])))


def test_predict_writes_each_format_beside_the_input_and_resumes(format_files, tmp_path):
    """finetune → evaluate → predict per format: same metrics and predictions everywhere;
    outputs in the input's format, row-aligned; a second run skips the finished files."""
    metrics, scores = {}, {}
    for fmt in FORMATS:
        data = str(format_files[fmt])
        mapping = ["--branch-map", str(format_files["h5_mapping"])] if fmt == "hdf5" else []
        model = tmp_path / fmt / "model"
        assert main(["finetune", "--model", "tiny", "--task", "tagging", "--train", data,
                     "--val", data, "--output", str(model), "--max-steps", "6", "--batch-size",
                     "32", "--lr", "2e-3", "--seed", "3", "--patience", "0", "--evals", "1",
                     *mapping]) == 0  # fmt: skip
        out = tmp_path / fmt / "metrics.json"
        # the mapping travels with the checkpoint's processor: no --branch-map needed here
        assert main(["evaluate", "--model", str(model), "--data", data, "--output", str(out),
                     "--no-progress"]) == 0  # fmt: skip
        metrics[fmt] = json.loads(out.read_text())
        pred_dir = tmp_path / fmt / "pred"
        assert main(["predict", "--model", str(model), "--data", data, "--out", str(pred_dir),
                     "--no-progress", "--workers", "0", "--chunk-size", "40"]) == 0  # fmt: skip
        scores[fmt] = _read_scores(fmt, pred_dir / format_files[fmt].name)
        assert not list(pred_dir.glob(".*partial"))
    for fmt in FORMATS[1:]:
        for key in ("accuracy", "auc"):
            assert metrics[fmt][key] == pytest.approx(metrics["ttree"][key], abs=1e-6), fmt
        np.testing.assert_allclose(scores[fmt], scores["ttree"], atol=1e-6, err_msg=fmt)
    assert scores["ttree"].shape == (150, 2)
    np.testing.assert_allclose(scores["ttree"].sum(axis=1), 1.0, rtol=1e-5)
    # restartable: the finished output is skipped
    from jetfm.inference import predict_files

    again = predict_files(tmp_path / "hdf5" / "model", format_files["hdf5"],
                          tmp_path / "hdf5" / "pred", progress=False)  # fmt: skip
    assert again["files_skipped"] == 1 and again["files"] == 0


def _read_scores(fmt: str, path) -> np.ndarray:
    names = ["score_QCD", "score_Wqq"]
    if fmt in ("ttree", "rntuple"):
        with uproot.open(path) as f:
            assert type(f["tree"]).__name__.startswith("Model_TTree")  # a friend tree
            arrays = f["tree"].arrays(names, library="np")
        return np.stack([arrays[n] for n in names], axis=1)
    if fmt == "parquet":
        table = ak.from_parquet(path)
        return np.stack([ak.to_numpy(table[n]) for n in names], axis=1)
    with h5py.File(path, "r") as f:
        return np.stack([f[n][:] for n in names], axis=1)


def test_finetune_uses_the_feature_groups_the_files_have(format_files, tmp_path, caplog):
    """A checkpoint whose processor knows pid and tracks, fine-tuned on four-vector files:
    the files' groups are used, and the log says which and why."""
    from jetfm.data import JetProcessor
    from jetfm.finetuning import finetune
    from tests.fixtures_data import write_jetclass_file

    full = write_jetclass_file(tmp_path / "full.root", 80, seed=5)
    ckpt = tmp_path / "ckpt"
    from jetfm.configuration import JetFMConfig
    from jetfm.modeling.backbone import JetFMModel

    JetFMModel(JetFMConfig.from_preset("tiny")).save_pretrained(ckpt)
    JetProcessor().fit(full, progress=False).save_pretrained(ckpt)
    data = format_files["parquet"]
    with caplog.at_level(logging.INFO, logger="jetfm.data.reading"):
        result = finetune(str(ckpt), "tagging", data, data, tmp_path / "out", max_steps=1,
                          batch_size=32, early_stopping_patience=None, evals_per_run=1)  # fmt: skip
    assert result.model.config.finetuning["feature_groups"] == ["kinematics"]
    assert "the files have only ['kinematics'], so ['pid', 'tracks'] are left out" in caplog.text


def test_parquet_label_column_and_class_names(tmp_path, format_branches):
    """JetClass-II-like: one integer label column named by the mapping, with class names."""
    branches = {k: v for k, v in format_branches.items() if not k.startswith("label_")}
    branches["jet_label"] = np.asarray(format_branches["label_Wqq"], dtype=np.int32)
    path = write_parquet(branches, tmp_path / "j2.parquet")
    mapping = BranchMapping(label="jet_label", label_classes=["QCD", "Wqq"])
    ds = JetDataset(path, targets=("labels",), mapping=mapping, feature_groups=("kinematics",))
    assert ds.processor.label_names == ["QCD", "Wqq"]
    np.testing.assert_array_equal(ds.labels, branches["jet_label"])


def test_stats_pretrain_and_tokenizer_read_parquet_and_hdf5(format_files, format_branches,
                                                            tmp_path):  # fmt: skip
    """``stats`` gives the same statistics from every format; ``pretrain`` (eager and
    streaming) and ``tokenizer train`` run on parquet and on a top-tagging HDF5 file that
    needs no mapping (one (n, P, 4) array: auto-detected)."""
    from jetfm.data import JetProcessor

    means = {}
    for fmt in FORMATS:
        mapping = ["--branch-map", str(format_files["h5_mapping"])] if fmt == "hdf5" else []
        out = tmp_path / "stats" / fmt
        assert main(["stats", "--data", str(format_files[fmt]), "--output", str(out),
                     *mapping]) == 0  # fmt: skip
        means[fmt] = JetProcessor.from_pretrained(str(out)).mean["kinematics"]
    for fmt in FORMATS[1:]:
        np.testing.assert_allclose(means[fmt], means["ttree"], rtol=1e-9, err_msg=fmt)

    auto = write_padded_h5(format_branches, tmp_path / "top.h5")
    common = ["--size", "tiny", "--target", "regression", "--max-steps", "2", "--batch-size",
              "16", "--save-steps", "2", "--logging-steps", "1"]  # fmt: skip
    for data, extra in ((format_files["parquet"], []), (auto, ["--streaming"])):
        out = tmp_path / "mpm" / data.stem
        assert main(["pretrain", "--data", str(data), "--output", str(out), *common,
                     *extra]) == 0  # fmt: skip
        assert JetProcessor.from_pretrained(str(out)).feature_groups == ["kinematics"]
    tok = tmp_path / "tok"
    assert main(["tokenizer", "train", "--data", str(format_files["parquet"]), "--output",
                 str(tok), "--max-steps", "2", "--batch-size", "16", "--codes", "8",
                 "--hidden-size", "16", "--layers", "1", "--heads", "2", "--stats-batches",
                 "1"]) == 0  # fmt: skip
    assert (tok / "codebook_stats.json").is_file()


def test_per_particle_predictions_in_parquet_and_hdf5_match_root(tmp_path):
    """Track identification on jets with particle ID and tracks: the parquet output's jagged
    columns equal the ROOT friend tree's; HDF5 (padded input) gets (n_jets, width) arrays with
    the same values in the real slots and −1 in the padding."""
    import torch

    from jetfm.configuration import JetFMConfig
    from jetfm.data import JetProcessor
    from jetfm.inference import predict_files
    from jetfm.modeling.heads import JetFMForTrackID
    from tests.fixtures_data import generate_jets
    from tests.fixtures_formats import pad, write_ttree

    branches = generate_jets(40, seed=8)
    root = write_ttree(branches, tmp_path / "full.root")
    parquet = write_parquet(branches, tmp_path / "full.parquet", row_group_size=16)
    model_dir = tmp_path / "trackid"
    torch.manual_seed(0)
    JetFMForTrackID(JetFMConfig.from_preset("tiny", layer_scale_init=1.0)).save_pretrained(
        model_dir
    )
    JetProcessor(max_particles=24).fit(root, progress=False).save_pretrained(model_dir)
    for path in (root, parquet):
        predict_files(model_dir, path, tmp_path / "out", progress=False, step_size=16)
    with uproot.open(tmp_path / "out" / "full.root") as f:
        expected = f["tree"]["part_pred_origin"].array()
    got = ak.from_parquet(tmp_path / "out" / "full.parquet")["part_pred_origin"]
    assert ak.all(ak.num(got) == ak.num(branches["part_px"]))
    assert ak.all(got == expected)
    assert ak.any(got >= 0) and ak.any(got == -1)  # charged evaluated, neutrals/beyond not

    # HDF5: the padded layout of every per-particle branch (zero padding of the 4-vectors)
    import h5py

    width = int(ak.max(ak.num(branches["part_px"]))) + 2
    h5 = tmp_path / "full.h5"
    with h5py.File(h5, "w") as f:
        for name, values in branches.items():
            is_particle = isinstance(values, ak.Array) and values.ndim == 2
            f[name] = pad(values, width) if is_particle else np.asarray(values)
    predict_files(model_dir, h5, tmp_path / "out", progress=False, step_size=16)
    with h5py.File(tmp_path / "out" / "full.h5", "r") as f:
        padded = f["part_pred_origin"][:]
    assert padded.shape == (40, width)
    slots = ak.to_numpy(ak.fill_none(ak.pad_none(expected, width, clip=True), -1))
    np.testing.assert_array_equal(padded, slots)


def test_empty_parquet_and_hdf5_inputs_give_empty_outputs(tmp_path, format_branches):
    """An empty input still gets its (empty) output, so a rerun knows it is done."""
    from jetfm.configuration import JetFMConfig
    from jetfm.data import JetProcessor
    from jetfm.inference import predict_files
    from jetfm.modeling.heads import JetFMForJetTagging

    model = tmp_path / "model"
    config = JetFMConfig.from_preset("tiny", num_labels=2, id2label={0: "QCD", 1: "Wqq"},
                                     feature_groups={"kinematics": 7})  # fmt: skip
    JetFMForJetTagging(config).save_pretrained(model)
    full = write_parquet(format_branches, tmp_path / "full.parquet")
    JetProcessor(feature_groups=("kinematics",)).fit(full, progress=False).save_pretrained(model)
    empty = {k: v[:0] for k, v in format_branches.items()}
    parquet = write_parquet(empty, tmp_path / "empty.parquet")
    h5 = tmp_path / "empty.h5"
    with h5py.File(h5, "w") as f:
        f["Pmu"] = np.zeros((0, 10, 4), np.float32)
    summary = predict_files(model, [parquet, h5], tmp_path / "out", progress=False)
    assert summary["files"] == 2 and summary["jets"] == 0
    assert len(ak.from_parquet(tmp_path / "out" / "empty.parquet")) == 0
    with h5py.File(tmp_path / "out" / "empty.h5", "r") as f:
        assert f["score_QCD"].shape == (0,)
