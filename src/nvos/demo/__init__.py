"""The embedded demo dataset: synthetic egocentric "kitchen counter" clips with narrations.

``generate_demo(out_dir, n_clips, seed)`` writes mp4 videos and a DESIGN §4 manifest whose
val / test narrations tag object phrases and carry exact ground-truth masks. The vocabulary
(noun -> shape, colours, materials) is exposed for later checks of phrase grounding.

Modules: ``vocabulary`` (the YAML vocabulary), ``shapes`` (object polygons), ``textures``
(counter and material looks), ``plan`` (what happens in a clip), ``render`` (frames + label maps),
``narration`` (tagged / free narrations), ``generate`` (videos + manifest).
"""

from nvos.demo.generate import DemoClip, generate_demo, make_clip, split_counts, video_groups
from nvos.demo.render import HAND_LABEL, RenderedClip, render_clip
from nvos.demo.vocabulary import (
    DEFAULT_VOCABULARY_PATH,
    Material,
    Noun,
    ObjectSpec,
    Vocabulary,
    VocabularyError,
    load_vocabulary,
)

__all__ = [
    "DEFAULT_VOCABULARY_PATH",
    "HAND_LABEL",
    "DemoClip",
    "Material",
    "Noun",
    "ObjectSpec",
    "RenderedClip",
    "Vocabulary",
    "VocabularyError",
    "generate_demo",
    "load_vocabulary",
    "make_clip",
    "render_clip",
    "split_counts",
    "video_groups",
]
