"""Evaluation metrics with exact DAVIS 2017 semantics: J, F, J_union / J_ins, RLE entry points.

Masks are boolean numpy arrays (H, W); the ground truth always comes first, as in DAVIS.
"""

from nvos.metrics.boundary import DEFAULT_BOUND_TH, bound_pixels, boundary_f, seg2bmap
from nvos.metrics.coco import boundary_f_rle, iou_matrix, jaccard_rle
from nvos.metrics.instances import Components, InstanceScores, connected_instances, instance_scores
from nvos.metrics.region import jaccard

__all__ = [
    "DEFAULT_BOUND_TH",
    "Components",
    "InstanceScores",
    "bound_pixels",
    "boundary_f",
    "boundary_f_rle",
    "connected_instances",
    "instance_scores",
    "iou_matrix",
    "jaccard",
    "jaccard_rle",
    "seg2bmap",
]
