"""The domain-shifted test bed: a ``jetfm generate`` folder → disjoint train / val / test
ROOT files with four-vectors only and the labels of one task.

Tasks:

- ``top``: top vs QCD — the ``label_QCD`` / ``label_Tbqq`` branches of the input, as they are
  (jets of neither class are an error: the source must be generated with
  ``--classes QCD,Tbqq``);
- ``qg``: quark vs gluon — new one-hot branches ``label_quark`` / ``label_gluon`` from the
  hard parton of each QCD jet (``aux_genpart_pid``, sign ignored: 1–5 quark, 21 gluon); jets
  of any other id (or not QCD) are dropped and counted in the manifest.

Every output file is a TTree ``tree`` in the JetClass layout holding only ``part_px``,
``part_py``, ``part_pz``, ``part_energy`` (with their counter ``npart``), the ``jet_*``
branches of the input and the task's two ``label_*`` branches: no particle identification,
no track parameters, no generator truth — what the public top-tagging and quark–gluon data
sets carry. The jets are split by one seeded permutation: ``--val`` jets for validation,
at least ``--min-test`` for the test, the training split as large as the rest allows up to
``--train`` and every remaining jet added to the test. The whole output folder is written
atomically (a staging folder renamed into place), with ``manifest.json``: the split sizes
and class counts, the dropped jets, and the source's own generation manifest (seed, Pythia
tune, detector card), so anyone can check that the test bed shares none of them with the
pre-training data; ``--pretraining-data`` (folders of generation manifests) and
``--pretraining-record`` (data known from a model card) make that check here and refuse a
test bed that shares its seed, its tune or its detector with any pre-training data.

Example::

    python studies/foundation/prepare_testbed.py --task top \\
        --source /work/data/shifted/top_r08_550-650 --out /work/data/testbed/top \\
        --pretraining-data /work/data/pre_det \\
        --pretraining-record seeds=101+111+201+301+401+202,tune=14,detector=none
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from jetfm.atomic import atomic_folder
from jetfm.errors import DataError, JetFMError

#: the particle branches written (four-vectors only)
PARTICLE_BRANCHES = ("part_px", "part_py", "part_pz", "part_energy")
#: PDG id of the hard parton (per jet) in ``jetfm generate`` files
PARTON_BRANCH = "aux_genpart_pid"
QUARK_IDS = (1, 2, 3, 4, 5)
GLUON_IDS = (21,)
#: the two classes of each task (the order of the one-hot ``label_*`` branches)
TASK_CLASSES = {"top": ("QCD", "Tbqq"), "qg": ("quark", "gluon")}
SPLITS = ("train", "val", "test")
FORMAT = 1


def read_source(source: Path) -> tuple[dict[str, Any], list[Path]]:
    """The generation manifest of a ``jetfm generate`` folder and its finished files (those
    the manifest lists; a file still being written is not listed yet)."""
    manifest_path = source / "manifest.json"
    if not manifest_path.is_file():
        raise DataError(f"{source}: no manifest.json — not a `jetfm generate` output folder?")
    try:
        manifest = json.loads(manifest_path.read_text())
        names = sorted(manifest["files"])
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{manifest_path}: unreadable generation manifest ({err})") from err
    paths = [source / name for name in names]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{manifest_path}: lists {missing[0].name}, which is not in the folder")
    if not paths:
        raise DataError(f"{manifest_path}: lists no files yet")
    return manifest, paths


def read_jets(paths: list[Path], task: str) -> tuple[dict[str, Any], np.ndarray, dict[str, Any]]:
    """``(columns, class index per jet, drop counts)`` of all the files: the four-vectors,
    the ``jet_*`` branches, and the task's label (jets without one already removed)."""
    from jetfm.data.reading import open_tree
    from jetfm.data.schema import BranchMapping

    mapping = BranchMapping()
    parts: list[dict[str, Any]] = []
    labels: list[np.ndarray] = []
    dropped_ids: dict[int, int] = {}
    jet_branches: list[str] | None = None
    for path in paths:
        handle, tree = open_tree(path, mapping)
        try:
            keys = set(tree.keys())
            if jet_branches is None:
                jet_branches = sorted(k for k in keys if k.startswith("jet_"))
            label_branches = (
                [f"label_{c}" for c in TASK_CLASSES["top"]] if task == "top" else [PARTON_BRANCH]
            )
            if task == "qg":
                label_branches.append("label_QCD")
            needed = [*PARTICLE_BRANCHES, *jet_branches, *label_branches]
            lacking = [b for b in needed if b not in keys]
            if lacking:
                raise DataError(f"{path}: no branch {lacking[0]!r} (needed for task {task!r})")
            a = tree.arrays(needed, library="ak")
        finally:
            handle.close()
        if task == "top":
            onehot = np.stack([ak.to_numpy(a[b]).astype(bool) for b in label_branches], axis=1)
            bad = onehot.sum(axis=1) != 1
            if bad.any():
                raise DataError(
                    f"{path}: entry {int(np.flatnonzero(bad)[0])} is neither QCD nor Tbqq "
                    "(label_QCD / label_Tbqq); generate the source with --classes QCD,Tbqq"
                )
            label = onehot.argmax(axis=1)
            keep = np.ones(len(label), dtype=bool)
        else:
            pid = np.abs(ak.to_numpy(a[PARTON_BRANCH]).astype(np.int64))
            qcd = ak.to_numpy(a["label_QCD"]).astype(bool)
            quark, gluon = np.isin(pid, QUARK_IDS), np.isin(pid, GLUON_IDS)
            keep = qcd & (quark | gluon)
            label = np.where(gluon, 1, 0)
            ids, counts = np.unique(np.where(qcd, pid, -1)[~keep], return_counts=True)
            for i, n in zip(ids.tolist(), counts.tolist(), strict=True):
                dropped_ids[i] = dropped_ids.get(i, 0) + n  # -1: a jet of another class
        parts.append({b: a[b][keep] for b in (*PARTICLE_BRANCHES, *(jet_branches or []))})
        labels.append(label[keep])
    columns = {k: ak.concatenate([p[k] for p in parts]) for k in parts[0]}
    drops = {
        "total": int(sum(dropped_ids.values())),
        "by_abs_pdg_id": {
            ("not QCD" if k < 0 else str(k)): v for k, v in sorted(dropped_ids.items())
        },
    }
    return columns, np.concatenate(labels), drops


