"""Trainable projectors: a variable-length frame sequence -> a fixed number of LM-sized soft tokens.

Three kinds, built by name (`build_projector`):

- `linear`: masked average pooling of the frames into `num_tokens` equal time segments, then one linear map
  (the LLaVA-style baseline; cheap, keeps coarse time order);
- `mlp`: the same pooling, then Linear-GELU-Linear (Emotion-LLaMA's feature projector);
- `qformer`: `num_tokens` learned queries cross-attend to all frames (AffectGPT-style attention pooling,
  one Q-Former block), so each token can pick the frames it needs instead of a fixed time segment.

Every kind normalises its input with a LayerNorm (encoders differ wildly in scale: Whisper states vs
prosody descriptors) and initialises its output layer so soft tokens start at the RMS of the LM's own
token embeddings: an untrained projector then perturbs the prompt like a few extra words, not like noise
a hundred times larger than any embedding.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from affect_llm.errors import AffectError

__all__ = ["PROJECTORS", "ProjectorSpec", "build_projector", "segment_pool"]

PROJECTORS = ("linear", "mlp", "qformer")


@dataclass(frozen=True)
class ProjectorSpec:
    """Everything needed to rebuild a projector (saved as JSON beside its weights)."""

    kind: str
    in_dim: int
    out_dim: int
    num_tokens: int = 8
    hidden: int = 256
    heads: int = 4
    embed_rms: float = 0.05  # RMS of the LM's token embeddings: the soft tokens' starting scale

    def __post_init__(self) -> None:
        if self.kind not in PROJECTORS:
            raise AffectError(f"unknown projector {self.kind!r}; choose one of: {', '.join(PROJECTORS)}")
        for name in ("in_dim", "out_dim", "num_tokens", "hidden", "heads"):
            if getattr(self, name) < 1:
                raise AffectError(f"projector {name} must be >= 1, got {getattr(self, name)}")
        if self.kind == "qformer" and self.hidden % self.heads:
            raise AffectError(f"qformer hidden size {self.hidden} is not divisible by heads {self.heads}")

    def to_dict(self) -> dict:
        return asdict(self)


def segment_pool(x: torch.Tensor, mask: torch.Tensor, n: int) -> torch.Tensor:
    """Average frames [B, T, D] into n equal time segments per sample, ignoring padded frames.

    Segment k of a sample with L real frames covers frames [floor(kL/n), max(floor((k+1)L/n), floor(kL/n)+1)),
    so a clip shorter than n frames repeats frames rather than producing empty (NaN) segments.
    """
    lengths = mask.sum(dim=1).clamp(min=1).to(x.dtype)  # [B]
    k = torch.arange(n, device=x.device, dtype=x.dtype)
    start = torch.floor(k[None, :] * lengths[:, None] / n)  # [B, n]
    end = torch.maximum(torch.floor((k[None, :] + 1) * lengths[:, None] / n), start + 1)
    t = torch.arange(x.shape[1], device=x.device, dtype=x.dtype)
    weights = ((t[None, None, :] >= start[..., None]) & (t[None, None, :] < end[..., None])).to(x.dtype)
    weights = weights * mask[:, None, :].to(x.dtype)
    weights = weights / weights.sum(-1, keepdim=True).clamp(min=1)
    return weights @ x  # [B, n, D]


def _scaled_linear(d_in: int, d_out: int, rms: float) -> nn.Linear:
    """A linear layer whose output RMS is about `rms` for unit-variance inputs."""
    layer = nn.Linear(d_in, d_out)
    nn.init.normal_(layer.weight, std=rms / math.sqrt(d_in))
    nn.init.zeros_(layer.bias)
    return layer


class PooledProjector(nn.Module):
    """`linear` and `mlp`: segment pooling, then a linear map or a two-layer MLP."""

    def __init__(self, spec: ProjectorSpec) -> None:
        super().__init__()
        self.spec = spec
        self.norm = nn.LayerNorm(spec.in_dim)
        if spec.kind == "linear":
            self.net = _scaled_linear(spec.in_dim, spec.out_dim, spec.embed_rms)
        else:
            self.net = nn.Sequential(nn.Linear(spec.in_dim, spec.hidden), nn.GELU(),
                                     _scaled_linear(spec.hidden, spec.out_dim, spec.embed_rms))

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # Normalise after pooling: averaging frames shrinks their spread, and the output scale should not
        # depend on how many frames a clip has.
        return self.net(self.norm(segment_pool(frames, mask, self.spec.num_tokens)))


class QFormerProjector(nn.Module):
    """`qformer`: learned queries, one cross-attention + feed-forward block, then the map to the LM."""

    def __init__(self, spec: ProjectorSpec) -> None:
        super().__init__()
        self.spec = spec
        h = spec.hidden
        self.norm_in = nn.LayerNorm(spec.in_dim)
        self.inp = nn.Linear(spec.in_dim, h)
        self.queries = nn.Parameter(torch.randn(spec.num_tokens, h) * 0.02)
        self.attn = nn.MultiheadAttention(h, spec.heads, batch_first=True)
        self.norm_q = nn.LayerNorm(h)
        self.ffn = nn.Sequential(nn.Linear(h, 4 * h), nn.GELU(), nn.Linear(4 * h, h))
        self.norm_out = nn.LayerNorm(h)
        self.out = _scaled_linear(h, spec.out_dim, spec.embed_rms)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        kv = self.inp(self.norm_in(frames))
        q = self.queries.unsqueeze(0).expand(frames.shape[0], -1, -1)
        pad = ~mask.bool()
        pad[:, 0] = pad[:, 0] & mask.bool().any(1)  # an all-padding row would make softmax NaN
        attended, _ = self.attn(q, kv, kv, key_padding_mask=pad, need_weights=False)
        x = self.norm_q(q + attended)
        x = self.norm_out(x + self.ffn(x))
        return self.out(x)


def build_projector(spec: ProjectorSpec) -> nn.Module:
    """The projector module for a spec; output [B, spec.num_tokens, spec.out_dim]."""
    return QFormerProjector(spec) if spec.kind == "qformer" else PooledProjector(spec)
