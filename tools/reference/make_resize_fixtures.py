#!/usr/bin/python3
"""Reference fixtures for the engine's image processor and feature stitching.

Runs Magma's own preprocessing steps in PyTorch (ToTensor /255, CLIP Normalize, then
F.interpolate(mode='bilinear', align_corners=False)) on small random images, and Magma's
crop-feature assembly (view/permute/flatten plus row separator), and writes the inputs and
outputs to packages/server/test/fixtures/resize-reference.json.

Usage: /usr/bin/python3 tools/reference/make_resize_fixtures.py
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]

# (in_w, in_h, out_w, out_h): up and down scaling, non-integer ratios, mixed directions, 1-pixel edges.
RESIZE_CASES = [
    (7, 5, 16, 12),
    (37, 23, 10, 14),
    (20, 20, 8, 8),
    (9, 13, 24, 8),
    (1, 3, 4, 5),
    (33, 17, 32, 16),
    (12, 30, 12, 30),
]

# (rows, cols, g, hidden)
STITCH_CASES = [(1, 1, 2, 3), (1, 2, 2, 3), (2, 2, 3, 2), (3, 1, 2, 4)]

OUT_PATH = os.path.join(
    os.path.dirname(__file__), '..', '..', 'packages', 'server', 'test', 'fixtures', 'resize-reference.json'
)


def magma_resize(pixels_hwc, out_w, out_h):
    """ToTensor, Normalize, interpolate: the order Magma's image processor uses."""
    img = torch.from_numpy(pixels_hwc).permute(2, 0, 1).float() / 255.0
    mean = torch.tensor(MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(STD, dtype=torch.float32)[:, None, None]
    img = (img - mean) / std
    out = F.interpolate(img[None], size=(out_h, out_w), mode='bilinear', align_corners=False)
    return out[0]


def select_best_resolution(original_size, possible_resolutions):
    """LLaVA-NeXT's select_best_resolution, as Magma's image processor calls it."""
    original_width, original_height = original_size
    best_fit = None
    max_effective_resolution = 0
    min_wasted_resolution = float('inf')
    for width, height in possible_resolutions:
        scale = min(width / original_width, height / original_height)
        downscaled_width, downscaled_height = int(original_width * scale), int(original_height * scale)
        effective_resolution = min(downscaled_width * downscaled_height, original_width * original_height)
        wasted_resolution = (width * height) - effective_resolution
        if effective_resolution > max_effective_resolution or (
            effective_resolution == max_effective_resolution and wasted_resolution < min_wasted_resolution
        ):
            max_effective_resolution = effective_resolution
            min_wasted_resolution = wasted_resolution
            best_fit = (width, height)
    return best_fit


def magma_grid(width, height, crop, num_crops):
    """Magma's candidates (i*S, j*S), i = 1..num_crops, j = 1..num_crops // i; returns (rows, cols)."""
    candidates = [(i * crop, j * crop) for i in range(1, num_crops + 1) for j in range(1, num_crops // i + 1)]
    grid_w, grid_h = select_best_resolution((width, height), candidates)
    return grid_h // crop, grid_w // crop


def magma_stitch(cells, separator, rows, cols, g):
    """Magma's crop branch: [N, g*g, D] -> [rows*g, cols*g, D], then a separator after every row."""
    hidden = cells.shape[-1]
    grid = cells.view(rows, cols, g, g, hidden).permute(0, 2, 1, 3, 4).reshape(rows * g, cols * g, hidden)
    sep = separator.view(1, 1, hidden).expand(rows * g, 1, hidden)
    return torch.cat([grid, sep], dim=1).reshape(-1, hidden)


def main():
    rng = np.random.default_rng(20261121)
    resize = []
    for in_w, in_h, out_w, out_h in RESIZE_CASES:
        pixels = rng.integers(0, 256, size=(in_h, in_w, 3), dtype=np.uint8)
        out = magma_resize(pixels, out_w, out_h)
        resize.append(
            {
                'width': in_w,
                'height': in_h,
                'outWidth': out_w,
                'outHeight': out_h,
                'pixels': pixels.reshape(-1).tolist(),
                'expected': [round(float(v), 7) for v in out.reshape(-1).tolist()],
            }
        )
    stitch = []
    for rows, cols, g, hidden in STITCH_CASES:
        cells = torch.arange(rows * cols * g * g * hidden, dtype=torch.float32).view(rows * cols, g * g, hidden)
        separator = -torch.arange(1, hidden + 1, dtype=torch.float32)
        out = magma_stitch(cells, separator, rows, cols, g)
        stitch.append(
            {
                'rows': rows,
                'cols': cols,
                'g': g,
                'hidden': hidden,
                'cells': cells.reshape(-1).tolist(),
                'separator': separator.tolist(),
                'expected': out.reshape(-1).tolist(),
            }
        )
    grids = []
    for _ in range(60):
        width, height = (int(v) for v in rng.integers(16, 4000, size=2))
        crop = int(rng.choice([128, 336, 512]))
        num_crops = int(rng.choice([1, 2, 4, 6, 9]))
        rows, cols = magma_grid(width, height, crop, num_crops)
        grids.append({'width': width, 'height': height, 'crop': crop, 'numCrops': num_crops, 'rows': rows, 'cols': cols})
    fixture = {
        'generator': 'tools/reference/make_resize_fixtures.py',
        'torch': torch.__version__,
        'mean': MEAN,
        'std': STD,
        'resize': resize,
        'stitch': stitch,
        'grids': grids,
    }
    with open(OUT_PATH, 'w') as f:
        json.dump(fixture, f, separators=(',', ':'))
    print('wrote', os.path.normpath(OUT_PATH), os.path.getsize(OUT_PATH), 'bytes')


if __name__ == '__main__':
    main()
