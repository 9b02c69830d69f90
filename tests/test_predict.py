"""``jetfm predict`` / :mod:`jetfm.inference`: entry- and particle-aligned predictions.

Models are untrained tiny heads (``layer_scale_init=1`` so that their outputs really depend on
the jet: a shifted or permuted prediction would not match), saved with a processor fitted on
the synthetic files. Every expectation comes from a direct forward pass, jet by jet, on the
data layer's features — independent of the bucketing / unsorting under test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import torch
import uproot

from jetfm.configuration import JetFMConfig
from jetfm.data import JetProcessor, chunk_to_batch
from jetfm.errors import CheckpointError, DataError
from jetfm.inference import predict, predict_files
from jetfm.modeling.heads import JetFMForJetTagging, JetFMForTrackID, JetFMForVertexFinding
from jetfm.onnx_export import export_onnx
from tests.fixtures_data import write_jetclass_file

MAX_PARTICLES = 24  # below most synthetic jets' multiplicity: truncation is exercised
EMPTY_JET, NAN_JET = 5, 7  # entries broken on purpose in the first file
LABELS = ("QCD", "Wqq")


def _break_jets(branches: dict) -> dict:
    """Entry EMPTY_JET gets 0 constituents, entry NAN_JET a NaN px."""
    for name, arr in list(branches.items()):
        if not (isinstance(arr, ak.Array) and arr.ndim == 2):
            continue
        counts = ak.to_numpy(ak.num(arr))
        flat = ak.to_numpy(ak.flatten(arr)).copy()
        jet = np.repeat(np.arange(len(counts)), counts)
        if name == "part_px":
            flat[np.flatnonzero(jet == NAN_JET)[0]] = np.nan
        keep = jet != EMPTY_JET
        counts[EMPTY_JET] = 0
        branches[name] = ak.unflatten(flat[keep], counts)
    return branches


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[Path]:
    """Three files (60, 45, 30 jets); the first has an empty and a NaN jet."""
    base = tmp_path_factory.mktemp("predict_in")
    return [
        write_jetclass_file(base / "a.root", 60, seed=21, mutate=_break_jets),
        write_jetclass_file(base / "b.root", 45, seed=22),
        write_jetclass_file(base / "c.root", 30, seed=23),
    ]


def _save(model, processor, path: Path) -> Path:
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory, inputs) -> dict[str, Path]:
    """Tagging / track-ID / vertexing model directories (tiny, untrained, own processor)."""
    base = tmp_path_factory.mktemp("predict_models")
    processor = JetProcessor(max_particles=MAX_PARTICLES).fit(inputs[1:], progress=False)
    torch.manual_seed(0)
    common = dict(layer_scale_init=1.0, initializer_range=0.2)
    tag = JetFMConfig.from_preset("tiny", num_labels=2, id2label=dict(enumerate(LABELS)), **common)
    return {
        "tagging": _save(JetFMForJetTagging(tag), processor, base / "tagger"),
        "track_id": _save(JetFMForTrackID(JetFMConfig.from_preset("tiny", **common)), processor,
                          base / "trackid"),
        "vertexing": _save(JetFMForVertexFinding(JetFMConfig.from_preset("tiny", **common)),
                           processor, base / "vertexer"),
    }  # fmt: skip


def _arrays(path: Path) -> ak.Array:
    with uproot.open(path) as f:
        return f["tree"].arrays()


def _single_jet_batch(processor: JetProcessor, arrays: ak.Array, i: int):
    """The data layer's batch for jet ``i`` alone, or None if the jet is invalid."""
    try:
        chunk = processor(arrays[i : i + 1])
    except DataError:  # NaN inputs (the processor's policy is "raise")
        return None
    return chunk_to_batch(chunk) if chunk.valid[0] else None


def _direct_scores(model_dir: Path, arrays: ak.Array) -> np.ndarray:
    model = JetFMForJetTagging.from_pretrained(model_dir).eval()
    processor = JetProcessor.from_pretrained(model_dir)
    out = np.full((len(arrays), model.config.num_labels), np.nan)
    for i in range(len(arrays)):
        batch = _single_jet_batch(processor, arrays, i)
        if batch is not None:
            with torch.no_grad():
                out[i] = model(**batch).logits.softmax(-1)[0].numpy()
    return out


def _original_order(arrays: ak.Array, i: int) -> np.ndarray:
    """Input indices of jet ``i``'s particles in the model's (descending pT) order."""
    pt = np.hypot(ak.to_numpy(arrays.part_px[i]), ak.to_numpy(arrays.part_py[i]))
    return np.argsort(-pt, kind="stable")[:MAX_PARTICLES]


