"""Pre-training batches sampled, bucketed and padded on the device.

:class:`DeviceJetBatches` holds a training set's features as flat tensors (jets concatenated,
see :mod:`jetfm.data.feature_cache`) in GPU memory when they fit, and yields ready batches in
the model's contract (``kinematics``, ``pid``, ``tracks``, ``mask`` and the truth targets it
holds: ``track_labels`` / ``vertex_labels`` padded with
:data:`~jetfm.data.schema.IGNORE_INDEX`, per-jet ``labels`` / ``parton_labels``). There is no per-jet
Python and no collate function: a batch is one gather of ``(B, L)`` particle rows, where
``L`` is the batch's *bucket* — one of a few padded lengths. Jets are grouped by the smallest
bucket they fit, so every batch has one of a few fixed shapes (what a compiled step wants)
and little padding.

An epoch: each bucket's jets in a random order, cut into batches of ``batch_size``; the jets
left over join the next bucket's (padded a little more), the last bucket's remainder is
completed with jets drawn again from that bucket, so every jet is seen at least once; then the
batches of all buckets in a random order. The order is planned on the host with numpy (one
permutation per epoch, sent to the device once), so no step waits for the device.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch

from jetfm.data.batching import bucket_length
from jetfm.data.schema import IGNORE_INDEX
from jetfm.errors import DataError

#: keep the features off the GPU when they would take more than this share of its free memory
DEVICE_MEMORY_SHARE = 0.5


def _fits_on(device: torch.device, nbytes: int) -> bool:
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes < DEVICE_MEMORY_SHARE * free


class DeviceJetBatches(torch.utils.data.IterableDataset):
    """Batches of a pre-training set, gathered on ``device`` (see the module docstring).

    Args:
        flat: ``{group: (particles, F)}`` features, jets concatenated (numpy or torch).
        counts: ``(jets,)`` particles per jet.
        batch_size: jets per batch.
        buckets: padded lengths, increasing; every jet must fit the last one.
        device: where batches are built and yielded (the training device).
        seed: base seed of the epoch orders.
        rank / world_size: under data parallelism each rank takes every ``world_size``-th jet.
        keep_on_device: ``None`` (default): the features live on ``device`` when they take
            less than half its free memory, else in (pinned) host memory, gathered there and
            copied per batch; ``True`` / ``False`` force it.
        pad_to_bucket: pad every batch to its bucket's length (static shapes, for a GPU or a
            compiled step; default). ``False`` cuts each batch to its longest jet, which
            reads the batch on the host: cheaper for eager CPU runs, where that costs nothing.
        targets: per-particle integer targets ``{name: (particles,)}`` (jets concatenated
            like ``flat``), yielded ``(B, L)`` with ``IGNORE_INDEX`` on padding.
        jet_targets: per-jet integer targets ``{name: (jets,)}``, yielded ``(B,)``.
    """

    #: the Trainer wires a dataset with this flag to a plain loader (it yields batches)
    yields_batches = True

    def __init__(
        self,
        flat: Mapping[str, np.ndarray | torch.Tensor],
        counts: np.ndarray | torch.Tensor,
        batch_size: int,
        *,
        buckets: Sequence[int],
        device: torch.device | str = "cpu",
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        keep_on_device: bool | None = None,
        pad_to_bucket: bool = True,
        targets: Mapping[str, np.ndarray | torch.Tensor] | None = None,
        jet_targets: Mapping[str, np.ndarray | torch.Tensor] | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.buckets = tuple(sorted(int(b) for b in buckets))
        counts_np = np.asarray(counts, dtype=np.int64)
        if len(counts_np) == 0:
            raise DataError("no jets to pre-train on")
        if counts_np.max() > self.buckets[-1]:
            raise DataError(
                f"a jet has {int(counts_np.max())} particles, more than the longest bucket "
                f"({self.buckets[-1]}); raise the buckets or max_particles"
            )
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.seed = int(seed)
        self.pad_to_bucket = bool(pad_to_bucket)
        self.epoch = 0
        offsets = np.concatenate([[0], np.cumsum(counts_np)[:-1]])
        mine = np.arange(rank, len(counts_np), world_size)  # this rank's jets
        if len(mine) == 0:
            raise DataError(f"rank {rank} of {world_size} gets no jets: too few jets")
        self._bucket_members = self._by_bucket(counts_np[mine], mine)
        targets, jet_targets = dict(targets or {}), dict(jet_targets or {})
        for name, values in jet_targets.items():
            if len(values) != len(counts_np):
                raise DataError(f"{name!r} has {len(values)} values for {len(counts_np)} jets")
        arrays = [*flat.values(), *targets.values(), *jet_targets.values()]
        nbytes = sum(int(np.asarray(a).nbytes) for a in arrays)
        on_device = _fits_on(self.device, nbytes) if keep_on_device is None else keep_on_device
        self.storage = self.device if on_device else torch.device("cpu")
        pin = self.storage.type == "cpu" and self.device.type == "cuda"
        self._flat = {g: self._tensor(a, torch.float32, pin) for g, a in flat.items()}
        self._targets = {t: self._tensor(a, torch.int64, pin) for t, a in targets.items()}
        self._jet_targets = {t: self._tensor(a, torch.int64, pin) for t, a in jet_targets.items()}
        self._counts = self._tensor(counts_np, torch.int64, pin)
        self._offsets = self._tensor(offsets, torch.int64, pin)
        self._num_particles = int(counts_np.sum())

    def _tensor(self, array, dtype: torch.dtype, pin: bool) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(array), dtype=dtype)
        return t.pin_memory() if pin else t.to(self.storage)

    def _by_bucket(self, counts: np.ndarray, jets: np.ndarray) -> list[np.ndarray]:
        which = np.searchsorted(np.asarray(self.buckets), counts, side="left")
        return [jets[which == b] for b in range(len(self.buckets))]

    # --- the epoch plan -----------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """The Trainer calls this at each epoch: a new order per epoch, reproducible."""
        self.epoch = int(epoch)

    def plan(self, epoch: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """``(jet order, [(start in the order, bucket length)] per batch)`` of an epoch."""
        rng = np.random.default_rng([self.seed, epoch])
        b = self.batch_size
        order: list[np.ndarray] = []
        batches: list[tuple[int, int]] = []
        carry = np.zeros(0, dtype=np.int64)
        start = 0
        last = len(self.buckets) - 1
        for i, length in enumerate(self.buckets):
            members = self._bucket_members[i]
            jets = np.concatenate([carry, rng.permutation(members)])
            if i == last and len(jets) % b:
                # complete the last batch with jets drawn again (every jet seen at least once)
                pool = jets if len(jets) else np.concatenate(self._bucket_members)
                extra = rng.choice(pool, b - len(jets) % b)
                jets = np.concatenate([jets, extra])
            full = len(jets) // b * b
            carry = jets[full:]
            order.append(jets[:full])
            batches += [(start + k, length) for k in range(0, full, b)]
            start += full
        shuffled = [batches[i] for i in rng.permutation(len(batches))]
        return np.concatenate(order), shuffled

    def __len__(self) -> int:
        """Batches per epoch (the same for every epoch)."""
        total = sum(len(m) for m in self._bucket_members)
        return -(-total // self.batch_size)

    # --- batches ------------------------------------------------------------------------------
    def gather(self, jets: torch.Tensor, length: int) -> dict[str, torch.Tensor]:
        """The batch of jets ``jets`` (indices, on the storage device) padded to ``length``."""
        counts = self._counts[jets]
        if not self.pad_to_bucket:
            length = int(counts.max())
        slots = torch.arange(length, device=counts.device)
        mask = slots < counts[:, None]
        rows = torch.where(mask, self._offsets[jets][:, None] + slots, 0)
        batch = {g: x[rows] * mask.unsqueeze(-1) for g, x in self._flat.items()}
        batch["mask"] = mask
        for name, x in self._targets.items():
            batch[name] = torch.where(mask, x[rows], IGNORE_INDEX)
        for name, x in self._jet_targets.items():
            batch[name] = x[jets]
        if self.storage != self.device:
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        return batch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        order, batches = self.plan(self.epoch)
        order_t = torch.from_numpy(order).to(self.storage)  # one transfer per epoch
        self.epoch += 1  # a new order next time, also when nobody calls set_epoch
        for start, length in batches:
            yield self.gather(order_t[start : start + self.batch_size], length)

    def __repr__(self) -> str:
        total = sum(len(m) for m in self._bucket_members)
        return (
            f"DeviceJetBatches({total} jets, {self._num_particles} particles, batch "
            f"{self.batch_size}, buckets {list(self.buckets)}, on {self.storage})"
        )


__all__ = ["DeviceJetBatches", "bucket_length"]
