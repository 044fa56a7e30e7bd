"""Training-only auxiliary targets for magma-tiny-som (nothing here is exported).

A 1.3 M-parameter model trained for an hour on 2 CPU cores does not discover Set-of-Mark binding
from answer tokens alone: reading an 8-12 px digit and tying it to the box it labels is a long
credit-assignment path. These dense per-cell targets teach the vision trunk that directly, and a
probe on a middle decoder layer teaches the decoder where each visual token sits in the image.

Two-mark questions (compare, spatial) need two lookups and a comparison in four layers, and answer
tokens alone left them at the answer prior: the answering position's attention stayed diffuse
(1-3 % on each named mark). So the decoder also gets, in the middle layers: at each " #N" of a
question, mark N's colour, shape and centre (the lookup); at the answering position, attention
onto the named marks (the trainer's attention targets) and, for two marks, whether they share
colour or shape and which is further left or up (the comparison). "Which mark is the blue
square?" is the same lookup the other way round, from the image: the position that predicts the
mark's digit gets attention onto that shape's box and label cells. The heads are dropped at
export; the bundle is plain Magma.

Per feature cell (in crop order, row-major, as `encode_crops` returns them), class 0 = none:
  centre colour / shape : of the shape whose centre falls in the cell (marked or not)
  owner mark / colour / shape : of the marked shape whose box covers the cell centre, and at the
      cell holding that mark's label
  digit : the label number drawn in the cell (label text centre)
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F

COLORS = ["red", "green", "blue", "yellow", "purple"]
SHAPES = ["circle", "square", "triangle"]
MAX_MARK = 6

# (name, classes) in the order of the target channels and of the head's logits.
HEADS: List[Tuple[str, int]] = [
    ("centre colour", len(COLORS) + 1),
    ("centre shape", len(SHAPES) + 1),
    ("owner mark", MAX_MARK + 1),
    ("owner colour", len(COLORS) + 1),
    ("owner shape", len(SHAPES) + 1),
    ("digit", MAX_MARK + 1),
]
# Most cells are empty: class 0 counts for less so the few object cells drive the loss.
NONE_WEIGHT = 0.1


def _cell_span(start: float, length: float, scale: float, n: int) -> Tuple[int, int]:
    """Cells whose centre lies in [start, start + length) pixels; at least the cell holding its middle."""
    lo = max(0, math.ceil(start * scale - 0.5))
    hi = min(n, math.ceil((start + length) * scale - 0.5))
    if hi <= lo:
        lo = min(n - 1, int((start + length / 2) * scale))
        hi = lo + 1
    return lo, hi


def _mark_cells(drawn: dict, sy: float, sx: float, gh: int, gw: int) -> Tuple[Tuple[int, int, int, int], Tuple[int, int]]:
    """A drawn mark's box as cell ranges (y0, y1, x0, x1) and the cell (y, x) holding its label's centre."""
    box, text = drawn["box"], drawn["text"]
    y0, y1 = _cell_span(box["y"], box["height"], sy, gh)
    x0, x1 = _cell_span(box["x"], box["width"], sx, gw)
    ty = min(int((text["y"] + text["height"] / 2) * sy), gh - 1)
    tx = min(int((text["x"] + text["width"] / 2) * sx), gw - 1)
    return (y0, y1, x0, x1), (ty, tx)


def cell_targets(scenes: Sequence, rows: int, cols: int, g: int) -> torch.Tensor:
    """[len(scenes) * rows * cols, g * g, len(HEADS)] class targets, crops in row-major order."""
    gh, gw = rows * g, cols * g
    t = torch.zeros(len(scenes), len(HEADS), gh, gw, dtype=torch.long)
    for k, s in enumerate(scenes):
        sy, sx = gh / s.height, gw / s.width
        drawn = {m["label"]: m for m in s.marks}
        for o in s.objects:
            colour, shape = COLORS.index(o["color"]) + 1, SHAPES.index(o["shape"]) + 1
            y, x = min(int(o["cy"] * sy), gh - 1), min(int(o["cx"] * sx), gw - 1)
            t[k, 0, y, x], t[k, 1, y, x] = colour, shape
            mark = o["mark"]
            if not mark or mark not in drawn:
                continue
            (y0, y1, x0, x1), (ty, tx) = _mark_cells(drawn[mark], sy, sx, gh, gw)
            for ch, v in ((2, mark), (3, colour), (4, shape)):
                t[k, ch, y0:y1, x0:x1] = v
                t[k, ch, ty, tx] = v
            t[k, 5, ty, tx] = mark
    t = t.view(len(scenes), len(HEADS), rows, g, cols, g).permute(0, 2, 4, 3, 5, 1)
    return t.reshape(len(scenes) * rows * cols, g * g, len(HEADS))


def mark_token_indices(scene, mark: int, rows: int, cols: int, g: int) -> List[int]:
    """Indices, in Magma's stitched visual sequence (see `visual_positions`), of the cells marked
    shape `mark`'s box covers and of the cell holding its label: where a "find" answer is read."""
    gh, gw = rows * g, cols * g
    drawn = next(m for m in scene.marks if m["label"] == mark)
    (y0, y1, x0, x1), label = _mark_cells(drawn, gh / scene.height, gw / scene.width, gh, gw)
    cells = {(y, x) for y in range(y0, y1) for x in range(x0, x1)} | {label}
    return sorted(y * (gw + 1) + x for y, x in cells)


