"""``ParticleTokenizer``: the VQ-VAE that turns particles into discrete codes (arXiv 2401.13537).

A small transformer encoder maps each particle *in the context of its jet* to a latent, which
is snapped to the nearest of ``num_codes`` codebook vectors; a small transformer decoder
reconstructs the particle's normalised continuous features from the codes. The codebook is
learned by exponential moving averages (EMA VQ) with a commitment loss and a straight-through
gradient; it is initialised by k-means on the first batch's latents.

Codebook collapse. The encoder keeps moving while the EMA codebook follows slowly, so codes
that fall out of the latent distribution are never chosen again and, without a remedy, a
512-code book ends up using a few dozen codes. Every training step therefore restarts *dead*
codes (Jukebox / SoundStream style): a code whose recent hit count per step (a moving average
with the fast ``dead_code_decay``) falls below ``max(dead_code_threshold, dead_code_fraction ×
mean count)`` is moved onto a randomly chosen encoder output of the current batch. Set both to
0 to switch restarts off.

Distributed training. When ``torch.distributed`` is initialised with more than one rank, the
per-step hit counts and latent sums are all-reduced (summed) before the EMA update, the
k-means initialisation and the restart candidates are taken from rank 0 and broadcast, so
every rank holds the same codebook after every step (DDP's own buffer broadcast then has
nothing to change). Training-mode forwards must therefore run on all ranks in lockstep, as
they do under DDP; evaluation (``eval()``) and :meth:`ParticleTokenizer.encode` never
communicate.

Train it with ``jetfm tokenizer train``; it is then frozen and used by the ``vqvae`` target of
Masked Particle Modelling. The codebook is a buffer, so it lives in ``model.safetensors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from jetfm.config_checks import CheckedConfigMixin
from jetfm.data.schema import FEATURE_GROUPS, IGNORE_INDEX, REQUIRED_GROUP
from jetfm.hub import HubMixin
from jetfm.modeling.layers import LayerScale, TransformerBlock, masked_fill_padding
from jetfm.modeling.targets.kmeans import fit_kmeans, nearest_code


class ParticleTokenizerConfig(CheckedConfigMixin, PretrainedConfig):
    r"""Configuration of :class:`ParticleTokenizer`.

    Args:
        feature_groups: continuous groups tokenized, ``{group: n_features}`` (kinematics
            required; add ``tracks`` when the data has them).
        num_codes: codebook size (512 in arXiv 2401.13537).
        code_dim: dimension of the codebook vectors.
        hidden_size / num_layers / num_attention_heads / intermediate_size: encoder and
            decoder transformers (each ``num_layers`` blocks).
        commitment_cost: weight of ‖z − sg(q)‖².
        ema_decay: decay of the codebook moving averages.
        dead_code_threshold: absolute floor, in recent hits per training step (summed over
            ranks), below which a code is dead and restarted onto an encoder output.
        dead_code_fraction: a code is also dead when its recent hit count is below this
            fraction of the mean count (``particles per step / num_codes``); scale-free, so it
            suits any batch size. Restarts are off when this and ``dead_code_threshold`` are 0.
        dead_code_decay: decay of the fast moving average of hits per step ("recent hits")
            used to spot dead codes. It is faster than ``ema_decay`` so that codes abandoned
            early in training are restarted within tens of steps, not hundreds.
    """

    model_type = "jetfm-tokenizer"

    def __init__(
        self,
        feature_groups: dict[str, int] | None = None,
        num_codes: int = 512,
        code_dim: int = 16,
        hidden_size: int = 128,
        num_layers: int = 2,
        num_attention_heads: int = 4,
        intermediate_size: int = 256,
        commitment_cost: float = 0.25,
        ema_decay: float = 0.99,
        dead_code_threshold: float = 0.03,
        dead_code_fraction: float = 0.1,
        dead_code_decay: float = 0.9,
        layer_scale_init: float = 0.1,
        layer_norm_eps: float = 1e-6,
        initializer_range: float = 0.02,
        **kwargs: Any,
    ):
        self.feature_groups = dict(feature_groups or {REQUIRED_GROUP: 7})
        if REQUIRED_GROUP not in self.feature_groups:
            raise ValueError(f"tokenizer feature_groups must include {REQUIRED_GROUP!r}")
        self.num_codes = num_codes
        self.code_dim = code_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.commitment_cost = commitment_cost
        self.ema_decay = ema_decay
        self.dead_code_threshold = dead_code_threshold
        self.dead_code_fraction = dead_code_fraction
        self.dead_code_decay = dead_code_decay
        self.layer_scale_init = layer_scale_init
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        super().__init__(**kwargs)


@dataclass
class ParticleTokenizerOutput(ModelOutput):
    """Output of :class:`ParticleTokenizer`.

    Args:
        loss: reconstruction + commitment loss.
        reconstruction_loss / commitment_loss: the two parts.
        codes: ``(B, N)`` code of every particle, ``IGNORE_INDEX`` at padding.
        reconstruction: ``(B, N, F)`` decoded features.
        perplexity: exp(entropy) of the batch's code frequencies (≤ num_codes).
        usage: fraction of the codebook used in the batch.
    """

    loss: torch.Tensor | None = None
    reconstruction_loss: torch.Tensor | None = None
    commitment_loss: torch.Tensor | None = None
    codes: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    perplexity: torch.Tensor | None = None
    usage: torch.Tensor | None = None


def codebook_statistics(codes: torch.Tensor, num_codes: int) -> dict[str, float]:
    """Usage (fraction of codes used) and perplexity of a set of codes (padding ignored)."""
    codes = codes[codes != IGNORE_INDEX]
    counts = torch.bincount(codes.flatten(), minlength=num_codes).float()
    p = counts / counts.sum().clamp(min=1)
    entropy = -(p * p.clamp(min=1e-12).log()).sum()
    return {"usage": float((counts > 0).float().mean()), "perplexity": float(entropy.exp())}


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_reduce_sum(*tensors: torch.Tensor) -> None:
    """Sum tensors in place over the ranks (no-op outside multi-rank training)."""
    if _distributed():
        for t in tensors:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)


def _broadcast_from_rank0(tensor: torch.Tensor) -> None:
    """Overwrite ``tensor`` in place with rank 0's copy (no-op outside multi-rank training)."""
    if _distributed():
        dist.broadcast(tensor, src=0)