# --- jet tagging -------------------------------------------------------------------------------
def test_tagging_files_match_direct_forward_entry_by_entry(models, inputs, tmp_path):
    out = tmp_path / "out"
    summary = predict_files(models["tagging"], inputs, out, step_size=16, progress=False)
    assert summary["files"] == 3 and summary["jets"] == 135
    assert summary["skipped_empty"] == 1 and summary["skipped_nonfinite"] == 1
    assert summary["truncated_jets"] > 0
    for path in inputs:
        arrays = _arrays(path)
        written = _arrays(out / path.name)
        assert written.fields == [f"score_{n}" for n in LABELS]  # nothing copied by default
        got = np.stack([ak.to_numpy(written[f"score_{n}"]) for n in LABELS], axis=1)
        expected = _direct_scores(models["tagging"], arrays)
        assert got.shape == expected.shape
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_allclose(got, expected, atol=2e-5, equal_nan=True)
        # the scores differ from jet to jet, so a shifted entry would be caught
        assert np.nanstd(got[:, 0]) > 1e-3
        counts = ak.to_numpy(ak.num(arrays.part_px))
        long_jets = (counts > MAX_PARTICLES) & np.isfinite(expected[:, 0])
        assert long_jets.any() and np.isfinite(got[long_jets]).all()
        if path == inputs[0]:
            assert np.flatnonzero(np.isnan(got[:, 0])).tolist() == [EMPTY_JET, NAN_JET]
            np.testing.assert_allclose(np.nansum(got, axis=1)[got[:, 0] == got[:, 0]], 1.0,
                                       rtol=1e-5)  # fmt: skip
        else:
            assert np.isfinite(got).all()


def test_in_memory_bucketing_padding_and_onnx_agree(models, inputs, tmp_path):
    arrays = _arrays(inputs[0])
    bucketed = predict(models["tagging"], arrays, step_size=25)
    padded = predict(models["tagging"], inputs[0], bucket=False, batch_size=7)
    onnx_path = export_onnx(models["tagging"], tmp_path / "m.onnx")
    via_onnx = predict(models["tagging"], arrays, onnx=onnx_path)
    exported_on_the_fly = predict(models["track_id"], inputs[2], onnx=True)
    torch_track = predict(models["track_id"], inputs[2])
    for name in ("part_prob_b", "part_pred_origin"):
        a, b = ak.flatten(exported_on_the_fly[name]), ak.flatten(torch_track[name])
        np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), atol=1e-4, equal_nan=True)
    assert len(bucketed) == len(arrays)
    for name in ("score_QCD", "score_Wqq"):
        a = ak.to_numpy(bucketed[name])
        np.testing.assert_allclose(ak.to_numpy(padded[name]), a, atol=2e-5, equal_nan=True)
        np.testing.assert_allclose(ak.to_numpy(via_onnx[name]), a, atol=1e-4, equal_nan=True)
        assert np.isnan(a[[EMPTY_JET, NAN_JET]]).all()


# --- per-particle heads --------------------------------------------------------------------------
def test_track_id_aligned_with_input_particles(models, inputs):
    arrays = _arrays(inputs[1])
    result = predict(models["track_id"], inputs[1], copy_branches=["part_charge"], step_size=20)
    assert ak.all(ak.num(result.part_pred_origin) == ak.num(arrays.part_px))
    assert ak.all(ak.num(result.part_prob_b_to_c) == ak.num(arrays.part_px))
    model = JetFMForTrackID.from_pretrained(models["track_id"]).eval()
    processor = JetProcessor.from_pretrained(models["track_id"])
    names = ["primary", "b", "b_to_c", "c", "tau", "other"]
    for i in range(0, len(arrays), 3):
        n = len(arrays.part_px[i])
        batch = _single_jet_batch(processor, arrays, i)
        with torch.no_grad():
            probs = model(**batch).logits.softmax(-1)[0].numpy()
        order = _original_order(arrays, i)
        charged = ak.to_numpy(arrays.part_charge[i])[order] != 0
        want = np.full((n, 6), np.nan)
        want[order[charged]] = probs[: len(order)][charged]
        got = np.stack([ak.to_numpy(result[f"part_prob_{o}"][i]) for o in names], axis=1)
        np.testing.assert_allclose(got, want, atol=2e-5, equal_nan=True)
        pred = ak.to_numpy(result.part_pred_origin[i])
        want_pred = np.full(n, -1)
        want_pred[order[charged]] = probs[: len(order)][charged].argmax(-1)
        np.testing.assert_array_equal(pred, want_pred)
        # not evaluated: neutrals and particles beyond max_particles
        beyond = np.setdiff1d(np.arange(n), order)
        assert (pred[beyond] == -1).all() and np.isnan(got[beyond]).all()
        assert (pred[ak.to_numpy(result.part_charge[i]) == 0] == -1).all()


