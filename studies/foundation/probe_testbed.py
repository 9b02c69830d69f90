"""Frozen-backbone probes on the domain-shifted test bed: a cheap monitor of transfer.

For every checkpoint (and a randomly initialised twin) this computes the frozen jet
representation the tagging head reads (``[class-attention jet state, mean particle state]``)
on the test bed's four-vectors, fits a logistic regression on ``--labels`` labelled jets of
the training split (C chosen on the validation split; one draw per seed) and reports test
accuracy. For a checkpoint with a pre-training ``class`` head it also reports the head's
**zero-shot** accuracy (no test-bed labels at all): top vs QCD from ``P(Tbqq)`` against the
summed QCD classes; quark vs gluon from ``P(QCD_gluon)`` against ``P(QCD_light) +
P(QCD_heavy)``, with the threshold fixed on the validation split.

Rows are appended to ``--out`` (JSON lines). A full fine-tune costs minutes a run; this costs
seconds, so it can follow a pre-training run checkpoint by checkpoint.

Example::

    python studies/foundation/probe_testbed.py --testbed /work/data/testbed \\
        --checkpoints base=mpm-flow-base,truth=mpm-truth-det-base \\
        --out /work/results/foundation/probe.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import uproot

from jetfm.data import JetDataset, JetProcessor, dataset_to_batch
from jetfm.hub import resolve_pretrained
from jetfm.loading import load_processor
from jetfm.modeling import JetFMModel
from jetfm.modeling.heads import masked_mean

TASK_LABELS = {"top": ("label_QCD", "label_Tbqq"), "qg": ("label_quark", "label_gluon")}
#: the pre-training classes that make up the positive / negative test-bed class, zero-shot
ZERO_SHOT = {
    "top": (("Tbqq",), ("QCD_light", "QCD_gluon", "QCD_heavy")),
    "qg": (("QCD_gluon",), ("QCD_light", "QCD_heavy")),
}
C_GRID = (0.01, 0.1, 1.0, 10.0)


def read_labels(file: Path, task: str) -> np.ndarray:
    """0/1 label per jet (1: top, or gluon) from the test bed's label branches."""
    negative, positive = TASK_LABELS[task]
    arrays = uproot.open(file)["tree"].arrays([negative, positive], library="np")
    if not np.all(arrays[negative] + arrays[positive] == 1):
        raise ValueError(f"{file}: {negative} and {positive} are not one-hot")
    return arrays[positive].astype(int)


@torch.inference_mode()
def representation(backbone: JetFMModel, batch: dict, chunk: int = 500) -> np.ndarray:
    """``[jet state, mean particle state]`` of every jet (the tagging head's input)."""
    parts = []
    for i in range(0, len(batch["mask"]), chunk):
        mask = batch["mask"][i : i + chunk]
        out = backbone(kinematics=batch["kinematics"][i : i + chunk], mask=mask)
        parts.append(torch.cat([out.pooler_output, masked_mean(out.last_hidden_state, mask)], -1))
    return torch.cat(parts).float().numpy()


def load(name: str, path: str, train: Path) -> tuple[JetFMModel, JetProcessor, Path | None]:
    """Backbone and processor of a checkpoint; ``random``: a fresh ``base``-size backbone
    with statistics fitted on the training split (as scratch fine-tuning has);
    ``random:CHECKPOINT``: the same with that checkpoint's architecture (its random twin)."""
    if name == "random" or path.startswith("random:"):
        from jetfm.configuration import JetFMConfig

        twin = path.split(":", 1)[1] if path.startswith("random:") else "mpm-flow-base"
        folder = Path(resolve_pretrained(twin))
        torch.manual_seed(0)
        processor = JetProcessor(feature_groups=("kinematics",))
        processor.fit(str(train), progress=False)
        return JetFMModel(JetFMConfig.from_pretrained(str(folder))).eval(), processor, None
    folder = Path(resolve_pretrained(path))
    return JetFMModel.from_pretrained(str(folder)).eval(), load_processor(folder), folder


