"""Names and default values that the command line shows, in a module that imports nothing.

``jetfm --help`` builds every subcommand's parser, and its choices and stated defaults must
be the real ones without loading torch or transformers (the modules that use these values
do). So they live here: the MPM targets (:data:`jetfm.configuration.MPM_TARGETS` is this
tuple), the fine-tuning modes and the fine-tuning schedule's defaults
(``tests/test_cli.py`` checks that :mod:`jetfm.finetuning` uses the same values).
"""

from __future__ import annotations

#: Masked Particle Modelling targets, one module each under ``jetfm.modeling.targets``
MPM_TARGETS: tuple[str, ...] = ("vqvae", "kmeans", "regression", "flow", "diffusion")

#: fine-tuning modes: head only, everything (backbone LR ramped up), LoRA adapters, and a
#: linear head fitted as a logistic regression on the frozen backbone (:mod:`jetfm.probing`)
FINETUNE_MODES: tuple[str, ...] = ("frozen", "full", "lora", "probe")

#: fine-tuning: default peak learning rate (the head's; ``full`` mode ramps the backbone up)
FINETUNE_LR = 2e-3
#: fine-tuning: default peak LR for a head that starts from a pre-trained truth head
#: (``track-id`` from the track-origin head): 2e-3 washes its start out, 5e-4 keeps it
#: (chosen on the validation set at 1,000 labels)
FINETUNE_PRETRAINED_HEAD_LR = 5e-4
#: fine-tuning: default epochs, but at least :data:`FINETUNE_MIN_STEPS` optimiser steps
FINETUNE_EPOCHS = 10.0
FINETUNE_MIN_STEPS = 250
#: fine-tuning: the default batch is a tenth of the training jets, within these bounds
FINETUNE_MIN_BATCH_SIZE, FINETUNE_MAX_BATCH_SIZE = 16, 256
#: fine-tuning, ``full`` mode: fraction of the steps with the backbone frozen, then the fraction
#: over which its learning rate ramps up to the head's. A ramp over 10 % of the run knocked the
#: model off course (validation loss 0.43 → 0.81 → 0.28 around its end, pretrained and from
#: scratch alike); over 30 % it did not (test accuracy 0.933 vs 0.930 pretrained, 0.920 vs 0.905
#: from scratch, one seed: studies/finetune_ramp)
FINETUNE_FREEZE_FRACTION, FINETUNE_RAMP_FRACTION = 0.1, 0.3
#: fine-tuning: validation passes per run, and evaluations without improvement before stopping
FINETUNE_EVALS, FINETUNE_PATIENCE = 10, 3

#: detector simulations of ``jetfm generate --detector`` (:mod:`jetfm.generation.detector`)
DETECTOR_NAMES: tuple[str, ...] = ("none", "cms", "atlas", "cms-coarse")

__all__ = [
    "DETECTOR_NAMES",
    "FINETUNE_EPOCHS",
    "FINETUNE_EVALS",
    "FINETUNE_FREEZE_FRACTION",
    "FINETUNE_LR",
    "FINETUNE_PRETRAINED_HEAD_LR",
    "FINETUNE_MAX_BATCH_SIZE",
    "FINETUNE_MIN_BATCH_SIZE",
    "FINETUNE_MIN_STEPS",
    "FINETUNE_MODES",
    "FINETUNE_PATIENCE",
    "FINETUNE_RAMP_FRACTION",
    "MPM_TARGETS",
]
