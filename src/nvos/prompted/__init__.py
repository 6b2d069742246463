"""Text-prompted segmenters as comparison rows: GroundedSAM and SAM 3 (docs/methods.md).

Each turns an RGB frame and a list of object phrases into one mask per phrase:

- :mod:`nvos.prompted.grounded_sam`: Grounding DINO boxes for the phrase, the best box above a
  threshold as SAM's box prompt (``transformers`` + ``segment_anything``);
- :mod:`nvos.prompted.sam3`: the phrase as SAM 3's text prompt (``transformers``' Sam3Model), the
  highest-scoring instance or the union of instances above a threshold.

:mod:`nvos.prompted.predict` runs either on the scored frames of one shard;
:mod:`nvos.prompted.hub` loads local ``transformers`` checkpoints (never downloading), and
:mod:`nvos.prompted.tiny` builds the small random models of the demo and the tests.
"""
