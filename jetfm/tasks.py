"""The fine-tuning tasks: one record per task, the only place their names are spelled.

Fine-tuning, evaluation, prediction, ONNX export and the command line all look a task up
here: its head class, the labels it reads from the files, the metric that picks the best
checkpoint, the branches ``jetfm predict`` writes and the dynamic axes of its ONNX output.

This module imports no torch: the command line builds its ``--task`` choices from it.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from jetfm.data.schema import TRACK_ORIGINS
from jetfm.errors import JetFMError

#: module defining the task heads (imported when a head class is first needed)
HEADS_MODULE = "jetfm.modeling.heads"


def branch_safe(name: str) -> str:
    """A label / origin name as a ROOT-branch-friendly suffix (``b->c`` → ``b_to_c``)."""
    return re.sub(r"[^0-9A-Za-z_]", "_", str(name).replace("->", "_to_"))


@dataclasses.dataclass(frozen=True)
class Task:
    """What a task is, for every part of jetfm that handles it.

    Attributes:
        name: the task's one spelling (``--task``, ``config.finetuning["task"]``).
        head: class name of its head in :mod:`jetfm.modeling.heads` (``config.architectures``).
        label: the batch key the head trains on.
        labels_read: every label the task's evaluation reads from the files.
        metric: validation metric that selects the best checkpoint.
        greater_is_better: whether a larger ``metric`` is better.
        training_metrics: metrics reported at each validation pass while fine-tuning.
        per_particle: one output per particle (else one per jet).
        onnx_axes: dynamic axes of the exported ``logits``.
        description: one line for ``--help`` and the docs.
    """

    name: str
    head: str
    label: str
    labels_read: tuple[str, ...]
    metric: str
    greater_is_better: bool
    training_metrics: tuple[str, ...]
    per_particle: bool
    onnx_axes: Mapping[int, str]
    description: str

    @property
    def head_class(self) -> type:
        """The head's class (imports the model code on first use)."""
        return getattr(importlib.import_module(HEADS_MODULE), self.head)

    def output_branches(self, label_names: Sequence[str] = ()) -> list[str]:
        """Names of the prediction branches ``jetfm predict`` writes (per jet, or jagged per
        particle): ``score_<class>`` for the taggers, ``part_prob_<origin>`` and
        ``part_pred_origin`` for track ID, ``part_pred_vtx`` for vertex finding."""
        if self.head == "JetFMForJetTagging":
            return [f"score_{branch_safe(n)}" for n in label_names]
        if self.head == "JetFMForTrackID":
            return [f"part_prob_{branch_safe(o)}" for o in TRACK_ORIGINS] + ["part_pred_origin"]
        return ["part_pred_vtx"]


_JET_AXES = {0: "batch"}
_PARTICLE_AXES = {0: "batch", 1: "particles"}

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            name="tagging",
            head="JetFMForJetTagging",
            label="labels",
            labels_read=("labels",),
            # the validation loss: a near-constant output early in training can rank jets
            # well (high AUC) while classifying nothing
            metric="loss",
            greater_is_better=False,
            training_metrics=("accuracy", "auc"),
            per_particle=False,
            onnx_axes=_JET_AXES,
            description="jet classes from labelled jets",
        ),
        Task(
            name="cwola",
            head="JetFMForJetTagging",
            label="labels",
            labels_read=("labels",),
            metric="loss",
            greater_is_better=False,
            training_metrics=("accuracy", "auc"),
            per_particle=False,
            onnx_axes=_JET_AXES,
            description="weakly supervised tagging: two mixtures of different signal fraction",
        ),
        Task(
            name="track-id",
            head="JetFMForTrackID",
            label="track_labels",
            labels_read=("track_labels",),
            metric="balanced_accuracy",
            greater_is_better=True,
            training_metrics=("accuracy", "balanced_accuracy"),
            per_particle=True,
            onnx_axes=_PARTICLE_AXES,
            description="the origin of every track (b, b->c, c, prompt, ...)",
        ),
        Task(
            name="vertexing",
            head="JetFMForVertexFinding",
            label="vertex_labels",
            labels_read=("vertex_labels", "track_labels"),
            metric="ari",
            greater_is_better=True,
            training_metrics=("ari", "perfect_fraction"),
            per_particle=True,
            onnx_axes={0: "batch", 1: "particles", 2: "particles"},
            description="tracks grouped into vertices",
        ),
    )
}
#: the task names, in the order the command line lists them
TASK_NAMES: tuple[str, ...] = tuple(TASKS)
#: head class names, in the order of :data:`TASKS` (no duplicates)
HEAD_NAMES: tuple[str, ...] = tuple(dict.fromkeys(t.head for t in TASKS.values()))


def get_task(name: str | Task) -> Task:
    """The task called ``name``; JetFMError listing the known ones otherwise."""
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        raise JetFMError(f"unknown task {name!r}; choose from {list(TASK_NAMES)}")
    return TASKS[name]


def default_task_of_head(head: str) -> Task:
    """The first task of :data:`TASKS` trained with the head class ``head`` (the task of a
    checkpoint that does not record one)."""
    for task in TASKS.values():
        if task.head == head:
            return task
    raise JetFMError(f"{head} is not a fine-tuned task head; one of {list(HEAD_NAMES)} is")


def head_of_config(config: Any) -> str | None:
    """The task head named in ``config.architectures``, or ``None`` (a backbone, a
    pre-training model)."""
    return next((a for a in (getattr(config, "architectures", None) or []) if a in HEAD_NAMES),
                None)  # fmt: skip


def task_of_config(config: Any) -> Task:
    """The task a fine-tuned model's config was trained on: ``config.finetuning["task"]``,
    else the default task of its head; JetFMError for a config without a task head."""
    head = head_of_config(config)
    if head is None:
        raise JetFMError(
            f"a {getattr(config, 'architectures', None) or 'backbone'} model is not a "
            f"fine-tuned task head; one of {list(HEAD_NAMES)} is"
        )
    recorded = (getattr(config, "finetuning", None) or {}).get("task")
    return get_task(recorded) if recorded else default_task_of_head(head)


def task_of_model(model: Any) -> Task:
    """The task of a head instance: ``config.finetuning["task"]``, else its head's default
    task; JetFMError for anything but a task head."""
    # a LoRA-wrapped head (peft) answers for the head inside it
    model = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = next((c.__name__ for c in type(model).__mro__ if c.__name__ in HEAD_NAMES), None)
    if head is None:
        raise JetFMError(
            f"{type(model).__name__} is not a fine-tuned task head; one of {list(HEAD_NAMES)} is"
        )
    recorded = (getattr(model.config, "finetuning", None) or {}).get("task")
    return get_task(recorded) if recorded else default_task_of_head(head)


def head_classes() -> dict[str, type]:
    """``{head class name: class}`` of every task head."""
    module = importlib.import_module(HEADS_MODULE)
    return {name: getattr(module, name) for name in HEAD_NAMES}


__all__ = [
    "HEAD_NAMES",
    "TASKS",
    "TASK_NAMES",
    "Task",
    "branch_safe",
    "default_task_of_head",
    "get_task",
    "head_classes",
    "head_of_config",
    "task_of_config",
    "task_of_model",
]
