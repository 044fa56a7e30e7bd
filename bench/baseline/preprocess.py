"""Magma's "crop" preprocessing in PyTorch, settings from the bundle's preprocessor_config.json:
best-fit crop grid, bilinear stretch (align_corners=False, no antialiasing), CLIP normalisation,
S x S crops row-major. Stretching the 0-255 values and normalising after is the same linear map
as Magma's normalise-then-stretch, on the small output instead of the full image."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F

# The crop grid is the trainer's (the same LLaVA-NeXT best fit the TypeScript engine uses).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "tiny-model"))
from tiny_data import select_crop_grid  # noqa: E402


def image_to_crops(rgb: np.ndarray, crop: int, max_crops: int, mean, std) -> Tuple[torch.Tensor, int, int]:
    """HWC uint8 RGB -> crops [rows*cols, 3, S, S] float32, and (rows, cols)."""
    h, w, _ = rgb.shape
    rows, cols = select_crop_grid(w, h, crop, max_crops)
    # HWC floats viewed as NCHW (channels-last strides): one contiguous conversion, and the
    # channels-last bilinear kernel, instead of a strided copy of the whole image. The array is
    # PIL's read-only buffer; it is only read, so torch's warning about that is silenced.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        pixels = torch.from_numpy(rgb)
    x = pixels[None].float().permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(rows * crop, cols * crop), mode="bilinear", align_corners=False)[0]
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    x = (x / 255.0 - m) / s
    crops = x.reshape(3, rows, crop, cols, crop).permute(1, 3, 0, 2, 4).reshape(rows * cols, 3, crop, crop)
    return crops.contiguous(), rows, cols
