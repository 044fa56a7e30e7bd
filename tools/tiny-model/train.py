"""Train magma-tiny-som on the data from generate-data.ts (CPU, seeded, time-boxed).

  OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 /usr/bin/python3 tools/tiny-model/train.py --aux --seed 3 \
      --data tools/tiny-model/data --run tools/tiny-model/runs/fresh --minutes 42

Each step takes a batch of scenes with the same crop grid, runs the vision tower once per crop
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


COLORS = ["red", "green", "blue", "yellow", "purple"]
SHAPES = ["circle", "square", "triangle"]
MAX_MARK = 6
AUX_CLASSES = (len(COLORS) + 1, len(SHAPES) + 1, MAX_MARK + 1)


def cell_targets(data: SceneSet, scene_ids: Sequence[int], rows: int, cols: int, g: int) -> torch.Tensor:
    """Per feature cell (crop order, row-major): colour, shape and mark of the shape centred there (0 = none)."""
    t = torch.zeros(len(scene_ids), 3, rows * g, cols * g, dtype=torch.long)
    for k, i in enumerate(scene_ids):
        s = data.scenes[i]
        for o in s.objects:
            y = min(int(o["cy"] * rows * g / s.height), rows * g - 1)
            x = min(int(o["cx"] * cols * g / s.width), cols * g - 1)
            t[k, 0, y, x] = COLORS.index(o["color"]) + 1
            t[k, 1, y, x] = SHAPES.index(o["shape"]) + 1
            t[k, 2, y, x] = o["mark"] or 0
    t = t.view(len(scene_ids), 3, rows, g, cols, g).permute(0, 2, 4, 3, 5, 1)
    return t.reshape(len(scene_ids) * rows * cols, g * g, 3)


def aux_loss(aux: torch.nn.Module, feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Auxiliary training signal (not exported): read colour, shape and mark number from each cell."""
    logits = aux(feats)
    loss, start = feats.new_zeros(()), 0
    for j, n in enumerate(AUX_CLASSES):
        loss = loss + F.cross_entropy(logits[..., start : start + n].reshape(-1, n), targets[..., j].reshape(-1))
        start += n
    return loss


