"""Fine-tune on your own ROOT files, whose branches are not named like JetClass.

What it shows: a YAML :class:`~jetfm.data.BranchMapping` (``examples/branch_map.yaml``:
tree ``Events``, ``pfcand_*`` particles, ``fj_*`` jet axis, ``truth_is_<class>`` labels),
checking the files against it, attaching it to the pretrained checkpoint's processor (the
normalisation statistics stay those of pre-training) and fine-tuning + evaluating a tagger.

To make a self-contained demo it first *writes* such files: JetClass-layout jets (Pythia,
or ``--data DIR`` with ``train/ val/ test/``) are renamed into the custom layout. With your
own files, skip that step::

    python examples/finetune_own_root_files.py --files 'mydata/{split}/*.root' \\
        --branch-map my_branches.yaml --max-steps 3000 --output runs/own

(``{split}`` is replaced by train, val and test.) Needs ``jetfm[generate]`` only when it
generates the demo jets.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPLITS = {"train": 101, "val": 102, "test": 103}


def write_custom_layout(source: str, target: Path, mapping, classes=None) -> Path:
    """Rewrite JetClass-layout files into the layout ``mapping`` describes (one output file
    per input file), keeping the label branches of ``classes`` (default: all). This is only
    the demo's stand-in for "your files"."""
    import awkward as ak
    import uproot

    from jetfm.data import BranchMapping, expand_paths

    jetclass = BranchMapping()
    target.mkdir(parents=True, exist_ok=True)
    particle = {f: getattr(mapping, f) for g in ("kinematics", "pid", "tracks")
                for f in BranchMapping.GROUP_FIELDS[g]}  # fmt: skip
    prefix = particle["px"].split("_")[0]  # "pfcand": the jagged branches share a counter
    for path in expand_paths(source):
        with uproot.open(path) as f:
            arrays = f[jetclass.tree].arrays()
        record = {getattr(mapping, k).removeprefix(prefix + "_"): arrays[getattr(jetclass, k)]
                  for k in particle}  # fmt: skip
        out = {prefix: ak.zip(record)}
        for field in BranchMapping.JET_FIELDS:
            out[getattr(mapping, field)] = arrays[getattr(jetclass, field)]
        for name in arrays.fields:
            cls = name.removeprefix(jetclass.label_prefix)
            if name.startswith(jetclass.label_prefix) and (classes is None or cls in classes):
                out[mapping.label_prefix + cls] = arrays[name]
        types = {k: v.type.content for k, v in out.items()}
        with uproot.recreate(target / path.name) as f:
            f.mktree(mapping.tree, types).extend(out)  # a TTree (not an RNTuple)
    return target


def demo_files(args: argparse.Namespace, mapping) -> str:
    """Files in the custom layout: ``OUTPUT/own_files/{split}/*.root``."""
    root = Path(args.output) / "own_files"
    classes = None  # keep every label branch of --data files
    for split, seed in SPLITS.items():
        if args.data:
            source = str(Path(args.data) / split)
        else:
            from jetfm.generation import generate_dataset  # needs jetfm[generate]

            source = str(Path(args.output) / "jetclass" / split)
            n = args.jets_per_class if split == "train" else max(4, args.jets_per_class // 3)
            classes = args.classes.split(",")
            generate_dataset(classes, n, source, seed=seed, chunk_size=n, workers=2)
        # the generator writes a label branch for every class it supports: keep ours only
        write_custom_layout(source, root / split, mapping, classes)
    return str(root / "{split}" / "*.root")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", default=None, help="your files; '{split}' → train/val/test")
    parser.add_argument("--branch-map", default=str(HERE / "branch_map.yaml"))
    parser.add_argument(
        "--data", default=None, help="JetClass-layout demo input (train/ val/ test/)"
    )
    parser.add_argument("--model", default="mpm-flow-tiny")
    parser.add_argument("--output", default="runs/own_files")
    parser.add_argument("--classes", default="QCD,Tbqq,Wqq,Hbb")
    parser.add_argument("--jets-per-class", type=int, default=300)
    parser.add_argument("--max-steps", type=int, default=200)
    args = parser.parse_args(argv)

    from jetfm.data import BranchMapping, JetProcessor, detect_feature_groups
    from jetfm.evaluation import evaluate_checkpoint
    from jetfm.finetuning import finetune
    from jetfm.hub import resolve_pretrained
    from jetfm.metrics import format_table

    mapping = BranchMapping.from_yaml(args.branch_map)
    files = args.files or demo_files(args, mapping)
    split = {s: files.format(split=s) for s in SPLITS}
    # Which feature groups do the files provide under this mapping? (DataError if the
    # 4-vectors are missing, naming the file and the branch.)
    print("feature groups in the files:", detect_feature_groups(split["train"], mapping))

    # Attach the mapping to a local copy of the pretrained checkpoint: fine-tuning reads the
    # files with the processor saved there, so statistics and mapping travel together.
    out = Path(args.output)
    base = out / "pretrained"
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(resolve_pretrained(args.model), base)
    processor = JetProcessor.from_pretrained(str(base))
    processor.branch_mapping = mapping.to_dict()
    processor.save_pretrained(str(base))

    result = finetune(base, "tagging", split["train"], split["val"], out / "model",
                      max_steps=args.max_steps, batch_size=64, lr=1e-3,
                      early_stopping_patience=None)  # fmt: skip
    print("classes:", list(result.model.config.id2label.values()))
    metrics = evaluate_checkpoint(out / "model", split["test"], plots_dir=out / "plots")
    print(format_table(metrics))
    return metrics


if __name__ == "__main__":
    main()
