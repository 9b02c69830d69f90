"""Which particles Masked Particle Modelling hides, and how the masked slots are addressed.

:func:`sample_particle_mask` draws the masked particles of each jet. :class:`MaskedSlots`
addresses them in one of two ways, with the same physics:

* **by index** (``width`` given): a ``(B, K)`` tensor of slot indices per jet, ``K`` the most
  particles any jet of ``N`` slots can have masked, with a validity flag per entry. Every
  shape depends only on the batch shape, never on the data, so a training step needs no host
  synchronisation and ``torch.compile`` takes it whole;
* **by boolean mask** (``width=None``): ``x[masked]``, exactly the masked particles in
  row-major order. Shapes depend on the data; used where the output is read per particle
  (sampling, diagnostics).

Either way, ``select`` turns a per-slot tensor ``(B, N, …)`` into per-entry rows ``(E, …)``
and ``weight`` ``(E,)`` is 1 on real masked particles and 0 on the padding entries of the
index form, so losses are weighted means over the masked particles in both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def masked_counts(n: torch.Tensor, fraction: float) -> torch.Tensor:
    """Particles masked in a jet of ``n`` real particles: ``round(fraction · n)``, at least
    one in a non-empty jet and, for ``n ≥ 2``, at least one left visible."""
    k = torch.round(fraction * n.to(torch.float32)).long()
    k = torch.minimum(k.clamp(min=1), (n - 1).clamp(min=1))
    return torch.where(n > 0, k, torch.zeros_like(k))


def sample_particle_mask(
    mask: torch.Tensor, fraction: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Choose :func:`masked_counts` real particles of each jet at random → bool ``(B, N)``.

    Vectorised: random scores (padding gets +inf), the per-jet rank of each score, and
    ``rank < k_i``. Every shape is the batch's, so the draw compiles.
    """
    mask = mask.bool()
    k = masked_counts(mask.sum(dim=1), fraction)
    scores = torch.rand(mask.shape, generator=generator, device=mask.device)
    scores = scores.masked_fill(~mask, float("inf"))
    rank = scores.argsort(dim=1).argsort(dim=1)
    return (rank < k[:, None]) & mask


def static_width_table(max_slots: int, fraction: float) -> list[tuple[int, int]]:
    """``table[n]`` = ``(most masked, most visible)`` particles over every jet that fits in
    ``n`` slots, for ``n`` up to ``max_slots``.

    The widths of the index-addressed tensors: they depend only on the batch shape and the
    mask fraction, so a compiled step sees the same shapes for every batch of a bucket.
    Computed once, eagerly, with the same float32 rounding as :func:`masked_counts`.
    """
    n = torch.arange(max_slots + 1, device="cpu")  # also while a model is built on "meta"
    k = masked_counts(n, fraction)
    most_masked = torch.cummax(k, dim=0).values.tolist()
    most_visible = torch.cummax(n - k, dim=0).values.tolist()
    return list(zip(most_masked, most_visible, strict=True))


def first_slots(selected: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Slot indices of each row's selected entries, in slot order, padded to ``width``:
    ``(index (B, width), valid (B, width))``. A stable sort puts the selected slots first;
    the padding entries point at unselected slots and are flagged invalid."""
    index = torch.argsort((~selected).to(torch.int8), dim=1, stable=True)[:, :width]
    valid = torch.arange(width, device=selected.device) < selected.sum(dim=1, keepdim=True)
    return index, valid


def gather_slots(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[b, index[b, j]]`` for ``(B, N)`` or ``(B, N, F)`` tensors."""
    if x.dim() == 2:
        return x.gather(1, index)
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


@dataclass
class MaskedSlots:
    """The masked particles of a batch, addressed by index or by boolean mask.

    Args:
        masked: ``(B, N)`` bool, True at masked particles.
        index: ``(B, K)`` slot indices (index form) or None (boolean form).
        valid: ``(B, K)`` bool, which index entries are masked particles (index form).
    """

    masked: torch.Tensor
    index: torch.Tensor | None = None
    valid: torch.Tensor | None = None

    @classmethod
    def build(cls, masked: torch.Tensor, width: int | None = None) -> MaskedSlots:
        """Index form with ``width`` entries per jet, or the boolean form when None."""
        if width is None:
            return cls(masked)
        index, valid = first_slots(masked, width)
        return cls(masked, index, valid)

    @property
    def static(self) -> bool:
        return self.index is not None

    def select(self, x: torch.Tensor) -> torch.Tensor:
        """Per-slot ``(B, N, …)`` → per-entry ``(E, …)`` (row-major: jet, then slot)."""
        if self.index is None:
            return x[self.masked]
        return gather_slots(x, self.index).flatten(0, 1)

    @property
    def weight(self) -> torch.Tensor:
        """``(E,)`` float32: 1 on masked particles, 0 on padding entries."""
        if self.index is None:
            return self.masked.new_ones(int(self.masked.sum()), dtype=torch.float32)
        return self.valid.flatten().to(torch.float32)

    def compact(self, x: torch.Tensor) -> torch.Tensor:
        """Per-entry rows ``(E, …)`` → only the masked particles ``(M, …)`` (outside a
        compiled step: the result's size depends on the data)."""
        return x if self.index is None else x[self.valid.flatten()]


def weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``Σ w·v / Σ w`` over entries (0 when no entry has weight), in float32."""
    weight = weight.to(torch.float32)
    return (values.float() * weight).sum() / weight.sum().clamp(min=1.0)


__all__ = [
    "MaskedSlots",
    "first_slots",
    "gather_slots",
    "masked_counts",
    "sample_particle_mask",
    "static_width_table",
    "weighted_mean",
]
