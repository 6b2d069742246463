"""Class-agnostic mask proposals per frame (the `proposals` stage).

Backends: ``sam`` (segment_anything automatic mask generation) and ``classical`` (weight-free
multi-scale region segmentation). The common interface is in :mod:`nvos.proposals.base`.
"""