def test_vertexing_aligned_with_input_particles(models, inputs, tmp_path):
    predict_files(models["vertexing"], inputs[2], tmp_path, progress=False)
    written = _arrays(tmp_path / inputs[2].name)
    arrays = _arrays(inputs[2])
    assert ak.all(ak.num(written.part_pred_vtx) == ak.num(arrays.part_px))
    model = JetFMForVertexFinding.from_pretrained(models["vertexing"]).eval()
    processor = JetProcessor.from_pretrained(models["vertexing"])
    for i in range(len(arrays)):
        batch = _single_jet_batch(processor, arrays, i)
        vtx = model.find_vertices(batch["kinematics"], batch["mask"], batch["pid"],
                                  batch["tracks"])[0]  # fmt: skip
        order = _original_order(arrays, i)
        want = np.full(len(arrays.part_px[i]), -1)
        want[order] = vtx[: len(order)]
        got = ak.to_numpy(written.part_pred_vtx[i])
        np.testing.assert_array_equal(got, want)
        assert (got[ak.to_numpy(arrays.part_charge[i]) == 0] == -1).all()
    assert ak.max(written.part_pred_vtx) >= 0  # some tracks were grouped


# --- restart ----------------------------------------------------------------------------------
def test_interrupted_run_leaves_no_complete_looking_file_and_resumes(models, inputs, tmp_path):
    out = tmp_path / "out"

    def crash(path: str, done: int, total: int) -> None:
        if Path(path).name == "b.root" and done < total:  # mid-way through the second file
            raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        predict_files(models["tagging"], inputs, out, step_size=10, progress=False,
                      on_chunk=crash)  # fmt: skip
    assert sorted(os.listdir(out)) == ["a.root"]  # no b.root, no partial left behind
    summary = predict_files(models["tagging"], inputs, out, step_size=10, progress=False)
    assert summary["files_skipped"] == 1 and summary["files"] == 2
    assert sorted(os.listdir(out)) == ["a.root", "b.root", "c.root"]
    reference = predict(models["tagging"], inputs[1])
    np.testing.assert_allclose(
        _arrays(out / "b.root").score_QCD.to_numpy(), reference.score_QCD.to_numpy(), atol=1e-6
    )


def _jetfm(*args: str, **kwargs) -> subprocess.Popen:
    code = "import sys; from jetfm.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, **kwargs)


