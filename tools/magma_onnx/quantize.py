"""Weight-only int4 / int8 variants of a bundle's graphs (docs/BUNDLE.md "Quantized variants").

  /usr/bin/python3 tools/magma_onnx/quantize.py --bundle models/magma-tiny-som --bits 4 --block-size 32
  /usr/bin/python3 tools/magma_onnx/quantize.py --bundle models/magma-tiny-som --bits 8 --block-size 32
  # a separate folder with only the int4 variant, loaded by default (for `npm run eval -- --model`):
  /usr/bin/python3 tools/magma_onnx/quantize.py --bundle models/magma-tiny-som --bits 4 --out /tmp/magma-q4

Rewrites every linear layer of the decoder (q/k/v/o, gate/up/down, lm_head: each MatMul whose
second input is a 2-D float initializer) and of the vision graph's mlp2x_gelu projector into
onnxruntime's `com.microsoft.MatMulNBits`, and writes `onnx/decoder_model_merged_q{bits}.onnx` and
`onnx/vision_encoder_q{bits}.onnx` beside the fp32 graphs (`_q{bits}f16` from the `_fp16` graphs
with --base fp16). The ConvNeXt trunk and the embeddings stay at their dtype: the engine falls
back to the unquantized file for a graph without a variant.

MatMulNBits (onnxruntime contrib op, domain com.microsoft):
  attributes K, N, bits, block_size (power of 2, >= 16), accuracy_level
  inputs     A [..., K] float; B uint8 [N, n_blocks, blob_size] with blob_size = block_size*bits/8,
             codes packed low-bits-first along K; scales [N*n_blocks] (A's float type);
             optional zero_points uint8 [N * ceil(n_blocks*bits/8)], packed like B
             (absent: 2^(bits-1)); Y = A @ ((code - zero_point) * scale)^T.

Each rewritten layer is checked here, in numpy, before the file is written: the packed bytes are
unpacked independently, dequantized, and A @ W_deq is compared with the fp32 A @ W on sample
activations; the relative errors go into `quantization.json` in the bundle folder.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TWO_GB = 2 * 1024**3
MS_DOMAIN = "com.microsoft"
# Which MatMuls of each graph are rewritten: every linear layer of the decoder; only the projector
# in the vision graph (the trunk's block MLPs stay at their dtype, as the issue asks).
TARGETS: Dict[str, Optional[re.Pattern]] = {
    "decoder_model_merged": None,
    "vision_encoder": re.compile(r"project"),
}
# Worst relative Frobenius error of one layer's output accepted before refusing to write the
# variant: a round-to-nearest int4 code with absmax/7 scales errs by about 5-8 % per layer on
# Gaussian-like weights, int8 by about 0.5 %.
MAX_REL_ERROR = {4: 0.15, 8: 0.02}


# ------------------------------------------------------------------ quantize / pack / unpack


def quantize_blocks(w: np.ndarray, bits: int, block_size: int, symmetric: bool):
    """w [N, K] float32 -> codes uint8 [N, n_blocks, block_size], scales [N, n_blocks], zero points or None."""
    n, k = w.shape
    n_blocks = -(-k // block_size)
    padded = np.zeros((n, n_blocks * block_size), dtype=np.float32)
    padded[:, :k] = w  # the zero padding quantizes to the zero point exactly, so it adds nothing
    blocks = padded.reshape(n, n_blocks, block_size)
    qmax = (1 << bits) - 1
    if symmetric:
        # Codes -2^(b-1)+1 .. 2^(b-1)-1 around the op's default zero point 2^(b-1): the largest
        # magnitude lands on a code exactly and the grid stays symmetric about 0.
        mid = 1 << (bits - 1)
        absmax = np.abs(blocks).max(axis=2)
        scales = absmax / (mid - 1)
        scales[scales == 0] = 1.0
        codes = np.clip(np.rint(blocks / scales[..., None]), -(mid - 1), mid - 1) + mid
        return codes.astype(np.uint8), scales.astype(np.float32), None
    # Asymmetric: the block's [min, max] (widened to include 0, so 0 stays exact) over 0..2^b-1.
    lo = np.minimum(blocks.min(axis=2), 0.0)
    hi = np.maximum(blocks.max(axis=2), 0.0)
    scales = (hi - lo) / qmax
    scales[scales == 0] = 1.0
    zero_points = np.clip(np.rint(-lo / scales), 0, qmax).astype(np.uint8)
    codes = np.clip(np.rint(blocks / scales[..., None]) + zero_points[..., None], 0, qmax)
    return codes.astype(np.uint8), scales.astype(np.float32), zero_points


def pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Packs codes along the last axis, low bits first (two 4-bit codes per byte)."""
    if bits == 8:
        return codes.astype(np.uint8)
    if codes.shape[-1] % 2:
        codes = np.concatenate([codes, np.zeros(codes.shape[:-1] + (1,), np.uint8)], axis=-1)
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)


