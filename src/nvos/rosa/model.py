"""ROSA's context-aware dual encoder (DESIGN §7): region branch, phrase branch, cosine g, τ.

Shapes used throughout: B clips, T frames, K proposals (regions) per frame, N phrases,
D the frozen CLIP embedding size, E the joint space size (``ModelConfig.dim``; the
architecture is :class:`nvos.rosa.config.ModelConfig`).

- **Region branch**: frozen CLIP region embeddings (B, T, K, D) → linear to E, plus a box-geometry
  embedding and a frame-time embedding → a small transformer over *all* regions of a clip (T·K
  tokens, padded regions masked out as keys) → projection → L2-normalised (B, T, K, E).
- **Phrase branch**: ``[context ; plain]`` (B, N, 2D) → projection → L2-normalised (B, N, E). The
  projection learns how much of the narration context to use (``context_dropout`` zeroes the
  context half of random phrases in training); the no-context ablation (``use_context=False``)
  projects the plain half only (B, N, D).
- **g(r, w)** = cosine similarity = the dot product of the normalised embeddings.
- **τ**: fixed, or learned (stored as log τ, clamped to ``[tau_min, tau_max]``).
- **Input normalisation** (``input_norm``): the frozen embeddings of each kind (regions, context
  phrases, plain phrases) can be centred and scaled with statistics of the training data before
  the branches see them: ``standardize`` (per dimension) or ``whiten`` (ZCA: decorrelated, unit
  variance). Frozen encoders give embeddings that share a large common direction (random-weight
  CLIP: mean pairwise cosine ≈ 0.9 between regions); without it the branches start with nearly
  identical inputs. The statistics are buffers of the model (saved with it), set once by
  :meth:`RosaModel.set_input_norm` before training; they use no labels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nvos.rosa.batch import ClipBatch
from nvos.rosa.config import INPUT_NORMS, ModelConfig
from nvos.types import PathLike

__all__ = [
    "INPUT_KINDS",
    "Alignment",
    "InputNorm",
    "Embeddings",
    "PhraseEncoder",
    "RegionEncoder",
    "RosaModel",
    "load_model",
    "model_state",
]


INPUT_KINDS = ("regions", "context", "plain")


@dataclass
class Embeddings:
    """The joint-space embeddings of one batch (L2-normalised, float32).

    - ``regions``: (B, T, K, E); ``region_mask``: (B, T, K) bool, real proposals on real frames.
    - ``phrases``: (B, N, E); ``phrase_mask``: (B, N) bool.
    - ``frame_mask``: (B, T) bool, real frames with at least one real proposal.
    """

    regions: Tensor
    region_mask: Tensor
    phrases: Tensor
    phrase_mask: Tensor
    frame_mask: Tensor


@dataclass
class Alignment:
    """Inference result: for each phrase and frame, the proposal with the highest g.

    - ``index``: (B, T, N) int64 position k of the chosen region (-1 where the frame or phrase is
      padded or the frame has no proposal).
    - ``score``: (B, T, N) float32 g of the chosen region (NaN where ``index`` is -1).
    - ``g``: (B, T, K, N) float32 g of every region (-inf for padded regions), or None when the
      model does not give it (then no scores file can be written).
    """

    index: Tensor
    score: Tensor
    g: Tensor | None = None


def box_features(boxes: Tensor) -> Tensor:
    """(…, 4) normalised (x, y, w, h) → (…, 7): x, y, w, h, centre x, centre y, area."""
    x, y, w, h = boxes.unbind(-1)
    return torch.stack([x, y, w, h, x + w / 2, y + h / 2, w * h], dim=-1)


def time_features(time: Tensor, frequencies: int) -> Tensor:
    """(…,) clip-relative time in [0, 1] → (…, 1 + 2·frequencies) sinusoidal features."""
    scales = (2.0 ** torch.arange(frequencies, device=time.device, dtype=time.dtype)) * math.pi
    angles = time[..., None] * scales
    return torch.cat([time[..., None], angles.sin(), angles.cos()], dim=-1)


def _mlp(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.GELU(), nn.Linear(d_out, d_out))


class InputNorm(nn.Module):
    """A fixed affine map of frozen embeddings, ``(x - shift) @ transform``: (…, D) → (…, D).

    Identity until :meth:`fit` sets it from statistics of the training data (buffers, so it is
    saved and restored with the model and never trained).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("transform", torch.eye(dim))

    def fit(self, mean: Tensor, covariance: Tensor, kind: str, eps: float = 1e-3) -> None:
        """Set the map from the data's mean (D,) and covariance (D, D) (float64 preferred).

        ``standardize``: divide each dimension by its standard deviation; ``whiten``: ZCA
        whitening ``C^{-1/2}``; ``none``: identity. ``eps`` (relative to the mean variance) keeps
        near-constant directions from being blown up.
        """
        dim = self.shift.shape[0]
        if mean.shape != (dim,) or covariance.shape != (dim, dim):
            raise ValueError(f"statistics of shape {tuple(mean.shape)} do not fit dimension {dim}")
        mean, covariance = mean.double(), covariance.double()
        floor = eps * float(covariance.diagonal().mean().clamp(min=1e-12))
        if kind == "none":
            shift, transform = torch.zeros(dim), torch.eye(dim)
        elif kind == "standardize":
            shift = mean
            transform = torch.diag((covariance.diagonal().clamp(min=0) + floor).rsqrt())
        elif kind == "whiten":
            values, vectors = torch.linalg.eigh(covariance)
            scale = (values.clamp(min=0) + floor).rsqrt()
            shift, transform = mean, (vectors * scale) @ vectors.T
        else:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {kind!r}")
        self.shift.copy_(shift.to(self.shift))
        self.transform.copy_(transform.to(self.transform))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.shift.to(x.dtype)) @ self.transform.to(x.dtype)


