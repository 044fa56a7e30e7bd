"""A seed-style Python server for magma-tiny-som, the baseline of `npm run bench -- --only baseline`.

What a first Python version of this service would be: FastAPI + uvicorn (one worker), PIL decode
and mark drawing, PyTorch eager with a KV-cached greedy loop, the weights of our bundle's ONNX
graphs. It answers POST /v1/som/ask with the JSON of the Node server's REST route (image as
base64 or data URL, marks, prompt, options.maxTokens) and reports its own timings, model time
included, so the benchmark can compare the time outside the model.

  /usr/bin/python3 bench/baseline/server.py --model-dir models/magma-tiny-som --port 8099
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import time
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, HTTPException
from PIL import Image, ImageOps
from pydantic import BaseModel, Field

from bundle_weights import load_bundle_model
from magma_onnx.model import stitch_image
from marks import draw_marks
from preprocess import image_to_crops
from tokenizer import BundleTokenizer


class Mark(BaseModel):
    label: int = Field(ge=0)
    x1: float
    y1: float
    x2: float
    y2: float
    color: Optional[str] = None


class Options(BaseModel):
    maxTokens: int = Field(default=128, ge=1, le=4096)


class AskRequest(BaseModel):
    image: str
    prompt: str
    marks: List[Mark] = []
    options: Options = Options()


class Runner:
    def __init__(self, model_dir: Path):
        self.config = json.loads((model_dir / "config.json").read_text())
        pre = json.loads((model_dir / "preprocessor_config.json").read_text())
        self.crop, self.max_crops = pre["base_img_size"], pre["num_crops"]
        self.mean, self.std = pre["image_mean"], pre["image_std"]
        self.mark_minimums = self.config.get("magma_som", {}).get("marks", {})
        self.image_token = self.config["image_token_index"]
        eos = self.config["eos_token_id"]
        self.eos = set(eos if isinstance(eos, list) else [eos])
        self.model = load_bundle_model(model_dir)
        self.tokenizer = BundleTokenizer(model_dir)

    @torch.no_grad()
    def ask(self, request: AskRequest) -> dict:
        started = time.perf_counter()
        image = decode_image(request.image)
        draw_marks(image, [m.dict() for m in request.marks], self.crop, self.max_crops, self.mark_minimums)
        rgb = np.asarray(image)
        image_done = time.perf_counter()
        crops, rows, cols = image_to_crops(rgb, self.crop, self.max_crops, self.mean, self.std)
        ids = self.tokenizer.prompt_ids(request.prompt)
        preprocess_done = time.perf_counter()

        model = self.model
        features = model.encode_crops(crops)
        visual = stitch_image(features, rows, cols, model.multi_modal_projector.row_seperator)
        vision_done = time.perf_counter()

        embed = model.language_model.model.embed_tokens
        at = ids.index(self.image_token)
        embeds = torch.cat([embed(torch.tensor([ids[:at]])), visual[None], embed(torch.tensor([ids[at + 1 :]]))], dim=1)
        length = embeds.shape[1]
        hidden, past = model.decode(embeds, torch.ones(1, length, dtype=torch.long), torch.arange(length)[None])
        prefill_done = time.perf_counter()
        tokens: List[int] = []
        finish = "length"
        while len(tokens) < request.options.maxTokens:
            token = int(model.language_model.lm_head(hidden[:, -1]).argmax(-1))
            if token in self.eos:
                finish = "stop"
                break
            tokens.append(token)
            total = length + len(tokens)
            hidden, past = model.decode(
                embed(torch.tensor([[token]])), torch.ones(1, total, dtype=torch.long), torch.tensor([[total - 1]]), past
            )
        done = time.perf_counter()
        ms = lambda a, b: round((b - a) * 1000, 3)  # noqa: E731
        return {
            "answer": self.tokenizer.decode(tokens),
            "finishReason": finish,
            "usage": {"promptTokens": length, "imageTokens": visual.shape[0], "completionTokens": len(tokens)},
            "grid": {"rows": rows, "cols": cols},
            "timings": {
                "imageMs": ms(started, image_done),
                "preprocessMs": ms(image_done, preprocess_done),
                "visionMs": ms(preprocess_done, vision_done),
                "prefillMs": ms(vision_done, prefill_done),
                "decodeMs": ms(prefill_done, done),
                "modelMs": ms(preprocess_done, done),
                "totalMs": ms(started, done),
            },
        }


def decode_image(value: str) -> Image.Image:
    payload = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
        image = ImageOps.exif_transpose(image)
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            # transparency flattened onto white, as the server does
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return image.convert("RGB")
    except Exception as error:  # PIL raises many kinds for bad input
        raise HTTPException(status_code=400, detail=f"image cannot be decoded: {error}")


def create_app(runner: Runner) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    # A plain `def`: FastAPI runs it in its thread pool, so the event loop keeps answering /health.
    @app.post("/v1/som/ask")
    def ask(request: AskRequest) -> dict:
        return runner.ask(request)

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, default=Path("models/magma-tiny-som"))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8099)
    ap.add_argument("--torch-threads", type=int, default=int(os.environ.get("BASELINE_TORCH_THREADS", "1")))
    args = ap.parse_args()
    torch.set_num_threads(args.torch_threads)
    runner = Runner(args.model_dir)
    uvicorn.run(create_app(runner), host=args.host, port=args.port, workers=1, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
