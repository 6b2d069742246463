"""Small VISOR and VOST datasets written in the real file formats (REFERENCE §2, §3) into a folder.

VISOR: ``annotations/<split>/<video>.json`` sparse JSONs (``video_annotations``, polygons in
1920×1080 pixels), full-HD frame JPEGs at ``frames/<video>/<name>`` and a narration CSV.
VOST: ``JPEGImages/<seq>/NNNNN.jpg``, indexed ``Annotations/<seq>/NNNNN.png`` (255 = ignore),
``ImageSets/<split>.txt`` and a narration CSV. Each builder returns what a test needs to know.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from nvos import rle
from nvos.importers.cli import cmd_import
from nvos.importers.common import skipped_path

FULL_HD = (1080, 1920)
"""(height, width) of VISOR sparse frames and polygon coordinates."""


def manifest_lines(manifest: Path) -> dict[str, dict[str, Any]]:
    """The manifest's lines by clip_id."""
    return {x["clip_id"]: x for x in map(json.loads, manifest.read_text().splitlines())}


def decode(obj: dict[str, Any]) -> np.ndarray:
    """A manifest RLE object ``{"size": [h, w], "counts": str}`` as a boolean mask (h, w)."""
    height, width = obj["size"]
    return rle.decode(obj["counts"], height, width)


def skipped(manifest: Path) -> list[tuple[str, str]]:
    """(item, reason) rows of the manifest's skip list."""
    with open(skipped_path(manifest), newline="") as handle:
        return [(row["item"], row["reason"]) for row in csv.DictReader(handle)]


def run_import(fmt: str, argv: list[str]) -> int:
    """``nvos import <fmt> ARGV`` through the importer's own options and the shared command."""
    module = importlib.import_module(f"nvos.importers.{fmt}")
    parser = argparse.ArgumentParser(prog=f"nvos import {fmt}")
    module.add_arguments(parser)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    args.format = fmt
    return cmd_import(args, {})


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """A CSV with the union of the rows' keys as header (missing values empty)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


# ----------------------------------------------------------------------------------------- VISOR


def rect(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    """A rectangle polygon (4 corners, clockwise) in VISOR's [x, y] point format."""
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def entity(
    mask_id: str, name: str, *polygons: list[list[float]], exhaustive: str | None = "y"
) -> dict[str, Any]:
    """One VISOR mask entry (``id``, ``name``, ``class_id``, ``exhaustive``, ``segments``)."""
    out: dict[str, Any] = {"id": mask_id, "name": name, "class_id": 7, "segments": list(polygons)}
    if exhaustive is not None:
        out["exhaustive"] = exhaustive
    if name.endswith("hand"):
        out["in_contact_object"] = "hand-not-in-contact"
    return out


def frame_name(video: str, number: int) -> str:
    """VISOR image name: ``<video>_frame_<10-digit number>.jpg``."""
    return f"{video}_frame_{number:010d}.jpg"


def visor_frame(
    video: str, number: int, subsequence: str, entities: list[dict[str, Any]]
) -> dict[str, Any]:
    """One ``video_annotations`` entry."""
    name = frame_name(video, number)
    return {
        "image": {
            "image_path": f"{video}/{name}",
            "name": name,
            "subsequence": subsequence,
            "video": video,
        },
        "annotations": entities,
    }


def write_visor_json(path: Path, entries: list[dict[str, Any]]) -> Path:
    """A VISOR sparse annotation file ``{"video_annotations": entries}``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"video_annotations": entries}))
    return path


def write_visor_image(
    path: Path, entities: list[dict[str, Any]], size: tuple[int, int] = FULL_HD
) -> None:
    """A JPEG with each entity's polygons painted in its own colour on a grey background."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((*size, 3), 96, dtype=np.uint8)
    for i, e in enumerate(entities):
        colour = (40 + 70 * (i % 3), 200 - 60 * (i % 4), 60 + 50 * (i % 5))
        for polygon in e["segments"]:
            if polygon:
                cv2.fillPoly(image, [np.array(polygon, dtype=np.int32)], colour)
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 80])