def unpack(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    if bits == 8:
        return packed[..., :count].astype(np.int32)
    out = np.empty(packed.shape[:-1] + (packed.shape[-1] * 2,), dtype=np.int32)
    out[..., 0::2] = packed & 0x0F
    out[..., 1::2] = packed >> 4
    return out[..., :count]


def dequantize(b: np.ndarray, scales: np.ndarray, zero_points: Optional[np.ndarray], k: int, n: int,
               bits: int, block_size: int) -> np.ndarray:
    """The op's semantics from its stored inputs alone: W [N, K] float32."""
    n_blocks = b.shape[1]
    codes = unpack(b, bits, block_size)  # [N, n_blocks, block_size]
    if zero_points is None:
        zp = np.full((n, n_blocks), 1 << (bits - 1), dtype=np.int32)
    else:
        zp = unpack(zero_points.reshape(n, -1), bits, n_blocks)
    w = (codes - zp[..., None]) * scales.astype(np.float32).reshape(n, n_blocks)[..., None]
    return w.reshape(n, n_blocks * block_size)[:, :k]


# ------------------------------------------------------------------ graph rewrite


def _float_initializers(graph) -> Dict[str, onnx.TensorProto]:
    return {
        t.name: t
        for t in graph.initializer
        if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16) and len(t.dims) == 2
    }


