"""Bring another method's masks into a run: ``nvos import-predictions`` (docs/evaluation.md).

:mod:`nvos.imports.formats` reads the three formats (DAVIS indexed PNG folders, a COCO-RLE JSON
list, the ``predictions`` schema) into :class:`~nvos.imports.targets.ImportedMask` items;
:mod:`nvos.imports.targets` checks each against the run (clip, object, frame, size) and writes
``predictions/<method>/<shard>.parquet`` for every shard of the run.
"""

from nvos.imports.formats import FORMATS, read_masks
from nvos.imports.targets import (
    ImportedMask,
    ImportSummary,
    PredictionImportError,
    RunTargets,
    import_predictions,
)

__all__ = [
    "FORMATS",
    "ImportSummary",
    "ImportedMask",
    "PredictionImportError",
    "RunTargets",
    "import_predictions",
    "read_masks",
]
