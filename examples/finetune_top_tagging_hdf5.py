"""Fine-tune on HDF5 files of padded four-vectors, the top-tagging reference layout.

What it shows: files holding only a zero-padded ``(n_jets, n_particles, 4)`` array of
(E, px, py, pz) and a class index per jet, read through a YAML
:class:`~jetfm.data.BranchMapping` (``examples/top_tagging_hdf5.yaml``); a pretrained
checkpoint that knows particle ID and tracks (``mpm-truth-det-base``) fine-tuned on the
four-vectors the files have (the groups are chosen from the files, and logged); the metrics;
and predictions written beside the test file as an HDF5 file whose datasets are aligned row
by row with it.

With 100 to 1,000 labels, ``mode="probe"`` (``jetfm finetune --mode probe``: a logistic
regression on the frozen backbone) is the recipe validation chose for this checkpoint on
four-vector jets (``docs/results.md``); the example keeps the default, full fine-tuning.

With your files::

    python examples/finetune_top_tagging_hdf5.py --files 'toptag/{split}.h5' \\
        --max-steps 2000 --output runs/toptag

(``{split}`` is replaced by train, val and test.) ``--demo-from DIR`` instead writes such
files from JetClass-layout ROOT files in ``DIR/{train,val,test}/`` (the demo's stand-in for
the public files).
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


def write_top_tagging_file(source: str, target: Path, classes: tuple[str, str]) -> Path:
    """The jets of JetClass-layout ``source`` files of two classes as one top-tagging-layout
    HDF5 file (``Pmu`` zero-padded to 200 particles, ``is_signal``)."""
    import awkward as ak
    import h5py
    import numpy as np

    from jetfm.data import expand_paths

    arrays = ak.concatenate([read_tree(p) for p in expand_paths(source)])  # small demo files
    width = 200
    vectors = np.stack(
        [ak.to_numpy(ak.fill_none(ak.pad_none(arrays[k], width, clip=True), 0.0))
         for k in ("part_energy", "part_px", "part_py", "part_pz")], axis=-1,
    )  # fmt: skip
    target.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(target, "w") as f:
        f["Pmu"] = vectors.astype(np.float32)
        f["is_signal"] = ak.to_numpy(arrays[f"label_{classes[1]}"]).astype(np.int64)
    return target


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", default=None, help="your files; '{split}' → train/val/test")
    parser.add_argument("--demo-from", default=None, help="JetClass-layout ROOT demo input")
    parser.add_argument("--branch-map", default=str(HERE / "top_tagging_hdf5.yaml"))
    parser.add_argument("--model", default="mpm-truth-det-base")
    parser.add_argument("--output", default="runs/top_tagging_hdf5")
    parser.add_argument("--max-steps", type=int, default=250)
    args = parser.parse_args(argv)

    from jetfm.data import BranchMapping, detect_feature_groups, resolve_label_names
    from jetfm.evaluation import evaluate_checkpoint
    from jetfm.finetuning import finetune
    from jetfm.inference import predict_files
    from jetfm.metrics import format_table

    out = Path(args.output)
    mapping = BranchMapping.from_yaml(args.branch_map)
    files = args.files
    if files is None:
        demo = Path(args.demo_from or "data")
        classes = tuple(mapping.label_classes or ("QCD", "Tbqq"))
        for split in SPLITS:
            write_top_tagging_file(str(demo / split), out / "files" / f"{split}.h5", classes)
        files = str(out / "files" / "{split}.h5")
    split = {s: files.format(split=s) for s in SPLITS}
    print("feature groups in the files:", detect_feature_groups(split["train"], mapping))
    print("classes:", resolve_label_names(split["train"], mapping))

    # the checkpoint's processor keeps its statistics; the mapping says where things are
    result = finetune(args.model, "tagging", split["train"], split["val"], out / "model",
                      mapping=mapping, max_steps=args.max_steps, batch_size=100, lr=2e-3,
                      early_stopping_patience=None)  # fmt: skip
    metrics = evaluate_checkpoint(out / "model", split["test"], progress=False)
    print(format_table(metrics))
    # predictions beside the input, in its format: datasets score_<class>, row i = jet i
    summary = predict_files(out / "model", split["test"], out / "predictions", progress=False)
    print("predictions:", summary["outputs"])
    return {"metrics": metrics, "predictions": summary["outputs"], "result": result}


if __name__ == "__main__":
    main()