def split_sizes(n: int, train: int, val: int, min_test: int) -> dict[str, int]:
    """``{split: jets}``: ``val`` for validation, the training split as large as leaves
    ``min_test`` for the test (at most ``train``), the rest for the test."""
    if n < val + min_test + 1:
        raise DataError(
            f"only {n} jets: need at least --val {val} + --min-test {min_test} + 1 for training"
        )
    n_train = min(train, n - val - min_test)
    return {"train": n_train, "val": val, "test": n - n_train - val}


def balance(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of a class-balanced subset (every class cut to the rarest one's count)."""
    classes = np.unique(labels)
    n = min(int(np.count_nonzero(labels == c)) for c in classes)
    keep = [rng.choice(np.flatnonzero(labels == c), size=n, replace=False) for c in classes]
    return np.sort(np.concatenate(keep))


def _native(array: Any) -> Any:
    """An awkward column as written: jagged float32, or a flat numpy array of its dtype."""
    if array.ndim > 1:
        return ak.values_astype(array, np.float32)
    return ak.to_numpy(array)


def prepare(
    source: str | Path,
    out: str | Path,
    task: str,
    *,
    train: int = 10_000,
    val: int = 2_000,
    min_test: int = 4_000,
    seed: int = 0,
    balanced: bool = False,
    pretraining_data: list[str | Path] | None = None,
    pretraining_record: list[str] | None = None,
) -> dict[str, Any]:
    """Write the test bed of ``task`` (``top`` or ``qg``) from the ``jetfm generate`` folder
    ``source`` into ``out`` (``train/``, ``val/``, ``test/`` with one ``jets.root`` each, and
    ``manifest.json``), atomically. Returns the manifest."""
    from jetfm.generation.writer import RootWriter, write_json_atomic

    if task not in TASK_CLASSES:
        raise JetFMError(f"unknown task {task!r}; choose from {sorted(TASK_CLASSES)}")
    source, out = Path(source).resolve(), Path(out)
    generation, paths = read_source(source)
    records = pretraining_records(pretraining_data or [], pretraining_record or [])
    shared = check_disjoint(generation, records)
    columns, labels, drops = read_jets(paths, task)
    classes = TASK_CLASSES[task]
    absent = [c for i, c in enumerate(classes) if not np.any(labels == i)]
    if absent:
        raise DataError(f"{source}: no {absent[0]} jets for task {task!r}")
    rng = np.random.default_rng(seed)
    pool = balance(labels, rng) if balanced else np.arange(len(labels))
    sizes = split_sizes(len(pool), train, val, min_test)
    order = pool[rng.permutation(len(pool))]
    bounds = np.cumsum([0, sizes["train"], sizes["val"], sizes["test"]])
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "task": task,
        "classes": list(classes),
        "branches": {
            "particles": list(PARTICLE_BRANCHES),
            "jet": [k for k in columns if k.startswith("jet_")],
            "labels": [f"label_{c}" for c in classes],
        },
        "seed": seed,
        "balanced": balanced,
        "source": str(source),
        "source_files": [p.name for p in paths],
        "source_jets": int(len(labels) + drops["total"]),
        "dropped": drops,
        "splits": {},
        "pretraining_checked": shared,
        "generation": generation,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(out) as stage:
        for i, split in enumerate(SPLITS):
            idx = order[bounds[i] : bounds[i + 1]]
            cols = {k: _native(v[idx]) for k, v in columns.items()}
            onehot = labels[idx][:, None] == np.arange(len(classes))[None, :]
            cols |= {f"label_{c}": onehot[:, j] for j, c in enumerate(classes)}
            with RootWriter(stage / split / "jets.root", flush_jets=len(idx) + 1) as writer:
                writer.write(cols)
            counts = {c: int(np.count_nonzero(onehot[:, j])) for j, c in enumerate(classes)}
            manifest["splits"][split] = {"file": f"{split}/jets.root", "n_jets": int(len(idx)),
                                         "classes": counts}  # fmt: skip
        write_json_atomic(stage / "manifest.json", manifest)
    return manifest


def _generation_facts(manifest: dict[str, Any]) -> tuple[int | None, int, str]:
    """(master seed, Pythia tune, detector card) of a generation manifest; a manifest from
    before the tune and detector options means Pythia's default tune at particle level."""
    from jetfm.generation.processes import DEFAULT_TUNE

    options = manifest.get("options", {})
    tune = options.get("tune", manifest.get("physics", {}).get("tune_pp", DEFAULT_TUNE))
    detector = options.get("detector")
    return manifest.get("seed"), tune, detector if detector is not None else "none"


def parse_record(text: str) -> dict[str, Any]:
    """A ``--pretraining-record`` (``seeds=301+401,tune=14,detector=none``): pre-training
    data known from its model card rather than a manifest on this machine."""
    try:
        fields = dict(item.split("=", 1) for item in text.split(","))
        return {"source": f"--pretraining-record {text}",
                "seeds": [int(x) for x in fields["seeds"].split("+")],
                "tune": int(fields["tune"]), "detector": fields["detector"]}  # fmt: skip
    except (KeyError, ValueError):
        raise JetFMError(
            f"--pretraining-record {text!r}: expected seeds=S1+S2+...,tune=T,detector=D"
        ) from None


def pretraining_records(folders: list[str | Path], records: list[str]) -> list[dict[str, Any]]:
    """``{source, seeds, tune, detector}`` of every generation ``manifest.json`` under the
    ``folders`` and of every ``--pretraining-record``."""
    out = [parse_record(text) for text in records]
    for root in folders:
        found = sorted(Path(root).rglob("manifest.json"))
        if not found:
            raise DataError(f"--pretraining-data {root}: no manifest.json under it")
        for path in found:
            other = json.loads(path.read_text())
            if "files" not in other or "splits" in other:  # not a generation manifest
                continue
            seed, tune, detector = _generation_facts(other)
            out.append({"source": str(path), "seeds": [seed], "tune": tune, "detector": detector})
    return out


def check_disjoint(generation: dict[str, Any], pretraining: list[dict[str, Any]]) -> list[dict]:
    """DataError when the test bed's generation seed, tune or detector is one of any
    pre-training record (:func:`pretraining_records`); returns the records (for the
    manifest)."""
    seed, tune, detector = _generation_facts(generation)
    for rec in pretraining:
        if seed in rec["seeds"]:
            raise DataError(f"{rec['source']}: pre-training data of the same generator seed {seed}")
        if rec["tune"] == tune:
            raise DataError(f"{rec['source']}: pre-training data of the same Pythia tune {tune}")
        if rec["detector"] == detector:
            raise DataError(f"{rec['source']}: pre-training data of the same detector {detector!r}")
    return pretraining


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, help="a `jetfm generate` output folder")
    parser.add_argument("--out", required=True, help="the test-bed folder (replaced)")
    parser.add_argument("--task", required=True, choices=sorted(TASK_CLASSES))
    parser.add_argument("--train", type=int, default=10_000, help="training jets, at most")
    parser.add_argument("--val", type=int, default=2_000, help="validation jets")
    parser.add_argument("--min-test", type=int, default=4_000, help="test jets, at least")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split")
    parser.add_argument("--balance", action="store_true",
                        help="cut every class to the rarest one's count first")  # fmt: skip
    parser.add_argument("--pretraining-data", action="append", default=[],
                        help="a folder of pre-training data (manifest.json files under it): "
                        "refuse a shared seed, tune or detector (repeatable)")  # fmt: skip
    parser.add_argument("--pretraining-record", action="append", default=[],
                        help="pre-training data known from a model card, e.g. "
                        "seeds=101+111+201+301+401,tune=14,detector=none (repeatable)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        manifest = prepare(args.source, args.out, args.task, train=args.train, val=args.val,
                           min_test=args.min_test, seed=args.seed, balanced=args.balance,
                           pretraining_data=args.pretraining_data,
                           pretraining_record=args.pretraining_record)  # fmt: skip
    except JetFMError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    opts = manifest["generation"].get("options", {})
    splits = ", ".join(f"{s} {v['n_jets']} {v['classes']}" for s, v in manifest["splits"].items())
    print(f"{args.out}: {args.task} ({splits}); dropped {manifest['dropped']['total']}; "
          f"source seed {manifest['generation'].get('seed')}, tune {opts.get('tune')}, "
          f"detector {opts.get('detector')}; {len(manifest['pretraining_checked'])} "
          "pre-training sources checked")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
