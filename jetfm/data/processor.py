"""``JetProcessor``: reading settings + normalisation statistics, saved like any HF processor.

A :class:`JetProcessor` is a :class:`transformers.FeatureExtractionMixin`, so
``save_pretrained(dir)`` / ``from_pretrained(dir_or_hub_id)`` write and read
``preprocessor_config.json`` through the standard Hugging Face machinery (Hub cache included).
It fixes everything needed to turn files into model inputs identically at pre-training,
fine-tuning and inference time: the feature groups, ``max_particles``, the branch mapping,
the label order and the per-feature mean/std of the normalised groups (``kinematics`` and
``tracks``; ``pid`` flags are used as they are).

Typical use::

    processor = JetProcessor(feature_groups=("kinematics", "pid", "tracks")).fit("train/*.root")
    processor.save_pretrained("run/")
    chunk = processor(tree.arrays())  # FeatureChunk with normalised features
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import awkward as ak
import numpy as np
from transformers import FeatureExtractionMixin

from jetfm.atomic import write_text
from jetfm.data.features import FeatureChunk, compute_features
from jetfm.data.layouts import mapping_from_option
from jetfm.data.reading import (
    DEFAULT_FEATURE_GROUPS,
    KeyList,
    PathsLike,
    RawChunk,
    ReadSpec,
    iter_raw_chunks,
    plan_branches,
    plan_work,
    resolve_label_names,
    validate_arrays,
)
from jetfm.data.schema import FEATURE_GROUPS, NORMALISED_GROUPS, BranchMapping
from jetfm.errors import DataError, JetFMError
from jetfm.hub import HubMixin

logger = logging.getLogger(__name__)

#: Standard deviations below this are replaced by 1 (a constant feature, e.g. all-zero
#: track errors in a sample without tracks, must not blow up to ±inf).
MIN_STD = 1e-6


class JetProcessor(HubMixin, FeatureExtractionMixin):
    r"""Turns JetClass-layout arrays into normalised feature groups.

    Args:
        feature_groups: groups to read; ``kinematics`` is required.
        max_particles: keep the leading (highest-pT) constituents only; the rest are dropped
            and counted.
        branch_mapping: a :class:`~jetfm.data.schema.BranchMapping`, its dict, or the name of a
            layout of :mod:`jetfm.data.layouts` (``"qg-npz"``, ...).
        label_names: class names in output order (``None``: resolved from the first file by
            :meth:`fit` or the datasets, JetClass order).
        nan_policy: ``"raise"`` (default) or ``"skip"`` jets with NaN/inf inputs.
        mean / std: ``{group: [per-feature value]}`` for the normalised groups; set by
            :meth:`fit`. Without them the processor is *unfitted* and datasets built from it
            yield raw features.
        num_jets_fitted: jets the statistics were computed on (provenance).

    Unknown keys (from a file written by a newer jetfm) are ignored with a warning.
    """

    model_input_names = ["kinematics", "pid", "tracks", "mask"]

    def __init__(
        self,
        feature_groups: Sequence[str] = DEFAULT_FEATURE_GROUPS,
        max_particles: int = 128,
        branch_mapping: BranchMapping | Mapping[str, Any] | None = None,
        label_names: Sequence[str] | None = None,
        nan_policy: str = "raise",
        mean: Mapping[str, Sequence[float]] | None = None,
        std: Mapping[str, Sequence[float]] | None = None,
        num_jets_fitted: int = 0,
        **kwargs: Any,
    ):
        # keys the HF machinery writes itself, and derived ones we write for readers
        for key in ("feature_extractor_type", "processor_class", "feature_names"):
            saved = kwargs.pop(key, None)
            if key == "feature_names" and saved is not None:
                self._check_feature_names(saved)
        kwargs.pop("jetfm_version", None)
        if kwargs:
            message = (
                f"JetProcessor: ignoring unknown keys {sorted(kwargs)} (saved by a newer "
                "jetfm version?)"
            )
            warnings.warn(message, UserWarning, stacklevel=2)
            logger.warning(message)
        super().__init__()
        # a BranchMapping, its dict (may name a ``layout``) or a layout name / YAML path
        mapping = mapping_from_option(branch_mapping or {})
        if label_names is None and mapping.labels:
            label_names = mapping.labels
        if int(max_particles) < 1:
            raise DataError(f"max_particles must be ≥ 1; got {max_particles}")
        spec = ReadSpec(mapping, tuple(feature_groups), nan_policy=nan_policy)  # validates
        self.feature_groups = list(spec.feature_groups)
        self.max_particles = int(max_particles)
        self.branch_mapping = mapping.to_dict()
        self.label_names = list(label_names) if label_names is not None else None
        self.nan_policy = nan_policy
        self.mean = {g: [float(x) for x in v] for g, v in mean.items()} if mean else None
        self.std = {g: [float(x) for x in v] for g, v in std.items()} if std else None
        self.num_jets_fitted = int(num_jets_fitted)
        if self.mean is not None:
            self._check_stats()

    # --- settings -------------------------------------------------------------------------
    @staticmethod
    def _check_feature_names(saved: Mapping[str, Sequence[str]]) -> None:
        for group, names in saved.items():
            if group in FEATURE_GROUPS and tuple(names) != FEATURE_GROUPS[group]:
                raise JetFMError(
                    f"the saved processor's {group!r} features {list(names)} differ from this "
                    f"jetfm's {list(FEATURE_GROUPS[group])}; its statistics cannot be reused"
                )

    def _check_stats(self) -> None:
        for group in self.normalised_groups:
            for name, stats in (("mean", self.mean), ("std", self.std)):
                values = (stats or {}).get(group)
                if values is None or len(values) != len(FEATURE_GROUPS[group]):
                    raise JetFMError(
                        f"JetProcessor {name}[{group!r}] must have {len(FEATURE_GROUPS[group])} "
                        f"values; got {values}"
                    )

    @property
    def mapping(self) -> BranchMapping:
        """The branch mapping (labels filled with :attr:`label_names`)."""
        data = dict(self.branch_mapping)
        data["labels"] = list(self.label_names) if self.label_names is not None else None
        return BranchMapping.from_dict(data)

    @property
    def normalised_groups(self) -> tuple[str, ...]:
        return tuple(g for g in self.feature_groups if g in NORMALISED_GROUPS)

    @property
    def is_fitted(self) -> bool:
        return self.mean is not None and self.std is not None

    @property
    def num_labels(self) -> int:
        return len(self.label_names or ())

    @property
    def group_sizes(self) -> dict[str, int]:
        """``{group: n_features}`` (what :class:`~jetfm.configuration.JetFMConfig` takes)."""
        return {g: len(FEATURE_GROUPS[g]) for g in self.feature_groups}

    def read_spec(
        self, targets: Sequence[str] = (), feature_groups: Sequence[str] | None = None
    ) -> ReadSpec:
        """The :class:`~jetfm.data.reading.ReadSpec` for these settings and targets."""
        groups = tuple(feature_groups or self.feature_groups)
        extra = [g for g in groups if g not in self.feature_groups]
        if extra:
            raise DataError(
                f"feature groups {extra} are not among the processor's {self.feature_groups}"
            )
        if "labels" in targets and not self.label_names:
            raise DataError(
                "targets include 'labels' but the processor knows no label names (no "
                f"{self.mapping.label_prefix}* branches were found); set label_names"
            )
        return ReadSpec(
            self.mapping,
            groups,
            tuple(targets),
            tuple(self.label_names) if self.label_names is not None else None,
            self.nan_policy,
        )

    def resolve_labels(self, paths: PathsLike) -> list[str]:
        """Fix :attr:`label_names` from the first file if not set yet; returns them."""
        if self.label_names is None:
            self.label_names = list(resolve_label_names(paths, self.mapping))
            logger.info("label names from %s: %s", paths, self.label_names)
        return list(self.label_names)

    # --- fitting ----------------------------------------------------------------------------
    def fit(
        self,
        paths: PathsLike,
        step_size: int = 20_000,
        max_jets: int | None = None,
        progress: bool = True,
    ) -> JetProcessor:
        """Compute mean/std of the normalised groups in ONE streaming pass over ``paths``.

        Statistics run over real particles of valid jets, merged chunk by chunk (Chan et
        al.'s parallel variance), so memory does not grow with the data. Also fixes
        :attr:`label_names` if unset. Returns ``self``.
        """
        from tqdm.auto import tqdm

        self.resolve_labels(paths)
        spec = self.read_spec()
        plan = plan_work(paths, spec, step_size)
        total = plan.num_entries if max_jets is None else min(max_jets, plan.num_entries)
        count = {g: 0 for g in self.normalised_groups}
        mean = {g: np.zeros(len(FEATURE_GROUPS[g])) for g in self.normalised_groups}
        m2 = {g: np.zeros(len(FEATURE_GROUPS[g])) for g in self.normalised_groups}
        seen = jets = truncated = 0
        skipped = {"empty": 0, "nonfinite": 0}
        with tqdm(total=total, unit="jet", desc="fitting statistics", disable=not progress) as bar:
            for raw in iter_raw_chunks(plan.units, spec):
                if seen >= total:
                    break
                chunk = compute_features(raw, spec, self.max_particles)
                within = np.arange(len(chunk)) < total - seen  # stop exactly at max_jets
                skipped["empty"] += int(np.count_nonzero(within & (chunk.counts == 0)))
                skipped["nonfinite"] += int(
                    np.count_nonzero(within & chunk.nonfinite & (chunk.counts > 0))
                )
                chunk.valid &= within
                seen += int(within.sum())
                jets += int(chunk.valid.sum())
                truncated += int(chunk.n_truncated[chunk.valid].sum())
                for g in self.normalised_groups:
                    x = chunk.flat(g).astype(np.float64)
                    if len(x) == 0:
                        continue
                    n_b, mean_b = len(x), x.mean(axis=0)
                    m2_b = ((x - mean_b) ** 2).sum(axis=0)
                    n_a = count[g]
                    delta = mean_b - mean[g]
                    count[g] = n_a + n_b
                    mean[g] = mean[g] + delta * n_b / count[g]
                    m2[g] = m2[g] + m2_b + delta**2 * n_a * n_b / count[g]
                bar.update(int(within.sum()))
        if jets == 0:
            raise DataError(f"no valid jets in {paths} to compute normalisation statistics from")
        std = {}
        for g in self.normalised_groups:
            s = np.sqrt(m2[g] / count[g])
            flat = s < MIN_STD
            if flat.any():
                names = [FEATURE_GROUPS[g][i] for i in np.flatnonzero(flat)]
                logger.warning("features %s.%s are constant; using std = 1", g, names)
            std[g] = np.where(flat, 1.0, s).tolist()
        self.mean = {g: mean[g].tolist() for g in self.normalised_groups}
        self.std = std
        self.num_jets_fitted = jets
        logger.info(
            "fitted statistics on %d jets (%d particles beyond max_particles=%d dropped; "
            "skipped %d empty and %d NaN/inf jets)",
            jets,
            truncated,
            self.max_particles,
            skipped["empty"],
            skipped["nonfinite"],
        )
        return self

    # --- applying -----------------------------------------------------------------------------
    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise JetFMError(
                "this JetProcessor has no normalisation statistics: call "
                "processor.fit(paths) or load one with JetProcessor.from_pretrained(...)"
            )

    def normalise(
        self, features: Mapping[str, np.ndarray], mask: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Standardise the ``kinematics``/``tracks`` arrays (``(..., F)``); ``pid`` unchanged.

        With ``mask`` (True = real particle) padded positions are set back to 0.
        """
        self._require_fitted()
        out = {}
        for g, x in features.items():
            if g in NORMALISED_GROUPS and g in self.mean:
                x = (x - np.asarray(self.mean[g], np.float32)) / np.asarray(self.std[g], np.float32)
                if mask is not None:
                    x = np.where(mask[..., None], x, 0.0)
            out[g] = np.asarray(x, dtype=np.float32)
        return out

    def unnormalise(self, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Inverse of :meth:`normalise` (e.g. to read a regression target in physical units)."""
        self._require_fitted()
        return {
            g: (
                (x * np.asarray(self.std[g], np.float32) + np.asarray(self.mean[g], np.float32))
                if g in NORMALISED_GROUPS and g in self.mean
                else x
            )
            for g, x in features.items()
        }

    def process(self, raw: RawChunk, spec: ReadSpec, normalise: bool | None = None) -> FeatureChunk:
        """Features of a validated raw chunk, normalised when the processor is fitted."""
        chunk = compute_features(raw, spec, self.max_particles)
        if normalise is None:
            normalise = self.is_fitted
        if normalise:
            chunk.features = self.normalise(chunk.features, chunk.mask)
        return chunk

    def __call__(
        self,
        arrays: Any,
        targets: Sequence[str] = (),
        source: str = "<in-memory>",
        entry_start: int = 0,
    ) -> FeatureChunk:
        """Normalised features of a chunk given as arrays keyed by *branch name*.

        ``arrays`` is an awkward record array (e.g. ``tree.arrays()``), a dict of arrays, or a
        :class:`~jetfm.data.features.FeatureChunk` of raw features. Returns a
        :class:`~jetfm.data.features.FeatureChunk` (see
        :func:`jetfm.data.batching.chunk_to_batch` for torch tensors).
        """
        self._require_fitted()
        if isinstance(arrays, FeatureChunk):
            arrays.features = self.normalise(arrays.features, arrays.mask)
            return arrays
        spec = self.read_spec(targets)
        keys = arrays.fields if isinstance(arrays, ak.Array) else list(arrays.keys())
        plan = plan_branches(KeyList(keys), source, spec)
        raw = validate_arrays(arrays, plan, spec, source, entry_start)
        return self.process(raw, spec, normalise=True)

    # --- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        from jetfm.version import __version__

        out = super().to_dict()
        out["feature_names"] = {g: list(FEATURE_GROUPS[g]) for g in self.feature_groups}
        out["jetfm_version"] = __version__
        return out

    def to_json_file(self, json_file_path: str | os.PathLike) -> None:
        """Write atomically (:func:`jetfm.atomic.write_text`)."""
        write_text(json_file_path, self.to_json_string())

    def __repr__(self) -> str:
        fitted = f"fitted on {self.num_jets_fitted} jets" if self.is_fitted else "not fitted"
        return (
            f"JetProcessor(feature_groups={self.feature_groups}, max_particles="
            f"{self.max_particles}, labels={self.label_names}, {fitted})"
        )
