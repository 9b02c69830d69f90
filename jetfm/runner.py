"""Running a model on batches of jets: padded input arrays in, the task's outputs out.

:class:`JetRunner` is the one place a jetfm model is run for its outputs — by evaluation,
prediction (torch or an ONNX Runtime session of the export), the CWoLa check and the release's
linear probe. It takes a batch as produced by :class:`~jetfm.data.JetCollator` (or any mapping
of the same keys: feature groups and ``mask``, torch tensors or numpy arrays) and returns CPU
tensors:

=================  =========================================================================
model              outputs
=================  =========================================================================
jet tagging        ``logits`` ``(B, C)``
track ID           ``logits`` ``(B, N, 6)``, ``tracks`` ``(B, N)`` (the particles scored)
vertex finding     ``vertices`` ``(B, N)`` (vertex index per track, −1 elsewhere), ``tracks``
backbone           ``jet_state`` ``(B, D)`` (the pooled jet representation)
=================  =========================================================================

Tracks are the charged real particles (``pid`` charge ≠ 0); without ``pid`` the labelled
tracks of a batch that carries ``vertex_labels``, else every real particle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from jetfm.data.schema import FEATURE_GROUPS, IGNORE_INDEX
from jetfm.errors import DataError
from jetfm.tasks import Task, task_of_model

#: batch keys a model reads: the feature groups and the particle mask
MODEL_INPUTS: tuple[str, ...] = (*FEATURE_GROUPS, "mask")


class JetRunner:
    """Runs a head (or a backbone) on batches of jets, under ``torch.inference_mode``.

    Args:
        model: a fine-tuned head, or a backbone (``JetFMModel``) for jet states.
        session: an ONNX Runtime session of the head's export, run instead of torch (the
            model then only supplies its task).
        vertex_threshold: same-vertex probability above which two tracks are linked.
    """

    def __init__(self, model: Any, *, session: Any = None, vertex_threshold: float = 0.5):
        self.model = model.eval()
        self.task: Task | None = None if _is_backbone(model) else task_of_model(model)
        self.session = session
        self.onnx_inputs = [i.name for i in session.get_inputs()] if session is not None else []
        self.vertex_threshold = float(vertex_threshold)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _forward(self, inputs: dict[str, torch.Tensor], **extra: torch.Tensor) -> Any:
        if self.session is not None:
            feeds = {k: inputs[k].cpu().numpy() for k in self.onnx_inputs}
            return torch.from_numpy(self.session.run(None, feeds)[0])
        moved = {k: v.to(self.device) for k, v in (inputs | extra).items()}
        return self.model(**moved)

    @torch.inference_mode()
    def __call__(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The outputs for one batch (see the module docstring), as CPU tensors."""
        inputs = {k: torch.as_tensor(v) for k, v in batch.items() if k in MODEL_INPUTS}
        inputs["mask"] = inputs["mask"].bool()
        if self.task is None:
            return {"jet_state": self._forward(inputs).pooler_output.float().cpu()}
        if not self.task.per_particle:
            return {"logits": _logits(self._forward(inputs))}
        tracks = self._tracks(batch, inputs)
        if self.task.head == "JetFMForTrackID":
            return {"logits": _logits(self._forward(inputs)), "tracks": tracks}
        from jetfm.modeling.vertexing import group_vertices

        logits = _logits(self._forward(inputs, track_mask=tracks))
        vertices = group_vertices(logits, tracks, self.vertex_threshold)
        return {"vertices": torch.from_numpy(np.asarray(vertices)), "tracks": tracks}

    @staticmethod
    def _tracks(batch: Mapping[str, Any], inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = inputs["mask"].cpu()
        if "pid" in inputs:
            return mask & (inputs["pid"][..., 0].cpu() != 0)
        if "vertex_labels" in batch:
            return mask & (torch.as_tensor(batch["vertex_labels"]).cpu() != IGNORE_INDEX)
        return mask


def _pad_cat(parts: Sequence[np.ndarray], fill: int) -> np.ndarray:
    """Concatenate ``(b_i, n_i)`` arrays along jets, right-padding particles with ``fill``."""
    width = max(p.shape[1] for p in parts)
    return np.concatenate(
        [np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=fill) for p in parts]
    )


def run_dataset(
    runner: JetRunner,
    dataset: Any,
    collator: Any,
    batch_size: int = 256,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Run over a labelled dataset and gather numpy arrays, jets in dataset order.

    Returns, by task: taggers ``logits`` ``(n, C)``; track ID ``predictions`` ``(n, N)``
    (argmax origin, ``IGNORE_INDEX`` at padding); vertex finding ``vertices`` ``(n, N)``
    (−1 off tracks); a backbone ``jet_state`` ``(n, D)``. The labels present in the batches
    come along (``labels``, ``track_labels``, ``vertex_labels``, padded with
    ``IGNORE_INDEX``).
    """
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collator)
    out: dict[str, list[np.ndarray]] = {}
    for batch in tqdm(loader, desc="predicting", unit="batch", disable=not progress):
        result = runner(batch)
        if "tracks" in result and "logits" in result:  # track ID: the argmax origin
            pred = result["logits"].argmax(dim=-1).masked_fill(~batch["mask"], IGNORE_INDEX)
            result = {"predictions": pred}
        result.pop("tracks", None)
        for key, value in result.items():
            out.setdefault(key, []).append(value.numpy())
        for key in ("labels", "track_labels", "vertex_labels"):
            if key in batch:
                out.setdefault(key, []).append(batch[key].numpy())
    if not out:
        raise DataError("no jets to run the model on")
    return {
        key: np.concatenate(parts)
        if parts[0].ndim == 1 or key in ("logits", "jet_state")
        else _pad_cat(parts, -1 if key == "vertices" else IGNORE_INDEX)
        for key, parts in out.items()
    }


def _logits(out: Any) -> torch.Tensor:
    return (out if torch.is_tensor(out) else out.logits).float().cpu()


def _is_backbone(model: Any) -> bool:
    return any(c.__name__ == "JetFMModel" for c in type(model).__mro__)


__all__ = ["MODEL_INPUTS", "JetRunner", "run_dataset"]