# The small VISOR dataset: two videos, three subsequences. Rectangles are chosen so that the
# expected masks are easy to write down: fillPoly fills the truncated corners inclusively.
P01 = "P01_01"
P02 = "P02_03"
SEQ1, SEQ2, SEQ3 = "P01_01_seq_00001", "P01_01_seq_00002", "P02_03_seq_00001"
VISOR_FRAMES: dict[str, list[tuple[int, str, list[dict[str, Any]]]]] = {
    P01: [
        (
            100,
            SEQ1,
            [
                entity("a100", "left hand", rect(100.7, 100.2, 400.9, 400.5)),
                entity("b100", "wooden spoon", rect(500, 300, 900, 500)),
                entity("c100", "pan", rect(800, 400, 1400, 900), exhaustive="n"),
            ],
        ),
        (
            250,
            SEQ1,
            [
                entity("b250", "wooden spoon", rect(520, 310, 920, 510)),
                entity("c250", "pan", rect(800, 400, 1400, 900), exhaustive="n"),
                entity("o250a", "onion", rect(1500, 100, 1600, 200)),
                entity("o250b", "onion", rect(1700, 100, 1800, 200)),
            ],
        ),
        (
            400,
            SEQ1,
            [
                entity("c400", "pan", rect(800, 400, 1400, 900), exhaustive="n"),
                entity("a400", "left hand", rect(120, 100, 420, 400)),
            ],
        ),
        (
            900,
            SEQ2,
            [
                entity("e900", "chopping board", rect(200, 500, 1000, 1000)),
                entity("d900", "knife", rect(300, 600, 700, 660)),
            ],
        ),
        (
            1000,
            SEQ2,
            [
                entity("e1000", "chopping board", rect(200, 500, 1000, 1000), exhaustive=None),
                entity("d1000", "knife", rect(320, 600, 720, 660)),
            ],
        ),
    ],
    P02: [
        (
            50,
            SEQ3,
            [
                entity("f50", "tap", rect(900, 50, 1100, 300)),
                entity("g50", "sponge", rect(1000, 600, 1200, 700)),
                entity("h50", "right hand", rect(1150, 550, 1500, 800)),
            ],
        ),
        (
            150,
            SEQ3,
            [
                entity("f150", "tap", rect(900, 50, 1100, 300)),
                entity("g150", "sponge", rect(1010, 610, 1210, 710)),
            ],
        ),
    ],
}
VISOR_SPLIT = {P01: "train", P02: "val"}

VISOR_NARRATIONS: list[dict[str, Any]] = [
    # entity-name tags; split from the JSON's folder (train)
    {
        "clip_id": "P01_01_c1",
        "video_id": P01,
        "start_frame": 100,
        "stop_frame": 400,
        "narration": "stir the [pasta pan]<pan> with the [wooden spoon]<wooden_spoon>",
        "split": "",
    },
    # VISOR-VOS labels of SEQ1: 1 left hand, 2 onion, 3 pan, 4 wooden spoon
    {
        "clip_id": "P01_01_c2",
        "video_id": P01,
        "start_frame": 200,
        "stop_frame": 300,
        "narration": "put the [onions]<2> beside the [pan]<3>",
        "split": "train",
    },
    # a mask id and a name; explicit split
    {
        "clip_id": "P01_01_c3",
        "video_id": P01,
        "start_frame": 900,
        "stop_frame": 1000,
        "narration": "pick up the [knife]<d900> from the [board]<chopping_board>",
        "split": "val",
    },
    # labels of SEQ3: 1 right hand, 2 sponge, 3 tap
    {
        "clip_id": "P02_03_c1",
        "video_id": P02,
        "start_frame": 0,
        "stop_frame": 200,
        "narration": "rinse the [sponge]<2> under the [tap]<3>",
        "split": "",
    },
    # an untagged training narration: frames, no masks
    {
        "clip_id": "P01_01_c4",
        "video_id": P01,
        "start_frame": 100,
        "stop_frame": 250,
        "narration": "stir pasta with spoon",
        "split": "train",
    },
]


@dataclass(frozen=True)
class VisorFixture:
    """Paths of a VISOR fixture: ``annotations`` (JSON folder), ``frames``, ``narrations``."""

    root: Path
    annotations: Path
    frames: Path
    narrations: Path

    def argv(self, out: Path, *extra: str) -> list[str]:
        """Command-line arguments of ``nvos import visor`` for this fixture."""
        return [
            "--annotations",
            str(self.annotations),
            "--frames",
            str(self.frames),
            "--narrations",
            str(self.narrations),
            "--out",
            str(out),
            *extra,
        ]


