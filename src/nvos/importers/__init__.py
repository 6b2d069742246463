"""Importers: real dataset formats (VISOR, VOST, Ego4D, EPIC-KITCHENS) → the nvos manifest.

Each format module exposes ``add_arguments(parser)`` (its command-line options) and
``run(args, writer)`` (stream its clips into a :class:`~nvos.importers.common.ManifestWriter`).
``nvos import <format> ... --out MANIFEST`` wires them (:mod:`nvos.importers.cli`).
"""
