"""ROSA's losses (DESIGN §7): latent alignment, L_RPA, φ and the symmetric L_VNA.

Notation: B clips, T frames, K regions per frame, N phrases, E the joint space size. g(r, w) is the
cosine similarity (dot product of the L2-normalised embeddings from :class:`RosaModel`).

- **Latent alignment** r̃_tn: the real region of frame t with the highest g to phrase n. The argmax
  itself carries no gradient; the gradient flows through the selected region's embedding.
- **L_RPA** (per clip, real phrases n, n' and real frames t only)::

      Σ_n [ −Σ_t log( e^{g(r̃_tn,w_n)/τ} / Σ_n' e^{g(r̃_tn,w_n')/τ} )
            − log( Σ_t e^{g(r̃_tn,w_n)/τ} / Σ_n' Σ_t e^{g(r̃_tn',w_n)/τ} ) ]

  ``reduction="sum"`` keeps this exactly as written; ``reduction="mean"`` divides the first term by
  (real phrases × real frames) and the second by the real phrases, so the loss's scale does not
  grow with the number of frames or phrases. A one-phrase clip gives 0 either way (log 1).
- **φ(v, s)** = mean over s's real phrases of the mean over v's real frames of the max over that
  frame's real regions of g. For a mismatched pair φ(v_i, s_j) uses clip i's regions and
  narration j's phrases.
- **L_VNA** = 1/B Σ_i [ −log softmax_j(φ(v_i,s_j)/τ)[i] − log softmax_j(φ(v_j,s_i)/τ)[i] ].

Both losses are means over the *valid* clips of the (global) batch: a clip with at least one real
phrase and one real frame that has a real region. Invalid clips are neither anchors nor negatives
and are counted in :attr:`LossOutput.skipped_clips`. Under data parallelism the negatives of L_VNA
are every process's clips (gathered with gradient) and both means are taken over the global batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from nvos.rosa.config import RPA_REDUCTIONS
from nvos.rosa.distributed import SINGLE, Collective
from nvos.rosa.model import Embeddings

__all__ = [
    "LossOutput",
    "clip_narration_scores",
    "latent_alignment",
    "rosa_loss",
    "rpa_per_clip",
    "valid_clips",
    "vna_per_clip",
]

# Finite stand-in for −∞ in masked max / logsumexp (keeps gradients free of NaN).
_NEG = -1.0e9


@dataclass
class LossOutput:
    """One step's losses.

    - ``loss``: the value to back-propagate (λ_vna·L_VNA + λ_rpa·L_RPA). With W processes it is
      scaled by W so that DDP's gradient *average* equals the gradient of the global-batch loss.
    - ``vna``, ``rpa``, ``total``: detached global-batch values (the same on every process).
    - ``valid_clips``: valid clips of the global batch; ``skipped_clips``: invalid ones (0-d
      tensors, so that no step waits for the device).
    """

    loss: Tensor
    vna: Tensor
    rpa: Tensor
    total: Tensor
    valid_clips: Tensor
    skipped_clips: Tensor


def _masked_logsumexp(x: Tensor, mask: Tensor, dim: int | tuple[int, ...]) -> Tensor:
    return torch.logsumexp(x.masked_fill(~mask, _NEG), dim=dim)


def valid_clips(emb: Embeddings) -> Tensor:
    """(B,) bool: clips with at least one real phrase and one real frame with a real region."""
    return emb.phrase_mask.any(dim=1) & emb.frame_mask.any(dim=1)


def latent_alignment(emb: Embeddings) -> tuple[Tensor, Tensor]:
    """Latent alignment r̃_tn of each phrase on each frame.

    Returns:
        index (B, T, N) int64: position k of r̃_tn in frame t (meaningless where the frame has no
        real region); selected (B, T, N, E): the embedding of r̃_tn (differentiable).
    """
    g = torch.einsum("btke,bne->btkn", emb.regions, emb.phrases)
    g = g.masked_fill(~emb.region_mask[..., None], _NEG)
    index = g.detach().argmax(dim=2)  # (B, T, N)
    e = emb.regions.shape[-1]
    selected = torch.gather(emb.regions, 2, index[..., None].expand(*index.shape, e))
    return index, selected


def rpa_per_clip(emb: Embeddings, tau: Tensor | float, reduction: str = "mean") -> Tensor:
    """L_RPA of each clip, (B,) (0 for invalid clips and one-phrase clips)."""
    if reduction not in RPA_REDUCTIONS:
        raise ValueError(f"rpa reduction must be one of {RPA_REDUCTIONS}, got {reduction!r}")
    _, selected = latent_alignment(emb)
    # a[b, t, n, m] = g(r̃_tn, w_m) / τ
    a = torch.einsum("btne,bme->btnm", selected, emb.phrases) / tau
    pm, fm = emb.phrase_mask, emb.frame_mask
    diag = torch.diagonal(a, dim1=2, dim2=3)  # (B, T, N): g(r̃_tn, w_n) / τ
    # First term: for each frame t and phrase n, softmax over the phrases n' of g(r̃_tn, w_n').
    first = diag - _masked_logsumexp(a, pm[:, None, None, :], dim=3)  # (B, T, N)
    first_mask = fm[:, :, None] & pm[:, None, :]
    first = -torch.where(first_mask, first, 0.0).sum(dim=(1, 2))
    # Second term: Σ_t e^{g(r̃_tn,w_n)} against Σ_n' Σ_t e^{g(r̃_tn',w_n)}.
    numer = _masked_logsumexp(diag, fm[:, :, None], dim=1)  # (B, N)
    cross_mask = fm[:, :, None, None] & pm[:, None, :, None]  # over (t, n') for column n
    denom = _masked_logsumexp(a, cross_mask, dim=(1, 2))  # (B, N)
    second = -torch.where(pm, numer - denom, 0.0).sum(dim=1)
    if reduction == "mean":
        n_phrases = pm.sum(dim=1).clamp(min=1)
        n_frames = fm.sum(dim=1).clamp(min=1)
        first = first / (n_phrases * n_frames)
        second = second / n_phrases
    return torch.where(valid_clips(emb), first + second, 0.0)


def clip_narration_scores(
    regions: Tensor, region_mask: Tensor, phrases: Tensor, phrase_mask: Tensor
) -> Tensor:
    """φ(v_i, s_j) for every clip i (regions side) and narration j (phrase side).

    Args:
        regions: (Bv, T, K, E); region_mask: (Bv, T, K) (frames without a real region do not count).
        phrases: (Bs, N, E); phrase_mask: (Bs, N).

    Returns:
        (Bv, Bs) φ; 0 where clip i has no real frame or narration j no real phrase.
    """
    g = torch.einsum("itke,jne->ijtnk", regions, phrases)
    g = g.masked_fill(~region_mask[:, None, :, None, :], _NEG)
    best = g.max(dim=4).values  # (Bv, Bs, T, N): max over regions
    frame_mask = region_mask.any(dim=2)  # (Bv, T)
    pair_mask = frame_mask[:, None, :, None] & phrase_mask[None, :, None, :]
    total = torch.where(pair_mask, best, 0.0).sum(dim=(2, 3))
    n_frames = frame_mask.sum(dim=1).clamp(min=1)
    n_phrases = phrase_mask.sum(dim=1).clamp(min=1)
    return total / (n_frames[:, None] * n_phrases[None, :])


def vna_per_clip(
    emb: Embeddings, tau: Tensor | float, collective: Collective = SINGLE
) -> tuple[Tensor, Tensor]:
    """The two L_VNA terms of each local clip, against the (global) batch's negatives.

    Returns:
        (B,) −log softmax_j(φ(v_i,s_j)/τ)[i] − log softmax_j(φ(v_j,s_i)/τ)[i] (0 for invalid
        clips), and the (B,) bool valid mask.
    """
    valid = valid_clips(emb)
    if collective.world_size == 1:
        phi = clip_narration_scores(emb.regions, emb.region_mask, emb.phrases, emb.phrase_mask)
        rows, cols, valid_all, offset = phi, phi.t(), valid, 0
    else:
        regions_all, offset = collective.all_gather(emb.regions)
        region_mask_all, _ = collective.all_gather(emb.region_mask)
        phrases_all, _ = collective.all_gather(emb.phrases)
        phrase_mask_all, _ = collective.all_gather(emb.phrase_mask)
        valid_all, _ = collective.all_gather(valid)
        # rows[i, j] = φ(v_i, s_j), cols[i, j] = φ(v_j, s_i): i local, j global.
        rows = clip_narration_scores(emb.regions, emb.region_mask, phrases_all, phrase_mask_all)
        cols = clip_narration_scores(regions_all, region_mask_all, emb.phrases, emb.phrase_mask).t()
    target = torch.arange(emb.regions.shape[0], device=rows.device) + offset
    logits_rows = rows / tau
    logits_cols = cols / tau
    negatives = valid_all[None, :]
    take = target[:, None]
    term_rows = _masked_logsumexp(logits_rows, negatives, dim=1) - logits_rows.gather(1, take)[:, 0]
    term_cols = _masked_logsumexp(logits_cols, negatives, dim=1) - logits_cols.gather(1, take)[:, 0]
    return torch.where(valid, term_rows + term_cols, 0.0), valid


def rosa_loss(
    emb: Embeddings,
    tau: Tensor | float,
    lambda_vna: float = 1.0,
    lambda_rpa: float = 1.0,
    rpa_reduction: str = "mean",
    collective: Collective = SINGLE,
) -> LossOutput:
    """λ_vna·L_VNA + λ_rpa·L_RPA, both means over the valid clips of the global batch.

    A term whose λ is 0 is not computed (the ablations).
    """
    zeros = emb.regions.new_zeros(emb.regions.shape[0])
    valid = valid_clips(emb)
    vna = vna_per_clip(emb, tau, collective)[0] if lambda_vna != 0 else zeros
    rpa = rpa_per_clip(emb, tau, rpa_reduction) if lambda_rpa != 0 else zeros
    counts = torch.stack([valid.sum(), (~valid).sum()]).to(emb.regions.dtype)
    sums = torch.stack([vna.sum(), rpa.sum()])
    global_counts = collective.all_reduce_sum(counts)
    n_valid = global_counts[0].clamp(min=1)
    local = (lambda_vna * sums[0] + lambda_rpa * sums[1]) / n_valid
    global_sums = collective.all_reduce_sum(sums.detach()) / n_valid
    total = lambda_vna * global_sums[0] + lambda_rpa * global_sums[1]
    return LossOutput(
        loss=local * collective.world_size,
        vna=global_sums[0],
        rpa=global_sums[1],
        total=total,
        valid_clips=global_counts[0].detach(),
        skipped_clips=global_counts[1].detach(),
    )
