"""Per-particle features of whole chunks of jets (vectorised; no per-jet Python loops).

:func:`compute_features` turns a validated :class:`~jetfm.data.reading.RawChunk` into a
:class:`FeatureChunk`: zero-padded ``(n_jets, P, n_features)`` arrays per feature group
(``P`` = the longest jet of the chunk after truncation), the particle ``counts``, the targets,
and a ``valid`` flag per jet, so that a caller predicting on a file keeps entry alignment
while datasets simply drop invalid jets.

Kinematics are derived from the 4-vectors and the jet axis (``jet_pt/eta/phi/energy`` when the
file has them, else the sum of all constituents): log pT, log E, log pT/pT_jet, log E/E_jet,
Δη, Δφ wrapped to (−π, π] and ΔR. Constituents are sorted by pT (descending) and only the
leading ``max_particles`` kept; the number dropped is returned per jet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import awkward as ak
import numpy as np

from jetfm.data.reading import TARGET_FIELDS, RawChunk, ReadSpec
from jetfm.data.schema import FEATURE_GROUPS, IGNORE_INDEX, TRACK_ORIGINS, BranchMapping
from jetfm.data.truth import parton_flavour
from jetfm.errors import DataError


@dataclasses.dataclass
class FeatureChunk:
    """Features of one chunk of jets, padded to the chunk's longest jet.

    Attributes:
        features: ``{group: float32 (n, P, F)}``, zero on padding (and on invalid jets).
        counts: particles per jet after truncation, int64 ``(n,)``.
        valid: bool ``(n,)``; False for 0 constituents, NaN/inf inputs (policy ``skip``) or
            a jet of another class (``other_classes="skip"``).
        targets: ``labels`` and ``parton_labels`` int64 ``(n,)``; ``track_labels`` / ``vertex_labels`` int64
            ``(n, P)`` with :data:`~jetfm.data.schema.IGNORE_INDEX` on neutrals and padding.
        n_truncated: particles dropped per jet by ``max_particles``.
        nonfinite: bool ``(n,)``, jets invalid because of NaN/inf.
        other_class: bool ``(n,)``, jets of none of the classes in use (dropped by choice).
        particle_order: int64, the index of every kept particle (jets concatenated, in the
            pT-sorted layout) within its jet *as stored in the file*, so per-particle outputs
            can be written back in the input's own order.
        source / entry_start / file_index: where the chunk came from (entry of jet ``i`` is
            ``entry_start + i``).
    """

    features: dict[str, np.ndarray]
    counts: np.ndarray
    valid: np.ndarray
    targets: dict[str, np.ndarray]
    n_truncated: np.ndarray
    nonfinite: np.ndarray
    other_class: np.ndarray
    particle_order: np.ndarray | None = None
    source: str = "<in-memory>"
    entry_start: int = 0
    file_index: int = 0

    def __len__(self) -> int:
        return len(self.counts)

    @property
    def entries(self) -> np.ndarray:
        """Entry number (in its file) of every jet of the chunk."""
        return np.arange(self.entry_start, self.entry_start + len(self), dtype=np.int64)

    @property
    def mask(self) -> np.ndarray:
        """bool ``(n, P)``: True for real particles."""
        width = next(iter(self.features.values())).shape[1]
        return np.arange(width)[None, :] < self.counts[:, None]

    @property
    def skipped(self) -> dict[str, int]:
        """Invalid jets by reason: ``empty`` (0 constituents), ``nonfinite``, ``other_class``.

        Each jet counts once, under the first reason that applies.
        """
        filled = self.counts > 0
        return {
            "empty": int(np.count_nonzero(~filled)),
            "nonfinite": int(np.count_nonzero(self.nonfinite & filled)),
            "other_class": int(np.count_nonzero(self.other_class & ~self.nonfinite & filled)),
        }

    def flat(self, name: str, only_valid: bool = True) -> np.ndarray:
        """Real particles of a feature group or per-particle target, jets concatenated."""
        array = self.features[name] if name in self.features else self.targets[name]
        mask = self.mask
        if only_valid:
            mask = mask & self.valid[:, None]
        return array[mask]

    def iter_jets(self, return_index: bool = False) -> Iterator[dict[str, np.ndarray]]:
        """Unpadded per-jet dicts of the valid jets, in order."""
        for i in np.flatnonzero(self.valid):
            n = self.counts[i]
            jet = {g: a[i, :n] for g, a in self.features.items()}
            for key, a in self.targets.items():
                jet[key] = a[i] if a.ndim == 1 else a[i, :n]
            if return_index:
                jet["file_index"] = np.int64(self.file_index)
                jet["entry"] = np.int64(self.entry_start + i)
            yield jet


def wrap_phi(dphi: np.ndarray) -> np.ndarray:
    """Wrap angles to (−π, π] (π stays π, −π becomes π)."""
    return np.pi - np.mod(np.pi - dphi, 2 * np.pi)


def _jet_axis(fields: dict, has_axis: bool) -> tuple[np.ndarray, ...]:
    """(pT, η, φ, E) per jet: from the jet branches, or the sum of all constituents."""
    if has_axis:
        return tuple(ak.to_numpy(fields[f]).astype(np.float64) for f in BranchMapping.JET_FIELDS)
    sums = [ak.to_numpy(ak.sum(fields[f], axis=1)).astype(np.float64) for f in ("px", "py", "pz")]
    energy = ak.to_numpy(ak.sum(fields["energy"], axis=1)).astype(np.float64)
    px, py, pz = sums
    pt = np.hypot(px, py)
    return pt, np.arcsinh(pz / pt), np.arctan2(py, px), energy


def _scatter(flat: np.ndarray, jet: np.ndarray, pos: np.ndarray, n: int, width: int, fill):
    out = np.full((n, width) + flat.shape[1:], fill, dtype=flat.dtype)
    out[jet, pos] = flat
    return out


def compute_features(raw: RawChunk, spec: ReadSpec, max_particles: int = 128) -> FeatureChunk:
    """Raw (unnormalised) features, targets and validity of one chunk.

    Raises DataError (policy ``raise``) if a computed feature is NaN/inf — e.g. a particle
    with pT = 0 or E ≤ 0 — naming the feature and the entry; under ``skip`` the jet is
    marked invalid instead. Also checks the truth codes of ``part_origin``/``part_vtx``.
    """
    if max_particles < 1:
        raise DataError(f"max_particles must be ≥ 1; got {max_particles}")
    fields = raw.fields
    n = len(raw)
    has_axis = all(f in fields for f in BranchMapping.JET_FIELDS)
    with np.errstate(all="ignore"):
        pt_all = np.hypot(fields["px"], fields["py"])
        order = ak.argsort(pt_all, axis=1, ascending=False, stable=True)[:, :max_particles]
        counts_all = ak.to_numpy(ak.num(pt_all, axis=1)).astype(np.int64)
        counts = ak.to_numpy(ak.num(order, axis=1)).astype(np.int64)

        def take(field: str, dtype=np.float64) -> np.ndarray:
            return ak.to_numpy(ak.flatten(fields[field][order], axis=None)).astype(dtype)

        jet = np.repeat(np.arange(n), counts)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if n else np.zeros(0, np.int64)
        pos = np.arange(jet.size) - np.repeat(starts, counts)
        width = int(counts.max()) if n else 0

        jpt, jeta, jphi, jenergy = (a[jet] for a in _jet_axis(fields, has_axis))
        px, py, pz, energy = (take(f) for f in ("px", "py", "pz", "energy"))
        pt = np.hypot(px, py)
        eta = np.arcsinh(pz / pt)
        deta = eta - jeta
        dphi = wrap_phi(np.arctan2(py, px) - jphi)
        groups: dict[str, np.ndarray] = {
            "kinematics": np.stack(
                [
                    np.log(pt),
                    np.log(energy),
                    np.log(pt / jpt),
                    np.log(energy / jenergy),
                    deta,
                    dphi,
                    np.hypot(deta, dphi),
                ],
                axis=1,
            )
        }
        if "pid" in spec.feature_groups:
            groups["pid"] = np.stack([take(f) for f in BranchMapping.GROUP_FIELDS["pid"]], axis=1)
        if "tracks" in spec.feature_groups:
            groups["tracks"] = np.stack(
                [np.tanh(take("d0")), np.tanh(take("dz")), take("d0_err"), take("dz_err")],
                axis=1,
            )

    # NaN/inf produced by the feature maths (pT = 0, E ≤ 0, a zero jet axis, ...)
    nonfinite = raw.nonfinite.copy()
    for group, values in groups.items():
        bad_particle = ~np.isfinite(values)
        bad_jet = np.zeros(n, dtype=bool)
        bad_jet[jet[bad_particle.any(axis=1)]] = True
        bad_jet &= ~raw.nonfinite  # already known from the raw check
        if bad_jet.any():
            if spec.nan_policy == "raise":
                p, f = np.argwhere(bad_particle & ~raw.nonfinite[jet][:, None])[0]
                name = FEATURE_GROUPS[group][f]
                raise DataError(
                    f"{raw.source}: computed feature {group}.{name} is NaN/inf at entry "
                    f"{raw.entry_start + jet[p]} (a particle with pT = 0 or E ≤ 0, or a zero "
                    "jet axis?); fix the file or pass nan_policy='skip' to drop such jets"
                )
            nonfinite |= bad_jet
    valid = (counts > 0) & ~nonfinite & ~raw.other_class
    keep = valid[jet]
    features = {
        g: _scatter(np.where(keep[:, None], v, 0.0).astype(np.float32), jet, pos, n, width, 0.0)
        for g, v in groups.items()
    }

    targets: dict[str, np.ndarray] = {}
    if "labels" in spec.targets:
        targets["labels"] = np.asarray(fields["labels"], dtype=np.int64)
    if "parton_labels" in spec.targets:
        targets["parton_labels"] = parton_flavour(ak.to_numpy(fields["parton"]))
    for target in ("track_labels", "vertex_labels"):
        if target not in spec.targets:
            continue
        field = TARGET_FIELDS[target]
        codes = take(field, np.int64)
        upper = len(TRACK_ORIGINS) - 1 if target == "track_labels" else np.iinfo(np.int64).max
        bad = (codes < -1) | (codes > upper)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{raw.source}: branch {getattr(spec.mapping, field)!r} has the invalid value "
                f"{codes[i]} at entry {raw.entry_start + jet[i]} (expected −1 for neutrals, "
                + ("0..5 for tracks)" if target == "track_labels" else "≥ 0 for tracks)")
            )
        codes = np.where(codes < 0, IGNORE_INDEX, codes)
        targets[target] = _scatter(codes, jet, pos, n, width, IGNORE_INDEX)
    return FeatureChunk(
        features=features,
        counts=counts,
        valid=valid,
        targets=targets,
        n_truncated=counts_all - counts,
        nonfinite=nonfinite,
        other_class=raw.other_class,
        particle_order=ak.to_numpy(ak.flatten(order, axis=None)).astype(np.int64),
        source=raw.source,
        entry_start=raw.entry_start,
        file_index=raw.file_index,
    )
