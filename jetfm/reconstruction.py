"""Does a pre-trained MPM model rebuild the particles it masks? The jet mass as the check.

Masking 40 % of a jet's particles removes a large part of its invariant mass. A decoder that
has learnt how jets are built samples the masked particles back from the visible ones, so the
jet rebuilt from the visible and the sampled particles should recover the true mass; a fresh
decoder does not. :func:`masked_reconstruction` runs a model over a dataset and returns the
three masses (true, visible particles only, visible + sampled) and the masked particles'
kinematics, true and sampled, in physical units; :func:`plot_reconstruction` draws them.
``jetfm pretrain`` writes this plot for its validation jets at the end of a run.

Example::

    model = JetFMForMaskedParticleModeling.from_pretrained("mpm-flow-base")
    processor = JetProcessor.from_pretrained("mpm-flow-base")
    result = masked_reconstruction(model, JetDataset("val/", processor, targets=()), processor)
    print(result.summary())        # mass response and resolution, reconstructed vs visible
    plot_reconstruction(result, "reconstruction.png")
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jetfm.data.schema import FEATURE_GROUPS
from jetfm.errors import JetFMError

_KIN = {name: i for i, name in enumerate(FEATURE_GROUPS["kinematics"])}
#: masked-particle features compared, true vs sampled (name in the ``kinematics`` group → axis label)
COMPARED_FEATURES = {
    "log_pt_rel": r"$\log(p_T / p_{T,\mathrm{jet}})$",
    "deta": r"$\Delta\eta$",
    "dphi": r"$\Delta\phi$",
}
#: jets lighter than this (GeV) are left out of the mass ratios (a ratio to ~0 is noise)
MIN_MASS_GEV = 1.0


def jet_mass(pt: np.ndarray, deta: np.ndarray, dphi: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Invariant mass (GeV) of each jet's particles, taken as massless.

    Built from each particle's pT and its (Δη, Δφ) to the jet axis: a boost along the beam and
    a rotation about it leave the mass unchanged, so the jet axis itself is not needed.
    Arrays are ``(n_jets, n_particles)``; particles with ``mask`` False do not count.
    """
    pt = np.where(mask, pt, 0.0).astype(np.float64)
    deta, dphi = deta.astype(np.float64), dphi.astype(np.float64)
    energy = (pt * np.cosh(deta)).sum(-1)
    px, py = (pt * np.cos(dphi)).sum(-1), (pt * np.sin(dphi)).sum(-1)
    pz = (pt * np.sinh(deta)).sum(-1)
    return np.sqrt(np.clip(energy**2 - px**2 - py**2 - pz**2, 0.0, None))


@dataclasses.dataclass
class ReconstructionResult:
    """Masses per jet (GeV) and the masked particles' features (physical units, ``(M,)``)."""

    true_mass: np.ndarray
    visible_mass: np.ndarray
    reconstructed_mass: np.ndarray
    true_particles: dict[str, np.ndarray]
    sampled_particles: dict[str, np.ndarray]

    def mass_ratios(self) -> tuple[np.ndarray, np.ndarray]:
        """``(reconstructed / true, visible / true)`` for jets above :data:`MIN_MASS_GEV`."""
        keep = self.true_mass > MIN_MASS_GEV
        true = self.true_mass[keep]
        return self.reconstructed_mass[keep] / true, self.visible_mass[keep] / true

    def summary(self) -> dict[str, float]:
        """Median mass ratio to the truth (response) and half its 16–84 % range (resolution),
        for the jet rebuilt with the sampled particles and for the visible particles alone."""
        out: dict[str, float] = {"jets": float(len(self.true_mass))}
        for name, ratio in zip(("reconstructed", "visible"), self.mass_ratios(), strict=True):
            if len(ratio) == 0:
                continue
            lo, mid, hi = np.percentile(ratio, [16, 50, 84])
            out[f"{name}_mass_response"] = float(mid)
            out[f"{name}_mass_resolution"] = float((hi - lo) / 2)
        return out


def can_sample(model: Any) -> bool:
    """Whether the MPM model's target draws particles (``flow``, ``diffusion``,
    ``regression``) rather than predicting codes (``kmeans``, ``vqvae``)."""
    from jetfm.modeling.targets.base import MPMTarget

    return type(model.target).sample is not MPMTarget.sample