class RegionEncoder(nn.Module):
    """Region branch: context transformer over all regions of a clip, then projection.

    Input (B, T, K, D) regions, (B, T, K, 4) boxes, (B, T) frame times, (B, T, K) mask;
    output (B, T, K, E) L2-normalised region embeddings (rows of padded regions are meaningless).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.input = nn.Linear(config.feature_dim, config.dim)
        self.box = _mlp(7, config.dim)
        self.time = _mlp(1 + 2 * config.time_frequencies, config.dim)
        self.context: nn.TransformerEncoder | None = None
        if config.context_layers > 0:
            layer = nn.TransformerEncoderLayer(
                d_model=config.dim,
                nhead=config.context_heads,
                dim_feedforward=4 * config.dim,
                dropout=config.dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            self.context = nn.TransformerEncoder(
                layer, config.context_layers, enable_nested_tensor=False
            )
        self.output = nn.Linear(config.dim, config.dim)

    def forward(self, regions: Tensor, boxes: Tensor, frame_time: Tensor, mask: Tensor) -> Tensor:
        b, t, k, _ = regions.shape
        tokens = self.input(regions) + self.box(box_features(boxes))
        tokens = (
            tokens + self.time(time_features(frame_time, self.config.time_frequencies))[:, :, None]
        )
        if self.context is not None:
            flat = tokens.reshape(b, t * k, -1)
            padding = ~mask.reshape(b, t * k)
            # A clip without any real region would give an all-masked attention row (NaN):
            # let it attend to its first (padded) token; its outputs are masked out downstream.
            empty = padding.all(dim=1)
            if bool(empty.any()):
                padding = padding.clone()
                padding[empty, 0] = False
            tokens = self.context(flat, src_key_padding_mask=padding).reshape(b, t, k, -1)
        return F.normalize(self.output(tokens), dim=-1)


class PhraseEncoder(nn.Module):
    """Phrase branch: projection of ``[context ; plain]`` (or ``plain`` alone) to the joint space.

    Input (B, N, D) context and plain phrase embeddings; output (B, N, E) L2-normalised.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.use_context = config.use_context
        self.context_dropout = config.context_dropout
        d_in = 2 * config.feature_dim if config.use_context else config.feature_dim
        self.projection = nn.Linear(d_in, config.dim)

    def forward(self, context: Tensor, plain: Tensor) -> Tensor:
        if not self.use_context:
            return F.normalize(self.projection(plain), dim=-1)
        if self.training and self.context_dropout > 0:
            # Whole context halves dropped (zeroed: the training mean after input_norm), so
            # the plain half must carry the phrase on its own; never at inference.
            keep = torch.rand(context.shape[:-1], device=context.device) >= self.context_dropout
            context = context * keep[..., None].to(context.dtype)
        return F.normalize(self.projection(torch.cat([context, plain], dim=-1)), dim=-1)


