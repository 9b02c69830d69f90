"""Downloading the registered public data sets (:mod:`jetfm.data.registry`).

Plain URLs go through `pooch <https://www.fatiando.org/pooch>`_ (checksum check, then one
rename into place) with :class:`ResumableDownloader`, which streams into ``NAME.part`` and
continues an interrupted download with an HTTP ``Range`` request; files on the Hugging Face
Hub go through ``huggingface_hub``. Files land in one folder per data set under the data
folder: ``--dir`` / ``root``, else ``$JETFM_DATA``, else the platform cache
(``pooch.os_cache("jetfm")``, e.g. ``~/.cache/jetfm``). Beside them go ``CITATION.bib`` and
``dataset.json`` (the record, and each file's source, size and checksum).

Guarantees:

* nothing half-downloaded or half-unpacked ever sits under a final name (``.part`` while
  streaming, pooch's temporary file while checking, :mod:`jetfm.atomic` while unpacking);
* a checksum mismatch is one :class:`DownloadError` line; the bad download is removed;
* a file without a published checksum is downloaded with the warning "checksum not
  confirmed" and the SHA-256 computed is recorded in ``dataset.json``;
* offline (``JETFM_OFFLINE=1``, ``HF_HUB_OFFLINE=1``) or with the server unreachable, one line
  says which URL to download by hand and which folder to put it in; the next run checks and
  unpacks what was put there.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tarfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jetfm.atomic import atomic_file, atomic_folder, write_text
from jetfm.data.registry import (
    DatasetRecord,
    FileEntry,
    dataset_names,
    get_dataset,
    parse_data_name,
)
from jetfm.errors import DataError, JetFMError

logger = logging.getLogger(__name__)

#: environment variable of the data folder
DATA_ENV = "JETFM_DATA"
#: environment variable that switches downloads off
OFFLINE_ENV = "JETFM_OFFLINE"
METADATA_NAME = "dataset.json"
CITATION_NAME = "CITATION.bib"
PART_SUFFIX = ".part"
_TRUE = {"1", "ON", "YES", "TRUE"}
_CHUNK = 1 << 16  # bytes per read: what an interrupted read can lose


class DownloadError(JetFMError, OSError):
    """A data set could not be downloaded or verified (one line: what, where, what to do)."""


# --- where --------------------------------------------------------------------------------
def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root``, else ``$JETFM_DATA``, else the platform cache folder."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    import pooch

    return Path(pooch.os_cache("jetfm"))


def dataset_folder(record: DatasetRecord | str, root: str | os.PathLike | None = None) -> Path:
    """The folder of one data set's files: ``<data folder>/<name>``."""
    name = record if isinstance(record, str) else record.name
    return data_root(root) / name


