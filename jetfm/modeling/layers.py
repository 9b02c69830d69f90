"""Transformer building blocks shared by the backbone, the MPM decoder and the tokenizer.

Pre-norm blocks with LayerScale and a SwiGLU feed-forward (the defaults arXiv 2409.12589
found to work well), attention through ``torch.nn.functional.scaled_dot_product_attention``
so PyTorch picks the fastest kernel for the device. Nothing here knows about particles.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def attention_bias(mask: torch.Tensor) -> torch.Tensor:
    """Key-padding mask ``(B, L)`` (True = real) → SDPA boolean mask ``(B, 1, 1, L)``."""
    return mask[:, None, None, :]


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor, dropout_p: float
) -> torch.Tensor:
    """``F.scaled_dot_product_attention``, in float32 when bf16 inputs are on a CPU.

    PyTorch's CPU attention kernel is about as fast in bf16 as in float32 forward but about
    nine times slower backward (measured: torch 2.13, jets of ~50 particles, head width 16),
    which would cost a bf16-autocast training step more than its bf16 matrix products save.
    The output keeps the inputs' dtype."""
    if q.dtype == torch.bfloat16 and q.device.type == "cpu":
        with torch.autocast("cpu", enabled=False):
            y = F.scaled_dot_product_attention(
                q.float(), k.float(), v.float(), attn_mask=attn_mask, dropout_p=dropout_p
            )
        return y.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)


class LayerScale(nn.Module):
    """Per-channel learned scale on a residual branch (CaiT); starts small for stability."""

    def __init__(self, dim: int, init_value: float):
        super().__init__()
        self.init_value = init_value
        self.gamma = nn.Parameter(torch.full((dim,), init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class SwiGLU(nn.Module):
    """Gated feed-forward ``W2(silu(W1 x) * W3 x)``."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.gate_up = nn.Linear(dim, 2 * hidden)
        self.down = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(self.dropout(F.silu(gate) * up))


class MultiHeadAttention(nn.Module):
    """Multi-head attention of queries ``x`` over keys/values ``context`` (self-attention
    when ``context`` is None), with a key-padding mask."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(
        self, x: torch.Tensor, key_mask: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        context = x if context is None else context
        b, lq, d = x.shape
        h = self.num_heads
        q = self.q(x).view(b, lq, h, d // h).transpose(1, 2)
        k, v = self.kv(context).view(b, context.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)
        y = scaled_dot_product_attention(
            q, k, v, attention_bias(key_mask), self.dropout if self.training else 0.0
        )
        return self.out(y.transpose(1, 2).reshape(b, lq, d))


class TransformerBlock(nn.Module):
    """Pre-norm self-attention + SwiGLU block with LayerScale on both residual branches."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ff_hidden: int,
        layer_scale_init: float = 1e-3,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        eps: float = 1e-6,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = MultiHeadAttention(dim, num_heads, attention_dropout)
        self.ls1 = LayerScale(dim, layer_scale_init)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.ff = SwiGLU(dim, ff_hidden, dropout)
        self.ls2 = LayerScale(dim, layer_scale_init)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.ls1(self.attn(self.norm1(x), mask)))
        return x + self.drop(self.ls2(self.ff(self.norm2(x))))


class ClassAttentionBlock(nn.Module):
    """CaiT class-attention: the class token attends to itself and the particles; only the
    class token is updated, so the cost is linear in the number of particles."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ff_hidden: int,
        layer_scale_init: float = 1e-3,
        dropout: float = 0.0,
        eps: float = 1e-6,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = MultiHeadAttention(dim, num_heads, dropout)
        self.ls1 = LayerScale(dim, layer_scale_init)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.ff = SwiGLU(dim, ff_hidden, dropout)
        self.ls2 = LayerScale(dim, layer_scale_init)

    def forward(self, cls: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        tokens = torch.cat([cls, x], dim=1)
        key_mask = torch.cat([mask.new_ones(mask.shape[0], cls.shape[1]), mask], dim=1)
        cls = cls + self.ls1(self.attn(self.norm1(cls), key_mask, context=self.norm1(tokens)))
        return cls + self.ls2(self.ff(self.norm2(cls)))


def masked_fill_padding(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero the states of padding slots so they never leak into sums or losses."""
    return x * mask.unsqueeze(-1).to(x.dtype)
