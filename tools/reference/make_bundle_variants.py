#!/usr/bin/python3
"""Writes variants of a model bundle that exercise the engine's loader paths.

  --fp16-edges     adds X_fp16.onnx beside each X.onnx: the same fp32 graph with Cast nodes at
                   every float input and output, so all graph edges are float16 (the engine's
                   Uint16Array paths) while the arithmetic stays fp32.
  --external-data  re-saves every graph with its weights in X.onnx_data beside X.onnx, as
                   exports over 2 GB must be.
  --mixed          per-graph dtypes as `hf_magma.py --dtype fp16 --vision-dtype fp32` writes them:
                   vision_encoder.onnx (fp32), embed_tokens_fp16.onnx and decoder_model_merged_fp16.onnx
                   (fp16 edges as above) and nothing else, declared in config.json
                   magma_som.graph_dtypes with default_dtype fp16.
  --without-prefix-inputs
                   a decoder as exported before it took a cached prefix's keys and values as
                   inputs of their own (prefix_key_values.*): each of those inputs becomes an
                   empty slice of the matching past, so the engine must feed the prefix as the past.

Usage: /usr/bin/python3 tools/reference/make_bundle_variants.py SRC DST [--fp16-edges] [--external-data] [--mixed]
       [--without-prefix-inputs]
"""
import argparse
import json
import os
import shutil

import onnx
from onnx import TensorProto, helper

GRAPHS = ['vision_encoder', 'embed_tokens', 'decoder_model_merged']


def with_fp16_edges(model):
    graph = model.graph
    nodes = []
    for value in graph.input:
        if value.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        inner = value.name + '__fp32'
        for node in graph.node:
            node.input[:] = [inner if name == value.name else name for name in node.input]
        nodes.append(helper.make_node('Cast', [value.name], [inner], to=TensorProto.FLOAT))
        value.type.tensor_type.elem_type = TensorProto.FLOAT16
    for value in graph.output:
        if value.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        inner = value.name + '__fp32'
        for node in graph.node:
            node.output[:] = [inner if name == value.name else name for name in node.output]
            node.input[:] = [inner if name == value.name else name for name in node.input]
        graph.node.append(helper.make_node('Cast', [inner], [value.name], to=TensorProto.FLOAT16))
        value.type.tensor_type.elem_type = TensorProto.FLOAT16
    for node in reversed(nodes):
        graph.node.insert(0, node)
    return model


def without_prefix_inputs(model):
    graph = model.graph
    prefixes = [value for value in graph.input if value.name.startswith('prefix_key_values.')]
    if not prefixes:
        raise SystemExit('the decoder has no prefix inputs to remove')
    zero = helper.make_tensor('prefix_slice__zero', TensorProto.INT64, [1], [0])
    axis = helper.make_tensor('prefix_slice__axis', TensorProto.INT64, [1], [2])
    graph.initializer.extend([zero, axis])
    nodes = []
    for value in prefixes:
        past = value.name.replace('prefix_key_values.', 'past_key_values.')
        # [B, kv_heads, 0, head_dim], the batch size of the past
        nodes.append(helper.make_node('Slice', [past, zero.name, zero.name, axis.name], [value.name]))
        graph.input.remove(value)
    for node in reversed(nodes):
        graph.node.insert(0, node)
    return model


def write_without_prefix_inputs(dst):
    path = os.path.join(dst, 'onnx', 'decoder_model_merged.onnx')
    onnx.save_model(without_prefix_inputs(onnx.load(path)), path)
    onnx.checker.check_model(path)
    print('wrote', path)


MIXED = {'vision_encoder': 'fp32', 'embed_tokens': 'fp16', 'decoder_model_merged': 'fp16'}


def write_mixed(dst):
    for name, dtype in MIXED.items():
        path = os.path.join(dst, 'onnx', name + '.onnx')
        if dtype == 'fp16':
            out_path = os.path.join(dst, 'onnx', name + '_fp16.onnx')
            onnx.save_model(with_fp16_edges(onnx.load(path)), out_path)
            onnx.checker.check_model(out_path)
            os.remove(path)
            print('wrote', out_path)
    config_path = os.path.join(dst, 'config.json')
    with open(config_path) as f:
        config = json.load(f)
    config.setdefault('magma_som', {}).update(graph_dtypes=MIXED, default_dtype='fp16')
    with open(config_path, 'w') as f:
        json.dump(config, f, indent=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('src')
    ap.add_argument('dst')
    ap.add_argument('--fp16-edges', action='store_true')
    ap.add_argument('--external-data', action='store_true')
    ap.add_argument('--mixed', action='store_true')
    ap.add_argument('--without-prefix-inputs', action='store_true')
    args = ap.parse_args()
    if os.path.exists(args.dst):
        shutil.rmtree(args.dst)
    shutil.copytree(args.src, args.dst)
    if args.mixed:
        write_mixed(args.dst)
        return
    if args.without_prefix_inputs:
        write_without_prefix_inputs(args.dst)
        return
    for name in GRAPHS:
        path = os.path.join(args.dst, 'onnx', name + '.onnx')
        model = onnx.load(path)
        variants = [(name, model)]
        if args.fp16_edges:
            variants.append((name + '_fp16', with_fp16_edges(onnx.load(path))))
        for out_name, out_model in variants:
            out_path = os.path.join(args.dst, 'onnx', out_name + '.onnx')
            if args.external_data:
                onnx.save_model(
                    out_model,
                    out_path,
                    save_as_external_data=True,
                    all_tensors_to_one_file=True,
                    location=out_name + '.onnx_data',
                    size_threshold=0,
                )
            else:
                onnx.save_model(out_model, out_path)
            onnx.checker.check_model(out_path)
            print('wrote', out_path)


if __name__ == '__main__':
    main()
