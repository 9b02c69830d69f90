"""Fine-tune on quark/gluon jets in EnergyFlow's ``.npz`` layout, read as published.

What it shows: ``.npz`` files holding ``X`` ``(n_jets, n_particles, 4)`` = (pT, y, φ, PDG id),
zero-padded, and ``y`` (1 = quark, 0 = gluon) — the layout of the Pythia/Herwig quark–gluon
sets (``QG_jets*.npz``, Zenodo 3164691) — read through the named layout ``qg-npz``: no
conversion step, no mapping file. The four-vectors are built from (pT, y, φ) with the PDG
masses, the PDG ids feed the particle-ID features, and the model's groups are chosen from
what the files have. Then the metrics, and predictions for the test file (an HDF5 file
aligned row by row with it).

With the published files::

    python examples/finetune_quark_gluon_npz.py \\
        --files 'QG_jets_{split}.npz' --max-steps 2000 --output runs/qg

(``{split}`` is replaced by train, val and test.) The same on the command line::

    jetfm finetune --model mpm-truth-det-base --task tagging --layout qg-npz \\
        --train QG_jets_train.npz --val QG_jets_val.npz --output runs/qg

With 100 to 1,000 labels, ``mode="probe"`` (``--mode probe`` on the command line: a
logistic regression on the frozen backbone) is the recipe validation chose for
``mpm-truth-det-base`` on quark/gluon and top jets of four-vectors only
(``docs/results.md``); the example keeps the default, full fine-tuning.

Without ``--files`` the example writes small files of that layout itself (synthetic jets:
gluon jets have more, and more widely spread, particles than quark jets).
"""

from __future__ import annotations

import argparse
from pathlib import Path

SPLITS = ("train", "val", "test")
#: a mix of long-lived particles (PDG ids) for the synthetic jets
SPECIES = (22, 22, 22, 211, -211, 211, -211, 321, -321, 130, 2112, 2212, -2212, 11, -13)


def write_qg_file(path: Path, n_jets: int, seed: int) -> Path:
    """``n_jets`` synthetic quark/gluon jets (half each) as an EnergyFlow-layout ``.npz``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    quark = np.arange(n_jets) % 2 == 1
    counts = rng.poisson(np.where(quark, 16, 30)) + 3
    width = int(counts.max())
    x = np.zeros((n_jets, width, 4))
    for i, (n, is_quark) in enumerate(zip(counts, quark, strict=True)):
        jet_pt, jet_y = rng.uniform(500, 550), rng.uniform(-1.7, 1.7)
        jet_phi = rng.uniform(0, 2 * np.pi)
        spread = 0.08 if is_quark else 0.15
        share = rng.exponential(1.0, n) ** 2
        x[i, :n, 0] = np.sort(share / share.sum())[::-1] * jet_pt  # pT, leading first
        x[i, :n, 1] = jet_y + rng.normal(0, spread, n)  # rapidity
        x[i, :n, 2] = jet_phi + rng.normal(0, spread, n)  # φ within π of the jet
        x[i, :n, 3] = rng.choice(SPECIES, n)  # PDG id
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, X=x, y=quark.astype(np.float64))
    return path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", default=None, help="your files; '{split}' → train/val/test")
    parser.add_argument("--jets", type=int, default=400, help="jets per written training file")
    parser.add_argument("--model", default="mpm-truth-det-base")
    parser.add_argument("--output", default="runs/quark_gluon_npz")
    parser.add_argument("--max-steps", type=int, default=250)
    args = parser.parse_args(argv)

    from jetfm.data import detect_feature_groups, resolve_label_names
    from jetfm.data.layouts import get_layout
    from jetfm.evaluation import evaluate_checkpoint
    from jetfm.finetuning import finetune
    from jetfm.inference import predict_files
    from jetfm.metrics import format_table

    out = Path(args.output)
    files = args.files
    if files is None:
        sizes = {
            "train": args.jets,
            "val": max(args.jets // 4, 20),
            "test": max(args.jets // 4, 20),
        }
        for i, split in enumerate(SPLITS):
            write_qg_file(out / "files" / f"QG_jets_{split}.npz", sizes[split], seed=i)
        files = str(out / "files" / "QG_jets_{split}.npz")
    split = {s: files.format(split=s) for s in SPLITS}
    layout = get_layout("qg-npz")
    print("feature groups in the files:", detect_feature_groups(split["train"], layout))
    print("classes:", resolve_label_names(split["train"], layout))

    result = finetune(args.model, "tagging", split["train"], split["val"], out / "model",
                      mapping="qg-npz", max_steps=args.max_steps, batch_size=64, lr=2e-3,
                      early_stopping_patience=None)  # fmt: skip
    metrics = evaluate_checkpoint(out / "model", split["test"], progress=False)
    print(format_table(metrics))
    # the fine-tuned processor keeps the layout: predicting needs no mapping either
    summary = predict_files(out / "model", split["test"], out / "predictions", progress=False)
    print("predictions:", summary["outputs"])
    return {"metrics": metrics, "predictions": summary["outputs"], "result": result}


if __name__ == "__main__":
    main()
