"""A short Masked Particle Modelling run with the Python API.

What it shows: the pieces ``jetfm pretrain`` wires together — a :class:`~jetfm.JetProcessor`
fitted on the training files (normalisation statistics), an in-memory
:class:`~jetfm.JetDataset` without targets, a :class:`~jetfm.JetFMConfig` size preset with
an MPM target (``flow`` by default; also ``regression`` and ``diffusion``; ``kmeans`` and ``vqvae``
need a fitted codebook / tokenizer first: use ``jetfm pretrain``), :class:`~jetfm.JetFMForMaskedParticleModeling`
trained by the transformers ``Trainer`` (:func:`jetfm.training.run_training`), and loading
the result back as a backbone for fine-tuning.

Run (needs ``jetfm[generate]`` unless ``--data`` names JetClass-layout files)::

    python examples/pretrain.py --output runs/mpm                     # 1 min, tiny model
    python examples/pretrain.py --data 'jetclass/train/*.root' --size base --max-steps 20000
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="runs/mpm")
    parser.add_argument("--data", default=None, help="training ROOT files (glob, dir, file)")
    parser.add_argument("--target", default="flow", choices=("flow", "regression", "diffusion"))
    parser.add_argument("--size", default="tiny", choices=("tiny", "small", "base", "large"))
    parser.add_argument("--jets-per-class", type=int, default=300)
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)

    from jetfm import JetCollator, JetDataset, JetFMConfig, JetFMModel, JetProcessor
    from jetfm.modeling import JetFMForMaskedParticleModeling
    from jetfm.training import ComponentLossTrainer, run_training, training_arguments

    data = args.data
    if data is None:
        from jetfm.generation import generate_dataset  # needs jetfm[generate]

        data = str(Path(args.output).parent / "mpm_data")
        generate_dataset(["QCD", "Tbqq", "Wqq", "Hbb"], args.jets_per_class, data, seed=7,
                         chunk_size=args.jets_per_class, workers=2)  # fmt: skip

    processor = JetProcessor().fit(data, progress=False)  # no labels needed for MPM
    train = JetDataset(data, processor, targets=())
    config = JetFMConfig.from_preset(args.size, feature_groups=processor.group_sizes,
                                     max_particles=processor.max_particles,
                                     mpm_target=args.target)  # fmt: skip
    model = JetFMForMaskedParticleModeling(config)
    training = training_arguments(args.output, max_steps=args.max_steps,
                                  per_device_train_batch_size=args.batch_size,
                                  learning_rate=5e-4, logging_steps=10, save_strategy="no")  # fmt: skip
    trainer = run_training(model, training, train, data_collator=JetCollator(targets=()),
                           processor=processor, trainer_cls=ComponentLossTrainer)  # fmt: skip
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    print(f"MPM loss: first {losses[0]:.3f} → last {losses[-1]:.3f} over {args.max_steps} steps")

    backbone = JetFMModel.from_pretrained(args.output)  # the encoder, ready for fine-tuning
    n = sum(p.numel() for p in backbone.parameters())
    print(f"backbone with {n / 1e6:.2f} M parameters saved in {args.output}")
    return {"losses": losses, "output": Path(args.output)}


if __name__ == "__main__":
    main()
