"""ROSA's dual encoder: shapes, padding masks, phrase context switch and dropout, τ, input
normalisation, checkpoint round trip."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import torch

from nvos.rosa.batch import ClipBatch
from nvos.rosa.config import ModelConfig
from nvos.rosa.losses import rosa_loss
from nvos.rosa.model import InputNorm, RosaModel, load_model, model_state
from nvos.testing.synthetic import SyntheticSpec, make_synthetic_clips

SPEC = SyntheticSpec(n_clips=6, frames=(2, 4), regions=(4, 7), phrases=(1, 3), dim=16)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_batch() -> ClipBatch:
    return make_synthetic_clips(SPEC).batch(range(SPEC.n_clips))[0]


def make_model(**overrides: object) -> RosaModel:
    torch.manual_seed(0)
    config = ModelConfig(feature_dim=16, dim=32, context_layers=1, context_heads=4)
    return RosaModel(dataclasses.replace(config, **overrides)).eval()


def test_embeddings_are_normalised_with_batch_shapes() -> None:
    batch = make_batch()
    emb = make_model()(batch)
    b, t, k, _ = batch.regions.shape
    assert emb.regions.shape == (b, t, k, 32) and emb.phrases.shape == (b, 3, 32)
    real = emb.region_mask
    torch.testing.assert_close(emb.regions[real].norm(dim=-1), torch.ones(int(real.sum())))
    assert torch.equal(emb.region_mask, batch.region_mask & batch.frame_mask[:, :, None])
    assert torch.equal(emb.frame_mask, emb.region_mask.any(dim=-1))


def test_padded_regions_do_not_change_real_outputs_and_are_never_selected() -> None:
    batch = make_batch()
    assert not bool(batch.region_mask.all())  # the spec pads regions and frames
    model = make_model()
    before = model(batch)
    padded = ~batch.region_mask
    # Make every padded region a perfect match of the clip's first phrase.
    loud = dataclasses.replace(batch, regions=batch.regions.clone())
    for i in range(len(batch)):
        loud.regions[i][padded[i]] = batch.phrase_plain[i, 0] * 50
    after = model(loud)
    real = before.region_mask
    torch.testing.assert_close(after.regions[real], before.regions[real])
    align = model.align(loud)
    chosen = align.index.clamp(min=0)
    picked = torch.gather(batch.region_mask, 2, chosen)
    real_pair = batch.frame_mask[:, :, None] & batch.phrase_mask[:, None, :]
    assert bool(picked[real_pair].all())
    assert bool((align.index[~real_pair] == -1).all())
    assert bool(align.score[~real_pair].isnan().all())


def test_region_context_sees_the_other_regions_of_the_clip() -> None:
    batch = make_batch()
    model = make_model()
    before = model(batch).regions
    changed = dataclasses.replace(batch, regions=batch.regions.clone())
    changed.regions[0, 1, 0] += 1.0  # another frame's region of clip 0
    after = model(changed).regions
    assert not torch.allclose(after[0, 0, 0], before[0, 0, 0])  # context flows between frames
    torch.testing.assert_close(after[1:], before[1:])  # never across clips
    no_context = make_model(context_layers=0)
    base = no_context(batch).regions
    torch.testing.assert_close(no_context(changed).regions[0, 0, 0], base[0, 0, 0])


@pytest.mark.parametrize("use_context", [True, False])
def test_phrase_context_switch(use_context: bool) -> None:
    batch = make_batch()
    model = make_model(use_context=use_context)
    before = model(batch).phrases
    other = dataclasses.replace(batch, phrase_context=torch.randn_like(batch.phrase_context))
    after = model(other).phrases
    assert torch.allclose(after, before) is (not use_context)
    width = model.phrase_encoder.projection.in_features
    assert width == (32 if use_context else 16)


def test_tau_fixed_or_learned() -> None:
    batch = make_batch()
    fixed = make_model(tau=0.1)
    assert "log_tau" not in dict(fixed.named_parameters())
    assert float(fixed.tau) == pytest.approx(0.1)
    learned = make_model(tau=0.1, learn_tau=True).train()
    loss = rosa_loss(learned(batch), learned.tau).loss
    loss.backward()
    assert learned.log_tau.grad is not None and float(learned.log_tau.grad.abs()) > 0
    with pytest.raises(ValueError, match="tau"):
        ModelConfig(feature_dim=16, tau=5.0)
    with pytest.raises(ValueError, match="context_heads"):
        ModelConfig(feature_dim=16, dim=30, context_heads=4)


def test_clip_without_any_region_gives_no_nan() -> None:
    batch = make_batch()
    empty = dataclasses.replace(batch, region_mask=batch.region_mask.clone())
    empty.region_mask[2] = False
    model = make_model().train()
    emb = model(empty)
    assert not emb.frame_mask[2].any()
    out = rosa_loss(emb, model.tau)
    out.loss.backward()
    assert int(out.skipped_clips) == 1
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_checkpoint_round_trip(tmp_path) -> None:  # noqa: ANN001
    batch = make_batch()
    model = make_model(use_context=False, learn_tau=True)
    torch.save(model_state(model, step=3), tmp_path / "checkpoint.pt")
    loaded = load_model(tmp_path / "checkpoint.pt")
    assert loaded.config == model.config
    assert torch.equal(loaded.align(batch).index, model.align(batch).index)
    torch.save({"weights": 1}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a ROSA checkpoint"):
        load_model(tmp_path / "bad.pt")


@pytest.mark.parametrize("kind", ["none", "standardize", "whiten"])
def test_input_norm_maps_the_training_statistics_to_unit_scale(kind: str) -> None:
    gen = torch.Generator().manual_seed(1)
    mixing = torch.randn(16, 16, generator=gen, dtype=torch.float64)
    data = torch.randn(4000, 16, generator=gen, dtype=torch.float64) @ mixing + 3.0
    mean, cov = data.mean(0), torch.cov(data.T, correction=0)
    norm = InputNorm(16).double()
    norm.fit(mean, cov, kind, eps=0.0)
    out = norm(data)
    out_cov = torch.cov(out.T, correction=0)
    if kind == "none":
        torch.testing.assert_close(out, data)
        return
    torch.testing.assert_close(out.mean(0), torch.zeros(16, dtype=torch.float64))
    torch.testing.assert_close(out_cov.diagonal(), torch.ones(16, dtype=torch.float64))
    off_diagonal = (out_cov - torch.diag(out_cov.diagonal())).abs().max()
    if kind == "whiten":
        assert float(off_diagonal) < 1e-6
    else:
        assert float(off_diagonal) > 0.1  # standardising keeps the correlations
    with pytest.raises(ValueError, match="do not fit"):
        norm.fit(mean[:4], cov, kind)


def test_model_input_norm_is_applied_and_saved(tmp_path) -> None:  # noqa: ANN001
    batch = make_batch()
    model = make_model(input_norm="standardize")
    identity = model(batch)
    stats = {
        kind: (torch.full((16,), 0.5), torch.eye(16) * 4.0)
        for kind in ("regions", "context", "plain")
    }
    model.set_input_norm(stats, eps=0.0)
    shifted = dataclasses.replace(
        batch,
        regions=(batch.regions - 0.5) / 2.0,
        phrase_context=(batch.phrase_context - 0.5) / 2.0,
        phrase_plain=(batch.phrase_plain - 0.5) / 2.0,
    )
    unnormalised = make_model()  # same weights (same seed), no input normalisation
    expected = unnormalised(shifted)
    got = model(batch)
    real = got.region_mask
    torch.testing.assert_close(got.regions[real], expected.regions[real])
    torch.testing.assert_close(got.phrases, expected.phrases)
    assert not torch.allclose(got.phrases, identity.phrases)
    torch.save(model_state(model), tmp_path / "checkpoint.pt")
    loaded = load_model(tmp_path / "checkpoint.pt")
    torch.testing.assert_close(loaded(batch).phrases, got.phrases)
    with pytest.raises(ValueError, match="lack"):
        model.set_input_norm({"regions": stats["regions"]})
    with pytest.raises(ValueError, match="input_norm"):
        ModelConfig(feature_dim=16, input_norm="pca")


def test_context_dropout_zeroes_whole_context_halves_in_training_only() -> None:
    batch = make_batch()
    model = make_model(context_dropout=0.5)
    with_context = model(batch).phrases
    no_context = model(
        dataclasses.replace(batch, phrase_context=torch.zeros_like(batch.phrase_context))
    ).phrases
    assert not torch.allclose(with_context, no_context)
    torch.testing.assert_close(model(batch).phrases, with_context)  # eval: never dropped
    model.train()
    torch.manual_seed(5)
    dropped = model(batch).phrases
    real = batch.phrase_mask
    is_full = (dropped - with_context).abs().amax(-1) < 1e-6
    is_dropped = (dropped - no_context).abs().amax(-1) < 1e-6
    assert bool((is_full | is_dropped)[real].all())  # each phrase: all of its context or none
    assert bool(is_full[real].any()) and bool(is_dropped[real].any())
    with pytest.raises(ValueError, match="context_dropout"):
        ModelConfig(feature_dim=16, context_dropout=1.0)