def new_cell_head(hidden: int) -> torch.nn.Linear:
    return torch.nn.Linear(hidden, sum(n for _, n in HEADS))


def cell_loss(head: torch.nn.Module, feats: torch.Tensor, targets: torch.Tensor) -> Tuple[torch.Tensor, List[float]]:
    """Sum of the heads' weighted cross-entropies, and each head's accuracy on its non-empty cells."""
    logits = head(feats)
    loss, start, accs = feats.new_zeros(()), 0, []
    for j, (_, n) in enumerate(HEADS):
        lg, tg = logits[..., start : start + n], targets[..., j]
        weight = torch.ones(n)
        weight[0] = NONE_WEIGHT
        loss = loss + F.cross_entropy(lg.reshape(-1, n), tg.reshape(-1), weight=weight)
        hit = tg > 0
        accs.append((lg.argmax(-1)[hit] == tg[hit]).float().mean().item() if hit.any() else float("nan"))
        start += n
    return loss, accs


def visual_positions(rows: int, cols: int, g: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """For Magma's stitched sequence (rows*g lines of cols*g cells + a separator): which tokens are
    cells, and each cell's centre (x, y) as a fraction of the image."""
    gh, gw = rows * g, cols * g
    is_cell = torch.ones(gh, gw + 1, dtype=torch.bool)
    is_cell[:, gw] = False
    ys, xs = torch.meshgrid((torch.arange(gh) + 0.5) / gh, (torch.arange(gw) + 0.5) / gw, indexing="ij")
    return is_cell.reshape(-1), torch.stack([xs, ys], dim=-1).reshape(-1, 2)


# The mark readout's outputs: colour logits, shape logits, centre (x, y) as fractions of the image.
READOUT_SIZE = len(COLORS) + len(SHAPES) + 2


def mark_readout_targets(scene, suffix_ids: Sequence[int], mark_ref_ids: Sequence[Sequence[int]]) -> List[Tuple[int, int, int, float, float]]:
    """For each " #N" in a question's ids, in question order: (index of its last token, colour, shape,
    cx / width, cy / height) of the marked shape N (0-based classes)."""
    by_mark = {o["mark"]: o for o in scene.objects if o["mark"]}
    out = []
    for mark, ref in enumerate(mark_ref_ids, start=1):
        o = by_mark.get(mark)
        if o is None:
            continue
        ref, n = list(ref), len(ref)
        for i in range(len(suffix_ids) - n + 1):
            if list(suffix_ids[i : i + n]) == ref:
                out.append((i + n - 1, COLORS.index(o["color"]), SHAPES.index(o["shape"]),
                            o["cx"] / scene.width, o["cy"] / scene.height))
    return sorted(out)


# The pair readout's outputs: same colour, same shape, x_a < x_b, y_a < y_b (logits); x_a - x_b, y_a - y_b.
PAIR_SIZE = 6


def pair_readout_target(marks: Sequence[Tuple[int, int, int, float, float]]) -> Tuple[float, ...]:
    """For a question naming two marks a then b (mark_readout_targets' output): what the position
    that answers it must know about the pair."""
    (_, ca, sa, xa, ya), (_, cb, sb, xb, yb) = marks
    return (float(ca == cb), float(sa == sb), float(xa < xb), float(ya < yb), xa - xb, ya - yb)


def pair_loss(head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> Tuple[torch.Tensor, List[float]]:
    """hidden [n, H] at the answering position; targets [n, PAIR_SIZE]. Returns the loss and the four
    yes/no accuracies."""
    out = head(hidden)
    loss = F.binary_cross_entropy_with_logits(out[:, :4], targets[:, :4]) + 10.0 * F.mse_loss(out[:, 4:], targets[:, 4:])
    accs = ((out[:, :4] > 0).float() == targets[:, :4]).float().mean(0).tolist()
    return loss, accs


def readout_loss(head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> Tuple[torch.Tensor, List[float]]:
    """hidden [n, H] at " #N" positions; targets [n, 4] = colour, shape, x, y. Returns the loss and
    [colour accuracy, shape accuracy, mean |x, y error|]."""
    out = head(hidden)
    nc, ns = len(COLORS), len(SHAPES)
    colour, shape, xy = out[:, :nc], out[:, nc : nc + ns], out[:, nc + ns :]
    loss = (
        F.cross_entropy(colour, targets[:, 0].long())
        + F.cross_entropy(shape, targets[:, 1].long())
        + 10.0 * F.mse_loss(xy, targets[:, 2:])
    )
    stats = [
        (colour.argmax(-1) == targets[:, 0].long()).float().mean().item(),
        (shape.argmax(-1) == targets[:, 1].long()).float().mean().item(),
        (xy - targets[:, 2:]).abs().mean().item(),
    ]
    return loss, stats
