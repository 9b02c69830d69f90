"""Worker of ``tests/test_distributed.py``, launched twice by ``torch.distributed.run``.

Pre-trains a tiny MPM model through the real path (fitted JetProcessor → streaming dataset
sharded by rank → JetCollator → ``run_training`` / Trainer with DDP over gloo) and records,
per rank, the (file, entry) of every jet it consumed and its final weights.

Usage: python -m torch.distributed.run --nproc_per_node 2 tests/_ddp_worker.py DATA OUT STEPS
"""

from __future__ import annotations

import json
import os
import sys

import torch


def main(data: str, out: str, max_steps: int) -> None:
    torch.set_num_threads(1)
    from safetensors.torch import save_file

    from jetfm.configuration import JetFMConfig
    from jetfm.data.batching import JetCollator
    from jetfm.data.datasets import StreamingJetDataset
    from jetfm.data.processor import JetProcessor
    from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling
    from jetfm.training import run_training, training_arguments

    class RecordingCollator(JetCollator):
        """JetCollator that remembers which jets went into the batches of this rank."""

        def __init__(self) -> None:
            super().__init__(targets=())
            self.seen: list[tuple[int, int]] = []

        def __call__(self, jets):
            self.seen += [(int(j["file_index"]), int(j["entry"])) for j in jets]
            return super().__call__(jets)

    rank = int(os.environ["RANK"])
    processor = JetProcessor().fit(data, progress=False)
    train = StreamingJetDataset(data, processor, targets=(), step_size=40, return_index=True)
    config = JetFMConfig.from_preset(
        "tiny", feature_groups=processor.group_sizes, mpm_target="regression"
    )
    torch.manual_seed(rank)  # different initial weights: DDP must broadcast rank 0's
    model = JetFMForMaskedParticleModeling(config)
    collator = RecordingCollator()
    args = training_arguments(
        os.path.join(out, "checkpoint"),
        seed=0,
        max_steps=max_steps,
        per_device_train_batch_size=8,
        save_strategy="no",
        logging_steps=1,
        ddp_backend="gloo",
        dataloader_num_workers=0,
    )
    trainer = run_training(model, args, train, data_collator=collator, processor=processor)
    with open(os.path.join(out, f"seen_rank{rank}.json"), "w") as fh:
        json.dump({"seen": collator.seen, "steps": trainer.state.global_step}, fh)
    weights = {k: v.detach().contiguous() for k, v in trainer.model.state_dict().items()}
    save_file(weights, os.path.join(out, f"weights_rank{rank}.safetensors"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
