"""Fine-tune on parquet files laid out like JetClass-II: jagged columns and a label column.

What it shows: one row per jet, list columns per particle (four-vectors, particle ID and
track parameters under the JetClass names) and an integer ``jet_label``, read through a YAML
:class:`~jetfm.data.BranchMapping` (``examples/jetclass2_parquet.yaml``); streaming
statistics over the row groups; fine-tuning with every feature group the files have;
predictions written as a parquet file of the same rows beside the test file.

With your files::

    python examples/finetune_jetclass2_parquet.py --files 'jc2/{split}/*.parquet' \\
        --max-steps 2000 --output runs/jc2

(``{split}`` is replaced by train, val and test.) ``--demo-from DIR`` instead writes such
files from JetClass-layout ROOT files in ``DIR/{train,val,test}/``.
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--model", default="mpm-flow-base")
    parser.add_argument("--output", default="runs/jetclass2_parquet")
    parser.add_argument("--max-steps", type=int, default=250)
    args = parser.parse_args(argv)

    from jetfm.data import BranchMapping, JetProcessor, detect_feature_groups
    from jetfm.evaluation import evaluate_checkpoint
    from jetfm.finetuning import finetune
    from jetfm.inference import predict_files
    from jetfm.metrics import format_table

    out = Path(args.output)
    mapping = BranchMapping.from_yaml(args.branch_map)
    files = args.files
    if files is None:
        demo = Path(args.demo_from or "data")
        for split in SPLITS:
            target = out / "files" / split / "jets.parquet"
            write_jetclass2_file(str(demo / split), target, list(mapping.label_classes or ()))
        files = str(out / "files" / "{split}" / "*.parquet")
    split = {s: files.format(split=s) for s in SPLITS}
    groups = detect_feature_groups(split["train"], mapping)
    print("feature groups in the files:", groups)
    # the files' own statistics, in one streaming pass over the row groups
    stats = JetProcessor(feature_groups=groups, branch_mapping=mapping)
    stats.fit(split["train"], step_size=64, progress=False)
    print(stats)

    result = finetune(args.model, "tagging", split["train"], split["val"], out / "model",
                      mapping=mapping, max_steps=args.max_steps, batch_size=100, lr=2e-3,
                      early_stopping_patience=None)  # fmt: skip
    metrics = evaluate_checkpoint(out / "model", split["test"], progress=False)
    print(format_table(metrics))
    # predictions beside the input, in its format: a parquet file with the same rows
    summary = predict_files(out / "model", split["test"], out / "predictions", progress=False)
    print("predictions:", summary["outputs"])
    return {"metrics": metrics, "predictions": summary["outputs"], "result": result}


if __name__ == "__main__":
    main()
