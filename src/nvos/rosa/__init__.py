"""ROSA (Referred Object-Segment Aligner, CVPR 2024): the method of DESIGN §7.

Modules:

- :mod:`nvos.rosa.batch`: :class:`~nvos.rosa.batch.ClipBatch`, padded clips of cached features.
- :mod:`nvos.rosa.model`: the context-aware dual encoder (region branch, phrase branch, g, τ).
- :mod:`nvos.rosa.losses`: latent alignment, L_RPA, φ and L_VNA.
- :mod:`nvos.rosa.config`: the ``rosa`` config group and its ablation variants (no torch).
- :mod:`nvos.rosa.sources`: batch sources of one process, input-normalisation statistics.
- :mod:`nvos.rosa.checkpoint`: checkpoint files, RNG states, the resume fingerprint.
- :mod:`nvos.rosa.train`: the training loop, checkpoints, resume, DDP.
- :mod:`nvos.rosa.restarts`: several initialisations, the lowest validation VNA kept.
- :mod:`nvos.rosa.stage`: the ``train`` stage (one variant from the run's cache; torchrun entry).
- :mod:`nvos.rosa.distributed`: torchrun environment and collectives with gradient.

Synthetic clips and caches for tests and benchmarks are in :mod:`nvos.testing`.
"""
