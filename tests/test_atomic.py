"""jetfm.atomic: a file or folder appears complete at its path or not at all, and a failed
write leaves neither a temporary file nor a staging folder behind."""

from __future__ import annotations

import os
import stat

import pytest

from jetfm.atomic import atomic_file, atomic_folder, write_text


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
