"""nvos: narration-based video object segmentation (ROSA, CVPR 2024) as a staged pipeline."""

__version__ = "0.1.0"
