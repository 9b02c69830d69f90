"""Fine-tune on parquet files laid out like JetClass-II: jagged columns and a label column.

What it shows, with the ``jetfm`` commands a user types (run in-process): one row per jet,
list columns per particle (four-vectors, particle ID and track parameters under the JetClass
names) and an integer ``jet_label``, read through a YAML
:class:`~jetfm.data.BranchMapping` (``examples/jetclass2_parquet.yaml``, ``--branch-map``);
streaming statistics over the row groups (``jetfm stats``); fine-tuning with every feature
group the files have; metrics; predictions written as a parquet file of the same rows.

With your files::

    python examples/finetune_jetclass2_parquet.py --files 'jc2/{split}/*.parquet' \\
        --max-steps 2000 --output runs/jc2

(``{split}`` is replaced by train, val and test.) ``--demo-from DIR`` instead writes such
files from JetClass-layout ROOT files in ``DIR/{train,val,test}/``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPLITS = ("train", "val", "test")


def read_tree(path):
    """Every branch of a JetClass-layout ROOT file (the demo's source jets)."""
    import uproot

    with uproot.open(path) as f:
        return f["tree"].arrays()


def write_jetclass2_file(source: str, target: Path, classes: list[str]) -> Path:
    """The jets of JetClass-layout ``source`` files as one parquet file: the ``part_*`` list
    columns, ``jet_*`` columns and ``jet_label`` (index into ``classes``)."""
    import awkward as ak
    import numpy as np

    from jetfm.data import expand_paths

    arrays = ak.concatenate([read_tree(p) for p in expand_paths(source)])  # small demo files
    columns = {k: arrays[k] for k in arrays.fields if k.startswith(("part_", "jet_"))}
    onehot = np.stack([ak.to_numpy(arrays[f"label_{c}"]) for c in classes], axis=1)
    columns["jet_label"] = onehot.argmax(axis=1).astype(np.int32)
    target.parent.mkdir(parents=True, exist_ok=True)
    ak.to_parquet(ak.Array(columns), target, row_group_size=64)  # JetClass-II: many groups
    return target


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", default=None, help="your files; '{split}' → train/val/test")
    parser.add_argument("--demo-from", default=None, help="JetClass-layout ROOT demo input")
    parser.add_argument("--branch-map", default=str(HERE / "jetclass2_parquet.yaml"))
    parser.add_argument("--model", default="mpm-truth-det-base")
    parser.add_argument("--output", default="runs/jetclass2_parquet")
    parser.add_argument("--max-steps", type=int, default=250)
    args = parser.parse_args(argv)

    from jetfm.cli import main as jetfm  # the commands a user types, run in-process

    out = Path(args.output)
    files = args.files
    if files is None:
        from jetfm.data import BranchMapping

        classes = list(BranchMapping.from_yaml(args.branch_map).label_classes or ())
        demo = Path(args.demo_from or "data")
        for split in SPLITS:
            target = out / "files" / split / "jets.parquet"
            write_jetclass2_file(str(demo / split), target, classes)
        files = str(out / "files" / "{split}" / "*.parquet")
    split = {s: files.format(split=s) for s in SPLITS}
    layout = ["--branch-map", args.branch_map]
    # the files' own statistics, in one streaming pass over the row groups
    steps = [
        ["stats", "--data", split["train"], "--output", str(out / "stats"), "--step-size", "64",
         *layout],
        ["finetune", "--model", args.model, "--task", "tagging", "--train", split["train"],
         "--val", split["val"], "--output", str(out / "model"), "--max-steps",
         str(args.max_steps), "--batch-size", "100", "--lr", "2e-3", "--patience", "0", *layout],
        # the mapping is saved with the model: evaluate and predict need no --branch-map
        ["evaluate", "--model", str(out / "model"), "--data", split["test"], "--output",
         str(out / "metrics.json"), "--no-progress"],
        # a parquet file with the same rows, beside the input's name, in --out
        ["predict", "--model", str(out / "model"), "--data", split["test"], "--out",
         str(out / "predictions"), "--no-progress"],
    ]  # fmt: skip
    for command in steps:
        print("$ jetfm", " ".join(command))
        if jetfm(command) != 0:
            raise SystemExit(f"jetfm {command[0]} failed")
    return {
        "metrics": json.loads((out / "metrics.json").read_text()),
        "config": json.loads((out / "model" / "config.json").read_text()),
        "predictions": sorted(str(p) for p in (out / "predictions").glob("*.parquet")),
    }


if __name__ == "__main__":
    main()
