"""The public jet data sets: list them, show one, download one.

``jetfm datasets list`` names every registered data set; ``jetfm datasets info NAME`` prints
what it is, its source record, its files with sizes and checksums (or "not confirmed"), its
licence, the BibTeX to cite and the one command that trains on it; ``jetfm datasets
download NAME [--split SPLIT] [--full] [--dir DIR]`` fetches it (resuming, checking
checksums) into DIR/NAME (default: $JETFM_DATA, else the platform cache) with CITATION.bib
and dataset.json beside the files. Any data option then takes NAME:SPLIT in place of file
paths, e.g. ``jetfm finetune --train top:train --val top:val ...``.
"""

from __future__ import annotations

import argparse

NAME = "datasets"
HELP = "list, describe and download the public jet data sets (top, qg, jetclass, ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="the registered data sets, one line each")
    info = sub.add_parser("info", help="source, files, checksums, licence and citation of one")
    info.add_argument("name", help="data set name (see `jetfm datasets list`)")
    info.add_argument("--dir", default=None, help="data folder (default: $JETFM_DATA or cache)")
    get = sub.add_parser("download", help="download (resume, verify, unpack) a data set")
    get.add_argument("name", help="data set name (see `jetfm datasets list`)")
    get.add_argument(
        "--split", action="append", default=None, help="only this split (repeatable; default: all)"
    )
    get.add_argument(
        "--full", action="store_true", help="every file, not only the default selection"
    )
    get.add_argument(
        "--dir", default=None, help="data folder; files go to DIR/NAME (default: $JETFM_DATA, "
        "else the platform cache)",
    )  # fmt: skip
    get.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""  # pragma: no cover


def _list() -> int:
    from jetfm.data.registry import list_datasets

    records = list_datasets()
    width = max(len(r.name) for r in records)
    for r in records:
        splits = ",".join(r.splits)
        print(f"{r.name:<{width}}  {r.layout:<18} {splits:<15} {r.title}")
    print("\n`jetfm datasets info NAME` tells more; `jetfm datasets download NAME` fetches it.")
    return 0


def render_info(name: str, root: str | None = None, local: bool = True) -> str:
    """The text of ``jetfm datasets info NAME`` (``local=False``: without what is downloaded
    where on this machine, as in the documentation)."""
    from jetfm.data.download import dataset_folder, downloaded_files
    from jetfm.data.registry import get_dataset

    record = get_dataset(name)
    folder = dataset_folder(record, root)
    have = downloaded_files(record, root) if local else {}
    lines = [f"{record.name}: {record.title}", "", record.description, ""]
    lines.append(f"source:   {record.homepage}" + (f"  (doi:{record.doi})" if record.doi else ""))
    if record.hf_repo:
        lines.append(f"hub:      huggingface.co/datasets/{record.hf_repo}")
    lines.append(f"layout:   {record.layout}")
    lines.append(f"licence:  {record.license or 'not confirmed (see the source record)'}")
    if record.classes or record.label_meaning:
        lines.append(
            f"labels:   {', '.join(record.classes)}"
            + (f" ({record.label_meaning})" if record.label_meaning else "")
        )
    jet = []
    if record.jet_radius is not None:
        jet.append(f"R = {record.jet_radius:g}")
    if record.pt_range is not None:
        jet.append(f"pT in [{record.pt_range[0]:g}, {record.pt_range[1]:g}] GeV")
    if jet:
        lines.append(f"jets:     {', '.join(jet)}")
    if record.facts:
        lines.append(f"facts:    {record.facts}")
    more = len(record.entries(full=True)) > len(record.entries())
    lines += ["", "files (default selection" + (", --full adds the rest):" if more else "):")]
    for split in record.splits:
        for entry in record.entries(split, full=True):
            if not entry.default:
                continue
            checksum = entry.known_hash or "checksum not confirmed"
            here = have.get(entry.name)
            state = ("  [downloaded]" if here else "  [not downloaded]") if local else ""
            if here and not entry.known_hash:
                checksum += f" (computed at download: {here.get('checksum')})"
            size = f"  {_size(entry.size)}" if entry.size is not None else ""
            lines.append(f"  {split:<6} {entry.name}{size}  {checksum}{state}")
            lines.append(f"         {entry.source}")
        extra = [e for e in record.entries(split, full=True) if not e.default]
        if extra:
            lines.append(f"  {split:<6} + {len(extra)} more file(s) with --full")
    if all(e.size is None for e in record.all_files()):
        lines.append("sizes:     not published where they could be confirmed")
    if record.checksum_source:
        lines.append(f"checksums: {record.checksum_source}")
    lines += [""] + ([f"folder:   {folder}"] if local else [])
    lines += [
        f"get it:   jetfm datasets download {record.name}",
        f"train:    {record.example_command()}",
        "",
        "cite:",
        record.citation.rstrip(),
    ]
    return "\n".join(lines)


def _download(args: argparse.Namespace) -> int:
    from jetfm.data.download import dataset_folder, download_dataset, downloaded_files
    from jetfm.data.registry import get_dataset

    record = get_dataset(args.name)
    result = download_dataset(
        record, args.split, full=args.full, root=args.dir, progress=not args.no_progress
    )
    folder = dataset_folder(record, args.dir)
    info = downloaded_files(record, args.dir)
    for split, files in result.items():
        print(f"{record.name}:{split}: {len(files)} file(s) in {folder}")
    unconfirmed = sorted(n for n, i in info.items() if not i.get("checksum_confirmed"))
    for name in unconfirmed:
        print(f"checksum not confirmed for {name}: {info[name]['checksum']} recorded in "
              f"{folder / 'dataset.json'}")  # fmt: skip
    print(f"cite: {folder / 'CITATION.bib'}")
    print(f"next: {record.example_command()}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list()
    if args.action == "info":
        print(render_info(args.name, args.dir))
        return 0
    return _download(args)
