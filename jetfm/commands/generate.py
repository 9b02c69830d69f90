"""Generate labelled jets with Pythia 8 + FastJet into JetClass-layout ROOT files.

pp collisions at 13 TeV; anti-kT R = 0.8 jets with 500 < pT < 1000 GeV and |η| < 2,
truth-matched to their class; up to 128 pT-ordered constituents with particle ID, smeared
impact parameters and track origin / vertex truth. Writes one file per class and chunk
(e.g. Hbb_000.root) and manifest.json; re-running the same command resumes an interrupted
run. Needs the extra: pip install "jetfm[generate]".
"""

from __future__ import annotations

import argparse

NAME = "generate"
HELP = "generate labelled jets with Pythia 8 + FastJet (needs jetfm[generate])"

_DEFAULT_CLASSES = "QCD,Tbqq,Wqq,Zqq,Hbb,Hcc"


def classes_option(text: str) -> list[str]:
    """``--classes``: comma-separated jet classes the generator supports."""
    from jetfm.generation.processes import SUPPORTED_CLASSES

    classes = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in classes if c not in SUPPORTED_CLASSES]
    if not classes or unknown:
        raise argparse.ArgumentTypeError(
            f"must be jet classes from {','.join(SUPPORTED_CLASSES)}, got {text!r} "
            f"(unknown: {','.join(unknown) or 'none given'})"
        )
    return classes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from jetfm.generation.processes import SUPPORTED_CLASSES
    from jetfm.option_checks import positive_int, seed

    parser.add_argument(
        "--classes",
        type=classes_option,
        default=_DEFAULT_CLASSES,
        help=f"comma-separated jet classes, from: {','.join(SUPPORTED_CLASSES)}",
    )
    parser.add_argument("--jets-per-class", type=positive_int, required=True, help="jets per class")
    parser.add_argument("--seed", type=seed, default=0, help="master random seed")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--workers", type=positive_int, default=1, help="parallel processes")
    parser.add_argument(
        "--chunk-size", type=positive_int, default=10_000, help="jets per output file"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from jetfm.generation import require_extra

    require_extra("jetfm generate")
    from jetfm.generation.dataset import generate_dataset

    manifest = generate_dataset(
        args.classes,
        args.jets_per_class,
        args.out,
        seed=args.seed,
        workers=args.workers,
        chunk_size=args.chunk_size,
        progress=not args.no_progress,
    )
    counts = ", ".join(f"{c}: {n}" for c, n in manifest["counts"].items())
    print(f"wrote {len(manifest['files'])} files to {args.out} ({counts})")
    return 0