@torch.no_grad()
def masked_reconstruction(
    model: Any,
    dataset: Any,
    processor: Any,
    n_jets: int = 2000,
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = False,
) -> ReconstructionResult:
    """Mask each jet as in pre-training, sample the masked particles, compare masses.

    Args:
        model: a :class:`~jetfm.modeling.JetFMForMaskedParticleModeling` whose target can
            sample particles (``flow``, ``diffusion``; the point estimate of ``regression``).
        dataset: an eager :class:`~jetfm.data.datasets.JetDataset` normalised by ``processor``.
        processor: the fitted :class:`~jetfm.data.processor.JetProcessor` (to undo the
            normalisation).
        n_jets: this many jets, spread evenly over the dataset (files are often sorted by
            class, so the first jets alone would be one class).
        seed: seeds the masks and the samples, so two calls agree.
    """
    from jetfm.data.batching import dataset_to_batch
    from jetfm.modeling.pretraining import sample_particle_mask

    target = model.config.mpm_target
    if not can_sample(model):
        raise JetFMError(
            f"the {target!r} target predicts codes, not particles: the reconstruction check "
            "needs a model pre-trained with --target flow, diffusion or regression"
        )
    if "kinematics" not in getattr(processor, "feature_groups", ()):
        raise JetFMError("the processor has no kinematics group to rebuild jets from")
    if not hasattr(dataset, "flat_arrays"):
        raise JetFMError(
            f"masked_reconstruction needs an in-memory JetDataset, got {type(dataset).__name__}"
        )
    n = min(int(n_jets), len(dataset))
    if n == 0:
        raise JetFMError("the dataset is empty: no jets to reconstruct")
    chosen = np.unique(np.linspace(0, len(dataset) - 1, n).round().astype(np.int64))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    masses: dict[str, list[np.ndarray]] = {"true": [], "visible": [], "reconstructed": []}
    true_parts: dict[str, list[np.ndarray]] = {k: [] for k in COMPARED_FEATURES}
    sampled_parts: dict[str, list[np.ndarray]] = {k: [] for k in COMPARED_FEATURES}
    starts = range(0, len(chosen), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="reconstructing masked particles", unit="batch")
    try:
        for start in starts:
            idx = chosen[start : start + batch_size]
            batch = dataset_to_batch(dataset, targets=(), indices=idx)
            inputs = {k: v.to(device) for k, v in batch.items()}
            masked = sample_particle_mask(inputs["mask"], model.config.mask_fraction, generator)
            samples, masked = model.reconstruct(**inputs, masked=masked, generator=generator)
            mask, masked = inputs["mask"].cpu().numpy(), masked.cpu().numpy()
            true = processor.unnormalise({"kinematics": batch["kinematics"].numpy()})["kinematics"]
            drawn = samples["kinematics"].float().cpu().numpy()
            drawn = processor.unnormalise({"kinematics": drawn})["kinematics"]
            rebuilt = true.copy()
            rebuilt[masked] = drawn
            for name, kin, keep in (("true", true, mask), ("visible", true, mask & ~masked),
                                    ("reconstructed", rebuilt, mask)):  # fmt: skip
                masses[name].append(jet_mass(np.exp(kin[..., _KIN["log_pt"]]),
                                             kin[..., _KIN["deta"]], kin[..., _KIN["dphi"]],
                                             keep))  # fmt: skip
            for name in COMPARED_FEATURES:
                true_parts[name].append(true[masked][:, _KIN[name]])
                sampled_parts[name].append(drawn[:, _KIN[name]])
    finally:
        model.train(was_training)
    return ReconstructionResult(
        true_mass=np.concatenate(masses["true"]),
        visible_mass=np.concatenate(masses["visible"]),
        reconstructed_mass=np.concatenate(masses["reconstructed"]),
        true_particles={k: np.concatenate(v) for k, v in true_parts.items()},
        sampled_particles={k: np.concatenate(v) for k, v in sampled_parts.items()},
    )


def plot_reconstruction(
    result: ReconstructionResult, path: str | os.PathLike, title: str | None = None
) -> Path:
    """Jet mass (true, visible only, visible + sampled), the mass ratios to the truth, and the
    masked particles' features (true vs sampled), in one PNG written atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from jetfm.plots import _save

    # top row: the two mass panels; bottom row: one panel per compared particle feature
    fig, axd = plt.subplot_mosaic([["m", "m", "m", "r", "r", "r"], ["0", "0", "1", "1", "2", "2"]],
                                  figsize=(12.5, 7.5))  # fmt: skip
    axes = [axd["m"], axd["r"]] + [axd[str(i)] for i in range(len(COMPARED_FEATURES))]
    top = np.percentile(result.true_mass, 99.5) * 1.1 if len(result.true_mass) else 1.0
    bins = np.linspace(0.0, max(top, 1.0), 50)
    ax = axes[0]
    ax.hist(result.true_mass, bins, color="0.8", label="true (all particles)")
    ax.hist(result.visible_mass, bins, histtype="step", ls="--", color="C1", lw=1.5,
            label="visible particles only")  # fmt: skip
    ax.hist(result.reconstructed_mass, bins, histtype="step", color="C0", lw=1.5,
            label="visible + sampled")  # fmt: skip
    ax.set(xlabel="jet mass [GeV]", ylabel="jets")
    ax.legend(fontsize=8)
    ax = axes[1]
    reco, visible = result.mass_ratios()
    ratio_bins = np.linspace(0.0, 2.0, 60)
    stats = result.summary()
    for ratio, name, style in ((visible, "visible", dict(ls="--", color="C1")),
                               (reco, "reconstructed", dict(color="C0"))):  # fmt: skip
        if len(ratio):
            label = (f"{name}: median {stats[f'{name}_mass_response']:.2f}, "
                     f"±{stats[f'{name}_mass_resolution']:.2f}")  # fmt: skip
            ax.hist(np.clip(ratio, 0, 2), ratio_bins, histtype="step", lw=1.5, label=label,
                    **style)  # fmt: skip
    ax.axvline(1.0, color="0.5", lw=0.8)
    ax.set(xlabel="mass / true mass", ylabel="jets")
    ax.legend(fontsize=8)
    for ax, (name, label) in zip(axes[2:], COMPARED_FEATURES.items(), strict=True):
        true, drawn = result.true_particles[name], result.sampled_particles[name]
        both = np.concatenate([true, drawn])
        edges = np.linspace(*np.percentile(both, [0.5, 99.5]), 50) if len(both) else 10
        ax.hist(true, edges, color="0.8", label="true")
        ax.hist(drawn, edges, histtype="step", color="C0", lw=1.5, label="sampled")
        ax.set(xlabel=f"masked particles: {label}", ylabel="particles")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


__all__ = [
    "COMPARED_FEATURES",
    "ReconstructionResult",
    "can_sample",
    "jet_mass",
    "masked_reconstruction",
    "plot_reconstruction",
]
