"""The ``probe`` fine-tuning mode: a tagging head fitted in closed form on the frozen backbone.

With a few hundred labelled jets, gradient fine-tuning depends on its learning rate and its
seed, and a small validation set is a poor guide to either. A logistic-regression probe has
neither: the whole backbone (its class-attention pooling included) stays as pretrained; the
jet representation the tagging head reads is computed once for the training and validation
jets; a multinomial logistic regression (standardised inputs, L2 penalty) is fitted for every
strength of :data:`PROBE_C_GRID`; the one with the lowest validation cross-entropy is kept,
and its standardisation is folded into the head's single ``Linear`` layer. The result is a
plain :class:`~jetfm.modeling.JetFMForJetTagging` checkpoint with ``head_hidden_size = 0``:
deterministic, seconds on a CPU once the features are computed.

It suits a backbone pre-trained with a jet-level objective (``jetfm pretrain --truth
class=...`` trains the pooling); on a pure-MPM checkpoint the pooling is untrained and
``frozen`` or ``full`` mode, which train it, do better.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from jetfm.errors import JetFMError

#: inverse L2 strengths tried (scikit-learn's ``C``; smaller is stronger), weakest last
PROBE_C_GRID: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)
#: the tasks whose head is one jet-level classifier
PROBE_TASKS: tuple[str, ...] = ("tagging", "cwola")


def pooling_pretrained(config: Any) -> bool:
    """Whether a checkpoint's class-attention pooling was trained in pre-training: by a
    jet-level objective (``truth_objectives`` ``class``); MPM alone never uses it."""
    return (getattr(config, "truth_objectives", None) or {}).get("class", 0) > 0


def default_tagging_mode(config: Any) -> str:
    """``probe`` for a checkpoint whose pooled jet state was pre-trained, else ``frozen``
    (which trains the pooling with the head)."""
    return "probe" if pooling_pretrained(config) else "frozen"


@dataclasses.dataclass
class ProbeFit:
    """A fitted probe: ``weight (num_labels, D)`` and ``bias (num_labels,)`` acting on the raw
    (unstandardised) jet representation, the chosen ``c`` and the validation cross-entropy of
    every ``c`` tried."""

    weight: np.ndarray
    bias: np.ndarray
    c: float
    val_loss: dict[float, float]
    train_jets: int
    val_jets: int

    def summary(self) -> dict[str, Any]:
        """The record kept in ``run_config.json`` and ``finetune_metrics.json``."""
        return {
            "c": self.c,
            "c_grid_val_loss": {f"{c:g}": round(v, 6) for c, v in self.val_loss.items()},
            "train_jets": self.train_jets,
            "val_jets": self.val_jets,
        }


@torch.inference_mode()
def jet_features(
    model: torch.nn.Module,
    dataset: Any,
    collator: Callable[[list], dict[str, torch.Tensor]],
    label: str = "labels",
    batch_size: int = 256,
    progress: bool = True,
    description: str = "jet features",
) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: the representation the tagging head of ``model`` reads
    (:meth:`JetFMForJetTagging.jet_representation`) and the ``label`` of every jet."""
    from tqdm.auto import tqdm

    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collator)
    was_training = model.training
    model.eval()
    features, labels = [], []
    for batch in tqdm(loader, desc=description, disable=not progress, leave=False):
        labels.append(batch.pop(label).numpy())
        features.append(model.jet_representation(**batch).float().numpy())
    model.train(was_training)
    return np.concatenate(features), np.concatenate(labels)


def fit_logistic(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    num_labels: int,
    c_grid: Sequence[float] = PROBE_C_GRID,
    class_names: Sequence[str] | None = None,
) -> ProbeFit:
    """Logistic regression of ``y`` (class indices in ``[0, num_labels)``) on standardised
    ``x`` for every ``C`` of ``c_grid``; the ``C`` with the lowest validation cross-entropy is
    kept (a tie to the stronger penalty). Every class needs a training jet: a probe cannot
    score a class it has never seen."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.preprocessing import StandardScaler

    names = list(class_names) if class_names else [str(i) for i in range(num_labels)]
    missing = [names[i] for i in range(num_labels) if not np.any(y_train == i)]
    if missing:
        raise JetFMError(
            f"probe: no training jet of class {', '.join(missing)} among the {len(y_train)} "
            "training jets; give more labelled jets or leave that class out (classes=)"
        )
    scaler = StandardScaler().fit(x_train)
    z_train, z_val = scaler.transform(x_train), scaler.transform(x_val)
    labels = list(range(num_labels))
    best, val_loss = None, {}
    for c in sorted(c_grid):
        clf = LogisticRegression(C=c, max_iter=5000).fit(z_train, y_train)
        val_loss[c] = float(log_loss(y_val, clf.predict_proba(z_val), labels=labels))
        if best is None or val_loss[c] < val_loss[best[0]]:
            best = (c, clf)
    c, clf = best
    coef, intercept = clf.coef_, clf.intercept_
    if num_labels == 2:  # scikit-learn's binary form: one logit, that of class 1
        coef = np.stack([np.zeros_like(coef[0]), coef[0]])
        intercept = np.array([0.0, intercept[0]])
    weight = coef / scaler.scale_  # fold the standardisation into the layer
    bias = intercept - weight @ scaler.mean_
    return ProbeFit(weight, bias, c, val_loss, len(y_train), len(y_val))


def fit_probe_head(
    model: torch.nn.Module,
    train_set: Any,
    val_set: Any,
    collator: Callable[[list], dict[str, torch.Tensor]],
    label: str = "labels",
    batch_size: int = 256,
    progress: bool = True,
    c_grid: Sequence[float] = PROBE_C_GRID,
) -> ProbeFit:
    """Fit the linear head of a tagging ``model`` (``config.head_hidden_size == 0``) as a
    logistic-regression probe of its frozen representation, in place; returns the fit."""
    layer = model.classifier.net[-1]
    if not isinstance(layer, torch.nn.Linear) or len(model.classifier.net) > 2:
        raise JetFMError("probe mode needs a linear head (config.head_hidden_size = 0)")
    config = model.config
    names = [config.id2label[i] for i in range(config.num_labels)] if config.id2label else None
    kwargs = dict(collator=collator, label=label, batch_size=batch_size, progress=progress)
    x_train, y_train = jet_features(model, train_set, description="probe: training jets", **kwargs)
    x_val, y_val = jet_features(model, val_set, description="probe: validation jets", **kwargs)
    fit = fit_logistic(x_train, y_train, x_val, y_val, config.num_labels, c_grid, names)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(fit.weight, dtype=layer.weight.dtype))
        layer.bias.copy_(torch.as_tensor(fit.bias, dtype=layer.bias.dtype))
    return fit


__all__ = ["PROBE_C_GRID", "PROBE_TASKS", "ProbeFit", "default_tagging_mode", "fit_logistic",
           "fit_probe_head", "jet_features", "pooling_pretrained"]  # fmt: skip
