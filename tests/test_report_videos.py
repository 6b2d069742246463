"""Overlay videos of dense masks (nvos.report.videos): written, readable, one frame per dense
frame, each phrase in its colour, linked from the page."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from temporal_scenes import HEIGHT, WIDTH, scene_frame, square_mask

from nvos import rle, storage
from nvos.evaluation.truth import ClipTruth, TaggedObject
from nvos.report.html import ClipSection, _clip_html
from nvos.report.overlays import LEGEND_ROW, phrase_colour
from nvos.report.videos import ClipVideo, clip_videos, video_name
from nvos.temporal.propagate import DenseFrame, dense_table

FRAMES = 10


def test_clip_video_has_one_frame_per_dense_frame(tmp_path: Path) -> None:
    folder = tmp_path / "video"
    folder.mkdir()
    for t in range(FRAMES):
        cv2.imwrite(str(folder / f"{t:03d}.png"), cv2.cvtColor(scene_frame(t), cv2.COLOR_RGB2BGR))
    # dense masks on frames 2..8 of a clip whose video has 10 frames
    dense = [
        DenseFrame(t, "propagated", square_mask(t)[None], np.ones(1, np.float32))
        for t in range(2, 9)
    ]
    masks = tmp_path / "masks.parquet"
    storage.write_table(dense_table("c/1", [0], ["o1"], dense), masks, "dense_masks")
    truth = ClipTruth("c/1", HEIGHT, WIDTH, (5,), {(5, "o1"): (rle.encode(square_mask(5)),)})
    clip = {"clip_id": "c/1", "video": str(folder), "fps": 10.0}
    objects = {"c/1": [TaggedObject("o1", (0,), "square")]}
    videos = clip_videos([masks], {"c/1": clip}, objects, {"c/1": truth}, tmp_path, 10.0, 0.5)
    assert videos == {"c/1": ClipVideo(f"overlays/{video_name('c/1')}", "c/1", 7)}
    path = tmp_path / videos["c/1"].path
    assert path.name == "c_1.mp4" and not list(path.parent.glob(".*"))  # no temporary left
    reader = cv2.VideoCapture(str(path))
    assert int(reader.get(cv2.CAP_PROP_FRAME_COUNT)) == 7
    assert reader.get(cv2.CAP_PROP_FPS) == 10.0
    decoded = []
    while True:
        ok, frame = reader.read()
        if not ok:
            break
        decoded.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    reader.release()
    assert len(decoded) == 7
    assert decoded[0].shape == (HEIGHT + 2 * LEGEND_ROW + 4, WIDTH, 3)  # frame + legend band
    # inside the mask (away from its outline) the phrase colour is blended in: closer to it
    # than the raw frame is (the codec is lossy, so compare distances, not values)
    inside = square_mask(2)
    inside[:, :] &= np.roll(square_mask(2), 8, axis=1) & np.roll(square_mask(2), -8, axis=1)
    colour = np.array(phrase_colour(0), np.float32)
    drawn = decoded[0][:HEIGHT][inside].astype(np.float32).mean(axis=0)
    raw = scene_frame(2)[inside].astype(np.float32).mean(axis=0)
    assert np.linalg.norm(drawn - colour) < np.linalg.norm(raw - colour) - 40


def test_a_clip_without_dense_masks_gets_no_video(tmp_path: Path) -> None:
    masks = tmp_path / "masks.parquet"
    storage.write_table(storage.empty_table("dense_masks"), masks, "dense_masks")
    clip = {"clip_id": "c", "video": "nowhere", "fps": 10.0}
    assert clip_videos([masks], {"c": clip}, {"c": []}, {}, tmp_path, 10.0, 0.5) == {}


def test_the_page_links_the_video() -> None:
    section = ClipSection("c", "test", "a [square]<o1>", (), ClipVideo("overlays/c.mp4", "c", 7))
    page = _clip_html(section)
    assert '<a href="overlays/c.mp4">' in page and "7 frames" in page
    assert "<a href" not in _clip_html(ClipSection("c", "test", "n", ()))
