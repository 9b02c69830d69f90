"""Build a releasable checkpoint folder (exactly the Hub repo) reproducibly, in one command.

Steps: (optionally) generate Pythia jets with `jetfm generate`; pre-train with
`jetfm pretrain`; export the backbone (safetensors, float32 or float16) with the processor
statistics and the training record; (optionally) measure a downstream linear probe of the
jet class on frozen jet states, against the same architecture with random weights; write
provenance.json (data, exact commands, hardware, wall time) and the generated model card;
check every file is at most --max-file-mb; atomically replace OUT/NAME (the folder is
staged in a hidden ``OUT/.NAME.tmp-*`` that is removed whenever the release fails).

Example (the shipped tiny checkpoint):

    jetfm release --name mpm-flow-tiny --generate-jets-per-class 400 --size tiny \
        --target flow --max-steps 300 --out model_cards
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

NAME = "release"
HELP = "pre-train and package a checkpoint folder (weights, card, provenance) for the Hub"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from jetfm.commands.generate import classes_option
    from jetfm.defaults import MPM_TARGETS
    from jetfm.option_checks import non_negative_int, positive_float, positive_int, seed
    from jetfm.pretraining import SIZES

    parser.add_argument("--name", required=True, help="checkpoint name (folder and Hub repo name)")
    parser.add_argument("--out", default="model_cards", help="folder receiving OUT/NAME")
    parser.add_argument("--data", default=None, help="training ROOT files (glob)")
    parser.add_argument(
        "--generate-jets-per-class",
        type=non_negative_int,
        default=0,
        help="generate this many Pythia jets per class with `jetfm generate` instead of --data",
    )
    parser.add_argument("--classes", type=classes_option, default="QCD,Tbqq,Wqq,Zqq,Hbb,Hcc",
                        help="generated classes")  # fmt: skip
    parser.add_argument("--probe-jets-per-class", type=non_negative_int, default=0,
                        help="also generate held-out jets (different seed) for a linear probe")  # fmt: skip
    parser.add_argument("--probe-data", default=None, help="held-out labelled ROOT files (glob)")
    parser.add_argument(
        "--target", choices=MPM_TARGETS, default="flow", help="MPM target (see jetfm pretrain)"
    )
    parser.add_argument("--size", choices=SIZES, default="tiny", help="size preset")
    parser.add_argument("--max-steps", type=positive_int, default=300, help="pre-training steps")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="jets per step")
    parser.add_argument("--lr", type=positive_float, default=5e-4, help="peak learning rate")
    parser.add_argument("--seed", type=seed, default=42, help="training seed")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                        help="stored weight precision (loading always gives float32)")  # fmt: skip
    parser.add_argument(
        "--max-file-mb", type=positive_float, default=25.0, help="size limit per file"
    )
    parser.add_argument("--work", default=None, help="keep intermediate files here")
    parser.add_argument("--metrics", default=None, help="extra metrics.json to merge in")
    parser.add_argument("--summary", default=None, help="one paragraph for the card")
    parser.add_argument("--summary-file", default=None,
                        help="Markdown file for the card's summary (e.g. a study's table)")  # fmt: skip
    parser.add_argument("--pretrained", default=None,
                        help="package this finished `jetfm pretrain` output instead of training")  # fmt: skip
    parser.add_argument("--data-manifest", action="append", default=[],
                        help="with --pretrained: the generator manifest(s) of its training data")  # fmt: skip
    parser.add_argument("--data-info", default=None,
                        help="with --pretrained: JSON of card data facts overriding the manifests'")  # fmt: skip
    parser.add_argument("--commands-file", default=None,
                        help="with --pretrained: the exact commands that produced it")  # fmt: skip
    parser.add_argument("--hardware", default=None, help="with --pretrained: where it trained")
    parser.add_argument("--attach", action="append", default=[],
                        help="extra file copied into the folder (e.g. a plot the card shows)")  # fmt: skip
    parser.add_argument("--limitation", action="append", default=[],
                        help="a limitation stated in the card (repeatable)")  # fmt: skip


def _hardware() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu} ({os.cpu_count()} logical cores visible, {torch.get_num_threads()} torch threads){gpu}"


def _cli(argv: list[str]) -> str:
    """Run a jetfm subcommand in-process; returns its command line for the record."""
    from jetfm.cli import main
    from jetfm.errors import JetFMError

    line = "jetfm " + " ".join(shlex.quote(a) for a in argv)
    logger.info("running: %s", line)
    if main(argv) != 0:
        raise JetFMError(f"`{line}` failed")
    return line


def _pretrain(options: Any) -> str:
    """Pre-train with :func:`jetfm.pretrain`; returns the equivalent ``jetfm pretrain``
    command line for the record."""
    from jetfm.pretraining import pretrain

    argv = ["pretrain", "--data", options.data, "--output", options.output_dir,
            "--target", options.target, "--size", options.size,
            "--max-steps", str(options.max_steps), "--batch-size", str(options.batch_size),
            "--lr", str(options.lr), "--seed", str(options.seed),
            "--save-steps", str(options.save_steps),
            "--logging-steps", str(options.logging_steps)]  # fmt: skip
    line = "jetfm " + " ".join(shlex.quote(a) for a in argv)
    logger.info("running: %s", line)
    pretrain(options)
    return line


def _jet_states(model: Any, batch: dict, chunk: int = 512):
    import numpy as np

    from jetfm.runner import JetRunner

    runner = JetRunner(model)
    parts = [
        runner({k: v[i : i + chunk] for k, v in batch.items()})["jet_state"]
        for i in range(0, len(batch["mask"]), chunk)
    ]
    return np.concatenate([p.numpy() for p in parts])


def linear_probe(backbone: Any, probe_data: str, processor: Any, seed: int) -> list[dict]:
    """Jet-class accuracy of a logistic regression on frozen jet states (half the jets to fit,
    half to test), for the pre-trained backbone and for a randomly initialised one."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from jetfm.data import JetDataset, dataset_to_batch
    from jetfm.modeling import JetFMModel

    dataset = JetDataset(probe_data, processor, targets=("labels",))
    batch = dataset_to_batch(dataset)
    labels = batch["labels"].numpy()
    idx_fit, idx_test = train_test_split(
        np.arange(len(labels)), test_size=0.5, random_state=seed, stratify=labels
    )
    torch.manual_seed(seed)
    random_model = JetFMModel(backbone.config).eval()
    results = []
    names = processor.label_names or []
    for tag, model in (("pre-trained", backbone.eval()), ("random init", random_model)):
        x = _jet_states(model, batch)
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        clf.fit(x[idx_fit], labels[idx_fit])
        acc = accuracy_score(labels[idx_test], clf.predict(x[idx_test]))
        results.append({
            "task": "jet tagging, linear probe on frozen jet state",
            "dataset": f"{len(idx_test)} held-out Pythia jets, {len(set(labels))} classes"
                       + (f" ({', '.join(names[i] for i in sorted(set(labels)))})" if names else ""),
            "metric": "accuracy",
            "value": float(acc),
            "notes": f"{tag} backbone; chance = {np.bincount(labels).max() / len(labels):.3f}",
            # the random backbone is a comparison, not a result of the released weights
            **({"baseline": True} if model is random_model else {}),
        })  # fmt: skip
    return results


