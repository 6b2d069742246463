"""Render a :class:`~nvos.demo.plan.ClipPlan` into frames and exact per-pixel object labels.

Objects and hands are filled polygons (cv2.fillPoly, sub-pixel vertices, no anti-aliasing), so the
label map says exactly which object each pixel shows: a ground-truth mask is ``labels == id``
(the visible part only: whatever is drawn later, e.g. a hand, removes the pixels it covers).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from nvos.demo.geometry import ellipse
from nvos.demo.plan import HEIGHT, WIDTH, ClipPlan, Hand, SceneObject
from nvos.demo.textures import counter_texture, lighting, material_shading
from nvos.demo.vocabulary import Vocabulary

HAND_LABEL = -1
MARGIN = 48  # counter texture margin (pixels) around the frame, for the camera drift
SHIFT = 3  # fillPoly sub-pixel bits
STEM_RGB = np.array([70, 125, 45], dtype=np.float32)
STEEL_RGB = np.array([168, 172, 180], dtype=np.float32)


@dataclass(frozen=True)
class RenderedClip:
    """``frames`` (T, H, W, 3) uint8 BGR; ``labels`` (T, H, W) int16: 0 counter, k > 0 the object
    with id ``str(k)``, -1 a hand."""

    frames: np.ndarray
    labels: np.ndarray


class _Canvas:
    """One frame being drawn: float32 RGB image (H, W, 3), int16 labels (H, W), a scratch mask."""

    def __init__(self, background: np.ndarray) -> None:
        self.image = background
        self.labels = np.zeros(background.shape[:2], dtype=np.int16)
        self.scratch = np.zeros(background.shape[:2], dtype=np.uint8)

    def fill(self, points: np.ndarray) -> tuple[slice, slice, np.ndarray] | None:
        """Rasterise polygon (K, 2) frame (x, y); return its bbox slices and mask there."""
        x0, y0 = np.floor(points.min(axis=0)).astype(int) - 1
        x1, y1 = np.ceil(points.max(axis=0)).astype(int) + 2
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, WIDTH), min(y1, HEIGHT)
        if x0 >= x1 or y0 >= y1:
            return None
        fixed = np.round(points * (1 << SHIFT)).astype(np.int32)
        cv2.fillPoly(self.scratch, [fixed], 1, lineType=cv2.LINE_8, shift=SHIFT)
        ys, xs = slice(y0, y1), slice(x0, x1)
        mask = self.scratch[ys, xs].astype(bool)
        self.scratch[ys, xs] = 0
        return (ys, xs, mask) if mask.any() else None

    def paint(self, ys: slice, xs: slice, mask: np.ndarray, colour: np.ndarray, label: int) -> None:
        """Set ``colour`` ((h, w, 3) or (3,)) and ``label`` on the masked pixels of the bbox."""
        region = self.image[ys, xs]
        region[mask] = colour[mask] if colour.ndim == 3 else colour
        self.labels[ys, xs][mask] = label


def _camera(plan: ClipPlan, t: int, points: np.ndarray) -> np.ndarray:
    """World points (..., 2) -> frame points at frame t."""
    centre = np.array([WIDTH / 2, HEIGHT / 2])
    return centre + plan.camera_zoom[t] * (points - centre) + plan.camera_offset[t]


def _draw_object(
    canvas: _Canvas, plan: ClipPlan, vocab: Vocabulary, obj: SceneObject, t: int, tile: np.ndarray
) -> None:
    noun = vocab.nouns[obj.spec.noun]
    rgb = np.asarray(vocab.rgb(obj.spec), dtype=np.float32)
    texture = vocab.materials[obj.spec.material].texture
    handle = np.asarray(vocab.colours[noun.handle], np.float32) if noun.handle else 0.85 * rgb
    role_rgb = {
        "body": rgb,
        "inner": 0.72 * rgb,
        "light": np.minimum(1.1 * rgb + 12, 255),
        "handle": handle,
        "stem": STEM_RGB,
        "steel": STEEL_RGB,
    }
    zoom = plan.camera_zoom[t] * obj.scale[t]
    cos, sin = np.cos(obj.angle[t]), np.sin(obj.angle[t])
    rotation = np.array([[cos, -sin], [sin, cos]])
    centre = _camera(plan, t, obj.centre[t])
    label = int(obj.object_id)
    for part in obj.parts:
        filled = canvas.fill(centre + zoom * part.points @ rotation.T)
        if filled is None:
            continue
        ys, xs, mask = filled
        yy, xx = np.mgrid[ys, xs].astype(np.float32)
        dx, dy = xx - centre[0], yy - centre[1]
        u, v = (dx * cos + dy * sin) / zoom, (-dx * sin + dy * cos) / zoom
        kind = texture if part.role in ("body", "inner", "light") else "speckle"
        if part.role == "steel":
            kind = "brushed"
        shade = material_shading(kind, u, v, noun.size, tile)
        canvas.paint(ys, xs, mask, role_rgb[part.role][None, None, :] * shade[..., None], label)


def _hand_polygons(plan: ClipPlan, hand: Hand, t: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(polygon (K, 2) in frame pixels, RGB (3,)) of sleeve, arm, palm, fingers and thumb."""
    zoom = plan.camera_zoom[t]
    root, palm = _camera(plan, t, hand.root), _camera(plan, t, hand.palm[t])
    d = (palm - root) / max(np.linalg.norm(palm - root), 1e-6)
    p = np.array([-d[1], d[0]])
    skin = np.asarray(hand.skin, dtype=np.float32)
    sleeve = np.asarray(hand.sleeve, dtype=np.float32)

    def oval(c: np.ndarray, along: float, across: float, direction: np.ndarray) -> np.ndarray:
        local = ellipse(0, 0, along * zoom, across * zoom, 20)
        axes = np.stack([direction, np.array([-direction[1], direction[0]])])
        return c + local @ axes

    wrist = palm - d * 16 * zoom
    cuff = root + (wrist - root) * 0.55
    w = zoom * np.array([24.0, 15.0, 27.0, 21.0])
    out = [
        (
            np.stack([root + p * w[0], wrist + p * w[1], wrist - p * w[1], root - p * w[0]]),
            0.9 * skin,
        ),
        (np.stack([root + p * w[2], cuff + p * w[3], cuff - p * w[3], root - p * w[2]]), sleeve),
        (oval(palm, 19, 17, d), skin),
    ]
    length = 8.0 if hand.grip[t] else 14.0
    for off in (-11.0, -3.7, 3.7, 11.0):
        reach = length - (3.0 if abs(off) > 10 else 0.0)
        base = palm + d * 12 * zoom + p * off * zoom
        out.append((oval(base + d * reach * 0.5 * zoom, reach * 0.5 + 3.5, 4.3, d), 1.03 * skin))
    thumb_dir = d * np.cos(0.8) - hand.side * p * np.sin(0.8)
    out.append(
        (oval(palm - hand.side * p * 15 * zoom + thumb_dir * 8 * zoom, 10, 4.8, thumb_dir), skin)
    )
    return out