def write_visor(
    root: Path,
    narrations: list[dict[str, Any]] | None = None,
    frames: dict[str, list[tuple[int, str, list[dict[str, Any]]]]] | None = None,
    image_size: tuple[int, int] = FULL_HD,
) -> VisorFixture:
    """Write the small VISOR dataset (or the given ``frames`` / ``narrations``) under ``root``."""
    annotations = root / "annotations"
    images = root / "frames"
    for video, entries in (frames or VISOR_FRAMES).items():
        write_visor_json(
            annotations / VISOR_SPLIT.get(video, "train") / f"{video}.json",
            [visor_frame(video, n, seq, ents) for n, seq, ents in entries],
        )
        for n, _, ents in entries:
            write_visor_image(images / video / frame_name(video, n), ents, image_size)
    table = write_csv(root / "narrations.csv", narrations or VISOR_NARRATIONS)
    return VisorFixture(root, annotations, images, table)


def filled(shape: tuple[int, int], *rects: tuple[int, int, int, int]) -> np.ndarray:
    """A boolean mask with inclusive integer rectangles (x0, y0, x1, y1) set."""
    mask = np.zeros(shape, dtype=bool)
    for x0, y0, x1, y1 in rects:
        mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return mask


# ------------------------------------------------------------------------------------------ VOST

VOST_SIZE = (48, 64)
"""(height, width) of the VOST fixture frames."""

CUT = "3161_cut_carrot"
TEAR = "555_tear_paper"
PEEL = "777_peel_potato"


def vost_labels(seq: str, k: int) -> np.ndarray:
    """The label map of annotated frame ``k`` of a fixture sequence (uint8, VOST_SIZE)."""
    labels = np.zeros(VOST_SIZE, dtype=np.uint8)
    if seq == CUT:
        if k == 0:
            labels[10:30, 10:40] = 1  # the carrot, whole
        else:
            labels[10:30, 10:22] = 1  # two pieces, same label
            labels[10:30, 28:40] = 1
            labels[30:34, 10:40] = 255  # an ambiguous band: ignore
        labels[35:40, 5:50] = 2  # the knife
        labels[0:8, 50:60] = 3  # a hand, never tagged
    elif seq == TEAR:
        labels[5:40, 5:30] = 1  # the paper
        if k > 0:
            labels[5:40, 35:60] = 4  # the torn-off piece, annotated with its own label
    elif seq == PEEL:
        labels[10:20, 10:20] = 1
    return labels


def write_png(path: Path, labels: np.ndarray) -> None:
    """An indexed PNG (mode 'P', DAVIS-like palette) whose pixel values are the labels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(labels, mode="P")
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[1:6] = [[128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128]]
    palette[255] = [224, 224, 192]
    image.putpalette(palette.ravel().tolist())
    image.save(path)


VOST_FRAMES = 12
"""JPEGs per sequence; every ``VOST_STEP``-th one has an annotation PNG (5 fps of 30 fps)."""
VOST_STEP = 6

VOST_NARRATIONS: list[dict[str, Any]] = [
    {"sequence": CUT, "narration": "cut the [carrot]<1> with a [knife]<2>"},
    {
        "sequence": TEAR,
        "narration": "tear the [paper]<1>",
        "instances": "1=1+4",
    },
    {
        "sequence": TEAR,
        "clip_id": "555_tear_paper_b",
        "narration": "rip a piece of paper",
        "split": "train",
    },
]


@dataclass(frozen=True)
class VostFixture:
    """Paths of a VOST fixture: the ``root`` (JPEGImages/, Annotations/, ImageSets/) and table."""

    root: Path
    narrations: Path

    def argv(self, out: Path, *extra: str) -> list[str]:
        """Command-line arguments of ``nvos import vost`` for this fixture."""
        return [
            *("--root", str(self.root), "--narrations", str(self.narrations)),
            *("--out", str(out), *extra),
        ]


def write_vost(root: Path, narrations: list[dict[str, Any]] | None = None) -> VostFixture:
    """Write VOST sequences under ``root``/vost (val: cut carrot, peel potato; train: tear)."""
    data = root / "vost"
    sets = {"val": [CUT, PEEL], "train": [TEAR]}
    for split, seqs in sets.items():
        (data / "ImageSets").mkdir(parents=True, exist_ok=True)
        (data / "ImageSets" / f"{split}.txt").write_text("\n".join(seqs) + "\n")
        for seq in seqs:
            for i in range(VOST_FRAMES):
                image = np.full((*VOST_SIZE, 3), 80 + 10 * i, dtype=np.uint8)
                jpg = data / "JPEGImages" / seq / f"{i:05d}.jpg"
                jpg.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(jpg), image)
                if i % VOST_STEP == 0:
                    labels = vost_labels(seq, i // VOST_STEP)
                    write_png(data / "Annotations" / seq / f"{i:05d}.png", labels)
    table = write_csv(root / "vost_narrations.csv", narrations or VOST_NARRATIONS)
    return VostFixture(data, table)
