"""Train magma-tiny-som on the data from generate-data.ts (CPU, seeded, time-boxed: 110 minutes by default).

  MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296 \
  OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 /usr/bin/python3 tools/tiny-model/train.py \
      --data tools/tiny-model/data --run tools/tiny-model/runs/som --vision-minutes 22 --minutes 88 --seed 5

(The malloc thresholds keep glibc from returning and re-faulting the large activation buffers
every step: 0.72 s against 1.07 s per stage-1 step in one measurement here.)

Interrupted? Continue from the last checkpoint (weights and aux heads; the LR schedule restarts
over the minutes given): --resume <run>/last.pt --vision-minutes 0 --minutes <what is left>.
The data's scene seeds must not overlap the eval's (checked at start).

Stage 1 (--vision-minutes) trains the vision trunk and projector alone on dense per-cell targets
(aux_targets.py): read each mark's digit, tie it to its box, see each shape's colour and kind.
Stage 2 (--minutes) trains everything on the answers, keeping those targets and adding decoder
targets: a position probe on the visual tokens, a readout of mark N where a question names it (the
digit of "#N", "mark N", "object N"),
and at the position that answers, attention onto the named marks (or, for "find", onto the
shape's cells) and what it must know about a pair of them. The auxiliary heads are not exported.

Each stage-2 step takes a batch of scenes with the same crop grid, runs the vision tower once per crop
and the decoder once over the shared prompt prefix (system prompt + image), then runs K question
suffixes per scene on top of that prefix's KV cache. That is exactly the same computation as K
separate prompts (causal attention: the prefix never sees the questions) at a fraction of the cost.
The loss is on answer tokens only (answer + <|eot_id|>).

Held-out "exact match" is computed teacher-forced: greedy decoding reproduces an answer exactly
iff the argmax at every answer position (eot included) is the target token.
Checkpoints: <run>/last.pt every --save-every steps, <run>/best.pt at the best held-out accuracy.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import runpy
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from magma_onnx.model import MagmaTiny, MagmaTinyConfig, VisionConfig  # noqa: E402
from aux_targets import (  # noqa: E402
    HEADS,
    PAIR_SIZE,
    READOUT_SIZE,
    cell_loss,
    cell_targets,
    mark_readout_targets,
    mark_token_indices,
    new_cell_head,
    pair_loss,
    pair_readout_target,
    readout_loss,
    visual_positions,
)
from tiny_data import QA, SceneSet, image_to_crops  # noqa: E402


def vision_tokens(model: MagmaTiny, crops: torch.Tensor, b: int, rows: int, cols: int) -> torch.Tensor:
    """Crops of b images (same grid) -> Magma's stitched visual tokens [b, rows*g*(cols*g+1), H]."""
    return stitch_batch(model, model.encode_crops(crops), b, rows, cols)


def stitch_batch(model: MagmaTiny, feats: torch.Tensor, b: int, rows: int, cols: int) -> torch.Tensor:
    """Projected cells [b*rows*cols, g*g, H] -> stitched grid rows, each followed by the row separator."""
    g = int(round(math.sqrt(feats.shape[1])))
    h = feats.shape[-1]
    x = feats.view(b, rows, cols, g, g, h).permute(0, 1, 3, 2, 4, 5).reshape(b, rows * g, cols * g, h)
    sep = model.multi_modal_projector.row_seperator.reshape(1, 1, 1, h).expand(b, rows * g, 1, h)
    return torch.cat([x, sep], dim=2).reshape(b, -1, h)


def prefix_embeds(model: MagmaTiny, prefix_ids: List[int], image_id: int, vis: torch.Tensor) -> torch.Tensor:
    """Embeds the shared prompt prefix with its single <image> replaced by the visual tokens."""
    pos = prefix_ids.index(image_id)
    emb = model.language_model.model.embed_tokens
    ids = torch.tensor(prefix_ids)
    b = vis.shape[0]
    before = emb(ids[:pos]).unsqueeze(0).expand(b, -1, -1)
    after = emb(ids[pos + 1 :]).unsqueeze(0).expand(b, -1, -1)
    return torch.cat([before, vis, after], dim=1)


