"""The frozen CLIP model of the feature cache: an open_clip model, its tokenizer and input size.

:func:`load_clip` builds the model named by ``features.clip.model`` with the weights of
``features.clip.pretrained``:

- an open_clip pretrained tag (``openai``, ``laion2b_s34b_b88k``, ...), which open_clip downloads
  (or finds in its cache) on a connected machine;
- a local checkpoint file (any path that exists), whose sha256 is recorded;
- ``None``: the model is randomly initialised from a fixed seed. This is the demo's setting (no
  weights are ever downloaded by the demo or the tests); the log says so with a WARNING.

Besides open_clip's own configs, the configs shipped in ``nvos/resources/clip/`` are registered,
e.g. ``nvos-tiny-vit`` (an 8-layer ViT at 96 px with a small text tower), small enough for the demo
to encode a few thousand regions in about a minute on 2 CPU cores.

:meth:`ClipEncoder.describe` is what the feature tables record in their metadata (model,
pretrained tag or file hash, input size, embedding size).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nvos.features.clip_names import SHIPPED_CONFIGS_DIR
from nvos.features.tokens import check_tokenizer
from nvos.types import PathLike

__all__ = [
    "SHIPPED_CONFIGS_DIR",
    "ClipEncoder",
    "load_clip",
    "register_shipped_configs",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipEncoder:
    """A frozen open_clip CLIP model (eval mode, no gradients) with what the stage needs of it.

    Attributes:
        model: The open_clip ``CLIP`` module, on ``device``.
        tokenizer: Its ``SimpleTokenizer`` (context length ``tokenizer.context_length``).
        image_size: Side of the square image input in pixels.
        mean, std: Per-channel normalisation of the image input (RGB, 0..1 scale).
        device: Where the model lives.
        autocast_bf16: Run the towers under bfloat16 autocast (outputs are float32).
        info: Provenance: model name, pretrained tag / file / None, sha256, seed.
        interpolation: The resampling filter of the model's preprocessing (open_clip's
            ``interpolation``, ``bicubic`` for CLIP).
    """

    model: torch.nn.Module
    tokenizer: Any
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    device: torch.device
    autocast_bf16: bool
    info: dict[str, Any]
    interpolation: str = "bicubic"

    @property
    def embed_dim(self) -> int:
        """Size of the joint embedding space (the feature tables' ``dim``)."""
        return int(self.model.text_projection.shape[1])

    def describe(self) -> dict[str, Any]:
        """JSON-able description for the tables' provenance (a change here invalidates them)."""
        return {
            **self.info,
            "image_size": self.image_size,
            "embed_dim": self.embed_dim,
            "context_length": int(self.tokenizer.context_length),
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
            "autocast_bf16": self.autocast_bf16,
        }

    def autocast(self) -> torch.autocast:
        """The autocast context of the towers (disabled unless ``autocast_bf16``)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast_bf16)


def register_shipped_configs(directory: Path = SHIPPED_CONFIGS_DIR) -> list[str]:
    """Register the model configs of ``directory`` with open_clip; return their names."""
    import open_clip

    names = sorted(path.stem for path in directory.glob("*.json"))
    if any(name not in open_clip.list_models() for name in names):
        open_clip.add_model_config(directory)
    return names


def load_clip(
    model: str,
    pretrained: PathLike | None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    image_size: int | None = None,
    autocast_bf16: bool = False,
) -> ClipEncoder:
    """Build the frozen CLIP encoder of the feature cache.

    Args:
        model: open_clip model name (``ViT-B-16``, ``ViT-L-14``, or a shipped config such as
            ``nvos-tiny-vit``).
        pretrained: open_clip pretrained tag, a local checkpoint file, or None (random weights
            from ``seed``: the demo).
        device: Where to put the model.
        seed: Seed of the random initialisation (used only when ``pretrained`` is None).
        image_size: Override of the model's input size (open_clip interpolates the position
            embeddings of pretrained weights); None keeps the config's.
        autocast_bf16: Run the towers under bfloat16 autocast.

    Raises:
        ValueError: Unknown model name.
        TypeError: The model is not a CLIP model with open_clip's BPE tokenizer.
    """
    import open_clip

    register_shipped_configs()
    if model not in open_clip.list_models():
        raise ValueError(
            f"features.clip.model: unknown open_clip model {model!r} (open_clip's own configs, "
            f"or one of {register_shipped_configs()} shipped in {SHIPPED_CONFIGS_DIR})"
        )
    device = torch.device(device)
    info: dict[str, Any] = {"model": model, "pretrained": None, "sha256": None, "seed": None}
    kwargs: dict[str, Any] = {"device": device}
    if image_size is not None:
        kwargs["force_image_size"] = int(image_size)
    if pretrained is None:
        logger.warning(
            "CLIP %s with RANDOM weights (seed %d): features.clip.pretrained is null; the "
            "embeddings carry no meaning (demo/test setting)",
            model,
            seed,
        )
        info["seed"] = int(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            clip = open_clip.create_model(model, pretrained=None, **kwargs)
    else:
        source = str(pretrained)
        if Path(source).is_file():
            from nvos.storage import file_sha256

            info["pretrained"] = str(Path(source).resolve())
            info["sha256"] = file_sha256(Path(source))
            logger.info("CLIP %s weights from %s (sha256 %s)", model, source, info["sha256"])
        else:
            info["pretrained"] = source
            logger.info("CLIP %s weights: open_clip pretrained tag %r", model, source)
        clip = open_clip.create_model(model, pretrained=source, require_pretrained=True, **kwargs)
    clip.eval().requires_grad_(False)
    for name in ("token_embedding", "positional_embedding", "transformer", "ln_final"):
        if not hasattr(clip, name):
            raise TypeError(
                f"features.clip.model {model!r} is a {type(clip).__name__}, not an open_clip CLIP "
                f"model with a built-in text transformer (it has no {name!r})"
            )
    tokenizer = open_clip.get_tokenizer(model)
    check_tokenizer(tokenizer)
    preprocess = open_clip.get_model_preprocess_cfg(clip)
    size = preprocess["size"]
    side = int(size if isinstance(size, int) else size[0])
    if not isinstance(size, int) and size[0] != size[1]:
        raise ValueError(f"features.clip.model {model!r}: non-square input {size} is not supported")
    return ClipEncoder(
        model=clip,
        tokenizer=tokenizer,
        image_size=side,
        mean=tuple(float(v) for v in preprocess["mean"]),  # type: ignore[arg-type]
        std=tuple(float(v) for v in preprocess["std"]),  # type: ignore[arg-type]
        device=device,
        autocast_bf16=bool(autocast_bf16),
        info=info,
        interpolation=str(preprocess.get("interpolation") or "bicubic"),
    )
