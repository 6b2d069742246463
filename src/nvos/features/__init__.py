"""The ``features`` stage: frozen CLIP embeddings of proposals (regions) and phrases (DESIGN §7).

- :mod:`nvos.features.clip_model`: :func:`load_clip` (open_clip model + tokenizer, pretrained tag,
  local file or seeded random weights; shipped tiny configs in ``nvos/resources/clip/``);
- :mod:`nvos.features.tokens`: :func:`align_tokens`, character spans of CLIP BPE tokens;
- :mod:`nvos.features.regions`: :func:`masked_crops`, masked crops on the device, equal to
  open_clip's preprocessing within PIL's uint8 rounding (filter weights:
  :mod:`nvos.features.resample`);
- :mod:`nvos.features.reference`: :func:`reference_crops`, open_clip's own transform per region
  (``features.crop.mode: reference``);
- :mod:`nvos.features.text`: narration, context and plain phrase embeddings;
- :mod:`nvos.features.stage`: :func:`extract_features` writes the shard's two tables.
"""