class AuxHeads(torch.nn.Module):
    """Training-only heads and targets (see aux_targets.py):
    - per-cell classes on the vision features;
    - the (x, y) of each visual token from decoder layer `pos_layer`'s output;
    - at each question's " #N": mark N's colour, shape and centre, from each of `readout_layers`;
    - at the position that answers a question naming marks, on each of `attend_layers`: head 0
      attends to the named marks' " #N", heads 1 and 2 to the first and the second (two-mark
      questions), and for two-mark questions what that position must know about the pair, from
      the same layers' outputs;
    - for "find", at the position that predicts the digit of "Mark: N", on the same layers: head 0
      attends to mark N's box and label cells."""

    def __init__(
        self, hidden: int, pos_layer: int, readout_layers: Sequence[int], attend_layers: Sequence[int], weight: float
    ):
        super().__init__()
        self.cells = new_cell_head(hidden)
        self.pos = torch.nn.Linear(hidden, 2)
        self.pos_layer = pos_layer
        self.readout = torch.nn.ModuleList([torch.nn.Linear(hidden, READOUT_SIZE) for _ in readout_layers])
        self.readout_layers = list(readout_layers)
        self.pair = torch.nn.ModuleList([torch.nn.Linear(hidden, PAIR_SIZE) for _ in attend_layers])
        self.attend_layers = list(attend_layers)
        self.stats: Dict[str, float] = {}  # the last batch's, for the log
        self.weight = weight  # of the auxiliary losses against the answer loss (stage 2)


def crops_of(data: SceneSet, scene_ids: Sequence[int]) -> Tuple[torch.Tensor, int, int]:
    meta = data.meta
    crops, grid = [], None
    for i in scene_ids:
        c, rows, cols = image_to_crops(data.image(i), meta["crop_size"], meta["max_crops"])
        assert grid in (None, (rows, cols)), "a batch must share one crop grid"
        grid = (rows, cols)
        crops.append(c)
    return torch.cat(crops), grid[0], grid[1]


def scenes_cell_loss(
    aux: AuxHeads, data: SceneSet, scene_ids: Sequence[int], feats: torch.Tensor, rows: int, cols: int
) -> Tuple[torch.Tensor, List[float]]:
    """The per-cell loss and accuracies of these scenes' projected vision features."""
    g = int(round(math.sqrt(feats.shape[1])))
    return cell_loss(aux.cells, feats, cell_targets([data.scenes[i] for i in scene_ids], rows, cols, g))


def vision_batch(model: MagmaTiny, data: SceneSet, scene_ids: Sequence[int], aux: AuxHeads) -> Tuple[torch.Tensor, List[float]]:
    """Stage 1: the vision trunk and projector alone, on the per-cell targets."""
    crops, rows, cols = crops_of(data, scene_ids)
    return scenes_cell_loss(aux, data, scene_ids, model.encode_crops(crops), rows, cols)


def question_aux_loss(
    aux: AuxHeads,
    taps: List[torch.Tensor],
    attn: List[torch.Tensor],
    readouts: List[tuple],
    answering: List[Tuple[int, int, list, List[int]]],
) -> torch.Tensor:
    """The mark readout at every " #N"; attention targets at the answering positions (each with the
    attention columns head 0 must look at) and the pair target at those of two-mark questions."""
    loss = taps[0].new_zeros(())
    if readouts:
        at = torch.tensor([r[:2] for r in readouts])
        want = torch.tensor([r[2:] for r in readouts], dtype=torch.float32)
        for layer, head in zip(aux.readout_layers, aux.readout):
            r_loss, r_stats = readout_loss(head, taps[layer][at[:, 0], at[:, 1]], want)
            loss = loss + r_loss
        aux.stats.update(zip(("readout colour", "readout shape", "readout xy-err"), r_stats))

    q = torch.tensor([a[0] for a in answering])
    t = torch.tensor([a[1] for a in answering])
    # (answering row, head, attention columns that head must attend to): head 0 onto everything the
    # answer is read from; for two named marks, heads 1 and 2 onto the first and the second.
    wanted = []
    for i, (_, _, marks, columns) in enumerate(answering):
        wanted.append((i, 0, columns))
        if len(marks) == 2:
            wanted += [(i, 1, columns[:1]), (i, 2, columns[1:])]
    rows = torch.tensor([w[0] for w in wanted])
    heads = torch.tensor([w[1] for w in wanted])
    on_target = torch.zeros(len(wanted), attn[0].shape[-1])
    for j, (_, _, columns) in enumerate(wanted):
        on_target[j, columns] = 1.0
    finds = torch.tensor([not answering[w[0]][2] for w in wanted])
    for layer in aux.attend_layers:
        mass = (attn[layer][q[rows], heads, t[rows]] * on_target).sum(-1)
        loss = loss - torch.log(mass + 1e-6).mean()
        aux.stats[f"attn mass L{layer}"] = mass[~finds].mean().item() if (~finds).any() else float("nan")
        aux.stats[f"find mass L{layer}"] = mass[finds].mean().item() if finds.any() else float("nan")
    two = [i for i, a in enumerate(answering) if len(a[2]) == 2]
    if two:
        qq, tt = q[two], t[two]
        want = torch.tensor([pair_readout_target(answering[i][2]) for i in two], dtype=torch.float32)
        for layer, head in zip(aux.attend_layers, aux.pair):
            p_loss, p_stats = pair_loss(head, taps[layer][qq, tt], want)
            loss = loss + p_loss
        aux.stats.update(zip(("pair same-colour", "pair same-shape", "pair x<", "pair y<"), p_stats))
    return loss


