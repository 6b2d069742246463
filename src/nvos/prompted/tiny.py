"""Small randomly initialised Grounding DINO and SAM 3 for the demo and the tests.

Built from ``transformers``' own classes with small configs (those of its unit tests, shrunk),
with character-level tokenizers made here (no vocabulary file to download): they run the same
code paths as the real checkpoints, but their boxes and masks mean nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "TINY_GROUNDING_DINO_SIZE",
    "TINY_SAM3_SIZE",
    "tiny_bert_tokenizer",
    "tiny_clip_tokenizer",
    "tiny_grounding_dino",
    "tiny_sam3",
]

TINY_GROUNDING_DINO_SIZE = {"shortest_edge": 64, "longest_edge": 128}
"""Resize of the tiny Grounding DINO's image processor (the real one: 800 / 1333)."""

TINY_SAM3_SIZE = 224
"""Square input side of the tiny SAM 3 (16 x 16 patches of 14; the real one: 1008)."""

_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789")


def tiny_bert_tokenizer() -> Any:
    """A WordPiece tokenizer whose vocabulary is single characters (lower-case letters, digits,
    ``.``, ``,``): any phrase tokenizes, one token per character."""
    from transformers import BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","]
    vocab += _CHARS + ["##" + c for c in _CHARS]
    return BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})


def tiny_clip_tokenizer() -> Any:
    """A byte-level BPE tokenizer without merges (every byte a token), CLIP's special tokens."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={token: i for i, token in enumerate(vocab)}, merges=[])


def tiny_grounding_dino() -> tuple[Any, Any]:
    """(GroundingDinoForObjectDetection, GroundingDinoProcessor), random, in eval mode.

    Seed with :func:`nvos.prompted.hub.seeded` for reproducible weights.
    """
    from transformers import (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    tokenizer = tiny_bert_tokenizer()
    swin = SwinConfig(
        window_size=7, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
        image_size=224, out_features=["stage2", "stage3", "stage4"], out_indices=[2, 3, 4],
    )  # fmt: skip
    text = {
        "model_type": "bert", "vocab_size": len(tokenizer), "hidden_size": 8,
        "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8,
        "max_position_embeddings": 64,
    }  # fmt: skip
    config = GroundingDinoConfig(
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16, num_queries=10,
        num_feature_levels=4, encoder_n_points=2, decoder_n_points=2, use_timm_backbone=False,
        backbone_config=swin, max_text_len=32, text_config=text,
    )  # fmt: skip
    model = GroundingDinoForObjectDetection(config).eval()
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size=dict(TINY_GROUNDING_DINO_SIZE)),
        tokenizer=tokenizer,
    )
    return model, processor


def tiny_sam3() -> tuple[Any, Any]:
    """(Sam3Model, Sam3Processor), random, in eval mode (5 instance queries)."""
    from transformers import Sam3Config, Sam3ImageProcessor, Sam3Model, Sam3Processor
    from transformers.models.sam3.configuration_sam3 import (
        Sam3DETRDecoderConfig,
        Sam3DETREncoderConfig,
        Sam3GeometryEncoderConfig,
        Sam3MaskDecoderConfig,
        Sam3VisionConfig,
        Sam3ViTConfig,
    )

    tokenizer = tiny_clip_tokenizer()
    width = {"hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64}
    backbone = Sam3ViTConfig(
        num_hidden_layers=2, image_size=TINY_SAM3_SIZE, patch_size=14, window_size=8,
        global_attn_indexes=[0, 1], **width,
    )  # fmt: skip
    text = {
        "vocab_size": len(tokenizer), "projection_dim": 32, "num_hidden_layers": 2,
        "max_position_embeddings": 32, "hidden_act": "gelu",
        "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id, **width,
    }  # fmt: skip
    config = Sam3Config(
        vision_config=Sam3VisionConfig(
            backbone_config=backbone, fpn_hidden_size=32, scale_factors=[2.0, 1.0]
        ),
        text_config=text,
        geometry_encoder_config=Sam3GeometryEncoderConfig(num_layers=1, **width),
        detr_encoder_config=Sam3DETREncoderConfig(num_layers=1, **width),
        detr_decoder_config=Sam3DETRDecoderConfig(num_layers=1, num_queries=5, **width),
        mask_decoder_config=Sam3MaskDecoderConfig(hidden_size=32, num_upsampling_stages=2),
    )
    model = Sam3Model(config).eval()
    size = {"height": TINY_SAM3_SIZE, "width": TINY_SAM3_SIZE}
    processor = Sam3Processor(image_processor=Sam3ImageProcessor(size=size), tokenizer=tokenizer)
    return model, processor
