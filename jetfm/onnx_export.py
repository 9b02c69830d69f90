"""Export a fine-tuned jetfm head to ONNX (dynamic batch and particle-count axes).

Inputs are the feature groups the head was fine-tuned on (``kinematics`` float32
``(batch, particles, 7)``, optionally ``pid`` and ``tracks``) and ``mask`` bool
``(batch, particles)`` — the batch contract, normalised by the checkpoint's processor. The
output ``logits`` is ``(batch, C)`` for tagging, ``(batch, particles, 6)`` for track ID and
``(batch, particles, particles)`` pair logits for vertex finding.

The TorchScript-based exporter (``dynamo=False``) is used: it handles the boolean attention
mask of ``scaled_dot_product_attention`` and the dynamic axes of this model reliably, while
the dynamo exporter needs ``torch.export`` to accept the data-dependent shape checks.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jetfm.atomic import atomic_file
from jetfm.data.schema import FEATURE_GROUPS
from jetfm.errors import JetFMError, MissingExtraError
from jetfm.loading import input_groups, load_checkpoint

DEFAULT_OPSET = 17


class OnnxHead(nn.Module):
    """Positional-input wrapper: ``(*groups, mask) → logits`` (what ONNX graphs take)."""

    def __init__(self, model: nn.Module, groups: Sequence[str]):
        super().__init__()
        self.model = model
        self.groups = tuple(groups)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        *features, mask = inputs
        kwargs = dict(zip(self.groups, features, strict=True))
        return self.model(**kwargs, mask=mask, return_dict=True).logits


def example_inputs(
    groups: Sequence[str], batch: int = 2, particles: int = 12, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """Random inputs in the batch contract (some padding; one charged particle type flag)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for name in groups:
        x = torch.randn(batch, particles, len(FEATURE_GROUPS[name]), generator=g)
        if name == "pid":  # charge ±1/0 and a one-hot particle type
            x = torch.zeros_like(x)
            x[..., 0] = torch.randint(-1, 2, (batch, particles), generator=g).float()
            kind = torch.randint(1, x.shape[-1], (batch, particles), generator=g)
            x.scatter_(-1, kind[..., None], 1.0)
        out.append(x)
    lengths = torch.randint(particles // 2, particles + 1, (batch,), generator=g)
    lengths[0] = particles
    mask = torch.arange(particles)[None, :] < lengths[:, None]
    return (*[x * mask[..., None] for x in out], mask)


def export_onnx(
    model_dir: str | os.PathLike,
    output: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export the fine-tuned head in ``model_dir`` to the ONNX file ``output`` (atomically).

    The graph's metadata records the task, input groups and class names (``jetfm_task``,
    ``feature_groups``, ``id2label``).
    """
    try:
        import onnx
    except ImportError as err:
        raise MissingExtraError("onnx", "ONNX export") from err
    loaded = load_checkpoint(model_dir, device="cpu")
    model, task = loaded.model, loaded.task
    groups = input_groups(model, loaded.processor)
    wrapper = OnnxHead(model, groups).eval()
    names = [*groups, "mask"]
    axes: dict[str, Any] = {n: {0: "batch", 1: "particles"} for n in names}
    axes["logits"] = dict(task.onnx_axes)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(output) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            wrapper,
            example_inputs(groups),
            str(tmp),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
        graph = onnx.load(str(tmp))
        meta = {
            "jetfm_task": task.name,
            "feature_groups": json.dumps(groups),
            "id2label": json.dumps({str(k): v for k, v in model.config.id2label.items()}),
        }
        for key, value in meta.items():
            entry = graph.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(graph, str(tmp))
    return output


def run_onnx(path: str | os.PathLike, inputs: dict[str, Any]) -> Any:
    """Run an exported graph with onnxruntime on ``{input name: array}``; returns logits."""
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise MissingExtraError("onnx", "running ONNX models") from err
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: _numpy(inputs[i.name]) for i in session.get_inputs()}
    return session.run(["logits"], feeds)[0]


def verify_onnx(
    model_dir: str | os.PathLike,
    onnx_path: str | os.PathLike,
    batch: int = 3,
    particles: int = 19,
    atol: float = 1e-4,
) -> float:
    """Compare onnxruntime with torch on a random batch whose batch size and particle count
    differ from the export example (so the dynamic axes are exercised). Returns the largest
    absolute logit difference; raises :class:`~jetfm.errors.JetFMError` above ``atol``
    (relative to the logits' scale)."""
    import numpy as np

    loaded = load_checkpoint(model_dir, device="cpu")
    model = loaded.model
    groups = input_groups(model, loaded.processor)
    inputs = example_inputs(groups, batch=batch, particles=particles, seed=1)
    with torch.no_grad():
        expected = OnnxHead(model.eval(), groups)(*inputs).numpy()
    got = run_onnx(onnx_path, dict(zip([*groups, "mask"], inputs, strict=True)))
    if got.shape != expected.shape:
        raise JetFMError(f"{onnx_path}: ONNX output shape {got.shape} != torch {expected.shape}")
    diff = float(np.abs(got - expected).max())
    if diff > atol * max(1.0, float(np.abs(expected[np.abs(expected) < 1e3]).max(initial=1.0))):
        raise JetFMError(f"{onnx_path}: onnxruntime differs from torch by {diff:.3g}")
    return diff


def _numpy(x: Any) -> Any:
    return x.detach().cpu().numpy() if torch.is_tensor(x) else x


__all__ = ["DEFAULT_OPSET", "OnnxHead", "example_inputs", "export_onnx", "run_onnx", "verify_onnx"]
