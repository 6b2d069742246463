"""The embedded demo dataset: synthetic egocentric clips with narrations, in two styles.

``generate_demo(out_dir, n_clips, seed, style=...)`` writes mp4 videos and a DESIGN §4 manifest
whose val / test narrations tag object phrases and carry exact ground-truth masks. Styles
(:data:`STYLES`): ``kitchen`` (the default: kitchen counter) and ``workshop`` (work bench), each a
vocabulary file (noun -> shape, colours, materials; bench tops; narration templates), exposed for
later checks of phrase grounding.

Modules: ``vocabulary`` (the YAML vocabulary), ``templates`` (its narration templates),
``geometry`` (polygon primitives), ``shapes`` / ``workshop_shapes`` (object polygons),
``textures`` (counter and material looks), ``plan`` (what happens in a clip), ``render`` (frames +
label maps), ``narration`` (tagged / free narrations), ``generate`` (videos + manifest).
"""

from nvos.demo.generate import DemoClip, generate_demo, make_clip, split_counts, video_groups
from nvos.demo.render import HAND_LABEL, RenderedClip, render_clip
from nvos.demo.vocabulary import (
    DEFAULT_STYLE,
    DEFAULT_VOCABULARY_PATH,
    STYLES,
    Material,
    Noun,
    ObjectSpec,
    Vocabulary,
    VocabularyError,
    load_vocabulary,
    style_path,
)

__all__ = [
    "DEFAULT_STYLE",
    "DEFAULT_VOCABULARY_PATH",
    "HAND_LABEL",
    "DemoClip",
    "Material",
    "Noun",
    "ObjectSpec",
    "RenderedClip",
    "STYLES",
    "Vocabulary",
    "VocabularyError",
    "generate_demo",
    "load_vocabulary",
    "make_clip",
    "render_clip",
    "split_counts",
    "style_path",
    "video_groups",
]