def offline_reason() -> str | None:
    """Why downloads are switched off (``JETFM_OFFLINE`` / ``HF_HUB_OFFLINE`` set), or None."""
    for var in (OFFLINE_ENV, "HF_HUB_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in _TRUE:
            return f"{var}={os.environ[var].strip()}"
    return None


# --- one HTTP file ------------------------------------------------------------------------
class ResumableDownloader:
    """A pooch downloader that streams into ``part`` and resumes it with an HTTP Range request.

    Bytes already in ``part`` (from an interrupted run) are asked for no more: the request
    carries ``Range: bytes=N-`` and a ``206`` answer is appended; a server that ignores the
    range (``200``) restarts the file. When the stream is complete ``part`` becomes pooch's
    temporary file, which pooch checks against the known checksum before the final rename.
    An interrupted stream leaves ``part`` in place for the next call.

    Args:
        part: the partial file, beside the final one.
        progress: show a tqdm progress bar.
        timeout: seconds to wait for the server (connect and each read).
    """

    def __init__(self, part: str | os.PathLike, progress: bool = True, timeout: float = 60.0):
        self.part = Path(part)
        self.progress = progress
        self.timeout = timeout

    def __call__(self, url: str, output_file: str, pooch: Any = None, check_only: bool = False):
        import requests
        from tqdm.auto import tqdm

        start = self.part.stat().st_size if self.part.exists() else 0
        headers = {"Range": f"bytes={start}-"} if start else {}
        with requests.get(
            url, headers=headers, stream=True, timeout=self.timeout, allow_redirects=True
        ) as response:
            if start and response.status_code == 416:  # nothing after byte N: is it complete?
                total = _content_range_total(response.headers.get("Content-Range"))
                if total == start:
                    os.replace(self.part, output_file)
                    return
                self.part.unlink()
                return self(url, output_file, pooch, check_only)
            response.raise_for_status()
            if start and response.status_code == 206:
                if _content_range_start(response.headers.get("Content-Range")) != start:
                    raise requests.exceptions.ContentDecodingError(
                        f"{url}: the server resumed at the wrong byte"
                    )
                mode = "ab"
            else:  # 200: the whole file (a server that ignores Range starts over)
                start, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = start + int(length) if length is not None else None
            with (
                open(self.part, mode) as fh,
                tqdm(
                    total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=self.part.name[: -len(PART_SUFFIX)], disable=not self.progress,
                    leave=False,
                ) as bar,
            ):  # fmt: skip
                for chunk in response.iter_content(chunk_size=_CHUNK):
                    fh.write(chunk)
                    bar.update(len(chunk))
        size = self.part.stat().st_size
        if total is not None and size != total:
            raise requests.exceptions.ChunkedEncodingError(f"{url}: got {size} of {total} bytes")
        os.replace(self.part, output_file)


def _content_range_start(header: str | None) -> int | None:
    try:  # "bytes 100-199/200"
        return int(header.split()[1].split("-")[0])  # type: ignore[union-attr]
    except (AttributeError, IndexError, ValueError):
        return None


def _content_range_total(header: str | None) -> int | None:
    try:  # "bytes */200"
        return int(header.rsplit("/", 1)[1])  # type: ignore[union-attr]
    except (AttributeError, IndexError, ValueError):
        return None


def _by_hand(record: DatasetRecord, entries: list[FileEntry], folder: Path, why: str) -> str:
    urls = " ".join(e.url or f"{record.homepage} ({e.hub_pattern})" for e in entries)
    what = "it" if len(entries) == 1 else f"these {len(entries)} files"
    return (
        f"{record.name}: {why}: download {urls} by hand and put {what} into {folder}/ "
        "(the next run checks and unpacks them)"
    )


def _short(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def fetch_file(
    record: DatasetRecord,
    entry: FileEntry,
    folder: Path,
    *,
    progress: bool = True,
    retries: int = 2,
    timeout: float = 60.0,
) -> Path:
    """Download one HTTP file of ``record`` into ``folder`` (resuming a ``.part`` file) and
    check its checksum; returns its path. :class:`DownloadError` when offline, unreachable,
    interrupted (the ``.part`` file stays, to resume) or on a checksum mismatch (the download
    is removed)."""
    import pooch
    import requests

    target = folder / entry.name
    why = offline_reason()
    if why:
        raise DownloadError(_by_hand(record, [entry], folder, f"offline ({why})"))
    folder.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + PART_SUFFIX)
    downloader = ResumableDownloader(part, progress=progress, timeout=timeout)
    pooch_logger = pooch.get_logger()
    level = pooch_logger.level
    pooch_logger.setLevel(logging.WARNING)  # pooch's own "Downloading..." and hash advice
    try:
        for attempt in range(retries + 1):
            try:
                pooch.retrieve(
                    entry.url, entry.known_hash, fname=entry.name, path=folder,
                    downloader=downloader, progressbar=False,
                )  # fmt: skip
                break
            except requests.exceptions.HTTPError:
                raise
            except requests.exceptions.RequestException as err:
                if attempt == retries:
                    raise
                logger.warning("%s: %s (%s); resuming", record.name, entry.name, _short(err))
                time.sleep(min(2**attempt, 10))
    except ValueError as err:  # pooch: the checksum does not match (download already deleted)
        part.unlink(missing_ok=True)
        target.unlink(missing_ok=True)
        raise DownloadError(
            f"{record.name}: checksum mismatch for {entry.name} from {entry.url} (expected "
            f"{entry.known_hash}); the download was removed, nothing is left at {target}. "
            "Run the command again; if it persists the source changed: report it."
        ) from err
    except requests.exceptions.HTTPError as err:
        raise DownloadError(f"{record.name}: {entry.url}: {_short(err)}") from err
    except requests.exceptions.RequestException as err:
        got = part.stat().st_size if part.exists() else 0
        if got:
            raise DownloadError(
                f"{record.name}: the download of {entry.url} was interrupted after {got} bytes "
                f"({_short(err)}); {part} is kept: run the same command again to resume"
            ) from err
        host = urlparse(entry.url).netloc
        raise DownloadError(
            _by_hand(record, [entry], folder, f"cannot reach {host} ({_short(err)})")
        ) from err
    finally:
        pooch_logger.setLevel(level)
    return target


# --- unpacking ----------------------------------------------------------------------------
def _data_files(entry: FileEntry, folder: Path) -> list[Path] | None:
    """The usable files of ``entry`` if they are in place (unpacked), else None."""
    data = folder / entry.data_name
    if entry.hub_pattern is not None:
        found = (
            sorted((folder / "hub").glob(f"**/{entry.name}")) if (folder / "hub").is_dir() else []
        )
        return found[:1] or None
    if entry.unpack == "tar":
        if not data.is_dir():
            return None
        return sorted(p for p in data.glob(entry.members) if p.is_file())
    return [data] if data.is_file() else None


def unpack(entry: FileEntry, raw: Path) -> list[Path]:
    """Unpack the downloaded ``raw`` file of ``entry`` beside it (atomically: a gzip file into
    ``data_name``, a tar archive into the folder ``data_name``), remove the archive, and
    return the usable files."""
    folder = raw.parent
    if entry.unpack == "gzip":
        import gzip

        with (
            atomic_file(folder / entry.data_name) as tmp,
            gzip.open(raw) as src,
            open(tmp, "wb") as dst,
        ):
            shutil.copyfileobj(src, dst, _CHUNK)
    elif entry.unpack == "tar":
        with atomic_folder(folder / entry.data_name) as stage, tarfile.open(raw) as tar:
            tar.extractall(stage, filter="data")  # no absolute paths, links out or devices
    if entry.unpack:
        logger.info(
            "%s: unpacked into %s; removing the archive", raw.name, folder / entry.data_name
        )
        raw.unlink()
    files = _data_files(entry, folder) or []
    if not files:
        raise DataError(f"{raw}: holds no files matching {entry.members!r}")
    return files


# --- metadata -----------------------------------------------------------------------------
def _read_metadata(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / METADATA_NAME).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_metadata(record: DatasetRecord, folder: Path, files: dict[str, dict[str, Any]]) -> None:
    """``dataset.json`` (the record and what is known of each downloaded file) and
    ``CITATION.bib`` beside the files."""
    old = _read_metadata(folder).get("files", {})
    data = {"name": record.name, "record": record.to_dict(), "files": {**old, **files}}
    write_text(folder / METADATA_NAME, json.dumps(data, indent=2, sort_keys=True) + "\n")
    write_text(folder / CITATION_NAME, record.citation.strip() + "\n")


def _file_info(record: DatasetRecord, entry: FileEntry, raw: Path, split: str) -> dict[str, Any]:
    """What ``dataset.json`` says of a file just checked: its checksum and whether it was
    confirmed against a published one (else the SHA-256 computed here)."""
    import pooch

    info: dict[str, Any] = {"source": entry.source, "size": raw.stat().st_size, "split": split}
    if entry.known_hash:
        info.update(checksum=entry.known_hash, checksum_confirmed=True)
    elif entry.hub_pattern:
        info.update(checksum=f"verified by the Hugging Face Hub ({record.hf_repo})",
                    checksum_confirmed=True)  # fmt: skip
    else:
        sha = pooch.file_hash(str(raw), alg="sha256")
        info.update(checksum=f"sha256:{sha}", checksum_confirmed=False)
        logger.warning(
            "%s: checksum not confirmed for %s (no published checksum); its SHA-256 %s is "
            "recorded in %s", record.name, entry.name, sha, raw.parent / METADATA_NAME,
        )  # fmt: skip
    if entry.size is not None and info["size"] != entry.size:
        raise DownloadError(
            f"{record.name}: {raw} has {info['size']} bytes, the record says {entry.size}; "
            "remove it and download again"
        )
    return info


def _check_hand_placed(record: DatasetRecord, entry: FileEntry, raw: Path) -> None:
    """A file put in place by hand (not in ``dataset.json``): its checksum must match."""
    import pooch

    if entry.known_hash is None:
        return
    alg, expected = entry.known_hash.split(":", 1)
    got = pooch.file_hash(str(raw), alg=alg)
    if got.lower() != expected.lower():
        raise DownloadError(
            f"{record.name}: {raw} does not match the record's checksum ({alg} {expected}, "
            f"got {got}); remove it and download it again"
        )


# --- the Hub ------------------------------------------------------------------------------
def _fetch_hub(
    record: DatasetRecord, entries: list[FileEntry], folder: Path, progress: bool
) -> None:
    why = offline_reason()
    if why:
        raise DownloadError(_by_hand(record, entries, folder / "hub", f"offline ({why})"))
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    if not progress:
        disable_progress_bars()
    try:
        snapshot_download(
            record.hf_repo, repo_type="dataset", local_dir=folder / "hub",
            allow_patterns=[e.hub_pattern for e in entries],
        )  # fmt: skip
    except Exception as err:  # huggingface_hub raises many types: name the repo and the way out
        raise DownloadError(
            _by_hand(record, entries, folder / "hub", f"the Hub failed ({_short(err)})")
        ) from err
    finally:
        if not progress:
            enable_progress_bars()
    missing = [e.name for e in entries if _data_files(e, folder) is None]
    if missing:
        raise DownloadError(f"{record.name}: {record.hf_repo} holds no files {missing}")


# --- whole data sets ----------------------------------------------------------------------
def ensure_dataset(
    record: DatasetRecord | str,
    split: str | None = None,
    *,
    full: bool = False,
    root: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
    retries: int = 2,
) -> list[Path]:
    """The usable local files of ``split`` (every split when None) of a data set, downloading
    and unpacking what is missing first (``download=False``: DataError naming the command
    instead). Writes ``CITATION.bib`` and ``dataset.json`` beside them.

    Args:
        record: a :class:`~jetfm.data.registry.DatasetRecord` or its name.
        split: one of the record's splits, or None for all.
        full: every file, not only the default selection.
        root: the data folder (default ``$JETFM_DATA``, else the platform cache).
        download: fetch missing files (else a DataError).
        progress: show progress bars.
        retries: extra attempts after a failed download (each resumes the ``.part`` file).
    """
    record = get_dataset(record) if isinstance(record, str) else record
    folder = dataset_folder(record, root)
    wanted = [(s, e) for s in ([split] if split else record.splits)
              for e in record.entries(s, full=full)]  # fmt: skip
    known = _read_metadata(folder).get("files", {})
    missing = [(s, e) for s, e in wanted if _data_files(e, folder) is None]
    # a plain file in place but never checked here was put there by hand (the offline way)
    unchecked = [(s, e) for s, e in wanted if (s, e) not in missing and e.url and not e.unpack
                 and e.name not in known]  # fmt: skip
    if missing and not download:
        ref = f"{record.name}:{split}" if split else record.name
        flags = (f" --split {split}" if split else "") + (" --full" if full else "")
        raise DataError(
            f"{ref} is not downloaded to {folder}: run `jetfm datasets download "
            f"{record.name}{flags}`"
        )
    infos: dict[str, dict[str, Any]] = {}
    for s, e in unchecked:
        _check_hand_placed(record, e, folder / e.name)
        infos[e.name] = _file_info(record, e, folder / e.name, s)
    hub = [e for _, e in missing if e.hub_pattern]
    if hub:
        _fetch_hub(record, hub, folder, progress)
        for s, e in missing:
            if e.hub_pattern:
                infos[e.name] = _file_info(record, e, _data_files(e, folder)[0], s)  # type: ignore[index]
    for s, e in missing:
        if e.hub_pattern:
            continue
        raw = folder / e.name
        if raw.is_file() and e.name not in known:  # put there by hand (the offline way)
            _check_hand_placed(record, e, raw)
        elif not raw.is_file():
            logger.info("%s: downloading %s into %s", record.name, e.url, folder)
            fetch_file(record, e, folder, progress=progress, retries=retries)
        infos[e.name] = _file_info(record, e, raw, s)
        unpack(e, raw)
    if infos or not (folder / METADATA_NAME).is_file():
        folder.mkdir(parents=True, exist_ok=True)
        _write_metadata(record, folder, infos)
    return [p for _, e in wanted for p in (_data_files(e, folder) or [])]


def download_dataset(
    name: DatasetRecord | str,
    splits: Iterable[str] | None = None,
    *,
    full: bool = False,
    root: str | os.PathLike | None = None,
    progress: bool = True,
    retries: int = 2,
) -> dict[str, list[Path]]:
    """Download (and unpack) the given splits of a data set (all of them by default);
    returns split → usable files. See :func:`ensure_dataset`."""
    record = get_dataset(name) if isinstance(name, str) else name
    chosen = list(splits) if splits else list(record.splits)
    for split in chosen:
        record.entries(split)  # an unknown split is an error before anything is fetched
    return {
        split: ensure_dataset(
            record, split, full=full, root=root, progress=progress, retries=retries
        )
        for split in chosen
    }


def downloaded_files(
    record: DatasetRecord, root: str | os.PathLike | None = None
) -> dict[str, Any]:
    """What ``dataset.json`` in the data set's folder records (file name → info)."""
    return _read_metadata(dataset_folder(record, root)).get("files", {})


# --- data arguments -----------------------------------------------------------------------
def is_data_reference(text: str) -> bool:
    """Whether ``text`` names a registered data set rather than a file: ``NAME:SPLIT`` that is
    not an existing path, or a bare ``NAME`` of a known data set that is not an existing path."""
    if os.path.exists(os.path.expanduser(text)):
        return False
    parsed = parse_data_name(text)
    if parsed is None:
        return False
    return parsed[1] is not None or parsed[0] in dataset_names()


def resolve_data_argument(
    value: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    root: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
) -> tuple[list[str], str | None]:
    """The local files and the layout name of a data argument.

    ``value`` is a path, glob or directory (passed through unchanged, layout ``None``), a
    data-set reference ``NAME[:SPLIT[:full]]`` (``top:train``, ``jetclass:train:full``) or a
    list of those. A reference becomes the files of that split (every split without one)
    in the data folder (``root``, else ``$JETFM_DATA``, else the platform cache), downloaded
    first when missing (``download=False``: DataError instead) and unpacked; its layout is
    the record's. References to data sets of different layouts in one argument are an error.
    """
    items = [value] if isinstance(value, str | os.PathLike) else list(value)
    paths: list[str] = []
    layouts: set[str] = set()
    for item in items:
        text = os.fspath(item)
        if not is_data_reference(text):
            paths.append(text)
            continue
        name, split, full = parse_data_name(text)  # type: ignore[misc]
        record = get_dataset(name)
        paths.extend(
            os.fspath(p)
            for p in ensure_dataset(
                record, split, full=full, root=root, download=download, progress=progress
            )
        )
        layouts.add(record.layout)
    if len(layouts) > 1:
        raise DataError(
            f"one data argument mixes data sets of layouts {sorted(layouts)}: {value!r}"
        )
    return paths, (layouts.pop() if layouts else None)


__all__ = [
    "CITATION_NAME",
    "DATA_ENV",
    "METADATA_NAME",
    "OFFLINE_ENV",
    "DownloadError",
    "ResumableDownloader",
    "data_root",
    "dataset_folder",
    "download_dataset",
    "downloaded_files",
    "ensure_dataset",
    "fetch_file",
    "is_data_reference",
    "offline_reason",
    "resolve_data_argument",
    "unpack",
]
