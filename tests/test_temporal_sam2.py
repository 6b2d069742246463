"""The ``sam2`` propagation backend against the stock SAM2VideoPredictor API, on a tiny randomly
initialised SAM 2 built from the package's own classes (skipped without the sam2 package)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from temporal_scenes import scene_frame, square_mask

sam2 = pytest.importorskip("sam2", reason="sam2 is optional (see nvos.temporal.sam2_backend)")
torch = pytest.importorskip("torch")

from nvos.temporal.propagate import Keyframe  # noqa: E402
from nvos.temporal.sam2_backend import LazyFrames, Sam2Propagator  # noqa: E402

SIZE = 128  # the model's square input; features at 1/16: 8 x 8
H, W = 60, 80  # frames and masks (the scene shrunk by 4)


def tiny_predictor(seed: int = 0):  # noqa: ANN201 - sam2 types are optional
    """A SAM2VideoPredictor with the sam2.1 hiera-t layout at toy sizes, random weights."""
    from sam2.modeling.backbones.hieradet import Hiera
    from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
    from sam2.modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
    from sam2.modeling.memory_encoder import CXBlock, Fuser, MaskDownSampler, MemoryEncoder
    from sam2.modeling.position_encoding import PositionEmbeddingSine
    from sam2.modeling.sam.transformer import RoPEAttention
    from sam2.sam2_video_predictor import SAM2VideoPredictor

    torch.manual_seed(seed)
    d, mem, e = 32, 16, 8  # model width, memory width, Hiera's first-stage width

    def pos(n: int) -> PositionEmbeddingSine:
        return PositionEmbeddingSine(num_pos_feats=n, normalize=True, scale=None, temperature=1e4)

    def rope(**extra) -> RoPEAttention:  # noqa: ANN003
        return RoPEAttention(
            rope_theta=1e4, feat_sizes=[8, 8], embedding_dim=d, num_heads=1, downsample_rate=1,
            dropout=0.0, **extra,
        )  # fmt: skip

    encoder = ImageEncoder(
        trunk=Hiera(
            embed_dim=e,
            num_heads=1,
            stages=[1, 1, 2, 1],
            global_att_blocks=[3],  # not a stage's first block (those pool queries in windows)
            window_pos_embed_bkg_spatial_size=[4, 4],
            window_spec=(4, 4, 4, 4),
        ),
        neck=FpnNeck(
            position_encoding=pos(d),
            d_model=d,
            backbone_channel_list=[8 * e, 4 * e, 2 * e, e],
            fpn_top_down_levels=[2, 3],
            fpn_interp_model="nearest",
        ),
        scalp=1,
    )
    layer = MemoryAttentionLayer(
        activation="relu",
        dim_feedforward=64,
        dropout=0.0,
        pos_enc_at_attn=False,
        self_attention=rope(),
        d_model=d,
        pos_enc_at_cross_attn_keys=True,
        pos_enc_at_cross_attn_queries=False,
        cross_attention=rope(rope_k_repeat=True, kv_in_dim=mem),
    )
    memory_encoder = MemoryEncoder(
        out_dim=mem,
        position_encoding=pos(mem),
        mask_downsampler=MaskDownSampler(embed_dim=d, kernel_size=3, stride=2, padding=1),
        fuser=Fuser(CXBlock(dim=d, kernel_size=7, padding=3, use_dwconv=True), num_layers=1),
        in_dim=d,
    )
    model = SAM2VideoPredictor(
        image_encoder=encoder,
        memory_attention=MemoryAttention(
            d_model=d, pos_enc_at_input=True, layer=layer, num_layers=1
        ),
        memory_encoder=memory_encoder,
        num_maskmem=7,
        image_size=SIZE,
        sigmoid_scale_for_mem_enc=20.0,
        sigmoid_bias_for_mem_enc=-10.0,
        use_mask_input_as_output_without_sam=True,
        directly_add_no_mem_embed=True,
        no_obj_embed_spatial=True,
        use_high_res_features_in_sam=True,
        multimask_output_in_sam=True,
        iou_prediction_use_sigmoid=True,
        use_obj_ptrs_in_encoder=True,
        add_tpos_enc_to_obj_ptrs=True,
        proj_tpos_enc_in_obj_ptrs=True,
        use_signed_tpos_enc_to_obj_ptrs=True,
        only_obj_ptrs_in_the_past_for_eval=True,
        pred_obj_scores=True,
        pred_obj_scores_mlp=True,
        fixed_no_obj_ptr=True,
        multimask_output_for_tracking=True,
        use_multimask_token_for_obj_ptr=True,
        multimask_min_pt_num=0,
        multimask_max_pt_num=1,
        use_mlp_for_obj_ptr_proj=True,
        binarize_mask_from_pts_for_mem_enc=True,
    )
    return model.eval()


def write_jpegs(folder: Path, n_frames: int) -> list[Path]:
    """The scene's frames shrunk to (H, W), as '<index>.jpg' files (the stock loader's layout)."""
    folder.mkdir()
    paths = []
    for t in range(n_frames):
        image = Image.fromarray(scene_frame(t)).resize((W, H), Image.BILINEAR)
        paths.append(folder / f"{t:05d}.jpg")
        image.save(paths[-1], quality=95)
    return paths


def small_mask(t: int) -> np.ndarray:
    return np.array(Image.fromarray(square_mask(t)).resize((W, H), Image.NEAREST))


def stock_passes(predictor, folder: Path, keys: dict[int, np.ndarray], n_frames: int):  # noqa: ANN001, ANN201
    """Forward and backward masks {frame: (P, H, W)} from the stock API on the JPEG folder."""
    passes = []
    with torch.autocast("cpu", dtype=torch.bfloat16):  # sam2's documented use
        state = predictor.init_state(video_path=str(folder))
        for frame, masks in keys.items():
            for phrase, mask in enumerate(masks):
                predictor.add_new_mask(state, frame_idx=frame, obj_id=phrase, mask=mask)
        for kwargs in ({}, {"start_frame_idx": n_frames - 1, "reverse": True}):
            out = {}
            for frame, obj_ids, logits in predictor.propagate_in_video(state, **kwargs):
                assert list(obj_ids) == sorted(obj_ids)
                out[frame] = (logits[:, 0] > 0).numpy()
            passes.append(out)
    return passes


def test_sam2_backend_matches_the_stock_api(tmp_path: Path) -> None:
    n_frames = 9
    paths = write_jpegs(tmp_path / "jpg", n_frames)
    second = np.zeros((H, W), bool)
    second[35:55, 55:75] = True
    key_masks = {
        2: np.stack([small_mask(2), second]),
        6: np.stack([small_mask(6), np.zeros((H, W), bool)]),  # phrase 1 absent on frame 6
    }
    requests: list[list[int]] = []

    def source(indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        requests.append(list(indices))
        for index in indices:
            yield index, np.array(Image.open(paths[index]).convert("RGB"))

    key_scores = {2: np.array([0.8, 0.4]), 6: np.array([0.2, 0.6])}
    keyframes = [Keyframe.from_masks(t, m, key_scores[t]) for t, m in key_masks.items()]
    predictor = tiny_predictor()
    dense = list(Sam2Propagator(predictor, block=4).propagate(keyframes, range(n_frames), source))
    forward, backward = stock_passes(tiny_predictor(), tmp_path / "jpg", key_masks, n_frames)

    assert [f.frame_index for f in dense] == list(range(n_frames))
    assert max(len(r) for r in requests) <= 4  # blocks of 4 frames, never the whole clip
    propagated = 0
    for frame in dense:
        t = frame.frame_index
        if t in key_masks:
            assert frame.source == "keyframe"
            np.testing.assert_array_equal(frame.masks, key_masks[t])
            continue
        assert frame.source == "propagated"
        if t < 2:
            expected, scores = backward[t], key_scores[2]
        elif t > 6:
            expected, scores = forward[t], key_scores[6]
        else:
            weight = (6 - t) / 4
            expected = weight * forward[t] + (1 - weight) * backward[t] >= 0.5
            scores = weight * key_scores[2] + (1 - weight) * key_scores[6]
        np.testing.assert_array_equal(frame.masks, expected, err_msg=f"frame {t}")
        np.testing.assert_allclose(frame.scores, scores, rtol=1e-6)
        propagated += int(expected.any())
    assert propagated > 0  # the comparison is not between empty masks only


def test_lazy_frames_hold_at_most_two_blocks() -> None:
    calls: list[list[int]] = []

    def source(indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        calls.append(list(indices))
        for index in indices:
            yield index, np.full((6, 8, 3), index, np.uint8)

    frames = LazyFrames(source, [10, 11, 12, 13, 14], image_size=16, block=2)
    assert len(frames) == 5
    assert frames[4].shape == (3, 16, 16)
    frames[3], frames[2], frames[1], frames[0]
    assert calls == [[14], [12, 13], [10, 11]]
    assert len(frames._blocks) == 2
    with pytest.raises(IndexError):
        frames[5]


def test_missing_checkpoint_is_named(tmp_path: Path) -> None:
    from nvos.temporal.sam2_backend import make_sam2_propagator

    missing = tmp_path / "sam2.1_hiera_tiny.pt"
    with pytest.raises(FileNotFoundError, match="sam2.1_hiera_tiny.pt: file not found"):
        make_sam2_propagator("configs/sam2.1/sam2.1_hiera_t.yaml", str(missing))


def test_no_phrase_gives_empty_frames_without_running_the_model() -> None:
    keys = [Keyframe.from_masks(3, np.zeros((0, H, W), bool), np.zeros(0))]
    dense = list(Sam2Propagator(predictor=None).propagate(keys, [1, 3, 5], None))
    assert [(f.frame_index, f.source, f.masks.shape) for f in dense] == [
        (1, "propagated", (0, H, W)),
        (3, "keyframe", (0, H, W)),
        (5, "propagated", (0, H, W)),
    ]
