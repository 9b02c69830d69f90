"""Pre-train a jetfm backbone by Masked Particle Modelling.

Fits the processor's normalisation statistics on --data (one streaming pass), prepares the
target (k-means centroids for --target kmeans, the frozen tokenizer for --target vqvae), then
trains with the transformers Trainer. --output becomes a complete checkpoint folder: load the
backbone with JetFMModel.from_pretrained(DIR) or everything with
JetFMForMaskedParticleModeling.from_pretrained(DIR). --init-from CHECKPOINT starts from a
run or a release (its architecture, statistics, backbone and, same target, decoder) instead
of random weights. --truth adds supervised objectives on the files' generator truth (jet
class, track origin, vertex pairing) beside MPM. The options are those of jetfm.pretrain()
(jetfm.PretrainArguments), saved with the run as pretrain_args.json.
"""

from __future__ import annotations

import argparse

from jetfm.commands import add_data_arguments, pretrain_arguments

NAME = "pretrain"
HELP = "pre-train a backbone by Masked Particle Modelling (MPM)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from jetfm.defaults import MPM_TARGETS
    from jetfm.option_checks import (
        float_in,
        fraction,
        int_at_least,
        non_negative_float,
        open_fraction,
        positive_float,
        positive_int,
    )
    from jetfm.pretraining import EMBEDDING_LR_SCALE, ENCODER_DELAY, SIZES

    add_data_arguments(parser)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the training step (static shapes, one graph per bucket); pays a "
        "one-off compilation (minutes) for faster steps, worth it for long runs on a GPU or "
        "a CPU",
    )
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="bfloat16 autocast on a CPU: matrix products in bf16 (fast on CPUs with "
        "AVX512-BF16 or AMX), attention and the flow target's splines in float32; with "
        "--compile the fastest CPU step (docs/performance.md). On CUDA bf16 is on either way",
    )
    parser.add_argument(
        "--device-batches",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep the processed training features in device memory (GPU when they fit) "
        "and sample, bucket and pad batches there; --no-device-batches uses a "
        "DataLoader with per-jet collation. Not with --streaming",
    )
    parser.add_argument(
        "--feature-cache",
        default=None,
        metavar="DIR",
        help="cache of the processed training features (default: OUTPUT.features beside "
        "the run); reused while the files and the processor are unchanged, rebuilt otherwise",
    )
    parser.add_argument(
        "--buckets",
        type=_buckets,
        default=None,
        help="comma-separated padded lengths of the batches (default: the training jets' "
        "multiplicity quartiles, rounded up to multiples of 8, and --max-particles)",
    )
    parser.add_argument("--target", choices=MPM_TARGETS, default="flow", help="MPM target")
    parser.add_argument(
        "--size", choices=SIZES, default=None, help="model size preset (default: base)"
    )
    parser.add_argument(
        "--init-from",
        default=None,
        metavar="CHECKPOINT",
        help="continue pre-training from this checkpoint (folder, short name or Hub id): its "
        "architecture, normalisation and backbone weights; its MPM decoder too when it has "
        "one for the same --target (otherwise a fresh one, trained while --encoder-delay "
        "keeps the encoder frozen)",
    )
    parser.add_argument("--tokenizer", default=None, help="trained tokenizer dir (--target vqvae)")
    parser.add_argument(
        "--mask-fraction", type=open_fraction, default=0.4, help="fraction masked, in (0, 1)"
    )
    parser.add_argument(
        "--mask-in-encoder",
        action="store_true",
        help="send mask tokens through the encoder (arXiv 2401.13537) instead of dropping them",
    )
    parser.add_argument(
        "--embedding-lr-scale",
        type=non_negative_float,
        default=EMBEDDING_LR_SCALE,
        help="particle embedding LR relative to --lr (0: keep it frozen at its random init, "
        "which keeps the backbone fine-tunable; see docs/guide/pretraining.md)",
    )
    parser.add_argument(
        "--encoder-delay",
        type=float_in(0, 0.5, high_closed=False),
        default=None,
        help=f"fraction of the steps, in [0, 0.5), with the encoder frozen (then ramped up "
        f"over as many), so a fresh decoder learns to read it first (default: {ENCODER_DELAY:g}; "
        "0 when --init-from loads the checkpoint's decoder); see docs/guide/pretraining.md",
    )
    parser.add_argument(
        "--group-dropout",
        type=fraction,
        default=0.0,
        help="probability of dropping each optional feature group (pid, tracks) from a "
        "jet's encoder input, so the backbone also serves kinematics-only data",
    )
    parser.add_argument(
        "--layer-scale-init",
        type=positive_float,
        default=None,
        help="initial LayerScale of the blocks (default: the config's, 0.001)",
    )
    parser.add_argument(
        "--num-codes", type=int_at_least(2), default=512, help="k-means codes (--target kmeans)"
    )
    parser.add_argument(
        "--kmeans-particles",
        type=positive_int,
        default=200_000,
        help="particles sampled to fit k-means",
    )
    parser.add_argument(
        "--truth",
        nargs="?",
        const="default",
        default=None,
        metavar="OBJ=W,...",
        help="supervised objectives on generator truth beside MPM, with their loss weights, "
        "e.g. class=1,origin=0.5,vertex=0.2 (class: jet class with QCD split by its hard "
        "parton; origin: track origin; vertex: same-vertex track pairs); --truth alone: the "
        "default weights (class=1,origin=0.5). Objectives the files have no truth for are "
        "turned off with a log line. Default: pure MPM",
    )
    parser.add_argument(
        "--mpm-weight",
        type=non_negative_float,
        default=1.0,
        help="weight of the masked-particle (MPM) loss beside the --truth objectives; 0 "
        "trains the truth objectives alone, on the visible particles, without running the "
        "decoder (default: 1)",
    )
    parser.add_argument(
        "--supervised-classes",
        default=None,
        metavar="CLASSES",
        help="comma-separated jet classes the class objective supervises (default: every "
        "class of the files, QCD split into QCD_light, QCD_gluon, QCD_heavy; QCD names all "
        "three); jets of the others are held out of the class loss but still pre-train",
    )


def _buckets(text: str) -> str:
    """``--buckets``: comma-separated padded lengths (whole numbers ≥ 1), kept as text."""
    from jetfm.option_checks import comma_list, positive_int

    return ",".join(str(n) for n in comma_list(positive_int)(text))


def run(args: argparse.Namespace) -> int:
    from jetfm.pretraining import pretrain

    pretrain(pretrain_arguments(args))
    return 0
