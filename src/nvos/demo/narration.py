"""Narrations of demo clips, from the clip's story and the style's templates.

Evaluation clips get narrations in the vocabulary's ``tagged`` template style whose object
phrases are tagged ``[phrase]<object_id>``; training clips get untagged free text in a weighted
mix of styles like real narrations. The kitchen style mixes sentences ("The person takes the red
cup from the counter."), Ego4D ("#C C picks a knife from the counter") and EPIC-KITCHENS
imperatives ("put sponge on plate"); the workshop style has its own (templates in its file).
"""

from __future__ import annotations

import numpy as np

from nvos.demo.plan import ClipPlan
from nvos.demo.vocabulary import ObjectSpec, Vocabulary

# Weights of an object phrase's forms (when the object has the words): mostly "<colour> <noun>",
# since colour is what frozen region features carry best (random-weight CLIP included), so that a
# phrase set of moderate size recurs across training clips (like a fixed noun vocabulary).
PHRASE_FORMS = {"noun": 0.15, "colour": 0.6, "material": 0.1, "colour material": 0.15}
# Objects without a colour word (metal, wooden, produce): noun alone or with its material.
PLAIN_FORMS = {"noun": 0.4, "material": 0.6}


def object_phrase(vocab: Vocabulary, spec: ObjectSpec, rng: np.random.Generator) -> str:
    """A noun phrase for an object: e.g. "red cup" (most often), "cup", "plastic cup" or
    "red plastic cup" (weights :data:`PHRASE_FORMS`, or :data:`PLAIN_FORMS` without colour)."""
    colour, material = vocab.attribute_words(spec)
    weights = PHRASE_FORMS if colour else PLAIN_FORMS
    forms = {"noun": spec.noun}
    if colour:
        forms["colour"] = f"{colour} {spec.noun}"
    if material:
        forms["material"] = f"{material} {spec.noun}"
    if colour and material:
        forms["colour material"] = f"{colour} {material} {spec.noun}"
    names = [name for name in forms if name in weights]
    p = np.asarray([weights[name] for name in names])
    return forms[names[int(rng.choice(len(names), p=p / p.sum()))]]


def _article(phrase: str) -> str:
    return "an" if phrase[0] in "aeiou" else "a"


def _story_key(plan: ClipPlan) -> str:
    return plan.story.kind + ("+C" if plan.story.context is not None else "")


def _mentions(plan: ClipPlan) -> list[tuple[str, str]]:
    """(slot, object_id) of the objects the story names, in slot order A, B, C."""
    story = plan.story
    slots = [("A", story.actor), ("B", story.target), ("C", story.context)]
    return [(slot, oid) for slot, oid in slots if oid is not None]


def _fill(
    template: str, texts: dict[str, str], bare: dict[str, str], plan: ClipPlan, vocab: Vocabulary
) -> str:
    """Fill slots {A} / {a A} / {in} / {into}; ``bare`` (no tag) decides the article."""
    receptacle = "in"
    if plan.story.target is not None:
        receptacle = vocab.nouns[plan.object(plan.story.target).spec.noun].receptacle or "in"
    out = template.replace("{in}", receptacle).replace("{into}", receptacle + "to")
    for slot, text in texts.items():
        out = out.replace("{a " + slot + "}", f"{_article(bare[slot])} {text}")
        out = out.replace("{" + slot + "}", text)
    return out


def tagged_narration(
    vocab: Vocabulary, plan: ClipPlan, rng: np.random.Generator
) -> tuple[str, list[str]]:
    """A narration in the ``tagged`` template style with every named object tagged; returns
    (text, tagged object ids)."""
    choices = vocab.templates.styles[vocab.templates.tagged][_story_key(plan)]
    template = choices[int(rng.integers(len(choices)))]
    bare: dict[str, str] = {}
    texts: dict[str, str] = {}
    for slot, oid in _mentions(plan):
        bare[slot] = object_phrase(vocab, plan.object(oid).spec, rng)
        texts[slot] = f"[{bare[slot]}]<{oid}>"
    return _fill(template, texts, bare, plan, vocab), [oid for _, oid in _mentions(plan)]


def free_narration(vocab: Vocabulary, plan: ClipPlan, rng: np.random.Generator) -> str:
    """An untagged narration in a template style drawn with the ``free`` weights."""
    names = list(vocab.templates.free)
    weights = [vocab.templates.free[name] for name in names]
    style = vocab.templates.styles[names[int(rng.choice(len(names), p=weights))]]
    choices = style[_story_key(plan)]
    template = choices[int(rng.integers(len(choices)))]
    bare = {slot: object_phrase(vocab, plan.object(oid).spec, rng) for slot, oid in _mentions(plan)}
    return _fill(template, bare, bare, plan, vocab)
