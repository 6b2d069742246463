"""What happens in one demo clip: the objects, their motion, the hands, the camera and the story.

:func:`plan_clip` draws everything random from a numpy Generator, so a plan (and the frames that
:func:`nvos.demo.render.render_clip` makes from it) is a pure function of the seed.
Positions are in frame pixels (x, y) before the camera transform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nvos.demo.geometry import Part, extent
from nvos.demo.shapes import shape_parts
from nvos.demo.vocabulary import Counter, ObjectSpec, Vocabulary

WIDTH, HEIGHT, FPS = 320, 240, 12
STORIES = ("move", "pick", "take")
STORY_WEIGHTS = (0.5, 0.3, 0.2)
OBJECTS = (3, 5)  # objects per clip, inclusive range
CONTEXT_MENTION = 0.9  # chance that the story also names another visible object


@dataclass(frozen=True)
class SceneObject:
    """An object with its pose per frame: ``centre`` (T, 2), ``angle`` (T,) rad, ``scale`` (T,),
    ``layer`` (T,) draw order (higher is drawn later, i.e. on top)."""

    object_id: str
    spec: ObjectSpec
    parts: tuple[Part, ...]
    extent: float
    centre: np.ndarray
    angle: np.ndarray
    scale: np.ndarray
    layer: np.ndarray


@dataclass(frozen=True)
class Hand:
    """A hand and arm entering from ``root`` (2,) outside the frame.

    ``palm`` (T, 2) per frame, ``grip`` (T,) bool (fingers curled), ``skin`` and ``sleeve`` RGB,
    ``side`` +1 right hand / -1 left hand.
    """

    root: np.ndarray
    palm: np.ndarray
    grip: np.ndarray
    skin: tuple[int, int, int]
    sleeve: tuple[int, int, int]
    side: int


@dataclass(frozen=True)
class Story:
    """The action narrated: ``kind`` in STORIES, the carried object (``actor``), the object it is
    put in / on (``target``, move only) and an extra visible object named for context."""

    kind: str
    actor: str
    target: str | None
    context: str | None


@dataclass(frozen=True)
class ClipPlan:
    """Everything needed to render a clip of ``n_frames`` frames deterministically."""

    n_frames: int
    counter: Counter
    objects: tuple[SceneObject, ...]
    hands: tuple[Hand, ...]
    camera_offset: np.ndarray  # (T, 2) pixels
    camera_zoom: np.ndarray  # (T,)
    story: Story
    render_seed: int

    def object(self, object_id: str) -> SceneObject:
        """The object with this id."""
        for obj in self.objects:
            if obj.object_id == object_id:
                return obj
        raise KeyError(f"no object {object_id!r} in the clip")


SLEEVES = ((40, 44, 60), (120, 30, 40), (60, 90, 60), (90, 90, 95), (200, 200, 205))


def _ease(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """n points from a to b (each (2,)) with smoothstep easing: (n, 2)."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    t = t * t * (3 - 2 * t)
    return a[None, :] * (1 - t) + b[None, :] * t


def _path(keys: list[tuple[int, np.ndarray]], n_frames: int) -> np.ndarray:
    """Piecewise eased path through (frame, point) keyframes, held after the last: (T, 2)."""
    out = np.zeros((n_frames, 2))
    for (f0, p0), (f1, p1) in zip(keys[:-1], keys[1:], strict=True):
        out[f0 : f1 + 1] = _ease(p0, p1, f1 - f0 + 1)
    out[keys[-1][0] :] = keys[-1][1]
    return out


def _choose_nouns(vocab: Vocabulary, rng: np.random.Generator, kind: str, count: int) -> list[str]:
    """Distinct nouns for a clip; the first is the actor, then (move) a larger receptacle."""
    names = list(vocab.nouns)
    order = [names[i] for i in rng.permutation(len(names))]
    actor = next(n for n in order if vocab.nouns[n].carriable)
    chosen = [actor]
    if kind == "move":
        size = vocab.nouns[actor].size
        targets = [n for n in order if vocab.nouns[n].receptacle and vocab.nouns[n].size > size]
        if not targets:  # the actor is the largest receptacle: carry something smaller instead
            carriable = [n for n in order if vocab.nouns[n].carriable]
            actor = min(carriable, key=lambda n: vocab.nouns[n].size)
            chosen = [actor]
            targets = [
                n
                for n in order
                if vocab.nouns[n].receptacle and vocab.nouns[n].size > vocab.nouns[actor].size
            ]
        chosen.append(targets[0])
    chosen += [n for n in order if n not in chosen][: count - len(chosen)]
    return chosen


