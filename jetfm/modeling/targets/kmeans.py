"""``kmeans``: cross-entropy over the nearest of K k-means centroids.

The centroids are fitted before pre-training on a sample of normalised particle features
(:func:`fit_kmeans`, vectorised mini-batch k-means in torch) and stored as a buffer, so they
travel in ``model.safetensors``. Options: ``num_codes`` (512; thousands for real runs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from jetfm.configuration import JetFMConfig
from jetfm.modeling.masking import weighted_mean
from jetfm.modeling.targets.base import (
    MPMTarget,
    TargetInputs,
    TargetOutput,
    concat_features,
    mlp,
)


def nearest_code(x: torch.Tensor, centroids: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """Index of the nearest centroid for each row of ``x`` (chunked to bound memory)."""
    c = centroids.to(x.dtype)
    c2 = (c * c).sum(-1)
    # ‖x − c‖² = ‖x‖² − 2 x·c + ‖c‖²; ‖x‖² does not change the argmin.
    return (
        torch.cat([(c2 - 2 * xb @ c.T).argmin(-1) for xb in x.split(chunk)])
        if len(x)
        else (torch.zeros(0, dtype=torch.long, device=x.device))
    )


@torch.no_grad()
def kmeans_plus_plus(points: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each new centre drawn with probability ∝ squared distance to the
    nearest centre chosen so far (one vectorised distance update per centre)."""
    first = int(torch.randint(len(points), (1,), generator=generator))
    centres = [points[first]]
    d2 = (points - points[first]).pow(2).sum(-1)
    for _ in range(k - 1):
        total = d2.sum()
        if total <= 0:  # fewer distinct points than codes: duplicate at random
            idx = int(torch.randint(len(points), (1,), generator=generator))
        else:
            idx = int(torch.multinomial((d2 / total).cpu(), 1, generator=generator))
        centres.append(points[idx])
        d2 = torch.minimum(d2, (points - points[idx]).pow(2).sum(-1))
    return torch.stack(centres).clone()


@torch.no_grad()
def fit_kmeans(
    points: torch.Tensor,
    num_codes: int,
    *,
    steps: int = 200,
    batch_size: int = 8192,
    seed: int = 0,
) -> torch.Tensor:
    """Mini-batch k-means (Sculley 2010) on ``points`` ``(P, F)``; returns ``(num_codes, F)``.

    Centroids start from k-means++ seeding on a subsample (:func:`kmeans_plus_plus`); each
    step assigns a random mini-batch and moves every centroid toward the mean of its points
    with a per-centroid 1/count learning rate. Centroids that never win during the first half
    are re-seeded from random points, so no code is left dead.
    """
    points = points.float()
    if points.dim() != 2 or len(points) == 0:
        raise ValueError(f"fit_kmeans needs a non-empty (P, F) tensor, got {tuple(points.shape)}")
    g = torch.Generator(device="cpu").manual_seed(seed)

    def draw(n: int) -> torch.Tensor:
        idx = torch.randint(len(points), (n,), generator=g).to(points.device)
        return points[idx]

    centroids = kmeans_plus_plus(draw(min(len(points), max(20 * num_codes, 10_000))), num_codes, g)
    counts = torch.zeros(num_codes, device=points.device)
    for step in range(steps):
        batch = draw(min(batch_size, max(len(points), num_codes)))
        code = nearest_code(batch, centroids)
        hits = torch.bincount(code, minlength=num_codes).float()
        sums = torch.zeros_like(centroids).index_add_(0, code, batch)
        counts += hits
        lr = (hits / counts.clamp(min=1)).unsqueeze(-1)
        centroids += lr * (sums / hits.clamp(min=1).unsqueeze(-1) - centroids) * (hits > 0)[:, None]
        if step < steps // 2:
            dead = counts == 0
            if dead.any():
                centroids[dead] = draw(int(dead.sum()))
    return centroids


class KMeansTarget(MPMTarget):
    name = "kmeans"

    def __init__(self, config: JetFMConfig, input_size: int):
        super().__init__(config, input_size)
        self.num_codes = int(self.options.get("num_codes", 512))
        n_features = sum(self.groups.values())
        self.register_buffer("centroids", torch.zeros(self.num_codes, n_features))
        self.head = mlp(input_size, input_size, self.num_codes, layers=1)

    def set_centroids(self, centroids: torch.Tensor) -> None:
        """Install fitted centroids ``(num_codes, F)``."""
        if centroids.shape != self.centroids.shape:
            raise ValueError(
                f"centroids must have shape {tuple(self.centroids.shape)} (num_codes, features "
                f"of {list(self.groups)}), got {tuple(centroids.shape)}"
            )
        self.centroids.copy_(centroids)

    def codes(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return nearest_code(concat_features(features, self.groups).float(), self.centroids.float())

    def forward(self, states: torch.Tensor, inputs: TargetInputs) -> TargetOutput:
        codes = self.codes(inputs.features)
        logits = self.head(states)
        loss = weighted_mean(
            F.cross_entropy(logits.float(), codes, reduction="none"), inputs.weight
        )
        return TargetOutput(loss=loss, logits=logits, codes=codes)
