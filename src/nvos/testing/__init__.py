"""Fixtures for the tests and benchmarks; nothing in the pipeline imports this package.

- :mod:`nvos.testing.synthetic`: synthetic ROSA clips with known latent alignments (no files).
- :mod:`nvos.testing.cache_fixture`: a synthetic feature cache with the run folder's real files.
- :mod:`nvos.testing.demo_regions`: demo frames with proposal-like masks and their phrases.
"""
