"""Set-of-Mark drawing with PIL, by the rule the server follows (packages/server/src/images/
mark-layout.ts, mark-sizing.ts, draw-marks.ts): Magma's UI-agent layout (label font grown until
the "555" box reaches the target height, 8 spots tried in Magma's order, least overlap wins),
with marks sized for the model (at least the bundle's magma_som.marks minimums once the image is
stretched to its crop grid). Outlines inside the box, then white numbers on filled labels."""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import List, Tuple

from PIL import Image, ImageColor, ImageDraw, ImageFont

from preprocess import select_crop_grid

ROOT = Path(__file__).resolve().parents[2]
FONT_FILE = ROOT / "packages" / "server" / "assets" / "fonts" / "LiberationSans-Regular.ttf"
MARK_COLOR = (255, 0, 0)
SPOTS = ("above-left", "above-right", "right-top", "right-bottom", "below-right", "below-left", "left-bottom", "left-top")

Rect = Tuple[int, int, int, int]  # x, y, width, height


def js_round(v: float) -> int:
    return math.floor(v + 0.5)


@lru_cache(maxsize=256)
def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_FILE), size)


UNITS = 2048  # a size at which one pixel is one font unit: unscaled advances and ascender


@lru_cache(maxsize=1024)
def text_box(text: str, size: int) -> Tuple[int, int, int]:
    """(width, height, ascent) of a label text as the server's canvas measures it: from the
    ascender line to the lowest ink, from the origin to the rightmost ink, whole pixels. The
    canvas rounds the ascender and places glyphs at unrounded advances with hinted outlines;
    this reproduces its numbers exactly for fonts up to 250 px (within 1-2 px above, where its
    rasterizer stops hinting)."""
    big = font(UNITS)
    ascent = round(big.getmetrics()[0] * size / UNITS)
    mask, (ox, oy) = font(size).getmask2(text[-1], anchor="ls")
    _, _, right, bottom = mask.getbbox() or (0, 0, 0, 0)
    advance = big.getlength(text[:-1]) * size / UNITS
    return math.ceil(advance + ox + right - 1e-9), ascent + max(0, oy + bottom), ascent


@lru_cache(maxsize=256)
def font_size_for(target: float) -> int:
    size = max(6, math.floor(target * 0.75))
    while size < 2048:
        w, h, _ = text_box("555", size)
        if min(w, h) >= target:
            break
        size += 1
    return size


def mark_sizing(width: int, height: int, crop: int, max_crops: int, minimums: dict) -> Tuple[float, int]:
    """(label text height, outline width) in image pixels."""
    magma_label = max(16, min(30, 0.04 * min(width, height)))
    rows, cols = select_crop_grid(width, height, crop, max_crops)
    scale = min(cols * crop / width, rows * crop / height)
    label = max(magma_label, minimums.get("min_label_text_height", 16) / scale)
    outline = max(2, math.ceil(minimums.get("min_outline_width", 2) / scale - 1e-9))
    return label, outline


def snap(mark: dict, width: int, height: int) -> Rect:
    def axis(a: float, b: float, size: int) -> Tuple[int, int]:
        lo = min(max(js_round(a), 0), size)
        hi = min(max(js_round(b), 0), size)
        if hi <= lo:
            if lo < size:
                hi = lo + 1
            else:
                lo = hi - 1
        return lo, hi

    x1, x2 = axis(mark["x1"], mark["x2"], width)
    y1, y2 = axis(mark["y1"], mark["y2"], height)
    return x1, y1, x2 - x1, y2 - y1


def overlap(a: Rect, b: Rect) -> int:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0


def corner_distance(a: Rect, b: Rect) -> float:
    def edge(a0, a1, b0, b1):
        return min(abs(a0 - b0), abs(a0 - b1), abs(a1 - b0), abs(a1 - b1))

    return math.hypot(edge(a[0], a[0] + a[2], b[0], b[0] + b[2]), edge(a[1], a[1] + a[3], b[1], b[1] + b[3]))


def layout(width: int, height: int, marks: List[dict], label_height: float):
    size = font_size_for(label_height)
    boxes = [snap(m, width, height) for m in marks]
    labels: List[Rect] = []
    ascent = 0
    for index, mark in enumerate(marks):
        text = str(mark["label"])
        w, h, ascent = text_box("5" * len(text), size)
        x, y, bw, bh = boxes[index]
        others = [b for i, b in enumerate(boxes) if i != index] + labels
        spots = [(x, y - h), (x + bw - w, y - h), (x + bw, y), (x + bw, y + bh - h),
                 (x + bw - w, y + bh), (x, y + bh), (x - w, y + bh - h), (x - w, y)]
        best, best_score = None, math.inf
        for lx, ly in spots:
            if lx < 0 or ly < 0 or lx + w > width or ly + h > height:
                continue
            rect = (lx, ly, w, h)
            worst = -(width + height)
            for other in others:
                worst = max(worst, overlap(rect, other) - 0.0001 * corner_distance(rect, other))
            if worst < best_score:
                best, best_score = rect, worst
        if best is None:
            best = (min(max(x, 0), max(0, width - w)), min(max(y - h, 0), max(0, height - h)), w, h)
        labels.append(best)
    return size, ascent, boxes, labels


def draw_marks(image: Image.Image, marks: List[dict], crop: int, max_crops: int, minimums: dict) -> None:
    """Draws the marks into `image` (RGB) in place."""
    if not marks:
        return
    width, height = image.size
    label_height, outline = mark_sizing(width, height, crop, max_crops, minimums)
    size, ascent, boxes, labels = layout(width, height, marks, label_height)
    draw = ImageDraw.Draw(image)
    colors = [ImageColor.getrgb(m["color"]) if m.get("color") else MARK_COLOR for m in marks]
    for (x, y, w, h), color in zip(boxes, colors):
        tx, ty = min(outline, w), min(outline, h)
        for rx, ry, rw, rh in ((x, y, w, ty), (x, y + h - ty, w, ty), (x, y, tx, h), (x + w - tx, y, tx, h)):
            draw.rectangle((rx, ry, rx + rw - 1, ry + rh - 1), fill=color)
    for mark, (x, y, w, h), color in zip(marks, labels, colors):
        draw.rectangle((x, y, x + w - 1, y + h - 1), fill=color)
        draw.text((x, y + ascent), str(mark["label"]), fill=(255, 255, 255), font=font(size), anchor="ls")
