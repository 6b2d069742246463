"""Exports of masks in formats other tools read (``nvos export``).

- :mod:`nvos.exports.source`: reading ``dense_masks`` / ``predictions`` tables with their phrases,
  categories from head nouns;
- :mod:`nvos.exports.formats`: :func:`export_masks`, YouTube-VIS and COCO JSON;
- :mod:`nvos.exports.davis`: DAVIS indexed PNG folders.

(:mod:`nvos.export` writes a method's predictions against the ground truth for the official
DAVIS / VOST evaluators; these exports are for masks of any phrase on any frame, e.g.
pseudo-labels.)
"""