def zero_shot_scores(folder: Path, batches: dict, task: str) -> dict | None:
    """``{split: P(positive) / (P(positive) + P(negative))}`` from the pre-training class head
    on the ``val`` and ``test`` batches, or None for a checkpoint without one or whose head
    never saw one of the task's classes (held out of its supervision)."""
    from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling

    if not (folder / "model.safetensors").is_file():
        return None
    model = JetFMForMaskedParticleModeling.from_pretrained(str(folder)).eval()
    head = getattr(getattr(model, "truth", None), "jet_class", None)
    if head is None:
        return None
    classes = list(model.config.pretrain_classes)
    if not set(ZERO_SHOT[task][0] + ZERO_SHOT[task][1]) <= set(classes):
        return None
    positive, negative = ([classes.index(c) for c in group] for group in ZERO_SHOT[task])
    scores = {}
    with torch.inference_mode():
        for split in ("val", "test"):
            jet = torch.from_numpy(representation(model.jetfm, batches[split]))
            p = head(jet).float().softmax(-1)
            scores[split] = (p[:, positive].sum(-1) / p[:, positive + negative].sum(-1)).numpy()
    return scores


def probe(x: dict, y: dict, labels: int, seed: int) -> dict:
    """Logistic regression on ``labels`` training jets, C chosen on validation."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    pick = rng.choice(len(y["train"]), size=min(labels, len(y["train"])), replace=False)
    best = None
    for c in C_GRID:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
        clf.fit(x["train"][pick], y["train"][pick])
        val = clf.score(x["val"], y["val"])
        if best is None or val > best[0]:
            best = (val, c, clf.score(x["test"], y["test"]))
    return {"val": best[0], "C": best[1], "accuracy": best[2]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--testbed", required=True)
    parser.add_argument(
        "--checkpoints",
        required=True,
        help="NAME=PATH,... (random: a fresh base backbone; NAME=random:PATH: PATH's architecture)",
    )
    parser.add_argument("--tasks", default="top,qg")
    parser.add_argument("--labels", default="1000")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    entries = dict(e.split("=", 1) if "=" in e else (e, e) for e in args.checkpoints.split(","))
    for task in args.tasks.split(","):
        files = {s: Path(args.testbed) / task / s / "jets.root" for s in ("train", "val", "test")}
        y = {s: read_labels(f, task) for s, f in files.items()}
        for name, path in entries.items():
            backbone, processor, folder = load(name, path, files["train"])
            x, batches = {}, {}
            for split, file in files.items():
                ds = JetDataset(str(file), processor, targets=(), feature_groups=("kinematics",))
                if len(ds) != len(y[split]):
                    raise ValueError(f"{file}: {len(ds)} jets read, {len(y[split])} labels")
                batches[split] = dataset_to_batch(ds, targets=())
                x[split] = representation(backbone, batches[split])
            rows = []
            for n in (int(v) for v in args.labels.split(",")):
                for seed in range(args.seeds):
                    rows.append({"task": task, "model": name, "kind": "probe", "labels": n,
                                 "seed": seed, **probe(x, y, n, seed)})  # fmt: skip
            scores = zero_shot_scores(folder, batches, task) if folder else None
            if scores is not None:
                rows.append(zero_shot_row(task, name, scores, y))
            with out.open("a") as f:
                for row in rows:
                    f.write(json.dumps(row) + "\n")
            summary = [r for r in rows if r["kind"] == "probe"]
            for n in sorted({r["labels"] for r in summary}):
                acc = [r["accuracy"] for r in summary if r["labels"] == n]
                print(f"{task} {name} probe@{n}: {np.mean(acc):.4f} ± {np.std(acc):.4f}")
            if scores is not None:
                print(f"{task} {name} zero-shot: {rows[-1]['accuracy']:.4f}")


def zero_shot_row(task: str, name: str, scores: dict, y: dict) -> dict:
    """Zero-shot accuracy on test, the threshold set on validation (the test-bed classes are
    balanced differently from the pre-training mixture), and the test AUC."""
    from sklearn.metrics import roc_auc_score

    order = np.argsort(scores["val"])
    ranked, truth = scores["val"][order], y["val"][order]
    # cut just above the k lowest scores: those are called 0, the rest 1
    correct = np.cumsum(np.r_[0, 1 - truth]) + (truth.sum() - np.cumsum(np.r_[0, truth]))
    best = int(np.argmax(correct))
    edges = np.r_[ranked[0] - 1, ranked, ranked[-1] + 1]
    cut = (edges[best] + edges[best + 1]) / 2  # midway between neighbouring scores
    return {"task": task, "model": name, "kind": "zero-shot", "labels": 0, "seed": 0,
            "val": float(correct[best] / len(truth)), "cut": float(cut),
            "accuracy": float(np.mean((scores["test"] > cut) == y["test"])),
            "auc": float(roc_auc_score(y["test"], scores["test"]))}  # fmt: skip


if __name__ == "__main__":
    main()
