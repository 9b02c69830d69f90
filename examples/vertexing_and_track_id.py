"""Track identification and secondary-vertex finding with the same pretrained backbone.

What it shows: the two per-particle tasks. ``track-id`` classifies each charged track's
origin (primary, b, b→c, c, τ, other; truth branch ``part_origin``); ``vertexing`` scores
every pair of tracks as sharing a vertex or not and groups them (truth ``part_vtx``),
evaluated with the adjusted Rand index per jet. Heavy-flavour jets (Hbb, Hcc, Tbqq) carry
the displaced vertices; QCD adds light jets. With a checkpoint pre-trained on track origin
(``--model mpm-truth-det-base``) the track-id head starts from its pre-trained origin head,
and tells displaced tracks from prompt ones before the first step.

Run (needs ``jetfm[generate]`` unless ``--data DIR`` with ``train/ val/ test/``)::

    python examples/vertexing_and_track_id.py --output runs/tracking
    python examples/vertexing_and_track_id.py --jets-per-class 20000 --max-steps 5000
"""

from __future__ import annotations

import argparse
from pathlib import Path

SPLITS = {"train": 101, "val": 102, "test": 103}


def get_data(args: argparse.Namespace) -> dict[str, str]:
    if args.data:
        return {s: str(Path(args.data) / s) for s in SPLITS}
    from jetfm.generation import generate_dataset  # needs jetfm[generate]

    out = {}
    for split, seed in SPLITS.items():
        n = args.jets_per_class if split == "train" else max(4, args.jets_per_class // 3)
        out[split] = str(Path(args.output) / "data" / split)
        generate_dataset(args.classes.split(","), n, out[split], seed=seed, chunk_size=n,
                         workers=2)  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="runs/tracking")
    parser.add_argument("--model", default="mpm-flow-tiny")
    parser.add_argument("--data", default=None)
    parser.add_argument("--classes", default="QCD,Hbb,Hcc,Tbqq")
    parser.add_argument("--jets-per-class", type=int, default=400)
    parser.add_argument("--max-steps", type=int, default=300)
    args = parser.parse_args(argv)

    from jetfm.evaluation import evaluate_checkpoint
    from jetfm.finetuning import finetune
    from jetfm.metrics import format_table

    data = get_data(args)
    results = {}
    for task in ("track-id", "vertexing"):
        out = Path(args.output) / task
        finetune(args.model, task, data["train"], data["val"], out, max_steps=args.max_steps,
                 batch_size=64, lr=1e-3, early_stopping_patience=None)  # fmt: skip
        results[task] = evaluate_checkpoint(out, data["test"], plots_dir=out / "plots",
                                            progress=False)  # fmt: skip
        print(f"--- {task}")
        print(format_table(results[task]))
    return results


if __name__ == "__main__":
    main()