class RosaModel(nn.Module):
    """The dual encoder: :class:`RegionEncoder`, :class:`PhraseEncoder` and the temperature τ."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.region_encoder = RegionEncoder(config)
        self.phrase_encoder = PhraseEncoder(config)
        self.input_norm = nn.ModuleDict({k: InputNorm(config.feature_dim) for k in INPUT_KINDS})
        log_tau = torch.tensor(math.log(config.tau), dtype=torch.float32)
        if config.learn_tau:
            self.log_tau = nn.Parameter(log_tau)
        else:
            self.register_buffer("log_tau", log_tau)

    @property
    def tau(self) -> Tensor:
        """τ as a 0-d tensor (differentiable when learned), clamped to [tau_min, tau_max]."""
        lo, hi = math.log(self.config.tau_min), math.log(self.config.tau_max)
        return self.log_tau.clamp(lo, hi).exp()

    def set_input_norm(
        self, statistics: dict[str, tuple[Tensor, Tensor]], eps: float = 1e-3
    ) -> None:
        """Fit the input normalisation (``config.input_norm``) from ``{kind: (mean (D,),
        covariance (D, D))}`` for every kind of :data:`INPUT_KINDS` (see
        :func:`nvos.rosa.sources.input_statistics`); ``eps`` as in :meth:`InputNorm.fit`."""
        missing = set(INPUT_KINDS) - set(statistics)
        if missing:
            raise ValueError(f"input statistics lack {sorted(missing)}")
        for kind in INPUT_KINDS:
            self.input_norm[kind].fit(*statistics[kind], kind=self.config.input_norm, eps=eps)

    def forward(self, batch: ClipBatch) -> Embeddings:
        """Embed a batch's regions and phrases into the joint space (see :class:`Embeddings`)."""
        region_mask = batch.region_mask & batch.frame_mask[:, :, None]
        norm = self.input_norm
        regions = self.region_encoder(
            norm["regions"](batch.regions), batch.boxes, batch.frame_time, region_mask
        )
        phrases = self.phrase_encoder(
            norm["context"](batch.phrase_context), norm["plain"](batch.phrase_plain)
        )
        return Embeddings(
            regions=regions.float(),
            region_mask=region_mask,
            phrases=phrases.float(),
            phrase_mask=batch.phrase_mask,
            frame_mask=region_mask.any(dim=-1),
        )

    @torch.no_grad()
    def align(self, batch: ClipBatch) -> Alignment:
        """Inference (DESIGN §7): per phrase and frame, the region with the highest g."""
        emb = self(batch)
        g = torch.einsum("btke,bne->btkn", emb.regions, emb.phrases)
        g = g.masked_fill(~emb.region_mask[..., None], float("-inf"))
        score, index = g.max(dim=2)
        valid = emb.frame_mask[:, :, None] & emb.phrase_mask[:, None, :]
        index = index.masked_fill(~valid, -1)
        score = score.masked_fill(~valid, float("nan"))
        return Alignment(index=index, score=score, g=g)


def model_state(model: RosaModel, **extra: Any) -> dict[str, Any]:
    """What ``checkpoint.pt`` holds: ``model`` (state dict), ``model_config`` (dict), ``extra``."""
    return {"model": model.state_dict(), "model_config": asdict(model.config), **extra}


def load_model(path: PathLike, map_location: torch.device | str = "cpu") -> RosaModel:
    """The :class:`RosaModel` saved in a checkpoint (``checkpoint.pt``, ``best.pt`` or
    ``last.pt`` of :func:`nvos.rosa.train.train_rosa`), in eval mode on ``map_location``."""
    state = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(state, dict) or "model" not in state or "model_config" not in state:
        raise ValueError(f"{path}: not a ROSA checkpoint (needs 'model' and 'model_config')")
    model = RosaModel(ModelConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    return model.to(map_location).eval()
