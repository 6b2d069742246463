"""The ``phrases`` stage: narrations -> object phrases with character spans (DESIGN §3–§4).

- :mod:`nvos.phrases.normalise`: :func:`clean_narration`, the text every span indexes;
- :mod:`nvos.phrases.parse`: :class:`PhraseParser` (tags, or spaCy noun chunks);
- :mod:`nvos.phrases.stage`: :func:`extract_phrases` writes ``phrases.parquet``.
"""

from nvos.phrases.normalise import Narration, clean_narration, normalise_narration
from nvos.phrases.parse import Phrase, PhraseParser, load_spacy

__all__ = [
    "Narration",
    "Phrase",
    "PhraseParser",
    "clean_narration",
    "load_spacy",
    "normalise_narration",
]