def run_batch(
    model: MagmaTiny,
    data: SceneSet,
    scene_ids: Sequence[int],
    qa_lists: Sequence[List[QA]],
    aux: AuxHeads = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Loss over answer tokens (plus the auxiliary losses if `aux`) and per-question exact match (teacher-forced)."""
    meta = data.meta
    crops, rows, cols = crops_of(data, scene_ids)
    b = len(scene_ids)
    feats = model.encode_crops(crops)
    vis = stitch_batch(model, feats, b, rows, cols)
    pre = prefix_embeds(model, meta["prefix_ids"], meta["image_token_id"], vis)
    lp = pre.shape[1]
    g = int(round(math.sqrt(feats.shape[1])))  # feature cells per crop side
    first = meta["prefix_ids"].index(meta["image_token_id"])  # where the visual tokens start
    taps: List[torch.Tensor] = [] if aux is not None else None  # the position probe's input
    _, presents = model.decode(pre, torch.ones(b, lp, dtype=torch.long), torch.arange(lp).expand(b, lp), taps=taps)
    extra = feats.new_zeros(())
    if aux is not None:
        extra, _ = scenes_cell_loss(aux, data, scene_ids, feats, rows, cols)
        is_cell, xy = visual_positions(rows, cols, g)
        hid = taps[aux.pos_layer][:, first : first + is_cell.numel()][:, is_cell]
        extra = extra + 10.0 * F.mse_loss(aux.pos(hid), xy.expand(b, -1, -1))

    owner, inputs, targets, readouts, answering = [], [], [], [], []
    for k, qas in enumerate(qa_lists):
        for qa in qas:
            seq = qa.suffix_ids + qa.answer_ids
            if aux is not None:
                scene = data.scenes[scene_ids[k]]
                marks = mark_readout_targets(scene, qa.suffix_ids, meta["mark_ref_ids"])
                readouts.extend((len(inputs),) + r for r in marks)
                if marks:
                    # The last question token answers; it looks at the named marks' " #N".
                    answering.append((len(inputs), len(qa.suffix_ids) - 1, marks, [lp + m[0] for m in marks]))
                elif qa.type == "find":
                    # "Mark: N<eot>": the position before N predicts it, from mark N's cells.
                    assert qa.answer_ids[-1] == meta["eot_id"], qa.answer
                    mark = int(qa.answer.rsplit(" ", 1)[1])
                    cells = [first + c for c in mark_token_indices(scene, mark, rows, cols, g)]
                    answering.append((len(inputs), len(seq) - 3, [], cells))
            owner.append(k)
            inputs.append(seq[:-1])
            targets.append([-100] * (len(qa.suffix_ids) - 1) + qa.answer_ids)
    n = len(inputs)
    ls = max(len(x) for x in inputs)
    inp = torch.zeros(n, ls, dtype=torch.long)
    tgt = torch.full((n, ls), -100, dtype=torch.long)
    for j, (x, t) in enumerate(zip(inputs, targets)):
        inp[j, : len(x)] = torch.tensor(x)
        tgt[j, : len(t)] = torch.tensor(t)
    idx = torch.tensor(owner)
    past = [(k.index_select(0, idx), v.index_select(0, idx)) for k, v in presents]
    emb = model.language_model.model.embed_tokens(inp)
    # Right padding is harmless: causal attention keeps real tokens from seeing it.
    mask = torch.ones(n, lp + ls, dtype=torch.long)
    pos = (lp + torch.arange(ls)).expand(n, ls)
    q_taps: List[torch.Tensor] = [] if answering else None
    a_taps: List[torch.Tensor] = [] if answering else None
    hidden, _ = model.decode(emb, mask, pos, past, taps=q_taps, attn_taps=a_taps)
    if answering:
        extra = extra + question_aux_loss(aux, q_taps, a_taps, readouts, answering)
    sel = tgt != -100
    logits = model.language_model.lm_head(hidden[sel])
    loss = F.cross_entropy(logits, tgt[sel]) + (aux.weight * extra if aux is not None else 0.0)
    right = (logits.argmax(-1) == tgt[sel]).long()
    wrong_per_q = torch.zeros(n, dtype=torch.long).index_add_(0, sel.nonzero()[:, 0], 1 - right)
    return loss, wrong_per_q == 0


@torch.no_grad()
def evaluate(model: MagmaTiny, data: SceneSet, max_scenes: int, batch: int) -> Dict[str, float]:
    model.eval()
    hits: Dict[str, List[int]] = defaultdict(list)
    for (rows, cols), ids in sorted(data.by_grid().items()):
        ids = ids[: max(1, max_scenes * len(ids) // len(data))]
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            qa_lists = [data.scenes[i].qas for i in chunk]
            _, exact = run_batch(model, data, chunk, qa_lists)
            flat = [qa for qas in qa_lists for qa in qas]
            for qa, ok in zip(flat, exact.tolist()):
                hits[qa.type].append(ok)
                hits[f"grid {rows}x{cols}"].append(ok)
                hits["overall"].append(ok)
    model.train()
    return {k: sum(v) / len(v) for k, v in hits.items()}


def lr_at(progress: float, step: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


# The eval's scenes (tools/tiny-model/splits.ts, eval-scenes.ts): split offset 90,000,000 from the
# data seed's base; `npm run eval` uses seed 1 and indexes below EVAL_INDEXES (its robustness sets
# included). Training or held-out scenes from that range would make the eval measure training data.
EVAL_SPLIT_OFFSET = 90_000_000
EVAL_SEED = 1
EVAL_INDEXES = 200_000


def check_disjoint_from_eval(meta: dict) -> None:
    """Refuses data whose scene seeds overlap the eval's (e.g. --seed 91 reproduces the eval stream)."""
    ranges = meta.get("seed_ranges")
    if ranges is None:
        raise SystemExit("data/meta.json has no seed_ranges: regenerate the data with generate-data.ts")
    base = (EVAL_SEED * 1_000_003 + EVAL_SPLIT_OFFSET) % 2**32
    eval_range = (base, base + EVAL_INDEXES - 1)
    for split, (first, last) in ranges.items():
        if first <= eval_range[1] and eval_range[0] <= last:
            raise SystemExit(
                f"the {split} scenes (seeds {first}..{last}) overlap the eval's ({eval_range[0]}..{eval_range[1]}): "
                "pick another --seed for generate-data.ts"
            )


def save(model: MagmaTiny, aux: AuxHeads, path: Path, extra: dict) -> None:
    tmp = path.with_suffix(".tmp")
    state = {"config": model.cfg.to_dict(), "model": model.state_dict(), **SAVE_EXTRA, **extra}
    if aux is not None:
        state["aux"] = aux.state_dict()
    torch.save(state, str(tmp))
    os.replace(tmp, path)


def pick_questions(rng: random.Random, qas: List[QA], k: int, type_weights: Dict[str, float]) -> List[QA]:
    """k of a scene's questions without replacement, each type drawn in proportion to its weight (default 1)."""
    keyed = sorted(qas, key=lambda qa: rng.random() ** (1.0 / type_weights.get(qa.type, 1.0)), reverse=True)
    return keyed[:k]


def optimizer(modules: Sequence[torch.nn.Module], lr: float) -> torch.optim.Optimizer:
    named = [(n, p) for m in modules for n, p in m.named_parameters()]
    decays = lambda n, p: p.ndim >= 2 and "row_seperator" not in n  # noqa: E731
    return torch.optim.AdamW(
        [
            {"params": [p for n, p in named if decays(n, p)], "weight_decay": 0.05},
            {"params": [p for n, p in named if not decays(n, p)], "weight_decay": 0.0},
        ],
        lr=lr,
        betas=(0.9, 0.95),
    )


class GridSampler:
    """Batches of scenes that share a crop grid, grids drawn in proportion to their share of the data."""

    def __init__(self, data: SceneSet, seed: int, grid_weights: Dict[str, float] = {}):
        self.groups = data.by_grid()
        self.keys = sorted(self.groups)
        # A key is the grid's shape (rows, cols); --grid-weight names it "RxC".
        self.weights = [len(self.groups[k]) * grid_weights.get("x".join(map(str, k)), 1.0) for k in self.keys]
        self.orders = {k: [] for k in self.keys}
        self.rng = random.Random(seed)

    def batch(self, size: int) -> Tuple[tuple, List[int]]:
        key = self.rng.choices(self.keys, self.weights)[0]
        if len(self.orders[key]) < size:
            fresh = self.groups[key][:]
            self.rng.shuffle(fresh)
            self.orders[key].extend(fresh)
        return key, [self.orders[key].pop() for _ in range(size)]


@torch.no_grad()
def evaluate_cells(model: MagmaTiny, aux: AuxHeads, data: SceneSet, max_scenes: int, batch: int) -> List[float]:
    model.eval()
    sums, counts = None, 0
    for _, ids in sorted(data.by_grid().items()):
        ids = ids[: max(1, max_scenes * len(ids) // len(data))]
        for start in range(0, len(ids), batch):
            _, accs = vision_batch(model, data, ids[start : start + batch], aux)
            sums = accs if sums is None else [x + y for x, y in zip(sums, accs)]
            counts += 1
    model.train()
    return [x / counts for x in sums]


def train_vision(model: MagmaTiny, aux: AuxHeads, train: SceneSet, held: SceneSet, args) -> None:
    """Stage 1: vision trunk + projector on the per-cell targets only (no decoder: ~10x cheaper per scene)."""
    modules = [model.vision_tower, model.multi_modal_projector, aux.cells]
    opt = optimizer(modules, args.vision_lr)
    sampler = GridSampler(train, args.seed + 1)
    start, budget, step = time.time(), args.vision_minutes * 60, 0
    names = " ".join(n.replace(" ", "-") for n, _ in HEADS)
    while time.time() - start < budget:
        lr = lr_at((time.time() - start) / budget, step, args.vision_lr, args.warmup)
        for group in opt.param_groups:
            group["lr"] = lr
        key, chunk = sampler.batch(args.vision_batch)
        loss, accs = vision_batch(model, train, chunk, aux)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 25 == 0:
            print(f"vision step {step} t {time.time() - start:.0f}s grid {key[0]}x{key[1]} loss {loss.item():.4f} "
                  f"acc [{names}] " + " ".join(f"{a:.2f}" for a in accs), flush=True)
        if step % (args.eval_every * 2) == 0:
            accs = evaluate_cells(model, aux, held, args.eval_scenes, args.vision_batch)
            print(f"vision eval step {step}: " + " ".join(f"{n}={a:.3f}" for (n, _), a in zip(HEADS, accs)), flush=True)
    accs = evaluate_cells(model, aux, held, len(held), args.vision_batch)
    print(f"vision done: {step} steps; held-out " + " ".join(f"{n}={a:.3f}" for (n, _), a in zip(HEADS, accs)), flush=True)
    save(model, aux, args.run / "vision.pt", {"step": step, "vision_heldout": accs})


def draw_batch(sampler: GridSampler, train: SceneSet, type_weights, args):
    """A stage-2 batch: its grid, its scenes and the questions asked of each."""
    key, chunk = sampler.batch(args.batch)
    qa_lists = [pick_questions(sampler.rng, train.scenes[i].qas, args.questions, type_weights) for i in chunk]
    return key, chunk, qa_lists


def warm_heads(model: MagmaTiny, aux: AuxHeads, train: SceneSet, sampler: GridSampler, type_weights, args) -> None:
    """
    Trains only the aux heads, the model frozen. A resumed run whose checkpoint has no aux heads
    starts them fresh, and their first, random gradients pull the model's answers down (the
    fifth run, 2026-12-03: batch exact match 0.96 -> 0.85 in 200 steps); warmed first, what they
    send into the trunk is about shapes and marks from the first joint step.
    """
    model.requires_grad_(False)
    opt = optimizer([aux], args.lr * 5)
    start = time.time()
    for step in range(1, args.head_warmup + 1):
        _, chunk, qa_lists = draw_batch(sampler, train, type_weights, args)
        loss, _ = run_batch(model, train, chunk, qa_lists, aux)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 0:
            print(f"head step {step} t {time.time() - start:.0f}s loss {loss.item():.4f}"
                  + "".join(f" | {k} {v:.2f}" for k, v in aux.stats.items()), flush=True)
    model.requires_grad_(True)


SAVE_EXTRA: Dict[str, object] = {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=HERE / "data")
    ap.add_argument("--run", type=Path, default=HERE / "runs" / "main")
    ap.add_argument("--vision-minutes", type=float, default=22.0, help="stage 1 budget (0 skips it)")
    ap.add_argument("--minutes", type=float, default=88.0, help="stage 2 budget; the LR schedule follows it")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--vision-batch", type=int, default=24, help="scenes per stage-1 step")
    ap.add_argument("--vision-lr", type=float, default=3e-3)
    ap.add_argument("--batch", type=int, default=12, help="scenes per stage-2 step")
    ap.add_argument("--questions", type=int, default=6, help="questions per scene per step")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--ls-init", type=float, default=1e-2, help="ConvNeXt layer-scale init (timm uses 1e-6)")
    ap.add_argument("--pos-layer", type=int, default=1, help="decoder layer whose output the position probe reads")
    ap.add_argument("--readout-layers", default="1,2", help="decoder layers whose output the \" #N\" readout reads")
    ap.add_argument("--aux-weight", type=float, default=0.25, help="stage 2: auxiliary losses' weight against the answer loss")
    ap.add_argument("--attend-layers", default="2,3", help="decoder layers with attention and pair targets at the answering position")
    ap.add_argument("--eval-every", type=int, default=150)
    ap.add_argument("--eval-scenes", type=int, default=200)
    ap.add_argument("--save-every", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", type=Path, default=None, help="start from this checkpoint (weights and aux heads)")
    ap.add_argument("--type-weight", action="append", default=None, metavar="TYPE=W",
                    help="sample this question type W times as often (repeatable; default compare=2 spatial=2 find=3 count=2)")
    ap.add_argument("--grid-weight", action="append", default=[], metavar="RxC=W",
                    help="stage 2: draw batches of this crop grid W times as often as its share of the data (repeatable)")
    ap.add_argument("--no-aux", action="store_true", help="answer-token loss only (stage 1 needs the aux heads)")
    ap.add_argument("--head-warmup", type=int, default=0, metavar="STEPS",
                    help="stage 2 of a resumed run: first train only the aux heads this many steps, the model frozen")
    args = ap.parse_args()
    # Checked before the data and checkpoint load (and a stage 1 of many minutes).
    if args.no_aux and args.vision_minutes > 0:
        raise SystemExit("stage 1 trains on the aux targets: drop --no-aux or pass --vision-minutes 0")
    if args.no_aux and args.head_warmup > 0:
        raise SystemExit("--head-warmup trains the aux heads: drop --no-aux")

    args.type_weight = args.type_weight or ["compare=2", "spatial=2", "find=3", "count=2"]
    type_weights = {t: float(w) for t, w in (x.split("=") for x in args.type_weight)}
    grid_weights = {g: float(w) for g, w in (x.split("=") for x in args.grid_weight)}
    torch.set_num_threads(args.threads)
    # The run's budget is in minutes: on Debian's reference BLAS they buy about an eighth of the steps.
    for problem in runpy.run_path(str(HERE.parent / "python-env-check.py"))["missing"](["torch"]):
        print(f"warning: missing {problem} (bash tools/setup-python.sh)", file=sys.stderr)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    args.run.mkdir(parents=True, exist_ok=True)
    train, held = SceneSet(args.data, "train"), SceneSet(args.data, "heldout")
    check_disjoint_from_eval(train.meta)
    model = MagmaTiny(MagmaTinyConfig(vision=VisionConfig(layer_scale_init=args.ls_init)))
    aux = None if args.no_aux else AuxHeads(
        model.cfg.text.hidden_size,
        args.pos_layer,
        [int(x) for x in args.readout_layers.split(",")],
        [int(x) for x in args.attend_layers.split(",")],
        args.aux_weight,
    )
    if aux is not None and not (train.has_objects and train.scenes[0].marks and "mark_ref_ids" in train.meta):
        raise SystemExit("the aux heads need data with objects and marks (regenerate with generate-data.ts)")
    if args.resume:
        ckpt = torch.load(str(args.resume), map_location="cpu")
        model.load_state_dict(ckpt["model"])
        if aux is not None and "aux" in ckpt:
            missing = aux.load_state_dict(ckpt["aux"], strict=False).missing_keys
            if missing:
                print(f"resume: new aux heads start fresh: {missing}")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params {n_params / 1e6:.2f} M; train {len(train)} scenes, heldout {len(held)}; grids "
          f"{ {k: len(v) for k, v in sorted(train.by_grid().items())} }")
    (args.run / "args.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}, indent=2))
    # Recorded in every checkpoint; the exporter writes it into the bundle's config.json.
    SAVE_EXTRA["training"] = {
        "data_seed": train.meta.get("seed"),
        "data_world": train.meta.get("world", "classic"),
        "seed_ranges": train.meta.get("seed_ranges"),
        "train_scenes": len(train),
        "heldout_scenes": len(held),
        "seed": args.seed,
        "vision_minutes": args.vision_minutes,
        "minutes": args.minutes,
        "type_weights": type_weights,
        **({"head_warmup": args.head_warmup} if args.head_warmup else {}),
        **({"grid_weights": grid_weights} if grid_weights else {}),
    }
    if args.resume:
        # The recipe is the whole chain: what the resumed checkpoint was trained on comes first.
        SAVE_EXTRA["training"]["resumed_from"] = {
            "checkpoint": str(args.resume),
            "step": ckpt.get("step"),
            "training": ckpt.get("training"),
        }
    if args.vision_minutes > 0:
        train_vision(model, aux, train, held, args)

    sampler = GridSampler(train, args.seed, grid_weights)
    if args.head_warmup > 0:
        warm_heads(model, aux, train, sampler, type_weights, args)
    opt = optimizer([model] + ([aux] if aux is not None else []), args.lr)
    start = time.time()
    budget = args.minutes * 60
    step, best, ema = 0, -1.0, None
    while time.time() - start < budget:
        progress = (time.time() - start) / budget
        lr = lr_at(progress, step, args.lr, args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        key, chunk, qa_lists = draw_batch(sampler, train, type_weights, args)
        loss, exact = run_batch(model, train, chunk, qa_lists, aux)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if step % 10 == 0:
            print(
                f"step {step} t {time.time() - start:.0f}s lr {lr:.2e} grid {key[0]}x{key[1]} "
                f"loss {loss.item():.4f} ema {ema:.4f} batch-exact {exact.float().mean().item():.3f}"
                + "".join(f" | {k} {v:.2f}" for k, v in (aux.stats.items() if aux else ())),
                flush=True,
            )
        if step % args.save_every == 0:
            save(model, aux, args.run / "last.pt", {"step": step})
        if step % args.eval_every == 0:
            acc = evaluate(model, held, args.eval_scenes, args.batch)
            print(f"eval step {step}: " + " ".join(f"{k}={v:.3f}" for k, v in sorted(acc.items())), flush=True)
            if acc["overall"] > best:
                best = acc["overall"]
                save(model, aux, args.run / "best.pt", {"step": step, "heldout": acc})
    save(model, aux, args.run / "last.pt", {"step": step})
    acc = evaluate(model, held, len(held), args.batch)
    print(f"final eval step {step}: " + " ".join(f"{k}={v:.3f}" for k, v in sorted(acc.items())), flush=True)
    if acc["overall"] >= best:
        save(model, aux, args.run / "best.pt", {"step": step, "heldout": acc})
    print(f"done: {step} steps in {(time.time() - start) / 60:.1f} min; best held-out overall {max(best, acc['overall']):.3f}")


if __name__ == "__main__":
    main()