def probe_shows_no_gain(results: list[dict], margin: float = 0.01) -> bool:
    """Whether :func:`linear_probe`'s pair of rows (``pre-trained`` and ``random init``
    backbone) shows the pre-trained jet state no better than random weights; ``False``
    unless both rows are there."""
    probe = {
        r["notes"].split(" backbone;")[0]: r["value"]
        for r in results
        if r.get("task") == "jet tagging, linear probe on frozen jet state"
    }
    if not {"pre-trained", "random init"} <= probe.keys():
        return False
    return probe["pre-trained"] <= probe["random init"] + margin


def manifests_data(manifests: list[str]) -> dict[str, Any]:
    """The card's training-data facts from `jetfm generate` manifests (one per folder)."""
    if not manifests:
        return {}
    counts: dict[str, int] = {}
    files, seeds = 0, []
    for path in manifests:
        manifest = json.loads(Path(path).read_text())
        for cls, n in manifest["counts"].items():
            counts[cls] = counts.get(cls, 0) + int(n)
        files += len(manifest["files"])
        seeds.append(manifest.get("seed"))
    return {
        "source": "Pythia 8 jets generated by `jetfm generate`",
        "generator": "Pythia8",
        "process": "pp at 13 TeV; " + ", ".join(f"{c}: {n}" for c, n in counts.items()),
        "classes": list(counts),
        "num_jets": sum(counts.values()),
        "num_files": files,
        "selection": "anti-kT R=0.8 jets, 500 < pT < 1000 GeV, |eta| < 2, truth-matched",
        "seed": ", ".join(str(s) for s in seeds),
        "description": "Simulated jets; the exact Pythia settings are in the generator's "
        "manifests (reproduced by the commands below).",
    }


