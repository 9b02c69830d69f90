"""jetfm.atomic: a file or folder appears complete at its path or not at all, and a failed
write leaves neither a temporary file nor a staging folder behind."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from jetfm.atomic import AtomicFile, atomic_file, atomic_folder, write_text


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("fsync", [False, True])
def test_atomic_file_replaces_only_when_complete(tmp_path, fsync):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    with atomic_file(path, fsync=fsync) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".metrics.json.")
        tmp.write_text("new")
        assert path.read_text() == "old"  # not visible before the block ends
    assert path.read_text() == "new"
    assert _mode(path) == 0o666 & ~_umask()  # not mkstemp's owner-only mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_atomic_file_failure_keeps_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="half-way"), atomic_file(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("half-way")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    assert write_text(tmp_path / "new.txt", "é\n").read_text(encoding="utf-8") == "é\n"


@pytest.mark.parametrize("fsync", [False, True])
def test_atomic_folder_replaces_an_existing_folder(tmp_path, fsync):
    target = tmp_path / "ck"
    target.mkdir()
    (target / "stale.json").write_text("{}")
    with atomic_folder(target, fsync=fsync) as stage:
        assert stage.parent == tmp_path and stage.name.startswith(".ck.tmp-")
        (stage / "config.json").write_text("{}")
        (stage / "sub").mkdir()
        (stage / "sub" / "w.bin").write_bytes(b"x")
        assert (target / "stale.json").is_file()  # the old folder serves until the end
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "sub"]
    assert _mode(target) == 0o777 & ~_umask()  # not mkdtemp's owner-only mode
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no staging or old folder left


def test_atomic_folder_failure_removes_the_staging_folder(tmp_path):
    with pytest.raises(ValueError), atomic_folder(tmp_path / "new") as stage:
        (stage / "config.json").write_text("{}")
        raise ValueError
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "a.txt").write_text("a")
    with pytest.raises(KeyboardInterrupt), atomic_folder(tmp_path / "kept"):
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]
    assert (tmp_path / "kept" / "a.txt").read_text() == "a"


# --- AtomicFile: the explicit form, for writers that keep their file open ------------------
def test_atomic_file_object_commits_or_aborts_once(tmp_path):
    path = tmp_path / "jets.root"
    path.write_text("old")
    pending = AtomicFile(path)
    assert pending.pending and pending.tmp.parent == tmp_path
    assert pending.tmp.name.startswith(".jets.root.") and pending.tmp.name.endswith(".tmp")
    with open(pending.tmp, "w") as fh:  # a handle kept open across calls
        fh.write("new")
        assert path.read_text() == "old"
    assert pending.commit() == path and pending.committed
    assert path.read_text() == "new" and _mode(path) == 0o666 & ~_umask()
    pending.abort()  # a no-op once committed
    assert path.read_text() == "new"
    with pytest.raises(RuntimeError, match="already committed"):
        pending.commit()

    aborted = AtomicFile(path)
    aborted.tmp.write_text("half")
    aborted.abort()
    aborted.abort()
    assert not aborted.pending and not aborted.committed
    with pytest.raises(RuntimeError, match="already aborted"):
        aborted.commit()
    with pytest.raises(KeyError), AtomicFile(path) as failing:
        failing.tmp.write_text("half")
        raise KeyError
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["jets.root"]


# --- the modules that write through it ------------------------------------------------------
def _listing(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_metrics_json_that_fails_keeps_the_earlier_file(tmp_path):
    from jetfm.metrics import write_metrics

    path = write_metrics({"auc": 0.9, "n": np.int64(3)}, tmp_path / "metrics.json")
    before = path.read_text()
    with pytest.raises(TypeError):
        write_metrics({"auc": 0.95, "bad": object()}, path)  # not JSON
    assert path.read_text() == before and json.loads(before) == {"auc": 0.9, "n": 3}
    assert _listing(tmp_path) == ["metrics.json"]


def test_plot_that_fails_while_saving_keeps_the_earlier_png(tmp_path):
    pytest.importorskip("matplotlib")
    from jetfm.plots import plot_rejection_curves

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 20)
    probs = rng.dirichlet([1, 1], size=40)
    path = plot_rejection_curves(labels, probs, ["QCD", "Hbb"], tmp_path / "roc.png")
    before = path.read_bytes()
    assert before.startswith(b"\x89PNG")
    # bad mathtext in a legend label: matplotlib fails while rendering, inside savefig
    with pytest.raises(ValueError):
        plot_rejection_curves(labels, probs, ["QCD", r"$\notacommand{$"], path)
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["roc.png"]


def _jets(n: int, start: int = 0) -> dict:
    import awkward as ak

    return {
        "part_px": ak.Array([[float(i), 1.0] for i in range(start, start + n)]),
        "jet_pt": np.arange(start, start + n, dtype=np.float32),
    }


def test_root_writer_output_appears_only_on_close(tmp_path):
    uproot = pytest.importorskip("uproot")
    from jetfm.generation.writer import RootWriter

    path = tmp_path / "jets.root"
    with RootWriter(path, flush_jets=2) as writer:
        writer.write(_jets(3))
        writer.write(_jets(3, start=3))  # flushed to the temporary file already
        assert not path.exists()
        (tmp,) = tmp_path.iterdir()
        assert tmp.name.startswith(".jets.root.") and tmp.name.endswith(".tmp")
    assert _listing(tmp_path) == ["jets.root"]
    with uproot.open(path) as f:
        assert f["tree"].num_entries == 6
        assert f["tree"]["jet_pt"].array(library="np").tolist() == list(range(6))


def test_root_writer_failure_keeps_the_earlier_file_and_no_temp(tmp_path):
    uproot = pytest.importorskip("uproot")
    from jetfm.generation.writer import RootWriter, write_json_atomic

    path = tmp_path / "jets.root"
    with RootWriter(path) as writer:
        writer.write(_jets(2))
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="generator"), RootWriter(path, flush_jets=2) as w:
        w.write(_jets(4))
        raise RuntimeError("generator crashed")
    # the last flush (at close) fails: a batch without the first batch's columns
    with pytest.raises(KeyError), RootWriter(path, flush_jets=100) as w:
        w.write(_jets(2))
        w.write({"jet_pt": np.zeros(2, dtype=np.float32)})
    assert path.read_bytes() == before and _listing(tmp_path) == ["jets.root"]
    with uproot.open(path) as f:
        assert f["tree"].num_entries == 2
    write_json_atomic(tmp_path / "manifest.json", {"files": ["jets.root"]})
    assert json.loads((tmp_path / "manifest.json").read_text()) == {"files": ["jets.root"]}
    assert _listing(tmp_path) == ["jets.root", "manifest.json"]
