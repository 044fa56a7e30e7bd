"""Data side of magma-tiny-som training: Magma's image processing in PyTorch and the generated data set.

Image processing follows Magma's "crop" strategy exactly as the engine does: ToTensor (/255),
CLIP normalize, best-fit crop grid, stretch with F.interpolate(bilinear, align_corners=False),
cut into S x S crops row-major.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)


def select_crop_grid(width: int, height: int, crop: int, max_crops: int) -> Tuple[int, int]:
    """LLaVA-NeXT best fit over (i*S, j*S): largest effective resolution, then least waste. Returns (rows, cols)."""
    best, best_eff, best_waste = (1, 1), -1, float("inf")
    for i in range(1, max_crops + 1):
        for j in range(1, max_crops // i + 1):
            gw, gh = i * crop, j * crop
            scale = min(gw / width, gh / height)
            eff = min(int(width * scale) * int(height * scale), width * height)
            waste = gw * gh - eff
            if eff > best_eff or (eff == best_eff and waste < best_waste):
                best, best_eff, best_waste = (j, i), eff, waste
    return best


def image_to_crops(rgb: np.ndarray, crop: int, max_crops: int) -> Tuple[torch.Tensor, int, int]:
    """HWC uint8 RGB -> crops [rows*cols, 3, S, S] float32, plus (rows, cols)."""
    h, w, _ = rgb.shape
    rows, cols = select_crop_grid(w, h, crop, max_crops)
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0
    x = (x - CLIP_MEAN) / CLIP_STD
    x = F.interpolate(x[None], size=(rows * crop, cols * crop), mode="bilinear", align_corners=False)[0]
    crops = x.reshape(3, rows, crop, cols, crop).permute(1, 3, 0, 2, 4).reshape(rows * cols, 3, crop, crop)
    return crops, rows, cols


@dataclass
class QA:
    type: str
    question: str
    answer: str
    suffix_ids: List[int]
    answer_ids: List[int]


@dataclass
class Scene:
    offset: int
    width: int
    height: int
    rows: int
    cols: int
    qas: List[QA]
    objects: List[dict] = field(default_factory=list)  # shapes: shape, color, cx, cy, mark (or None)
    marks: List[dict] = field(default_factory=list)  # drawn marks: label, box and text pixel rects
    # The scene before it was stretched to the crop grid: size, background kind, JPEG quality.
    source: dict = field(default_factory=dict)


class SceneSet:
    """One split written by generate-data.ts: images in <split>.rgb, scenes in <split>.jsonl.

    Images are stored at model resolution (the crop grid's size) and every coordinate is in those
    pixels, so `image_to_crops` on them is a plain cut into crops."""

    def __init__(self, data_dir: Path, split: str):
        self.rgb = np.memmap(data_dir / f"{split}.rgb", dtype=np.uint8, mode="r")
        self.scenes: List[Scene] = []
        for line in (data_dir / f"{split}.jsonl").read_text().splitlines():
            d = json.loads(line)
            qas = [QA(**q) for q in d.pop("qas")]
            self.scenes.append(Scene(qas=qas, **d))
        self.has_objects = bool(self.scenes) and bool(self.scenes[0].objects)
        self.meta = json.loads((data_dir / "meta.json").read_text())

    def __len__(self) -> int:
        return len(self.scenes)

    def image(self, i: int) -> np.ndarray:
        s = self.scenes[i]
        n = s.width * s.height * 3
        return np.asarray(self.rgb[s.offset : s.offset + n]).reshape(s.height, s.width, 3)

    def by_grid(self) -> dict:
        groups: dict = {}
        for i, s in enumerate(self.scenes):
            groups.setdefault((s.rows, s.cols), []).append(i)
        return groups
