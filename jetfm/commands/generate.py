"""Generate labelled jets with Pythia 8 + FastJet into JetClass-layout ROOT files.

pp collisions at 13 TeV; anti-kT jets (default R = 0.8, 500 < pT < 1000 GeV, |η| < 2),
truth-matched to their class; up to 128 pT-ordered constituents with particle ID, smeared
impact parameters and track origin / vertex truth. By default the constituents are the
stable particles (particle level); --detector cms|atlas|cms-coarse clusters tracks and
calorimeter cells of a Delphes-like fast detector simulation instead. Writes one file per
class and chunk (e.g. Hbb_000.root) and manifest.json; re-running the same command resumes
an interrupted run. Needs the extra: pip install "jetfm[generate]".
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
    from jetfm.defaults import DETECTOR_NAMES
    from jetfm.generation.processes import (
        DEFAULT_TUNE,
        JET_ABS_ETA_MAX,
        JET_PT_MAX,
        JET_PT_MIN,
        JET_R,
        MAX_ABS_ETA,
        MAX_RADIUS,
        SUPPORTED_CLASSES,
        TUNE_RANGE,
    )
    from jetfm.option_checks import float_in, int_at_least, positive_float, positive_int, seed

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
    parser.add_argument(
        "--detector",
        choices=DETECTOR_NAMES,
        default="none",
        help="constituents: 'none' = stable particles (particle level, the default, so that "
        "existing data sets and tests reproduce exactly); 'cms', 'atlas' = tracks and "
        "calorimeter cells of a fast simulation with the Delphes CMS / ATLAS card numbers; "
        "'cms-coarse' = CMS with calorimeter cells twice as wide (domain-shift tests)",
    )
    parser.add_argument(
        "--radius",
        type=float_in(0, MAX_RADIUS, low_closed=False),
        default=JET_R,
        help="anti-kT jet radius R (also the truth-matching ΔR and the soft-drop / "
        "N-subjettiness R0), e.g. 0.4 or 0.8",
    )
    parser.add_argument(
        "--pt-min", type=positive_float, default=JET_PT_MIN, help="jet pT minimum (GeV)"
    )
    parser.add_argument(
        "--pt-max", type=positive_float, default=JET_PT_MAX, help="jet pT maximum (GeV)"
    )
    parser.add_argument(
        "--eta-max",
        type=float_in(0, MAX_ABS_ETA, low_closed=False),
        default=JET_ABS_ETA_MAX,
        help="jet |η| maximum",
    )
    parser.add_argument(
        "--tune",
        type=int_at_least(TUNE_RANGE[0]),
        default=DEFAULT_TUNE,
        help=f"Pythia Tune:pp number, {TUNE_RANGE[0]} to {TUNE_RANGE[1]} (14 = Monash 2013, "
        "Pythia's default; e.g. 21 = ATLAS A14 with NNPDF2.3LO) for a domain-shifted sample",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from jetfm.errors import JetFMError
    from jetfm.generation.processes import TUNE_RANGE

    if args.pt_min >= args.pt_max:
        raise JetFMError(f"--pt-min ({args.pt_min:g}) must be below --pt-max ({args.pt_max:g})")
    if args.tune > TUNE_RANGE[1]:
        raise JetFMError(f"--tune must be from {TUNE_RANGE[0]} to {TUNE_RANGE[1]}, got {args.tune}")
    from jetfm.generation import require_extra

    require_extra("jetfm generate")
    from jetfm.generation.dataset import generate_dataset
    from jetfm.generation.processes import JetSelection

    selection = JetSelection(args.radius, args.pt_min, args.pt_max, args.eta_max)
    manifest = generate_dataset(
        args.classes,
        args.jets_per_class,
        args.out,
        seed=args.seed,
        workers=args.workers,
        chunk_size=args.chunk_size,
        progress=not args.no_progress,
        selection=selection,
        tune=args.tune,
        detector=args.detector,
    )
    counts = ", ".join(f"{c}: {n}" for c, n in manifest["counts"].items())
    print(f"wrote {len(manifest['files'])} files to {args.out} ({counts})")
    return 0