def _object_polygons(plan: ClipPlan, obj: SceneObject, t: int) -> list[np.ndarray]:
    zoom = plan.camera_zoom[t] * obj.scale[t]
    cos, sin = np.cos(obj.angle[t]), np.sin(obj.angle[t])
    centre = _camera(plan, t, obj.centre[t])
    return [centre + zoom * part.points @ np.array([[cos, sin], [-sin, cos]]) for part in obj.parts]


def _shadow(canvas: _Canvas, polygons: list[np.ndarray], zoom: float) -> None:
    """Darken the image under lifted things (hands, a carried object), offset down-right."""
    for points in polygons:
        fixed = np.round((points + np.array([7.0, 9.0]) * zoom) * (1 << SHIFT)).astype(np.int32)
        cv2.fillPoly(canvas.scratch, [fixed], 1, lineType=cv2.LINE_8, shift=SHIFT)
    soft = cv2.GaussianBlur(canvas.scratch.astype(np.float32), (0, 0), 5.0)
    canvas.scratch[:] = 0
    canvas.image *= (1.0 - 0.35 * soft)[..., None]


def render_clip(plan: ClipPlan, vocab: Vocabulary) -> RenderedClip:
    """Render every frame of ``plan``: frames (T, H, W, 3) uint8 BGR and labels (T, H, W)."""
    rng = np.random.default_rng(plan.render_seed)
    world = counter_texture(rng, plan.counter, HEIGHT + 2 * MARGIN, WIDTH + 2 * MARGIN)
    light = lighting(rng, HEIGHT, WIDTH)
    tiles = [rng.random((32, 32), dtype=np.float32) for _ in plan.objects]
    frames = np.zeros((plan.n_frames, HEIGHT, WIDTH, 3), dtype=np.uint8)
    labels = np.zeros((plan.n_frames, HEIGHT, WIDTH), dtype=np.int16)
    centre = np.array([WIDTH / 2, HEIGHT / 2])
    for t in range(plan.n_frames):
        z = float(plan.camera_zoom[t])
        tx, ty = centre + plan.camera_offset[t] - z * (MARGIN + centre)
        affine = np.array([[z, 0.0, tx], [0.0, z, ty]], dtype=np.float64)
        canvas = _Canvas(
            cv2.warpAffine(
                world,
                affine,
                (WIDTH, HEIGHT),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT,
            )
        )
        order = sorted(range(len(plan.objects)), key=lambda i: (plan.objects[i].layer[t], i))
        lifted = [i for i in order if plan.objects[i].scale[t] > 1.001]
        for i in order:
            if i not in lifted:
                _draw_object(canvas, plan, vocab, plan.objects[i], t, tiles[i])
        hands = [_hand_polygons(plan, h, t) for h in plan.hands]
        above = [pts for i in lifted for pts in _object_polygons(plan, plan.objects[i], t)]
        _shadow(canvas, above + [pts for h in hands for pts, _ in h], z)
        for i in lifted:
            _draw_object(canvas, plan, vocab, plan.objects[i], t, tiles[i])
        for polygons in hands:
            for points, colour in polygons:
                filled = canvas.fill(points)
                if filled is not None:
                    canvas.paint(*filled, colour, HAND_LABEL)
        image = canvas.image * light[..., None] + rng.normal(0.0, 2.5, canvas.image.shape)
        frames[t] = np.clip(image, 0, 255).astype(np.uint8)[..., ::-1]
        labels[t] = canvas.labels
    return RenderedClip(frames, labels)