def run(args: argparse.Namespace) -> int:
    import torch
    from safetensors.torch import save_file

    from jetfm.atomic import atomic_folder
    from jetfm.data.processor import JetProcessor
    from jetfm.errors import JetFMError
    from jetfm.hub import PROCESSOR_NAME, hub_org
    from jetfm.model_card import METRICS_NAME, PROVENANCE_NAME, write_model_card
    from jetfm.modeling.continuation import DECODER_WEIGHTS_NAME, decoder_state
    from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling
    from jetfm.pretraining import PretrainArguments

    start = time.time()
    if not (args.data or args.generate_jets_per_class or args.pretrained):
        raise JetFMError("give --data GLOB, --generate-jets-per-class N or --pretrained DIR")
    if args.pretrained and not (Path(args.pretrained) / "config.json").is_file():
        raise JetFMError(f"--pretrained {args.pretrained}: not a `jetfm pretrain` output folder")
    out_root = Path(args.out)  # created once there is something to put in it
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="jetfm-release-"))
    work.mkdir(parents=True, exist_ok=True)
    commands: list[str] = []
    data: dict[str, Any] = {}
    try:
        train_glob, probe_glob = args.data, args.probe_data
        if args.pretrained:
            data = manifests_data(args.data_manifest)
            if args.data_info:
                data |= json.loads(Path(args.data_info).read_text())
            if args.commands_file:
                commands += Path(args.commands_file).read_text().strip().splitlines()
        elif args.generate_jets_per_class:
            gen = ["generate", "--classes", ",".join(args.classes), "--jets-per-class",
                   str(args.generate_jets_per_class), "--seed", "1", "--no-progress"]  # fmt: skip
            commands.append(_cli([*gen, "--out", str(work / "train")]))
            train_glob = str(work / "train" / "*.root")
            manifest = json.loads((work / "train" / "manifest.json").read_text())
            data = {
                "source": "Pythia 8 jets generated by `jetfm generate`",
                "generator": "Pythia8",
                "process": "pp at 13 TeV; "
                + ", ".join(f"{c}: {n}" for c, n in manifest["counts"].items()),
                "classes": list(manifest["counts"]),
                "num_jets": int(sum(manifest["counts"].values())),
                "num_files": len(manifest["files"]),
                "selection": "anti-kT R=0.8 jets, 500 < pT < 1000 GeV, |eta| < 2, truth-matched",
                "seed": manifest.get("seed"),
                "description": "Simulated jets generated on the release machine; the exact "
                "Pythia settings are in the generator's manifest (reproduced by the commands "
                "below).",
            }
            if args.probe_jets_per_class:
                commands.append(_cli([
                    "generate", "--classes", ",".join(args.classes), "--jets-per-class",
                    str(args.probe_jets_per_class), "--seed", "2", "--no-progress",
                    "--out", str(work / "probe"),
                ]))  # fmt: skip
                probe_glob = str(work / "probe" / "*.root")
        else:
            data = {"source": f"files matching {args.data}"}
        pretrain_dir = Path(args.pretrained) if args.pretrained else work / "pretrain"
        if not args.pretrained:
            commands.append(_pretrain(PretrainArguments(
                data=train_glob, output_dir=str(pretrain_dir), target=args.target,
                size=args.size, max_steps=args.max_steps, batch_size=args.batch_size,
                lr=args.lr, seed=args.seed, save_steps=max(args.max_steps, 1), logging_steps=10,
            )))  # fmt: skip

        mpm = JetFMForMaskedParticleModeling.from_pretrained(str(pretrain_dir))
        backbone = mpm.jetfm
        processor = JetProcessor.from_pretrained(str(pretrain_dir))
        if not data.get("num_jets"):
            data["num_jets"] = processor.num_jets_fitted
        target = out_root / args.name
        out_root.mkdir(parents=True, exist_ok=True)
        # staged in a hidden folder beside the target, which replaces it only when complete
        with atomic_folder(target) as stage:
            dtype = getattr(torch, args.dtype)
            backbone.to(dtype).save_pretrained(str(stage))
            backbone.float()
            # the decoder lets anyone continue pre-training (`jetfm pretrain --init-from`)
            save_file(
                {k: v.to(dtype) for k, v in decoder_state(mpm).items()},
                str(stage / DECODER_WEIGHTS_NAME),
                metadata={"format": "pt"},
            )
            for name in (PROCESSOR_NAME, "run_config.json", "training_args.json"):
                shutil.copy2(pretrain_dir / name, stage / name)
            if (pretrain_dir / "tokenizer").is_dir():
                shutil.copytree(pretrain_dir / "tokenizer", stage / "tokenizer")
            for extra in args.attach:
                shutil.copy2(extra, stage / Path(extra).name)

            probe = linear_probe(backbone, probe_glob, processor, args.seed) if probe_glob else []
            results = list(probe)
            if args.metrics:
                results += json.loads(Path(args.metrics).read_text()).get("results", [])
            if results:
                (stage / METRICS_NAME).write_text(json.dumps({"results": results}, indent=2) + "\n")

            release_cmd = (
                "jetfm " + " ".join(shlex.quote(a) for a in sys.argv[1:])
                if Path(sys.argv[0]).name in ("jetfm", "cli.py")
                else None
            )
            provenance = {
                "name": args.name,
                "repo_id": f"{hub_org()}/{args.name}",
                "shipped": True,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "summary": Path(args.summary_file).read_text()
                if args.summary_file
                else args.summary,
                "data": data,
                "commands": ([release_cmd, "# which ran:"] if release_cmd else []) + commands,
                "hardware": args.hardware or _hardware(),
                # a packaged run's training time is in run_config.json; this is the release's own
                "wall_time_s": None if args.pretrained else round(time.time() - start, 1),
                "weights_note": (
                    f"Weights stored as {args.dtype}; from_pretrained loads them as float32."
                    if args.dtype != "float32"
                    else "Weights stored as float32: the backbone in model.safetensors, the MPM "
                    f"decoder and target in {DECODER_WEIGHTS_NAME} (continue pre-training with "
                    "`jetfm pretrain --init-from`)."
                ),
                "limitations": list(args.limitation)
                or [
                    f"A {args.size} model pre-trained for only {args.max_steps} steps on "
                    f"{data.get('num_jets', 'a few')} jets: a demonstration and test checkpoint, "
                    "not a physics-grade foundation model.",
                ],
            }
            if probe_shows_no_gain(probe):  # only this release's own measurement
                provenance["limitations"].append(
                    "The linear probe shows no gain of these weights over random ones: at this "
                    "size and training length pre-training has not yet produced useful features."
                )
            (stage / PROVENANCE_NAME).write_text(json.dumps(provenance, indent=2) + "\n")
            write_model_card(stage, name=args.name, overwrite=True)
            too_big = [
                f"{p.name} ({p.stat().st_size / 1e6:.1f} MB)"
                for p in stage.rglob("*")
                if p.is_file() and p.stat().st_size > args.max_file_mb * 1e6
            ]
            if too_big:
                raise JetFMError(
                    f"files over {args.max_file_mb} MB: {too_big} (try --dtype float16)"
                )
            for p in stage.rglob("*"):  # transformers writes some files private (0600)
                os.chmod(p, 0o755 if p.is_dir() else 0o644)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(f"released {args.name} into {target} in {time.time() - start:.0f} s")
    return 0