def _spec(vocab: Vocabulary, rng: np.random.Generator, noun: str) -> ObjectSpec:
    entry = vocab.nouns[noun]
    material = entry.materials[int(rng.integers(len(entry.materials)))]
    colour = None
    if entry.colours and vocab.materials[material].colour is None:
        colour = entry.colours[int(rng.integers(len(entry.colours)))]
    return ObjectSpec(noun, colour, material)


def _place(rng: np.random.Generator, extents: list[float], inside: list[bool]) -> np.ndarray:
    """Non-overlapping centres (N, 2); ``inside`` objects fully inside the frame."""
    centres: list[np.ndarray] = []
    for ext, keep_in in zip(extents, inside, strict=True):
        best, best_gap = None, -np.inf
        for _ in range(60):
            margin = min(ext + 4, HEIGHT / 2 - 1) if keep_in else -0.3 * ext
            c = np.array(
                [rng.uniform(margin, WIDTH - margin), rng.uniform(margin, HEIGHT - margin)]
            )
            gap = min(
                (
                    np.linalg.norm(c - o) - 0.85 * (ext + e)
                    for o, e in zip(centres, extents, strict=False)
                ),
                default=np.inf,
            )
            if gap > best_gap:
                best, best_gap = c, gap
            if gap > 0:
                break
        centres.append(best)  # type: ignore[arg-type]
    return np.stack(centres)


