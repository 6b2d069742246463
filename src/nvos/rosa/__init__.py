"""ROSA (Referred Object-Segment Aligner, CVPR 2024): the method of DESIGN §7.

Modules:

- :mod:`nvos.rosa.batch`: :class:`~nvos.rosa.batch.ClipBatch`, padded clips of cached features.
- :mod:`nvos.rosa.model`: the context-aware dual encoder (region branch, phrase branch, g, τ).
- :mod:`nvos.rosa.losses`: latent alignment, L_RPA, φ and L_VNA.
- :mod:`nvos.rosa.train`: configuration, training loop, checkpoints, resume, DDP, ablation variants.
- :mod:`nvos.rosa.distributed`: torchrun environment and collectives with gradient.
- :mod:`nvos.rosa.synthetic`: synthetic clips with known alignments (tests and benchmarks).
"""
