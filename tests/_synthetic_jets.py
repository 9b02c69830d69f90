"""Small in-memory jets with physical structure, for the pre-training tests.

Vectorised toy jets: pT fractions sorted decreasingly (as the data layer sorts), harder
particles closer to the jet axis, a realistic particle-type mix with charges, and track
parameters only for charged particles. Features follow ``FEATURE_GROUPS`` and are
standardised over real particles, as the processor does.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

# e, mu, photon, charged hadron, neutral hadron
TYPE_PROBS = torch.tensor([0.02, 0.02, 0.30, 0.50, 0.16])


def synthetic_jets(
    num_jets: int, seed: int = 0, n_min: int = 6, n_max: int = 24
) -> dict[str, torch.Tensor]:
    """Padded batch dict ``{kinematics, pid, tracks, mask, jet_id}`` of ``num_jets`` jets."""
    g = torch.Generator().manual_seed(seed)
    b, n = num_jets, n_max
    counts = torch.randint(n_min, n_max + 1, (b,), generator=g)
    mask = torch.arange(n) < counts[:, None]
    w = (-torch.log(torch.rand(b, n, generator=g))) ** 2 * mask
    frac = (w / w.sum(1, keepdim=True)).sort(dim=1, descending=True).values
    jet_pt = 300 * torch.exp(0.3 * torch.randn(b, 1, generator=g))
    jet_eta = torch.randn(b, 1, generator=g)
    width = 0.03 + 0.15 * (1 - frac.clamp(min=1e-6).sqrt())
    deta = torch.randn(b, n, generator=g) * width
    dphi = torch.randn(b, n, generator=g) * width
    pt = (frac * jet_pt).clamp(min=1e-3)
    energy = pt * torch.cosh(jet_eta + deta)
    jet_e = (energy * mask).sum(1, keepdim=True)
    kin = torch.stack(
        [pt.log(), energy.log(), (pt / jet_pt).log(), (energy / jet_e).log(), deta, dphi,
         (deta**2 + dphi**2).sqrt()], dim=-1,
    )  # fmt: skip
    kind = torch.multinomial(TYPE_PROBS, b * n, replacement=True, generator=g).view(b, n)
    pid = torch.zeros(b, n, 6)
    pid[..., 1:].scatter_(-1, kind.unsqueeze(-1), 1.0)
    charged = (kind == 0) | (kind == 1) | (kind == 3)
    sign = torch.randint(0, 2, (b, n), generator=g) * 2.0 - 1
    pid[..., 0] = torch.where(charged, sign, 0.0)
    d0 = torch.randn(b, n, generator=g) * 0.05 / pt.sqrt()
    dz = torch.randn(b, n, generator=g) * 0.08 / pt.sqrt()
    tracks = torch.stack([torch.tanh(d0), torch.tanh(dz), 0.02 / pt.sqrt(), 0.03 / pt.sqrt()], -1)
    tracks = tracks * charged.unsqueeze(-1)
    out = {"kinematics": kin, "tracks": tracks}
    for key, x in out.items():  # standardise over real particles (the processor's job)
        real = x[mask]
        out[key] = ((x - real.mean(0)) / real.std(0).clamp(min=1e-6)) * mask.unsqueeze(-1)
    return {**out, "pid": pid * mask.unsqueeze(-1), "mask": mask, "jet_id": torch.arange(b)}


class SyntheticJetDataset(Dataset):
    """One jet per item (trimmed to its real particles), like the data layer's datasets."""

    def __init__(self, num_jets: int, seed: int = 0, groups=("kinematics", "pid", "tracks")):
        self.data = synthetic_jets(num_jets, seed)
        self.groups = tuple(groups)

    def __len__(self) -> int:
        return len(self.data["mask"])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        n = int(self.data["mask"][i].sum())
        item = {g: self.data[g][i, :n] for g in self.groups}
        item["jet_id"] = self.data["jet_id"][i]
        return item


def pad_collate(items: list[dict[str, torch.Tensor]], keep_ids: bool = False) -> dict:
    """Pad to the longest jet of the batch (the collator's default)."""
    n = max(len(it["kinematics"]) for it in items)
    batch: dict[str, torch.Tensor] = {}
    for key in items[0]:
        if key == "jet_id":
            continue
        x = torch.zeros(len(items), n, items[0][key].shape[-1])
        for j, it in enumerate(items):
            x[j, : len(it[key])] = it[key]
        batch[key] = x
    batch["mask"] = torch.arange(n) < torch.tensor([len(it["kinematics"]) for it in items])[:, None]
    if keep_ids:
        batch["jet_id"] = torch.stack([it["jet_id"] for it in items])
    return batch