def plan_clip(vocab: Vocabulary, rng: np.random.Generator, n_frames: int) -> ClipPlan:
    """Draw a random clip: :data:`OBJECTS` objects on a counter, one or two hands, a story (naming
    another visible object with chance :data:`CONTEXT_MENTION`), a camera drift."""
    counters = list(vocab.counters.values())
    counter = counters[int(rng.integers(len(counters)))]
    kind = STORIES[int(rng.choice(len(STORIES), p=STORY_WEIGHTS))]
    nouns = _choose_nouns(vocab, rng, kind, int(rng.integers(OBJECTS[0], OBJECTS[1] + 1)))
    specs = [_spec(vocab, rng, n) for n in nouns]
    parts = [tuple(shape_parts(vocab.nouns[n].shape, vocab.nouns[n].size)) for n in nouns]
    extents = [extent(list(p)) for p in parts]
    n_named = 2 if kind == "move" else 1
    centres = _place(rng, extents, [i < n_named for i in range(len(nouns))])
    ids = [str(i + 1) for i in rng.permutation(len(nouns))]
    t = n_frames
    angles = np.repeat(rng.uniform(-np.pi, np.pi, len(nouns))[None, :], t, axis=0)
    scales = np.ones((t, len(nouns)))
    layers = np.repeat(-np.asarray(extents)[None, :], t, axis=0)  # big flat things below
    paths = np.repeat(centres[None], t, axis=0)

    side = 1 if rng.random() < 0.7 else -1
    root = np.array([WIDTH / 2 + side * rng.uniform(40, 130), HEIGHT + 70.0])
    actor = centres[0]
    direction = (actor - root) / np.linalg.norm(actor - root)
    grasp_palm = actor - direction * (0.55 * extents[0] + 8)
    f_grasp, f_lift, f_place = round(0.3 * t), round(0.38 * t), round(0.72 * t)
    if kind == "move":
        drop = centres[1] + rng.normal(0, 0.15 * extents[1], 2)
    elif kind == "pick":
        drop = actor + np.array([rng.uniform(-50, 50), rng.uniform(-40, 10)])
        drop = np.clip(drop, 20, [WIDTH - 20, HEIGHT - 20])
    else:  # take: carried out of the frame
        drop = np.array([WIDTH / 2 + side * (WIDTH / 2 + 3 * extents[0]), rng.uniform(40, 120)])
        f_place = t - 1
    offset = actor - grasp_palm
    entry = root + direction * 60
    palm = _path(
        [
            (0, entry),
            (f_grasp, grasp_palm),
            (f_lift, grasp_palm),
            (f_place, drop - offset),
            (t - 1, drop - offset - direction * 45),
        ],
        t,
    )
    if kind == "take":
        palm = _path(
            [(0, entry), (f_grasp, grasp_palm), (f_lift, grasp_palm), (f_place, drop - offset)], t
        )
    carried = slice(f_lift, f_place + 1)
    paths[carried, 0] = palm[carried] + offset
    paths[f_place + 1 :, 0] = paths[f_place, 0]
    lift = np.sin(np.pi * np.linspace(0, 1, f_place + 1 - f_lift))
    scales[carried, 0] = 1.0 + 0.22 * lift
    angles[carried, 0] += rng.uniform(-0.8, 0.8) * np.linspace(0, 1, f_place + 1 - f_lift)
    angles[f_place + 1 :, 0] = angles[f_place, 0]
    layers[f_grasp:, 0] = 1000.0
    grip = np.zeros(t, dtype=bool)
    grip[f_grasp : f_place + 1] = True
    skin = vocab.skin_tones[int(rng.integers(len(vocab.skin_tones)))]
    sleeve = SLEEVES[int(rng.integers(len(SLEEVES)))]
    hands = [Hand(root, palm, grip, skin, sleeve, side)]
    if rng.random() < 0.4:  # the other hand steadies another object for a while
        other = int(rng.integers(1, len(nouns)))
        root2 = np.array([WIDTH / 2 - side * rng.uniform(60, 140), HEIGHT + 70.0])
        d2 = (centres[other] - root2) / np.linalg.norm(centres[other] - root2)
        rest = centres[other] - d2 * (0.8 * extents[other] + 10)
        start = root2 + d2 * 55
        f_in, f_out = int(rng.integers(0, t // 3)), int(rng.integers(2 * t // 3, t))
        palm2 = _path([(0, start), (f_in, start), (min(f_in + 8, f_out), rest), (f_out, rest)], t)
        grip2 = np.zeros(t, dtype=bool)
        hands.append(Hand(root2, palm2, grip2, skin, sleeve, -side))

    drift = rng.normal(0, 10, 2)
    phase = np.linspace(0, 2 * np.pi * rng.uniform(0.5, 1.5), t)
    camera_offset = drift[None] * np.linspace(0, 1, t)[:, None] + 2.0 * np.stack(
        [np.sin(phase), np.cos(1.3 * phase)], axis=1
    )
    camera_zoom = 1.0 + rng.uniform(-0.08, 0.12) * np.linspace(0, 1, t)

    objects = tuple(
        SceneObject(
            ids[i],
            specs[i],
            parts[i],
            extents[i],
            paths[:, i].copy(),
            angles[:, i].copy(),
            scales[:, i].copy(),
            layers[:, i].copy(),
        )
        for i in range(len(nouns))
    )
    target = ids[1] if kind == "move" else None
    named = {ids[0], target}
    candidates = [o for o in objects if o.object_id not in named and _inside(o.centre[0], o.extent)]
    context = None
    if candidates and rng.random() < CONTEXT_MENTION:
        context = candidates[int(rng.integers(len(candidates)))].object_id
    story = Story(kind, ids[0], target, context)
    return ClipPlan(
        t,
        counter,
        objects,
        tuple(hands),
        camera_offset,
        camera_zoom,
        story,
        int(rng.integers(2**31)),
    )


def _inside(centre: np.ndarray, ext: float) -> bool:
    """Whether an object at ``centre`` is well inside the frame (so it stays visible)."""
    return bool(
        ext + 10 < centre[0] < WIDTH - ext - 10 and ext + 10 < centre[1] < HEIGHT - ext - 10
    )
