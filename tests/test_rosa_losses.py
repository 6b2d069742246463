"""ROSA's losses against brute-force loop implementations of DESIGN §7 (float64, with padding)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nvos.rosa.losses import (
    clip_narration_scores,
    latent_alignment,
    rosa_loss,
    rpa_per_clip,
    vna_per_clip,
)
from nvos.rosa.model import Embeddings

TAU = 0.3


def random_embeddings(seed: int, b: int = 5, t: int = 4, k: int = 5, n: int = 4, e: int = 6):
    """Random normalised embeddings with padded frames, regions and phrases.

    Clip 0: everything real; clip 1: one phrase; clip 2: a padded frame, a frame without proposals
    and padded regions; clip 3: no phrase (invalid); others random masks. Padded regions copy a
    real phrase's embedding (g = 1) so that selecting one would show in the results.
    """
    gen = torch.Generator().manual_seed(seed)
    regions = F.normalize(torch.randn(b, t, k, e, generator=gen, dtype=torch.float64), dim=-1)
    phrases = F.normalize(torch.randn(b, n, e, generator=gen, dtype=torch.float64), dim=-1)
    region_mask = torch.rand(b, t, k, generator=gen) < 0.7
    region_mask[:, :, 0] = True
    phrase_mask = torch.rand(b, n, generator=gen) < 0.7
    phrase_mask[:, :2] = True
    frame_real = torch.ones(b, t, dtype=torch.bool)
    region_mask[0] = True
    phrase_mask[0] = True
    phrase_mask[1] = False
    phrase_mask[1, 0] = True
    frame_real[2, t - 1] = False
    region_mask[2, 1] = False
    region_mask[2, 0, k - 2 :] = False
    phrase_mask[3] = False
    region_mask = region_mask & frame_real[:, :, None]
    for i in range(b):
        regions[i][~region_mask[i]] = phrases[i, 0]
    return Embeddings(
        regions=regions,
        region_mask=region_mask,
        phrases=phrases,
        phrase_mask=phrase_mask,
        frame_mask=region_mask.any(dim=-1),
    )


# ---------------------------------------------------------------- brute force (plain loops)


def g(r: torch.Tensor, w: torch.Tensor) -> float:
    return float((r * w).sum().detach())


def real_frames(emb: Embeddings, i: int) -> list[int]:
    t_max, k_max = emb.region_mask.shape[1:]
    return [t for t in range(t_max) if any(bool(emb.region_mask[i, t, k]) for k in range(k_max))]


def real_phrases(emb: Embeddings, i: int) -> list[int]:
    return [n for n in range(emb.phrase_mask.shape[1]) if bool(emb.phrase_mask[i, n])]


def bf_align(emb: Embeddings, i: int, t: int, n: int, j: int | None = None) -> int:
    """Region k of clip i, frame t with the highest g to phrase n of narration j (default i)."""
    j = i if j is None else j
    best, best_k = -math.inf, -1
    for k in range(emb.region_mask.shape[2]):
        if emb.region_mask[i, t, k]:
            value = g(emb.regions[i, t, k], emb.phrases[j, n])
            if value > best:
                best, best_k = value, k
    return best_k


def bf_rpa(emb: Embeddings, i: int, tau: float, reduction: str) -> float:
    frames, phrases = real_frames(emb, i), real_phrases(emb, i)
    if not frames or not phrases:
        return 0.0

    def sel(t: int, n: int) -> torch.Tensor:
        return emb.regions[i, t, bf_align(emb, i, t, n)]

    first = 0.0
    for n in phrases:
        for t in frames:
            num = math.exp(g(sel(t, n), emb.phrases[i, n]) / tau)
            den = sum(math.exp(g(sel(t, n), emb.phrases[i, m]) / tau) for m in phrases)
            first -= math.log(num / den)
    second = 0.0
    for n in phrases:
        num = sum(math.exp(g(sel(t, n), emb.phrases[i, n]) / tau) for t in frames)
        den = sum(math.exp(g(sel(t, m), emb.phrases[i, n]) / tau) for m in phrases for t in frames)
        second -= math.log(num / den)
    if reduction == "mean":
        first /= len(phrases) * len(frames)
        second /= len(phrases)
    return first + second


def bf_phi(emb: Embeddings, i: int, j: int) -> float:
    frames, phrases = real_frames(emb, i), real_phrases(emb, j)
    if not frames or not phrases:
        return 0.0
    total = 0.0
    for n in phrases:
        per_frame = 0.0
        for t in frames:
            k = bf_align(emb, i, t, n, j)
            per_frame += g(emb.regions[i, t, k], emb.phrases[j, n])
        total += per_frame / len(frames)
    return total / len(phrases)


def bf_valid(emb: Embeddings) -> list[int]:
    b = emb.regions.shape[0]
    return [i for i in range(b) if real_frames(emb, i) and real_phrases(emb, i)]


def bf_vna(emb: Embeddings, tau: float) -> float:
    valid = bf_valid(emb)
    total = 0.0
    for i in valid:
        rows = sum(math.exp(bf_phi(emb, i, j) / tau) for j in valid)
        cols = sum(math.exp(bf_phi(emb, j, i) / tau) for j in valid)
        own = math.exp(bf_phi(emb, i, i) / tau)
        total += -math.log(own / rows) - math.log(own / cols)
    return total / len(valid)


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_latent_alignment_matches_loops_and_never_picks_padding(seed: int) -> None:
    emb = random_embeddings(seed)
    index, selected = latent_alignment(emb)
    b, t_max, n_max = index.shape
    checked = 0
    for i in range(b):
        for t in real_frames(emb, i):
            for n in range(n_max):
                k = bf_align(emb, i, t, n)
                assert int(index[i, t, n]) == k
                assert bool(emb.region_mask[i, t, k])
                torch.testing.assert_close(selected[i, t, n], emb.regions[i, t, k])
                checked += 1
    assert checked > 20


@pytest.mark.parametrize("seed", [0, 1])
def test_phi_matches_loops_including_mismatched_pairs(seed: int) -> None:
    emb = random_embeddings(seed)
    phi = clip_narration_scores(emb.regions, emb.region_mask, emb.phrases, emb.phrase_mask)
    b = emb.regions.shape[0]
    for i in range(b):
        for j in range(b):
            assert float(phi[i, j]) == pytest.approx(bf_phi(emb, i, j), abs=1e-5)
    assert not torch.allclose(phi, phi.t())  # φ(v_i, s_j) ≠ φ(v_j, s_i) in general


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vna_matches_loops(seed: int) -> None:
    emb = random_embeddings(seed)
    per_clip, valid = vna_per_clip(emb, TAU)
    assert valid.tolist() == [i in bf_valid(emb) for i in range(emb.regions.shape[0])]
    assert not bool(valid[3])
    value = float(per_clip.sum() / valid.sum())
    assert value == pytest.approx(bf_vna(emb, TAU), abs=1e-5)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rpa_matches_loops(seed: int, reduction: str) -> None:
    emb = random_embeddings(seed)
    per_clip = rpa_per_clip(emb, TAU, reduction)
    for i in range(emb.regions.shape[0]):
        assert float(per_clip[i]) == pytest.approx(bf_rpa(emb, i, TAU, reduction), abs=1e-5)
    assert float(per_clip[0]) > 0.1


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_rosa_loss_combines_means_over_valid_clips(reduction: str) -> None:
    emb = random_embeddings(4)
    out = rosa_loss(emb, TAU, lambda_vna=0.7, lambda_rpa=1.9, rpa_reduction=reduction)
    valid = bf_valid(emb)
    rpa = sum(bf_rpa(emb, i, TAU, reduction) for i in valid) / len(valid)
    vna = bf_vna(emb, TAU)
    assert float(out.vna) == pytest.approx(vna, abs=1e-5)
    assert float(out.rpa) == pytest.approx(rpa, abs=1e-5)
    assert float(out.loss) == pytest.approx(0.7 * vna + 1.9 * rpa, abs=1e-5)
    assert int(out.valid_clips) == len(valid) and int(out.skipped_clips) == 5 - len(valid)


def test_rpa_is_zero_information_on_one_phrase_clips() -> None:
    emb = random_embeddings(5)
    emb.phrase_mask[:] = False
    emb.phrase_mask[:, 1] = True
    emb.regions.requires_grad_(True)
    per_clip = rpa_per_clip(emb, TAU, "sum")
    assert torch.equal(per_clip, torch.zeros_like(per_clip))
    per_clip.sum().backward()
    assert torch.count_nonzero(emb.regions.grad) == 0
    for i in range(emb.regions.shape[0]):
        assert bf_rpa(emb, i, TAU, "sum") == pytest.approx(0.0, abs=1e-12)


def test_rpa_gradient_flows_only_through_selected_regions() -> None:
    emb = random_embeddings(6)
    emb.regions.requires_grad_(True)
    rpa_per_clip(emb, TAU, "sum").sum().backward()
    grad_norm = emb.regions.grad.norm(dim=-1)
    selected = torch.zeros_like(grad_norm, dtype=torch.bool)
    for i in range(emb.regions.shape[0]):
        if len(real_phrases(emb, i)) < 2:
            continue
        for t in real_frames(emb, i):
            for n in real_phrases(emb, i):
                selected[i, t, bf_align(emb, i, t, n)] = True
    assert bool((grad_norm[~selected] == 0).all())
    assert bool((grad_norm[selected] > 0).all())


def test_padding_never_counts() -> None:
    """Adding a padded phrase, a padded frame, padded regions or an invalid clip changes nothing."""
    emb = random_embeddings(7)
    base = rosa_loss(emb, TAU, rpa_reduction="sum")
    b, t, k, e = emb.regions.shape
    n = emb.phrases.shape[1]
    gen = torch.Generator().manual_seed(1)
    regions = torch.zeros(b + 1, t + 1, k + 2, e, dtype=torch.float64)
    regions[:] = F.normalize(torch.randn(b + 1, t + 1, k + 2, e, generator=gen), dim=-1)
    regions[:b, :t, :k] = emb.regions
    region_mask = torch.zeros(b + 1, t + 1, k + 2, dtype=torch.bool)
    region_mask[:b, :t, :k] = emb.region_mask
    phrases = F.normalize(torch.randn(b + 1, n + 1, e, generator=gen, dtype=torch.float64), dim=-1)
    phrases[:b, :n] = emb.phrases
    phrase_mask = torch.zeros(b + 1, n + 1, dtype=torch.bool)
    phrase_mask[:b, :n] = emb.phrase_mask
    phrase_mask[b, 0] = True  # the extra clip has a phrase but no region: invalid
    padded = Embeddings(regions, region_mask, phrases, phrase_mask, region_mask.any(dim=-1))
    out = rosa_loss(padded, TAU, rpa_reduction="sum")
    torch.testing.assert_close(out.loss, base.loss, atol=1e-12, rtol=0)
    assert int(out.skipped_clips) == int(base.skipped_clips) + 1


def test_lambda_zero_skips_a_term() -> None:
    emb = random_embeddings(8)
    only_vna = rosa_loss(emb, TAU, lambda_vna=1.0, lambda_rpa=0.0)
    only_rpa = rosa_loss(emb, TAU, lambda_vna=0.0, lambda_rpa=1.0)
    assert float(only_vna.rpa) == 0.0 and float(only_rpa.vna) == 0.0
    assert float(only_vna.loss) == pytest.approx(bf_vna(emb, TAU), abs=1e-5)
    with pytest.raises(ValueError, match="reduction"):
        rpa_per_clip(emb, TAU, "average")
