"""Masks through time (issue 18): temporal decoding of per-phrase choices and dense propagation.

- :mod:`nvos.temporal.decode`: exact Viterbi decoding of one phrase's choice over (frame,
  proposal or absent), given region–phrase scores and link matrices between consecutive frames.
- :mod:`nvos.temporal.flow`: DIS optical flow, mask warping and the link term (IoU after motion
  compensation).
- :mod:`nvos.temporal.propagate`: dense propagation of keyframe masks to every frame (backends
  ``none`` and ``flow``); :mod:`nvos.temporal.sam2_backend`: the ``sam2`` backend;
  :mod:`nvos.temporal.backends`: the backends by name.

Nothing here knows about the workflow: inputs are arrays and frame sources, outputs are arrays
and rows of the ``dense_masks`` table (:data:`nvos.storage.SCHEMAS`).
"""