def quantize_graph(model: onnx.ModelProto, name_filter: Optional[re.Pattern], bits: int, block_size: int,
                   symmetric: bool, accuracy_level: int, rng: np.random.Generator) -> List[dict]:
    """Rewrites the graph in place; returns one report row per rewritten layer."""
    graph = model.graph
    weights = _float_initializers(graph)
    uses: Dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    report: List[dict] = []
    new_inits: List[onnx.TensorProto] = []
    drop: set = set()
    for index, node in enumerate(graph.node):
        if node.op_type != "MatMul" or node.input[1] not in weights:
            continue
        if name_filter is not None and not name_filter.search(node.name or node.output[0]):
            continue
        init = weights[node.input[1]]
        w_kn = numpy_helper.to_array(init)
        float_type = init.data_type
        k, n = w_kn.shape
        w = w_kn.astype(np.float32).T.copy()  # [N, K]: MatMulNBits stores B transposed
        codes, scales, zero_points = quantize_blocks(w, bits, block_size, symmetric)
        b = pack(codes, bits)
        np_float = np.float16 if float_type == TensorProto.FLOAT16 else np.float32
        scales_stored = scales.astype(np_float).reshape(-1)
        zp_stored = None if zero_points is None else pack(zero_points, bits).reshape(-1)

        # Check: the op's semantics, read back from what is stored, against fp32 on sample rows.
        w_deq = dequantize(b, scales_stored, zp_stored, k, n, bits, block_size)
        a = rng.standard_normal((64, k)).astype(np.float32)
        ref, got = a @ w.T, a @ w_deq.T
        rel = float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-12))
        report.append({
            "node": node.name, "K": k, "N": n, "rel_error": round(rel, 6),
            "max_abs_error": float(np.abs(got - ref).max()),
        })

        base = init.name.replace(":", "_").replace("/", "_")
        b_name, s_name, z_name = f"{base}_Q{bits}", f"{base}_scales", f"{base}_zero_points"
        new_inits.append(numpy_helper.from_array(b, b_name))
        new_inits.append(numpy_helper.from_array(scales_stored, s_name))
        inputs = [node.input[0], b_name, s_name]
        if zp_stored is not None:
            new_inits.append(numpy_helper.from_array(zp_stored, z_name))
            inputs.append(z_name)
        graph.node[index].CopyFrom(helper.make_node(
            "MatMulNBits", inputs, list(node.output), name=(node.name or "") + f"_Q{bits}", domain=MS_DOMAIN,
            K=k, N=n, bits=bits, block_size=block_size, accuracy_level=accuracy_level,
        ))
        uses[init.name] -= 1
        if uses[init.name] == 0:
            drop.add(init.name)
    kept = [t for t in graph.initializer if t.name not in drop]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    if report and not any(op.domain == MS_DOMAIN for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return report


def save(model: onnx.ModelProto, path: Path) -> None:
    data_name = path.name + "_data"
    for stale in (path, path.with_name(data_name)):
        if stale.exists():
            stale.unlink()
    if sum(t.ByteSize() for t in model.graph.initializer) > TWO_GB - (64 << 20):
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data_name)
    else:
        onnx.save_model(model, str(path))
    # The checker knows no contrib op schemas; it still validates the graph's structure.
    onnx.checker.check_model(str(path))


