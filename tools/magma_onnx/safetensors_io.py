"""Reads and writes safetensors files with torch alone (Debian packages no `safetensors`).

The format (https://huggingface.co/docs/safetensors, "Format"): an unsigned little-endian 64-bit
header length N, then N bytes of UTF-8 JSON mapping each tensor name to
{"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the byte after the header),
plus an optional "__metadata__" object of strings; then the raw little-endian tensor bytes.
Tensors are read one at a time, so a multi-GB shard never sits in memory whole.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

import torch

DTYPES: Dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}
ITEMSIZE = {k: torch.empty((), dtype=v).element_size() for k, v in DTYPES.items()}
# A header larger than this is not a safetensors file (the reference implementation caps it too).
MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    pass


@dataclass(frozen=True)
class TensorEntry:
    file: Path
    name: str
    dtype: str  # the format's name: "BF16", "F16", ...
    shape: Tuple[int, ...]
    begin: int  # absolute byte offsets in the file
    end: int

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]


def read_header(path: Path) -> Tuple[Dict[str, TensorEntry], Dict[str, str]]:
    """Tensor entries by name and the metadata of one file; checks offsets against the file size."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise SafetensorsError(f"{path}: too short for a safetensors header")
        (n,) = struct.unpack("<Q", raw)
        if n > MAX_HEADER or 8 + n > size:
            raise SafetensorsError(f"{path}: header length {n} does not fit the file ({size} bytes)")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SafetensorsError(f"{path}: header is not JSON ({e})") from None
    metadata = header.pop("__metadata__", None) or {}
    entries: Dict[str, TensorEntry] = {}
    for name, info in header.items():
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in DTYPES:
            raise SafetensorsError(f"{path}: tensor {name} has unsupported dtype {dtype!r}")
        begin, end = 8 + n + int(offsets[0]), 8 + n + int(offsets[1])
        count = 1
        for d in shape:
            count *= int(d)
        if end - begin != count * ITEMSIZE[dtype] or end > size:
            raise SafetensorsError(f"{path}: tensor {name} has byte range {offsets} for {dtype} {shape}")
        entries[name] = TensorEntry(path, name, dtype, tuple(int(d) for d in shape), begin, end)
    return entries, metadata


def read_tensor(entry: TensorEntry) -> torch.Tensor:
    """The tensor in its stored dtype (a private copy, safe to modify)."""
    with open(entry.file, "rb") as f:
        f.seek(entry.begin)
        data = bytearray(f.read(entry.end - entry.begin))
    if not data:
        return torch.empty(entry.shape, dtype=entry.torch_dtype)
    return torch.frombuffer(data, dtype=entry.torch_dtype).reshape(entry.shape)


def write_file(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Optional[Mapping[str, str]] = None) -> None:
    """Writes tensors in name order, each in its own dtype, 8-byte aligned as the reference writer does."""
    header: Dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype not in NAMES:
            raise SafetensorsError(f"tensor {name}: dtype {t.dtype} cannot be stored")
        # Bytes through a same-width integer view: numpy has no bfloat16.
        raw = t.reshape(-1).view(torch.int16 if t.element_size() == 2 else t.dtype).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
