"""Train the VQ-VAE particle tokenizer used by ``jetfm pretrain --target vqvae``.

``jetfm tokenizer train --data GLOB --output DIR`` fits the processor statistics, trains a
ParticleTokenizer (k-means initialised codebook, EMA updates, dead-code restarts) with the
transformers Trainer, reports the codebook usage and perplexity on the training data and
writes a checkpoint folder (config.json, model.safetensors with the codebook,
preprocessor_config.json, codebook_stats.json).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from jetfm.atomic import write_text

NAME = "tokenizer"
HELP = "train the VQ-VAE particle tokenizer (for --target vqvae)"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from jetfm.commands import add_data_arguments
    from jetfm.option_checks import (
        int_at_least,
        non_negative_float,
        open_fraction,
        positive_int,
    )

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    train = sub.add_parser(
        "train",
        help="train a tokenizer",
        description=(__doc__ or HELP).strip(),
        formatter_class=parser.formatter_class,
    )
    add_data_arguments(train)
    train.add_argument("--codes", type=int_at_least(2), default=512, help="codebook size")
    train.add_argument(
        "--code-dim", type=positive_int, default=16, help="codebook vector dimension"
    )
    train.add_argument("--hidden-size", type=positive_int, default=128, help="transformer width")
    train.add_argument("--layers", type=positive_int, default=2, help="encoder and decoder blocks")
    train.add_argument("--heads", type=positive_int, default=4, help="attention heads")
    train.add_argument(
        "--commitment", type=non_negative_float, default=0.25, help="commitment cost"
    )
    train.add_argument(
        "--ema-decay", type=open_fraction, default=0.99, help="codebook EMA decay, in (0, 1)"
    )
    train.add_argument(
        "--dead-code-fraction",
        type=non_negative_float,
        default=0.1,
        help="restart codes whose recent usage is below this fraction of the mean usage "
        "(against codebook collapse; 0 switches restarts off)",
    )
    train.add_argument(
        "--tokenize-tracks",
        action="store_true",
        help="tokenize the track parameters too (when the data has them)",
    )
    train.add_argument(
        "--stats-batches",
        type=positive_int,
        default=20,
        help="batches used for the codebook report",
    )


def codebook_report(tokenizer, dataset, collator, batch_size: int, max_batches: int) -> dict:
    """Usage and perplexity of the codebook over up to ``max_batches`` batches."""
    import torch
    from torch.utils.data import DataLoader

    from jetfm.modeling.tokenizer import codebook_statistics

    tokenizer.eval()
    codes = []
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collator)
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if i >= max_batches:
                break
            codes.append(
                tokenizer.encode(batch["kinematics"], batch["mask"], batch.get("tracks")).flatten()
            )
    stats = codebook_statistics(torch.cat(codes), tokenizer.config.num_codes)
    stats["num_codes"] = tokenizer.config.num_codes
    return stats


def run(args: argparse.Namespace) -> int:
    import torch
    from transformers import set_seed

    from jetfm.commands import pretrain_arguments
    from jetfm.errors import JetFMError
    from jetfm.modeling.tokenizer import ParticleTokenizer, ParticleTokenizerConfig
    from jetfm.pretraining import prepare_data, trainer_arguments
    from jetfm.training import ComponentLossTrainer, run_training

    if args.action != "train":  # pragma: no cover - argparse enforces the choice
        raise JetFMError(f"unknown tokenizer action {args.action!r}")
    if args.hidden_size % args.heads:
        raise JetFMError(
            f"--hidden-size {args.hidden_size} must be divisible by --heads {args.heads}"
        )
    set_seed(args.seed)
    # the data options are pre-training's, read through a DataLoader of in-memory jets
    data_args = pretrain_arguments(args, device_batches=False)
    data = prepare_data(data_args)
    processor = data["processor"]
    groups = {"kinematics": 7}
    if args.tokenize_tracks:
        if "tracks" not in processor.feature_groups:
            raise JetFMError(f"--tokenize-tracks: the data in {args.data} has no track branches")
        groups["tracks"] = 4
    config = ParticleTokenizerConfig(
        feature_groups=groups,
        num_codes=args.codes,
        code_dim=args.code_dim,
        hidden_size=args.hidden_size,
        num_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=2 * args.hidden_size,
        commitment_cost=args.commitment,
        ema_decay=args.ema_decay,
        dead_code_fraction=args.dead_code_fraction,
        dead_code_threshold=0.03 if args.dead_code_fraction > 0 else 0.0,
    )
    torch.manual_seed(args.seed)
    tokenizer = ParticleTokenizer(config)
    trainer = run_training(
        tokenizer,
        trainer_arguments(data_args),
        data["train"],
        eval_dataset=data["val"],
        data_collator=data["collator"],
        processor=processor,
        resume_from_checkpoint=True if args.resume else None,
        trainer_cls=ComponentLossTrainer,
    )
    model = trainer.accelerator.unwrap_model(trainer.model)
    if trainer.is_world_process_zero():
        stats = codebook_report(
            model, data["val"] or data["train"], data["collator"], args.batch_size,
            args.stats_batches,
        )  # fmt: skip
        write_text(Path(args.output) / "codebook_stats.json", json.dumps(stats, indent=2))
        print(
            f"tokenizer trained {trainer.state.global_step} steps: {stats['usage']:.1%} of "
            f"{stats['num_codes']} codes used, perplexity {stats['perplexity']:.1f}; "
            f"saved to {args.output}"
        )
    return 0