def file_bytes(path: Path) -> int:
    data = path.with_name(path.name + "_data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


def suffix_for(bits: int, base: str) -> str:
    return f"_q{bits}" + ("f16" if base == "fp16" else "")


def standalone_copy(bundle: Path, out: Path, base: str) -> None:
    """A bundle folder for one variant: every non-graph file, plus the base graphs the variant
    falls back to (the embeddings; the quantized graphs are written next)."""
    src_suffix = "_fp16" if base == "fp16" else ""
    (out / "onnx").mkdir(parents=True, exist_ok=True)
    for item in bundle.iterdir():
        if item.is_file():
            shutil.copyfile(item, out / item.name)
    for graph in ("embed_tokens",):
        for name in (f"{graph}{src_suffix}.onnx", f"{graph}{src_suffix}.onnx_data"):
            if (bundle / "onnx" / name).exists():
                shutil.copyfile(bundle / "onnx" / name, out / "onnx" / name)


def set_default_dtype(out: Path, dtype: str) -> None:
    """config.json magma_som.default_dtype: what MAGMA_DTYPE=auto loads (docs/BUNDLE.md)."""
    path = out / "config.json"
    config = json.loads(path.read_text())
    config.setdefault("magma_som", {})["default_dtype"] = dtype
    path.write_text(json.dumps(config, indent=2) + "\n")


def quantize_bundle(bundle: Path, bits: int, block_size: int, symmetric: bool, base: str = "fp32",
                    accuracy_level: int = 0, include_lm_head: bool = True, seed: int = 0,
                    out: Optional[Path] = None) -> dict:
    if bits not in (4, 8):
        raise ValueError("--bits must be 4 or 8")
    if block_size < 16 or block_size & (block_size - 1):
        raise ValueError("--block-size must be a power of 2, at least 16")
    src_suffix = "_fp16" if base == "fp16" else ""
    suffix = suffix_for(bits, base)
    rng = np.random.default_rng(seed)
    graphs = {}
    for graph, name_filter in TARGETS.items():
        src = bundle / "onnx" / f"{graph}{src_suffix}.onnx"
        if not src.exists():
            raise FileNotFoundError(f"{src} is missing")
        model = onnx.load(str(src), load_external_data=True)
        if not include_lm_head and graph == "decoder_model_merged":
            name_filter = re.compile(r"^(?!.*lm_head)")
        layers = quantize_graph(model, name_filter, bits, block_size, symmetric, accuracy_level, rng)
        if not layers:
            raise ValueError(f"{src.name}: no linear layer matched; nothing to quantize")
        worst = max(layers, key=lambda r: r["rel_error"])
        if worst["rel_error"] > MAX_REL_ERROR[bits]:
            raise ValueError(f"{src.name}: {worst['node']} output error {worst['rel_error']:.3f} exceeds "
                             f"{MAX_REL_ERROR[bits]} for int{bits}; try a smaller --block-size")
        dest = (out or bundle) / "onnx" / f"{graph}{suffix}.onnx"
        save(model, dest)
        graphs[graph] = {
            "file": f"onnx/{dest.name}", "from": f"onnx/{src.name}",
            "bytes": file_bytes(dest), "source_bytes": file_bytes(src),
            "layers": len(layers), "worst_rel_error": worst["rel_error"],
            "mean_rel_error": round(float(np.mean([r["rel_error"] for r in layers])), 6),
            "per_layer": layers,
        }
        print(f"wrote {dest} ({len(layers)} layers, {file_bytes(src):,} -> {file_bytes(dest):,} bytes, "
              f"worst layer rel. error {worst['rel_error']:.4f})")
    return {
        "suffix": suffix, "bits": bits, "block_size": block_size, "symmetric": symmetric,
        "accuracy_level": accuracy_level, "base": base, "lm_head": include_lm_head, "graphs": graphs,
    }


def write_manifest(bundle: Path, entry: dict) -> None:
    """quantization.json: one entry per variant suffix (what was quantized and how well)."""
    path = bundle / "quantization.json"
    manifest = json.loads(path.read_text()) if path.exists() else {"variants": {}}
    manifest["variants"][entry["suffix"].lstrip("_")] = entry
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, required=True, help="bundle folder; variants are written into its onnx/")
    ap.add_argument("--bits", type=int, choices=(4, 8), default=4)
    ap.add_argument("--block-size", type=int, default=32, help="weights per scale along K (power of 2, >= 16)")
    ap.add_argument("--asymmetric", action="store_true", help="store per-block zero points (default: symmetric)")
    ap.add_argument("--base", choices=("fp32", "fp16"), default="fp32",
                    help="quantize X.onnx (-> _q4/_q8) or X_fp16.onnx (-> _q4f16/_q8f16; fp16 scales)")
    ap.add_argument("--accuracy-level", type=int, default=0, choices=(0, 1, 2, 3, 4),
                    help="MatMulNBits accuracy_level: 0 = onnxruntime's default, 4 = int8 activations")
    ap.add_argument("--no-lm-head", action="store_true", help="keep lm_head at the graph's dtype")
    ap.add_argument("--out", type=Path, default=None,
                    help="write a separate bundle folder holding only this variant (config.json "
                         "magma_som.default_dtype set, so MAGMA_DTYPE=auto and `npm run eval -- --model` load it)")
    args = ap.parse_args(argv)
    if args.out is not None:
        if args.out.resolve() == args.bundle.resolve():
            ap.error("--out must differ from --bundle")
        standalone_copy(args.bundle, args.out, args.base)
    entry = quantize_bundle(args.bundle, args.bits, args.block_size, not args.asymmetric, args.base,
                            args.accuracy_level, not args.no_lm_head, out=args.out)
    target = args.out or args.bundle
    if args.out is not None:
        (target / "quantization.json").unlink(missing_ok=True)  # the source's record, not this folder's
        set_default_dtype(target, entry["suffix"].lstrip("_"))
    write_manifest(target, entry)
    print(f"recorded {entry['suffix']} in {target / 'quantization.json'}")


if __name__ == "__main__":
    sys.exit(main())