def test_killed_process_restart_completes(models, tmp_path):
    """SIGKILL a real ``jetfm predict`` while it writes, then restart it."""
    data = tmp_path / "data"
    for i in range(4):
        write_jetclass_file(data / f"f{i}.root", 1000, seed=40 + i)
    out = tmp_path / "out"
    args = ["predict", "--model", str(models["tagging"]), "--data", str(data / "*.root"),
            "--out", str(out), "--workers", "0", "--chunk-size", "50", "--no-progress"]  # fmt: skip
    proc = _jetfm(*args, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and any(n.endswith(".partial") for n in os.listdir(out)):
            break
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    names = os.listdir(out)
    partial = [n for n in names if n.endswith(".partial")]
    assert partial, "the run was not caught while writing"
    for n in partial:  # the file being written when killed has no final-named output
        assert n.split(".")[1] + ".root" not in names
    summary = predict_files(models["tagging"], data / "*.root", out, progress=False)
    assert summary["files"] + summary["files_skipped"] == 4 and summary["files"] >= 1
    assert sorted(os.listdir(out)) == [f"f{i}.root" for i in range(4)]  # stale partial gone
    for i in range(4):
        assert len(_arrays(out / f"f{i}.root")) == 1000


# --- CLI ----------------------------------------------------------------------------------------
def test_cli_end_to_end_with_copied_branches(models, inputs, tmp_path, capsys):
    from jetfm.cli import main

    out = tmp_path / "cli"
    code = main(["predict", "--model", str(models["tagging"]), "--data", str(inputs[1]),
                 str(inputs[2]), "--out", str(out), "--batch-size", "8", "--workers", "1",
                 "--max-particles", "12", "--copy-branches", "jet_pt,label_Wqq,part_px",
                 "--no-progress"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "2 files" in printed and "75 jets" in printed
    for path in inputs[1:]:
        written = _arrays(out / path.name)
        arrays = _arrays(path)
        assert set(written.fields) == {"score_QCD", "score_Wqq", "jet_pt", "label_Wqq", "part_px",
                                       "npart"}  # fmt: skip
        np.testing.assert_array_equal(written.jet_pt.to_numpy(), arrays.jet_pt.to_numpy())
        np.testing.assert_array_equal(written.label_Wqq.to_numpy(), arrays.label_Wqq.to_numpy())
        assert ak.all(written.part_px == arrays.part_px)
        api = predict(models["tagging"], path, max_particles=12)
        np.testing.assert_allclose(written.score_QCD.to_numpy(), api.score_QCD.to_numpy(),
                                   atol=1e-6)  # fmt: skip
        default = predict(models["tagging"], path)
        assert not np.allclose(default.score_QCD.to_numpy(), api.score_QCD.to_numpy())


def test_empty_input_file_gives_empty_output(models, tmp_path):
    empty = write_jetclass_file(tmp_path / "in" / "empty.root", 0, seed=3)
    summary = predict_files(models["track_id"], empty, tmp_path / "out", progress=False)
    assert summary["files"] == 1 and summary["jets"] == 0
    written = _arrays(tmp_path / "out" / "empty.root")
    assert len(written) == 0 and "part_pred_origin" in written.fields


# --- errors ---------------------------------------------------------------------------------------
def test_clear_errors(models, inputs, tmp_path, capsys):
    from jetfm.cli import main

    missing = tmp_path / "no_such_model"
    with pytest.raises(CheckpointError, match="no_such_model"):
        predict_files(missing, inputs, tmp_path / "o", progress=False)
    assert main(["predict", "--model", str(missing), "--data", str(inputs[0]),
                 "--out", str(tmp_path / "o")]) == 2  # fmt: skip
    assert "no_such_model" in capsys.readouterr().err
    with pytest.raises(DataError, match=r"nothing_\*\.root"):
        predict_files(models["tagging"], str(tmp_path / "nothing_*.root"), tmp_path / "o",
                      progress=False)  # fmt: skip
    no_proc = tmp_path / "no_proc"
    JetFMForJetTagging.from_pretrained(models["tagging"]).save_pretrained(no_proc)
    (no_proc / "preprocessor_config.json").unlink()  # saved with the model: removed by hand
    with pytest.raises(CheckpointError, match="preprocessor_config.json"):
        predict(no_proc, inputs[0])
    backbone = tmp_path / "backbone"
    JetFMForJetTagging.from_pretrained(models["tagging"]).jetfm.save_pretrained(backbone)
    with pytest.raises(CheckpointError, match="not a fine-tuned task head"):
        predict(backbone, inputs[0])
    with pytest.raises(DataError, match=r"b\.root.*part_nope"):
        predict_files(models["tagging"], inputs[1], tmp_path / "o", copy_branches=["part_nope"],
                      progress=False)  # fmt: skip
    with pytest.raises(DataError, match="input is not overwritten"):
        predict_files(models["tagging"], inputs[1], inputs[1].parent, progress=False)
    assert not (tmp_path / "o").exists() or not os.listdir(tmp_path / "o")


# --- real Pythia jets ------------------------------------------------------------------------
def test_pythia_file_matches_direct_forward(models, pythia_dir, tmp_path):
    path = pythia_dir / "Hbb_000.root"
    summary = predict_files(models["tagging"], path, tmp_path, copy_branches="all",
                            progress=False)  # fmt: skip
    arrays = _arrays(path)
    written = _arrays(tmp_path / path.name)
    assert summary["jets"] == len(arrays) == len(written)
    assert ak.all(written.part_px == arrays.part_px)  # self-contained output
    got = np.stack([written.score_QCD.to_numpy(), written.score_Wqq.to_numpy()], axis=1)
    expected = _direct_scores(models["tagging"], arrays[:40])
    np.testing.assert_allclose(got[:40], expected, atol=2e-5)
    assert np.isfinite(got).all()


def test_predict_on_a_loaded_head_matches_its_folder(tmp_path, jetclass_file):
    """:func:`jetfm.predict` on a head instance loaded from a folder (processor found in the
    folder) is the same as on the folder's path."""
    import numpy as np
    import torch

    from jetfm.configuration import JetFMConfig
    from jetfm.data import JetProcessor
    from jetfm.inference import predict
    from jetfm.modeling import JetFMForJetTagging

    torch.manual_seed(0)
    processor = JetProcessor().fit([jetclass_file], progress=False)
    model = JetFMForJetTagging(
        JetFMConfig.from_preset("tiny", num_labels=processor.num_labels, layer_scale_init=1.0)
    ).eval()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    model = JetFMForJetTagging.from_pretrained(tmp_path).eval()
    by_method = predict(tmp_path, [jetclass_file])
    by_function = predict(model, [jetclass_file])
    for field in by_function.fields:
        np.testing.assert_allclose(
            np.asarray(by_method[field], dtype=float), np.asarray(by_function[field], dtype=float)
        )
