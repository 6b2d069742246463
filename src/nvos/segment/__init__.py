"""Segmenting whole videos: every phrase of every narration, on every frame, in bounded memory.

- :mod:`nvos.segment.scope`: the workflow's ``segment`` stage as a scope of the run (the run's
  methods again on every clip and phrase); :mod:`nvos.segment.stage` its own steps (its phrases,
  its output table); :mod:`nvos.segment.free_text` the free-text path scored;
  :mod:`nvos.segment.video` ``nvos segment VIDEO``, a one-clip run of that stage;

- :mod:`nvos.segment.stream`: :func:`segment_stream`, one pass over a video of any length with
  many (overlapping) narration windows: proposals and region features on sparse keyframes,
  temporal decoding, flow propagation, dense masks written as they are made;
- :mod:`nvos.segment.zero_shot`: :class:`ZeroShotScorer`, the weight-free / zero-shot keyframe
  scorer (any proposal backend + the frozen CLIP model, prompt cosine);
- :mod:`nvos.segment.writer`: :func:`table_writer`, a Parquet table written row group by row
  group and renamed into place only when complete.
"""
