"""Public data sets: the registry, downloads from a local HTTP server (full, resumed after a
cut connection, checksum mismatch, offline, unreachable), ``jetfm datasets`` and a data set
named on ``jetfm finetune``'s command line (``NAME:train``) used end to end."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from jetfm.cli import main
from jetfm.data.download import (
    DownloadError,
    dataset_folder,
    ensure_dataset,
    fetch_file,
    resolve_data_argument,
)
from jetfm.data.registry import (
    BUILTIN,
    LAYOUT_NAMES,
    DatasetRecord,
    FileEntry,
    get_dataset,
    layout_mapping,
    parse_data_name,
)
from jetfm.errors import DataError
from tests.fixtures_data import write_jetclass_file

ROOT = Path(__file__).resolve().parents[1]


# --- a small HTTP server with Range support that can cut a connection ---------------------
class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        server = self.server
        path = self.path.split("?")[0]
        data = server.files.get(path)
        ranged = self.headers.get("Range")
        if data is None:
            server.log.append((path, ranged, 404, 0))
            self.send_error(404)
            return
        start = int(ranged.split("=")[1].split("-")[0]) if ranged else 0
        if ranged and start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            server.log.append((path, ranged, 416, 0))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if ranged:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = server.cuts.pop(path, None)
        sent = body if cut is None else body[:cut]
        # logged before the body goes out: the client may return as soon as it has read the
        # last byte, before this thread would get to a later line
        server.log.append((path, ranged, 206 if ranged else 200, len(sent)))
        self.wfile.write(sent)
        self.wfile.flush()
        if cut is not None:  # the connection drops mid-file
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def server():
    """A threaded HTTP server on 127.0.0.1: ``files`` (path → bytes) served with Range
    support; ``cuts`` (path → bytes) drops the next answer for that path after so many bytes;
    ``log`` lists (path, Range header, status, bytes sent)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.cuts, httpd.log = {}, {}, []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def online(monkeypatch, tmp_path):
    """Downloads allowed (the test session runs with HF_HUB_OFFLINE=1), data in tmp_path."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("JETFM_OFFLINE", raising=False)
    monkeypatch.setenv("JETFM_DATA", str(tmp_path / "data"))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _record(server, name="tiny", files=None, **kw) -> DatasetRecord:
    """A record of the files ``{split: [(file name, bytes, published sha256 or None), ...]}``
    served by ``server``."""
    entries = {}
    for split, items in files.items():
        out = []
        for fname, data, sha, *extra in items:
            server.files[f"/{name}/{fname}"] = data
            opts = extra[0] if extra else {}
            out.append(FileEntry(fname, url=f"{server.url}/{name}/{fname}", sha256=sha, **opts))
        entries[split] = tuple(out)
    kw.setdefault("layout", "jetclass-root")
    return DatasetRecord(
        name=name, title=f"{name} jets", description="tiny test jets",
        homepage=f"{server.url}/{name}", files=entries,
        citation="@misc{tiny, title={Tiny jets}, year={2025}}", **kw,
    )  # fmt: skip


def _payload(n: int, seed: int = 0) -> bytes:
    return bytes((i * 131 + seed * 17 + (i >> 8)) % 251 for i in range(n))


# --- the registry -------------------------------------------------------------------------
def test_builtin_records_are_well_formed():
    names = [r.name for r in BUILTIN]
    assert {"top", "qg", "qg-herwig", "jetclass", "jetnet", "atlas-top", "aspen"} <= set(names)
    assert len(set(names)) == len(names)
    for record in BUILTIN:
        assert record.layout in LAYOUT_NAMES
        assert record.citation.lstrip().startswith("@")
        for entry in record.all_files():
            assert entry.url is None or entry.url.startswith("https://")
            if entry.md5:
                assert re.fullmatch(r"[0-9a-f]{32}", entry.md5)
            if entry.sha256:
                assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
        assert DatasetRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    assert get_dataset("top").layout == "toptag-pandas-h5"
    assert (
        get_dataset("qg").layout == "qg-npz" and get_dataset("jetclass").layout == "jetclass-root"
    )
    qg = get_dataset("qg")
    assert [len(qg.entries(s)) for s in ("train", "val", "test")] == [16, 2, 2]
    assert len({e.sha256 for e in qg.all_files()}) == 20  # one published hash per file
    jetclass = get_dataset("jetclass")
    assert len(jetclass.entries("train")) == 1 and len(jetclass.entries("train", full=True)) == 10
    assert not get_dataset("top").checksums_confirmed and jetclass.checksums_confirmed


def test_unknown_names_are_one_clear_error(capsys):
    with pytest.raises(DataError, match=r"unknown data set 'nope'; known: .*jetclass.*top"):
        get_dataset("nope")
    with pytest.raises(DataError, match=r"has no split 'tain'.*\['train', 'val', 'test'\]"):
        get_dataset("top").entries("tain")
    assert main(["datasets", "info", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jetfm datasets: error: unknown data set 'nope'") and "\n" not in err
    assert parse_data_name("top:train") == ("top", "train", False)
    assert parse_data_name("jetclass:train:full") == ("jetclass", "train", True)
    assert parse_data_name("data/*.root") is None and parse_data_name("a:b:c") is None


def test_layout_mapping_of_jetclass_root_is_the_default_mapping():
    from jetfm.data.schema import BranchMapping

    assert layout_mapping(None) is None
    assert layout_mapping("jetclass-root") == BranchMapping()


# --- downloads ----------------------------------------------------------------------------
def test_full_download_checks_the_checksum_and_writes_citation_and_metadata(server):
    a, b = _payload(3000, 1), _payload(1200, 2)
    record = _record(server, files={"train": [("a.bin", a, _sha(a))], "val": [("b.bin", b, None)]})
    files = ensure_dataset(record, progress=False)
    folder = dataset_folder(record)
    assert files == [folder / "a.bin", folder / "b.bin"]
    assert files[0].read_bytes() == a and files[1].read_bytes() == b
    assert not list(folder.glob("*.part")) and not list(folder.glob(".*"))
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["files"]["a.bin"]["checksum"] == f"sha256:{_sha(a)}"
    assert meta["files"]["a.bin"]["checksum_confirmed"] is True
    # no published checksum: downloaded all the same, the SHA-256 computed is recorded
    assert meta["files"]["b.bin"] == {"checksum": f"sha256:{_sha(b)}", "checksum_confirmed": False,
                                      "size": len(b), "source": record.files["val"][0].url,
                                      "split": "val"}  # fmt: skip
    assert meta["record"]["name"] == "tiny"
    assert (folder / "CITATION.bib").read_text().startswith("@misc{tiny")
    requests_made = len(server.log)
    assert ensure_dataset(record, "train", progress=False) == [folder / "a.bin"]
    assert len(server.log) == requests_made  # present files are not fetched again


def test_a_cut_connection_is_resumed_from_the_part_file(server):
    data = _payload(300_000, 3)
    record = _record(server, files={"train": [("big.bin", data, _sha(data))]})
    server.cuts["/tiny/big.bin"] = 150_000
    folder = dataset_folder(record)
    with pytest.raises(
        DownloadError, match=r"interrupted after \d+ bytes.*run the same command again"
    ):
        ensure_dataset(record, progress=False, retries=0)
    kept = (folder / "big.bin.part").stat().st_size
    assert 0 < kept <= 150_000 and (folder / "big.bin.part").read_bytes() == data[:kept]
    assert not (folder / "big.bin").exists()  # nothing half-done under the final name
    assert ensure_dataset(record, progress=False) == [folder / "big.bin"]
    assert (folder / "big.bin").read_bytes() == data
    # the second call asked only for the bytes the .part file lacked
    assert server.log[-2:] == [("/tiny/big.bin", None, 200, 150_000),
                               ("/tiny/big.bin", f"bytes={kept}-", 206, len(data) - kept)]  # fmt: skip
    assert not (folder / "big.bin.part").exists()


def test_retries_resume_within_one_call(server):
    data = _payload(200_000, 4)
    record = _record(server, files={"train": [("r.bin", data, _sha(data))]})
    server.cuts["/tiny/r.bin"] = 100_000
    path = fetch_file(record, record.files["train"][0], dataset_folder(record), progress=False,
                      retries=1)  # fmt: skip
    assert path.read_bytes() == data
    assert [entry[1] for entry in server.log] == [None, "bytes=65536-"]


def test_checksum_mismatch_removes_the_download(server, capsys, monkeypatch, tmp_path):
    data = _payload(4_000, 5)
    record = _record(server, files={"train": [("bad.bin", data, _sha(b"something else"))]})
    folder = dataset_folder(record)
    with pytest.raises(
        DownloadError, match=r"checksum mismatch for bad.bin .*the download was removed"
    ):
        ensure_dataset(record, progress=False, retries=0)
    assert not folder.exists() or not [p for p in folder.iterdir() if p.name != "dataset.json"]
    # through the command line: one line, exit status 2
    spec = tmp_path / "records.json"
    spec.write_text(json.dumps(record.to_dict()))
    monkeypatch.setenv("JETFM_DATASETS", str(spec))
    assert main(["datasets", "download", "tiny", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "checksum mismatch for bad.bin" in err and "\n" not in err
    assert not (folder / "bad.bin").exists() and not (folder / "bad.bin.part").exists()


def test_offline_names_the_url_and_the_folder(server, monkeypatch, capsys, tmp_path):
    data = _payload(2_000, 6)
    record = _record(server, files={"train": [("x.bin", data, _sha(data))]})
    folder = dataset_folder(record)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError) as info:
        ensure_dataset(record, progress=False)
    line = str(info.value)
    assert "\n" not in line and "offline (HF_HUB_OFFLINE=1)" in line
    assert f"download {server.url}/tiny/x.bin by hand" in line and f"into {folder}/" in line
    assert server.log == []
    # doing what the line says: the file put there by hand is checked, then used
    folder.mkdir(parents=True)
    (folder / "x.bin").write_bytes(data)
    assert ensure_dataset(record, progress=False) == [folder / "x.bin"]
    assert json.loads((folder / "dataset.json").read_text())["files"]["x.bin"]["checksum_confirmed"]
    # a wrong file put there by hand is named, not used
    other = _record(server, name="tiny2", files={"train": [("y.bin", data, _sha(data))]})
    dataset_folder(other).mkdir(parents=True)
    (dataset_folder(other) / "y.bin").write_bytes(b"not it")
    with pytest.raises(DownloadError, match=r"y.bin does not match the record's checksum"):
        ensure_dataset(other, progress=False)
    # JETFM_OFFLINE through the command line, and a data set on the Hub: one line each
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("JETFM_OFFLINE", "1")
    assert main(["datasets", "download", "jetclass2", "--split", "val", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "offline (JETFM_OFFLINE=1)" in err and "Res2P_0200.parquet" in err


def test_unreachable_server_is_one_line(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    entry = FileEntry("z.bin", url=f"http://127.0.0.1:{port}/z.bin")
    record = DatasetRecord(name="gone", title="t", description="d", homepage="h",
                           files={"train": (entry,)}, layout="jetclass-root", citation="@misc{x}")  # fmt: skip
    with pytest.raises(DownloadError) as info:
        ensure_dataset(record, progress=False, retries=0)
    line = str(info.value)
    assert "\n" not in line and f"cannot reach 127.0.0.1:{port}" in line
    assert f"into {dataset_folder(record)}/" in line


def test_tar_archives_are_unpacked_and_data_references_resolve(server, tmp_path):
    src = tmp_path / "src"
    roots = [write_jetclass_file(src / "val_5M" / f"part{i}.root", 20, seed=i) for i in range(2)]
    archive = tmp_path / "val.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(src / "val_5M", arcname="val_5M")
    blob = archive.read_bytes()
    record = _record(server, name="tarjets", files={
        "val": [("val_5M.tar", blob, _sha(blob), {"unpack": "tar", "members": "**/*.root"})]})  # fmt: skip
    with pytest.raises(
        DataError,
        match=r"tarjets:val is not downloaded .*jetfm datasets download tarjets --split val",
    ):
        ensure_dataset(record, "val", download=False)
    files = ensure_dataset(record, "val", progress=False)
    folder = dataset_folder(record)
    assert [p.relative_to(folder) for p in files] == [Path("val_5M/val_5M/part0.root"),
                                                       Path("val_5M/val_5M/part1.root")]  # fmt: skip
    assert [p.read_bytes() for p in files] == [p.read_bytes() for p in roots]
    assert not (folder / "val_5M.tar").exists()  # the archive is removed once unpacked
    from jetfm.data.registry import register_dataset, unregister_dataset

    register_dataset(record)
    try:
        paths, layout = resolve_data_argument(["tarjets:val", str(roots[0])], progress=False)
    finally:
        unregister_dataset("tarjets")
    assert paths == [str(f) for f in files] + [str(roots[0])] and layout == "jetclass-root"
    assert resolve_data_argument("some/dir/*.root") == (["some/dir/*.root"], None)


# --- the command line ---------------------------------------------------------------------
def test_datasets_list_and_info_through_main(server, monkeypatch, tmp_path, capsys):
    a = _payload(500, 7)
    record = _record(server, files={"train": [("a.bin", a, _sha(a))], "val": [("b.bin", a, None)]},
                     license="CC-BY-4.0", classes=("QCD", "Wqq"))  # fmt: skip
    spec = tmp_path / "records.json"
    spec.write_text(json.dumps([record.to_dict()]))
    monkeypatch.setenv("JETFM_DATASETS", str(spec))
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("top", "qg", "qg-herwig", "jetclass", "jetnet", "atlas-top", "aspen", "tiny"):
        assert re.search(rf"^{re.escape(name)}\s", out, re.M), name
    assert main(["datasets", "info", "tiny"]) == 0
    out = capsys.readouterr().out
    assert f"sha256:{_sha(a)}" in out and "b.bin  checksum not confirmed" in out
    assert "licence:  CC-BY-4.0" in out and "@misc{tiny" in out
    assert (
        "jetfm finetune --model mpm-truth-det-base --task tagging --train tiny:train --val tiny:val"
        in out
    )
    assert main(["datasets", "info", "top"]) == 0
    out = capsys.readouterr().out
    assert "https://zenodo.org/records/2603256/files/train.h5" in out
    assert "checksum not confirmed" in out and "kasieczka_gregor_2019_2603256" in out
    assert main(["datasets", "download", "tiny", "--split", "val", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert (
        "tiny:val: 1 file(s)" in out
        and f"checksum not confirmed for b.bin: sha256:{_sha(a)}" in out
    )
    assert not (dataset_folder(record) / "a.bin").exists()  # only the split asked for


def test_datasets_parser_does_not_import_torch():
    code = ("import argparse, sys; from jetfm.commands import datasets; "
            "datasets.add_arguments(argparse.ArgumentParser()); print('torch' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert out.stdout.strip() == "False"


def test_finetune_on_a_named_data_set_end_to_end(server, monkeypatch, tmp_path):
    """``jetfm finetune --train tinyjets:train --val tinyjets:val``: the served JetClass-layout
    files are downloaded into $JETFM_DATA and a tagger trains on them, no mapping file."""
    src = tmp_path / "src"
    train = [write_jetclass_file(src / f"train{i}.root", 64, seed=20 + i) for i in range(2)]
    val = write_jetclass_file(src / "val.root", 64, seed=30)
    record = _record(server, name="tinyjets", files={
        "train": [(p.name, p.read_bytes(), _sha(p.read_bytes())) for p in train],
        "val": [(val.name, val.read_bytes(), None)]})  # fmt: skip
    spec = tmp_path / "records.json"
    spec.write_text(json.dumps(record.to_dict()))
    monkeypatch.setenv("JETFM_DATASETS", str(spec))
    out = tmp_path / "model"
    assert main(["finetune", "--model", "tiny", "--task", "tagging", "--train", "tinyjets:train",
                 "--val", "tinyjets:val", "--output", str(out), "--max-steps", "4",
                 "--batch-size", "32", "--patience", "0", "--evals", "1", "--seed", "1"]) == 0  # fmt: skip
    folder = dataset_folder(record)
    args = json.loads((out / "finetune_args.json").read_text())
    assert args["train"] == [str(folder / "train0.root"), str(folder / "train1.root")]
    assert args["val"] == str(folder / "val.root")
    metrics = json.loads((out / "finetune_metrics.json").read_text())
    assert metrics["train_jets"] == 128 and 0.0 <= metrics["accuracy"] <= 1.0
    # the classes are those of the downloaded files' label_* branches
    config = json.loads((out / "config.json").read_text())
    assert sorted(config["id2label"].values()) == ["QCD", "Wqq"]
    assert sorted(p for p, *_ in server.log) == ["/tinyjets/train0.root", "/tinyjets/train1.root",
                                                 "/tinyjets/val.root"]  # fmt: skip