class _Stack(nn.Module):
    """Linear in → transformer blocks → norm → linear out, over a jet's particles."""

    def __init__(self, config: ParticleTokenizerConfig, d_in: int, d_out: int):
        super().__init__()
        d = config.hidden_size
        self.proj_in = nn.Linear(d_in, d)
        self.blocks = nn.ModuleList(
            TransformerBlock(
                d,
                config.num_attention_heads,
                config.intermediate_size,
                layer_scale_init=config.layer_scale_init,
                eps=config.layer_norm_eps,
            )
            for _ in range(config.num_layers)
        )
        self.norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.proj_out = nn.Linear(d, d_out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.proj_in(x)
        # A jet with no real particle would give an all-masked attention row (NaN): let such
        # rows attend to themselves; their outputs are zeroed anyway.
        attn_mask = mask | ~mask.any(dim=1, keepdim=True)
        for block in self.blocks:
            h = block(h, attn_mask)
        return masked_fill_padding(self.proj_out(self.norm(h)), mask)


class ParticleTokenizer(HubMixin, PreTrainedModel):
    """VQ-VAE particle tokenizer (see the module docstring).

    Example::

        tok = ParticleTokenizer.from_pretrained("runs/tokenizer")
        codes = tok.encode(kinematics=batch["kinematics"], mask=batch["mask"])  # (B, N)
    """

    config_class = ParticleTokenizerConfig
    config: ParticleTokenizerConfig
    base_model_prefix = "tokenizer"
    main_input_name = "kinematics"
    _no_split_modules = ["TransformerBlock"]

    def __init__(self, config: ParticleTokenizerConfig):
        super().__init__(config)
        n_in = sum(config.feature_groups.values())
        self.encoder = _Stack(config, n_in, config.code_dim)
        self.decoder = _Stack(config, config.code_dim, n_in)
        k, c = config.num_codes, config.code_dim
        self.register_buffer("codebook", torch.zeros(k, c))
        self.register_buffer("ema_cluster_size", torch.zeros(k))
        self.register_buffer("ema_embed_sum", torch.zeros(k, c))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.long))
        # fast moving average of hits per step, used only to spot dead codes (not saved)
        self.register_buffer("code_usage", torch.zeros(k), persistent=False)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, LayerScale):
            init.constant_(module.gamma, module.init_value)
        elif isinstance(module, ParticleTokenizer):
            bufs = (
                module.codebook,
                module.ema_cluster_size,
                module.ema_embed_sum,
                module.code_usage,
            )
            for buf in bufs:
                init.zeros_(buf)
            init.zeros_(module.initialized)

    # --- inputs -------------------------------------------------------------------------
    def features(
        self, kinematics: torch.Tensor, tracks: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Concatenate the groups the tokenizer was trained on → ``(B, N, F)``."""
        given = {REQUIRED_GROUP: kinematics, "tracks": tracks}
        parts = []
        for g, n in self.config.feature_groups.items():
            x = given.get(g)
            if x is None:
                raise ValueError(
                    f"the tokenizer was trained on feature groups {list(self.config.feature_groups)}"
                    f" but {g!r} was not given"
                )
            if x.shape[-1] != n:
                raise ValueError(
                    f"feature group {g!r} must have {n} features {FEATURE_GROUPS.get(g, ())}, "
                    f"got shape {tuple(x.shape)}"
                )
            parts.append(x.float())
        return torch.cat(parts, dim=-1)

    # --- vector quantisation ------------------------------------------------------------
    @torch.no_grad()
    def _update_codebook(self, z: torch.Tensor, codes: torch.Tensor) -> None:
        """EMA codebook update followed by the dead-code restart (one training step)."""
        k, decay = self.config.num_codes, self.config.ema_decay
        hits = torch.bincount(codes, minlength=k).float()
        sums = torch.zeros_like(self.ema_embed_sum).index_add_(0, codes, z)
        _all_reduce_sum(hits, sums)  # every rank applies the same, global update
        self.ema_cluster_size.mul_(decay).add_(hits, alpha=1 - decay)
        self.ema_embed_sum.mul_(decay).add_(sums, alpha=1 - decay)
        n = self.ema_cluster_size.sum()
        size = (self.ema_cluster_size + 1e-5) / (n + k * 1e-5) * n  # Laplace smoothing
        self.codebook.copy_(self.ema_embed_sum / size.unsqueeze(-1))
        # The fast usage average is not saved: after loading, it restarts from the slow one.
        usage = torch.where(self.code_usage.sum() > 0, self.code_usage, self.ema_cluster_size)
        d = self.config.dead_code_decay
        self.code_usage.copy_(usage * d + hits * (1 - d))
        self._restart_dead_codes(z)

    def dead_code_limit(self) -> torch.Tensor:
        """Recent hits per step below which a code counts as dead (0-dim tensor)."""
        mean = self.code_usage.sum() / self.config.num_codes
        return torch.clamp(
            self.config.dead_code_fraction * mean, min=self.config.dead_code_threshold
        )

    @torch.no_grad()
    def _restart_dead_codes(self, z: torch.Tensor) -> None:
        """Move dead codes onto random encoder outputs ``z`` of the current batch.

        Vectorised and free of host syncs: one candidate is drawn per code and kept only where
        the code is dead. A restarted code starts with a small EMA count (the dead-code limit),
        so its first hits pull it to the mean of the latents it wins, and with a mean recent
        usage, a grace period before it can be declared dead again. The candidates come from
        rank 0, so all ranks restart identically.
        """
        if self.config.dead_code_threshold <= 0 and self.config.dead_code_fraction <= 0:
            return
        limit = self.dead_code_limit()
        dead = self.code_usage < limit
        if len(z):
            candidates = z[torch.randint(len(z), (self.config.num_codes,), device=z.device)]
        else:  # no particle on this rank: restarting onto the code itself changes nothing
            candidates = self.codebook.clone()
        _broadcast_from_rank0(candidates)
        self.codebook.copy_(torch.where(dead[:, None], candidates, self.codebook))
        self.ema_embed_sum.copy_(torch.where(dead[:, None], candidates * limit, self.ema_embed_sum))
        self.ema_cluster_size.copy_(torch.where(dead, limit, self.ema_cluster_size))
        grace = self.code_usage.mean()
        self.code_usage.copy_(torch.where(dead, grace, self.code_usage))

    @torch.no_grad()
    def _kmeans_init(self, z: torch.Tensor) -> None:
        """Codebook = k-means centroids of the first batch's latents (rank 0's, broadcast);
        the EMA counts start at the centroids' actual hit counts so that they are in the same
        units (hits per step) as the later updates and the dead-code limit."""
        total = torch.tensor(float(len(z)), device=z.device)
        _all_reduce_sum(total)
        if total == 0:  # no particle anywhere yet: initialise on a later batch
            return
        if len(z):
            centroids = fit_kmeans(z, self.config.num_codes, steps=30, batch_size=len(z))
        else:  # this rank has nothing to fit; rank 0's centroids arrive by broadcast
            centroids = torch.zeros_like(self.codebook)
        _broadcast_from_rank0(centroids)
        hits = torch.bincount(nearest_code(z, centroids), minlength=self.config.num_codes).float()
        _all_reduce_sum(hits)
        hits.clamp_(min=1.0)
        self.codebook.copy_(centroids)
        self.ema_embed_sum.copy_(centroids * hits.unsqueeze(-1))
        self.ema_cluster_size.copy_(hits)
        self.code_usage.copy_(hits)
        self.initialized.fill_(1)

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest code ``(P,)`` and its codebook vector ``(P, C)`` for latents ``(P, C)``."""
        codes = nearest_code(z.detach().float(), self.codebook.float())
        return codes, self.codebook[codes].to(z.dtype)

    # --- public API ---------------------------------------------------------------------
    @torch.no_grad()
    def encode(
        self,
        kinematics: torch.Tensor,
        mask: torch.Tensor | None = None,
        tracks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Codes ``(B, N)`` of every particle (``IGNORE_INDEX`` at padding)."""
        x = self.features(kinematics, tracks)
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if mask is None else mask
        mask = mask.bool()
        z = self.encoder(x, mask)
        # every slot is quantised (static shapes, no host sync), padding then blanked
        codes = self.quantize(z.flatten(0, 1))[0].view(mask.shape)
        return torch.where(mask, codes, torch.full_like(codes, IGNORE_INDEX))

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Features ``(B, N, F)`` reconstructed from codes ``(B, N)``."""
        zq = self.codebook[codes.clamp(min=0)] * mask.unsqueeze(-1)
        return self.decoder(zq, mask.bool())

    def forward(
        self,
        kinematics: torch.Tensor,
        mask: torch.Tensor | None = None,
        pid: torch.Tensor | None = None,
        tracks: torch.Tensor | None = None,
        return_loss: bool = True,
        return_dict: bool | None = None,
    ) -> ParticleTokenizerOutput | tuple:
        r"""Encode, quantise and decode a batch (``pid`` is accepted and ignored).

        In training mode this also updates the codebook (EMA) and initialises it by k-means
        on the first call.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        x = self.features(kinematics, tracks)
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if mask is None else mask
        mask = mask.bool()
        z = self.encoder(x, mask)
        zf = z[mask]
        if self.training and int(self.initialized) == 0:
            self._kmeans_init(zf.detach().float())
        codes, zq = self.quantize(zf)
        if self.training:
            self._update_codebook(zf.detach().float(), codes)
        commitment = self.config.commitment_cost * F.mse_loss(zf, zq.detach())
        zq_st = zf + (zq - zf).detach()  # straight-through gradient to the encoder
        z_full = torch.zeros_like(z).masked_scatter(mask.unsqueeze(-1), zq_st)
        recon = self.decoder(z_full, mask)
        recon_loss = F.mse_loss(recon[mask], x[mask])
        all_codes = torch.full(mask.shape, IGNORE_INDEX, dtype=torch.long, device=x.device)
        all_codes[mask] = codes
        hits = torch.bincount(codes, minlength=self.config.num_codes).float()
        p = hits / hits.sum().clamp(min=1)
        out = ParticleTokenizerOutput(
            loss=recon_loss + commitment,
            reconstruction_loss=recon_loss.detach(),
            commitment_loss=commitment.detach(),
            codes=all_codes,
            reconstruction=recon,
            perplexity=torch.exp(-(p * p.clamp(min=1e-12).log()).sum()),
            usage=(hits > 0).float().mean(),
        )
        return out if return_dict else out.to_tuple()

    @property
    def num_codes(self) -> int:
        return self.config.num_codes
