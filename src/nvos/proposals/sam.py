"""SAM automatic mask generation, batched: the same masks as the stock generator, faster.

:class:`SamBackend` reproduces ``segment_anything.SamAutomaticMaskGenerator`` (point grid, crop
layers, predicted-IoU and stability thresholds, edge filter, box NMS within and between crops,
small-region clean-up) and reuses its helpers from ``segment_anything.utils.amg``; it differs only
in how the work is scheduled:

- several images (frames, or crops of frames) go through the image encoder in one forward
  (``frames_per_batch``), resized on a CPU thread while the device works;
- ``points_per_batch`` prompts are decoded per mask-decoder call;
- thresholds, boxes and NMS run vectorised on the device; only low-resolution logits (256×256 for
  SAM) of the candidates are kept, and full-resolution masks are made once, for the survivors,
  instead of going through per-mask run-length encoding and decoding in Python;
- optional bf16 autocast on CUDA (``autocast_bf16``): faster, but masks may then differ slightly
  from the stock float32 generator, so it is off by default;
- it computes in the model's dtype (float32; float64 only makes exactness tests independent
  of the CPU's rounding);
- a device out-of-memory error retries the batch at half its size (down to 1) before failing,
  and the smaller size is kept for the rest of the job (:class:`nvos.oom.AdaptiveBatch`);
- at most one batch of views beyond the one being encoded is resized and uploaded ahead.

With the same settings the masks equal the stock generator's up to floating-point noise (batched
kernels may round differently; a mask whose score sits on a threshold can flip).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)
from segment_anything.utils.amg import (
    batch_iterator,
    batched_mask_to_box,
    build_all_layer_point_grids,
    calculate_stability_score,
    generate_crop_boxes,
    is_box_near_crop_edge,
    remove_small_regions,
    uncrop_boxes_xyxy,
    uncrop_masks,
)
from segment_anything.utils.transforms import ResizeLongestSide
from torchvision.ops.boxes import batched_nms, box_area

from nvos.checks import sam_checkpoint_problem
from nvos.config import ConfigError, check_limits, group_values, typed
from nvos.oom import AdaptiveBatch
from nvos.proposals.base import FrameProposals
from nvos.storage import file_sha256

logger = logging.getLogger(__name__)

__all__ = [
    "SAM_SPECS",
    "SamBackend",
    "SamSettings",
    "SamSpec",
    "build_sam",
]

T = TypeVar("T")


@dataclass(frozen=True)
class SamSpec:
    """Architecture of a SAM model type (values of segment_anything's build_sam.py for vit_*)."""

    encoder_embed_dim: int
    encoder_depth: int
    encoder_num_heads: int
    encoder_global_attn_indexes: tuple[int, ...]
    image_size: int = 1024
    window_size: int = 14
    prompt_embed_dim: int = 256
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    iou_head_hidden_dim: int = 256


SAM_SPECS: dict[str, SamSpec] = {
    "vit_h": SamSpec(1280, 32, 16, (7, 15, 23, 31)),
    "vit_l": SamSpec(1024, 24, 16, (5, 11, 17, 23)),
    "vit_b": SamSpec(768, 12, 12, (2, 5, 8, 11)),
    # For tests and benchmarks only: randomly initialised (no released checkpoint exists), built
    # from the same classes and run through the same code path as vit_h.
    "tiny": SamSpec(
        encoder_embed_dim=32,
        encoder_depth=2,
        encoder_num_heads=2,
        encoder_global_attn_indexes=(1,),
        image_size=128,
        window_size=4,
        prompt_embed_dim=32,
        decoder_mlp_dim=64,
        decoder_num_heads=2,
        iou_head_hidden_dim=32,
    ),
}


def build_sam(
    model_type: str, checkpoint: Path | None = None, image_size: int | None = None
) -> Sam:
    """A SAM model in eval mode, on the CPU.

    Args:
        model_type: ``vit_h``, ``vit_l``, ``vit_b`` (real SAM architectures) or ``tiny`` (a small
            model for tests and benchmarks, randomly initialised: its masks mean nothing).
        checkpoint: A segment_anything checkpoint (state dict) for ``model_type``; None = random
            initialisation (seeded by the caller through ``torch.manual_seed``).
        image_size: Side of the square encoder input; None = the type's own (1024; tiny: 128).
            Only for random initialisation: a checkpoint fixes its image size.
    """
    if model_type not in SAM_SPECS:
        raise ValueError(
            f"unknown SAM model type {model_type!r}; expected one of {sorted(SAM_SPECS)}"
        )
    spec = SAM_SPECS[model_type]
    if checkpoint is not None and image_size not in (None, spec.image_size):
        raise ValueError(
            f"image_size={image_size} cannot be used with a checkpoint: {model_type} checkpoints "
            f"are trained at {spec.image_size}"
        )
    size = spec.image_size if image_size is None else int(image_size)
    if size % 16 != 0:
        raise ValueError(f"SAM image_size must be a multiple of the patch size 16, got {size}")
    grid = size // 16
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=spec.encoder_depth,
            embed_dim=spec.encoder_embed_dim,
            img_size=size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=spec.encoder_num_heads,
            patch_size=16,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=spec.encoder_global_attn_indexes,
            window_size=spec.window_size,
            out_chans=spec.prompt_embed_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=spec.prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(size, size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2,
                embedding_dim=spec.prompt_embed_dim,
                mlp_dim=spec.decoder_mlp_dim,
                num_heads=spec.decoder_num_heads,
            ),
            transformer_dim=spec.prompt_embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=spec.iou_head_hidden_dim,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"SAM checkpoint not found: {path}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            sam.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 - re-raised with the file and model type
            raise ValueError(
                f"cannot load SAM checkpoint {path} as model type {model_type!r}: {exc}"
            ) from exc
    sam.eval()
    return sam


@dataclass(frozen=True)
class SamSettings:
    """Automatic mask generation settings (those of SamAutomaticMaskGenerator) plus scheduling:
    the ``proposals.sam`` config group but its model keys (defaults and limits:
    ``config/schema.yaml``; the defaults here equal the schema's).

    The first eleven fields mean exactly what they mean for SamAutomaticMaskGenerator.
    ``frames_per_batch``: images (frames, or crops when ``crop_n_layers > 0``) per image-encoder
    forward. ``autocast_bf16``: bf16 autocast of encoder and decoder on CUDA (ignored on the CPU);
    trades exactness for speed.
    """

    GROUP: ClassVar[tuple[str, ...]] = ("proposals", "sam")

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    min_mask_region_area: int = 0
    frames_per_batch: int = 4
    autocast_bf16: bool = False

    def __post_init__(self) -> None:
        check_limits(self)

    def generator_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the stock SamAutomaticMaskGenerator with the same settings."""
        kwargs = dataclasses.asdict(self)
        del kwargs["frames_per_batch"], kwargs["autocast_bf16"]
        return kwargs


@dataclass(frozen=True)
class _View:
    """One encoder input: a frame, or one crop of it (crop_box = x0, y0, x1, y1 in the frame)."""

    frame: int
    crop_box: tuple[int, int, int, int]
    layer: int
    frame_size: tuple[int, int]  # (H, W)

    @property
    def crop_size(self) -> tuple[int, int]:
        x0, y0, x1, y1 = self.crop_box
        return (y1 - y0, x1 - x0)


@dataclass
class _Candidates:
    """Masks of one view that passed the thresholds, edge filter and NMS (n candidates).

    low_res: (n, h, w) float32 decoder logits (h = w = image_size / 4); iou, stability: (n,);
    boxes: (n, 4) xyxy in frame coordinates; view: (n,) int64 index into the views list.
    """

    low_res: torch.Tensor
    iou: torch.Tensor
    stability: torch.Tensor
    boxes: torch.Tensor
    view: torch.Tensor

    def fields(self) -> tuple[torch.Tensor, ...]:
        return (self.low_res, self.iou, self.stability, self.boxes, self.view)

    def take(self, keep: torch.Tensor) -> _Candidates:
        return _Candidates(*(t[keep] for t in self.fields()))

    @staticmethod
    def cat(parts: Sequence[_Candidates]) -> _Candidates:
        columns = zip(*(p.fields() for p in parts), strict=True)
        return _Candidates(*(torch.cat(list(col), dim=0) for col in columns))


class SamBackend:
    """Mask proposals from SAM's automatic mask generation (see the module docstring).

    Args:
        model: A SAM model (see :func:`build_sam`); moved to ``device``.
        settings: Generation settings.
        device: Where the model runs (see :func:`nvos.devices.claim_device`).
        model_type: Its type name, for :meth:`describe`.
        checkpoint: The checkpoint it was loaded from (None = random init), for :meth:`describe`.
    """

    name = "sam"

    def __init__(
        self,
        model: Sam,
        settings: SamSettings,
        device: torch.device,
        model_type: str,
        checkpoint: Path | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.settings = settings
        self.model_type = model_type
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self._checkpoint_sha256: str | None = None
        self.dtype = next(model.parameters()).dtype  # float32; float64 in exactness tests
        self._transform = ResizeLongestSide(model.image_encoder.img_size)
        self._point_grids = build_all_layer_point_grids(
            settings.points_per_side,
            settings.crop_n_layers,
            settings.crop_n_points_downscale_factor,
        )
        self._encoder_batch = AdaptiveBatch(settings.frames_per_batch, "image-encoder")
        self._decoder_batch = AdaptiveBatch(settings.points_per_batch, "mask-decoder")
        if settings.autocast_bf16 and self.device.type != "cuda":
            logger.warning("autocast_bf16 only applies on CUDA; running float32 on %s", device)

    @classmethod
    def from_config(cls, sam_config: Mapping[str, Any], device: torch.device) -> SamBackend:
        """Build from the ``proposals.sam`` config group (missing keys: the schema's defaults).

        Keys: ``model_type`` (vit_h | vit_l | vit_b | tiny), ``checkpoint`` (a file; null only with
        ``random_weights: true``), ``image_size`` (random init only), and the :class:`SamSettings`
        fields. A missing or contradictory checkpoint is a ConfigError.
        """
        settings = typed(sam_config, SamSettings)
        values = group_values(sam_config, SamSettings.GROUP)
        model_type, checkpoint = str(values["model_type"]), values["checkpoint"]
        image_size = values["image_size"]
        problem = sam_checkpoint_problem(checkpoint, bool(values["random_weights"]))
        if problem is not None:
            raise ConfigError(problem)
        ckpt = None if checkpoint is None else Path(checkpoint)
        if ckpt is None:
            logger.warning("SAM %s with RANDOM weights (proposals.sam.random_weights)", model_type)
        model = build_sam(model_type, ckpt, image_size)
        return cls(model, settings, device, model_type, ckpt)

    def describe(self) -> dict[str, Any]:
        """Backend, model type, checkpoint path and sha256 (computed once), image size, settings."""
        if self.checkpoint is not None and self._checkpoint_sha256 is None:
            self._checkpoint_sha256 = file_sha256(self.checkpoint)
        return {
            "backend": self.name,
            "model_type": self.model_type,
            "checkpoint": None if self.checkpoint is None else str(self.checkpoint),
            "checkpoint_sha256": self._checkpoint_sha256,
            "random_weights": self.checkpoint is None,
            "image_size": int(self.model.image_encoder.img_size),
            "settings": dataclasses.asdict(self.settings),
        }

    # ---------------------------------------------------------------- generation

    def generate(self, images: Sequence[np.ndarray]) -> list[FrameProposals]:
        """Proposals of each RGB uint8 (H, W, 3) image, masks at its resolution, in NMS order."""
        for i, image in enumerate(images):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(
                    f"image {i}: expected RGB uint8 of shape (H, W, 3), "
                    f"got {image.dtype} {image.shape}"
                )
        s = self.settings
        views: list[_View] = []
        for i, image in enumerate(images):
            size = (int(image.shape[0]), int(image.shape[1]))
            boxes, layers = generate_crop_boxes(size, s.crop_n_layers, s.crop_overlap_ratio)
            views.extend(
                _View(i, tuple(b), layer, size) for b, layer in zip(boxes, layers, strict=True)
            )
        views_left = [0] * len(images)
        for v in views:
            views_left[v.frame] += 1
        per_view: list[_Candidates | None] = [None] * len(views)
        results: list[FrameProposals | None] = [None] * len(images)

        with torch.inference_mode(), ThreadPoolExecutor(max_workers=1) as pool:
            # Views are resized and uploaded on a CPU thread, at most one batch ahead of the
            # encoder (a bound on the device memory the queued inputs take).
            inputs: dict[int, Future[torch.Tensor]] = {}
            queued = [0]  # views submitted so far

            def queue_until(stop: int) -> None:
                for j in range(queued[0], min(stop, len(views))):
                    inputs[j] = pool.submit(self._prepare, images[views[j].frame], views[j])
                    queued[0] = j + 1

            def encode(start: int, stop: int) -> torch.Tensor:
                queue_until(stop + self._encoder_batch.size)
                batch = torch.cat([inputs[j].result() for j in range(start, stop)], dim=0)
                with self._autocast():
                    return self.model.image_encoder(batch)

            for start, stop, embeddings in self._encoder_batch.run(encode, len(views)):
                for j in range(start, stop):
                    del inputs[j]  # free the resized image
                    per_view[j] = self._decode_view(embeddings[j - start : j - start + 1], views, j)
                    frame = views[j].frame
                    views_left[frame] -= 1
                    if views_left[frame] == 0:
                        ids = [k for k, v in enumerate(views) if v.frame == frame]
                        parts = [per_view[k] for k in ids]
                        results[frame] = self._finish_frame(parts, views, ids)  # type: ignore[arg-type]
                        for k in ids:
                            per_view[k] = None
                logger.debug("SAM: encoded views %d-%d of %d", start, stop, len(views))
        return results  # type: ignore[return-value]

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.settings.autocast_bf16 and self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _prepare(self, image: np.ndarray, view: _View) -> torch.Tensor:
        """(1, 3, S, S) normalised, padded encoder input of a view (as SamPredictor.set_image)."""
        x0, y0, x1, y1 = view.crop_box
        resized = self._transform.apply_image(image[y0:y1, x0:x1, :])
        tensor = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()
        return self.model.preprocess(tensor[None])

    def _logits(self, low_res: torch.Tensor, view: _View) -> torch.Tensor:
        """(n, h, w) low-res logits → (n, Hc, Wc) float logits at the view's crop size."""
        input_size = ResizeLongestSide.get_preprocess_shape(
            view.crop_size[0], view.crop_size[1], self.model.image_encoder.img_size
        )
        return self.model.postprocess_masks(low_res[:, None], input_size, view.crop_size)[:, 0]

    def _decode_view(
        self, embedding: torch.Tensor, views: Sequence[_View], index: int
    ) -> _Candidates:
        """Candidates of one view from its (1, C, h, w) image embedding, after NMS in the crop."""
        s, view = self.settings, views[index]
        crop_h, crop_w = view.crop_size
        points = self._point_grids[view.layer] * np.array([[crop_w, crop_h]])
        transformed = self._transform.apply_coords(points, view.crop_size)
        embedding = embedding if self.settings.autocast_bf16 else embedding.to(self.dtype)

        def decode(start: int, stop: int) -> _Candidates:
            return self._decode_points(embedding, transformed[start:stop], view, index)

        parts = [part for _, _, part in self._decoder_batch.run(decode, len(transformed))]
        cands = _Candidates.cat(parts)
        keep = batched_nms(
            cands.boxes.to(cands.iou.dtype),  # integer pixel coordinates: exact in any dtype
            cands.iou,
            torch.zeros(len(cands.boxes), device=cands.boxes.device),
            iou_threshold=s.box_nms_thresh,
        )
        cands = cands.take(keep)
        cands.boxes = uncrop_boxes_xyxy(cands.boxes, list(view.crop_box))
        return cands

    def _decode_points(
        self, embedding: torch.Tensor, points: np.ndarray, view: _View, index: int
    ) -> _Candidates:
        """(P, 2) prompts in model input coordinates → filtered candidates (as _process_batch)."""
        s, model = self.settings, self.model
        in_points = torch.as_tensor(points, device=self.device)
        in_labels = torch.ones(in_points.shape[0], dtype=torch.int, device=self.device)
        with self._autocast():
            sparse, dense = model.prompt_encoder(
                points=(in_points[:, None, :], in_labels[:, None]), boxes=None, masks=None
            )
            low_res, iou = model.mask_decoder(
                image_embeddings=embedding,
                image_pe=model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=True,
            )
        low_res, iou = low_res.flatten(0, 1).to(self.dtype), iou.flatten(0, 1).to(self.dtype)
        if s.pred_iou_thresh > 0.0:
            keep = iou > s.pred_iou_thresh
            low_res, iou = low_res[keep], iou[keep]
        logits = self._logits(low_res, view)
        stability = calculate_stability_score(
            logits, model.mask_threshold, s.stability_score_offset
        )
        if s.stability_score_thresh > 0.0:
            keep = stability >= s.stability_score_thresh
            low_res, iou, stability, logits = (
                low_res[keep],
                iou[keep],
                stability[keep],
                logits[keep],
            )
        boxes = batched_mask_to_box(logits > model.mask_threshold)
        del logits
        frame_h, frame_w = view.frame_size
        keep = ~is_box_near_crop_edge(boxes, list(view.crop_box), [0, 0, frame_w, frame_h])
        view_ids = torch.full((len(iou),), index, dtype=torch.int64, device=self.device)
        return _Candidates(low_res, iou, stability, boxes, view_ids).take(keep)

    def _finish_frame(
        self, parts: Sequence[_Candidates], views: Sequence[_View], ids: Sequence[int]
    ) -> FrameProposals:
        """Merge a frame's views (NMS between crops), make full-size masks, clean small regions."""
        s = self.settings
        cands = _Candidates.cat(parts)
        if len(ids) > 1:
            crop_boxes = torch.tensor(
                [list(views[k].crop_box) for k in cands.view.tolist()], dtype=torch.int64
            ).reshape(-1, 4)
            scores = (1 / box_area(crop_boxes)).to(cands.boxes.device)
            keep = batched_nms(
                cands.boxes.float(),
                scores,
                torch.zeros(len(cands.boxes), device=cands.boxes.device),
                iou_threshold=s.crop_nms_thresh,
            )
            cands = cands.take(keep)
        height, width = views[ids[0]].frame_size
        masks = torch.zeros((len(cands.iou), height, width), dtype=torch.bool)
        for k in torch.unique(cands.view).tolist():
            rows = (cands.view == k).nonzero()[:, 0]
            for (chunk,) in batch_iterator(s.points_per_batch, rows):
                view_masks = (
                    self._logits(cands.low_res[chunk], views[k]) > self.model.mask_threshold
                )
                full = uncrop_masks(view_masks, list(views[k].crop_box), height, width)
                masks[chunk.cpu()] = full.cpu()
        props = FrameProposals(
            masks=masks.numpy(),
            predicted_iou=cands.iou.cpu().numpy(),
            stability_score=cands.stability.cpu().numpy(),
        )
        if s.min_mask_region_area > 0:
            props = _remove_small_regions(
                props, s.min_mask_region_area, max(s.box_nms_thresh, s.crop_nms_thresh)
            )
        return props


def _remove_small_regions(
    props: FrameProposals, min_area: int, nms_thresh: float
) -> FrameProposals:
    """SamAutomaticMaskGenerator.postprocess_small_regions on binary masks (CPU, OpenCV).

    Holes and islands smaller than ``min_area`` are removed; masks that changed lose NMS ties
    against unchanged ones (score 0 vs 1), then box NMS at ``nms_thresh`` drops new duplicates.
    """
    if len(props) == 0:
        return props
    cleaned, scores = [], []
    for mask in props.masks:
        mask, changed_holes = remove_small_regions(mask, min_area, mode="holes")
        mask, changed_islands = remove_small_regions(mask, min_area, mode="islands")
        cleaned.append(mask)
        scores.append(float(not (changed_holes or changed_islands)))
    masks = torch.as_tensor(np.stack(cleaned))
    keep = batched_nms(
        batched_mask_to_box(masks).float(),
        torch.as_tensor(scores),
        torch.zeros(len(masks)),
        iou_threshold=nms_thresh,
    ).numpy()
    return FrameProposals(
        masks=masks.numpy()[keep],
        predicted_iou=props.predicted_iou[keep],
        stability_score=props.stability_score[keep],
    )