def run_batch(
    model: MagmaTiny,
    data: SceneSet,
    scene_ids: Sequence[int],
    qa_lists: Sequence[List[QA]],
    aux: torch.nn.Module = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Loss over answer tokens (plus the auxiliary cell loss if `aux`) and per-question exact match (teacher-forced)."""
    meta = data.meta
    s = meta["crop_size"]
    crops, grid = [], None
    for i in scene_ids:
        c, rows, cols = image_to_crops(data.image(i), s, meta["max_crops"])
        assert grid in (None, (rows, cols)), "a batch must share one crop grid"
        grid = (rows, cols)
        crops.append(c)
    rows, cols = grid
    b = len(scene_ids)
    feats = model.encode_crops(torch.cat(crops))
    vis = stitch_batch(model, feats, b, rows, cols)
    extra = feats.new_zeros(())
    if aux is not None:
        g = int(round(math.sqrt(feats.shape[1])))
        extra = aux_loss(aux, feats, cell_targets(data, scene_ids, rows, cols, g))
    pre = prefix_embeds(model, meta["prefix_ids"], meta["image_token_id"], vis)
    lp = pre.shape[1]
    _, presents = model.decode(pre, torch.ones(b, lp, dtype=torch.long), torch.arange(lp).expand(b, lp))

    owner, inputs, targets = [], [], []
    for k, qas in enumerate(qa_lists):
        for qa in qas:
            seq = qa.suffix_ids + qa.answer_ids
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
    hidden, _ = model.decode(emb, mask, pos, past)
    sel = tgt != -100
    logits = model.language_model.lm_head(hidden[sel])
    loss = F.cross_entropy(logits, tgt[sel]) + 0.5 * extra
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


def save(model: MagmaTiny, path: Path, extra: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"config": model.cfg.to_dict(), "model": model.state_dict(), **extra}, str(tmp))
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=HERE / "data")
    ap.add_argument("--run", type=Path, default=HERE / "runs" / "main")
    ap.add_argument("--minutes", type=float, default=42.0, help="wall-clock budget; the LR schedule follows it")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=12, help="scenes per step")
    ap.add_argument("--questions", type=int, default=6, help="questions per scene per step")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--ls-init", type=float, default=1e-2, help="ConvNeXt layer-scale init (timm uses 1e-6)")
    ap.add_argument("--eval-every", type=int, default=150)
    ap.add_argument("--eval-scenes", type=int, default=200)
    ap.add_argument("--save-every", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", type=Path, default=None, help="start from this checkpoint's weights")
    ap.add_argument("--aux", action="store_true", help="auxiliary per-cell colour/shape/mark loss (needs objects in data)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    args.run.mkdir(parents=True, exist_ok=True)
    train, held = SceneSet(args.data, "train"), SceneSet(args.data, "heldout")
    model = MagmaTiny(MagmaTinyConfig(vision=VisionConfig(layer_scale_init=args.ls_init)))
    if args.resume:
        model.load_state_dict(torch.load(str(args.resume), map_location="cpu")["model"])
    aux = torch.nn.Linear(model.cfg.text.hidden_size, sum(AUX_CLASSES)) if args.aux else None
    if aux is not None and not train.has_objects:
        raise SystemExit("--aux needs data written with objects (regenerate with generate-data.ts)")
    named = list(model.named_parameters()) + (list(aux.named_parameters(prefix="aux")) if aux else [])
    decay = [p for n, p in named if p.ndim >= 2 and "row_seperator" not in n]
    no_decay = [p for n, p in named if not (p.ndim >= 2 and "row_seperator" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
    )
    groups = train.by_grid()
    grid_keys = sorted(groups)
    weights = [len(groups[k]) for k in grid_keys]
    orders = {k: [] for k in grid_keys}
    rng = random.Random(args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params {n_params / 1e6:.2f} M; train {len(train)} scenes, heldout {len(held)}; grids {dict(zip(grid_keys, weights))}")
    (args.run / "args.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}, indent=2))

    start = time.time()
    budget = args.minutes * 60
    step, best, ema = 0, -1.0, None
    while time.time() - start < budget:
        progress = (time.time() - start) / budget
        lr = lr_at(progress, step, args.lr, args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        key = rng.choices(grid_keys, weights)[0]
        if len(orders[key]) < args.batch:
            fresh = groups[key][:]
            rng.shuffle(fresh)
            orders[key].extend(fresh)
        chunk = [orders[key].pop() for _ in range(args.batch)]
        qa_lists = [rng.sample(train.scenes[i].qas, min(args.questions, len(train.scenes[i].qas))) for i in chunk]
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
                f"loss {loss.item():.4f} ema {ema:.4f} batch-exact {exact.float().mean().item():.3f}",
                flush=True,
            )
        if step % args.save_every == 0:
            save(model, args.run / "last.pt", {"step": step})
        if step % args.eval_every == 0:
            acc = evaluate(model, held, args.eval_scenes, args.batch)
            print(f"eval step {step}: " + " ".join(f"{k}={v:.3f}" for k, v in sorted(acc.items())), flush=True)
            if acc["overall"] > best:
                best = acc["overall"]
                save(model, args.run / "best.pt", {"step": step, "heldout": acc})
    save(model, args.run / "last.pt", {"step": step})
    acc = evaluate(model, held, len(held), args.batch)
    print(f"final eval step {step}: " + " ".join(f"{k}={v:.3f}" for k, v in sorted(acc.items())), flush=True)
    if acc["overall"] >= best:
        save(model, args.run / "best.pt", {"step": step, "heldout": acc})
    print(f"done: {step} steps in {(time.time() - start) / 60:.1f} min; best held-out overall {max(best, acc['overall']):.3f}")


if __name__ == "__main__":
    main()
