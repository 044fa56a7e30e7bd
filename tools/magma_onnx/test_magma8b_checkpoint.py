"""Tests of the Magma-8B checkpoint reader and exporter on the official-layout fixture (no network).

  /usr/bin/python3 -m unittest tools/magma_onnx/test_magma8b_checkpoint.py

Each refusal test breaks one thing in a fresh copy of the fixture checkpoint and asserts that the
loader (and, once, the exporter's command line) stops with an error naming it.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))

from magma_onnx.hf_magma import check_dtype, half_supported  # noqa: E402
from magma_onnx.magma8b_checkpoint import (  # noqa: E402
    CheckpointError,
    MagmaCheckpoint,
    parameter_count,
    parse_config,
)
from magma_onnx.make_magma8b_fixture import write_checkpoint  # noqa: E402
from magma_onnx.model import encode_crops  # noqa: E402
from magma_onnx.safetensors_io import SafetensorsError, read_header, read_tensor, write_file  # noqa: E402

TOKENIZER = ROOT / "models" / "magma-tiny-som"


def load_all(folder: Path) -> dict:
    index = json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"]
    out = {}
    for shard in sorted(set(index.values())):
        for name, entry in read_header(folder / shard)[0].items():
            out[name] = read_tensor(entry)
    return out


def rewrite(folder: Path, tensors: dict) -> None:
    """Re-shards `tensors` into one file and a matching index (what a broken checkpoint would hold)."""
    for old in folder.glob("model-*.safetensors"):
        old.unlink()
    write_file(folder / "model-00001-of-00001.safetensors", tensors)
    index = {"metadata": {}, "weight_map": {n: "model-00001-of-00001.safetensors" for n in tensors}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))


class CheckpointTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="magma8b-ckpt-test."))
        cls.clean = cls.tmp / "clean"
        cls.ref = write_checkpoint(cls.clean, TOKENIZER, seed=1)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def copy(self) -> Path:
        dst = Path(tempfile.mkdtemp(dir=self.tmp)) / "ckpt"
        shutil.copytree(self.clean, dst)
        return dst

    def assertRefused(self, folder: Path, *fragments: str) -> None:
        with self.assertRaises(CheckpointError) as ctx:
            MagmaCheckpoint(folder)
        for fragment in fragments:
            self.assertIn(fragment, str(ctx.exception))

    # ------------------------------------------------------------ accepted

    def test_fixture_loads_into_the_reference_model(self):
        ckpt = MagmaCheckpoint(self.clean)
        self.assertEqual(ckpt.config.torch_dtype, "bfloat16")
        self.assertEqual({e.dtype for e in ckpt.entries.values()}, {"BF16"})
        self.assertEqual(len(json.loads((self.clean / "model.safetensors.index.json").read_text())["weight_map"]),
                         len(ckpt.entries))
        # Unused official tensors (open_clip head) are known but not loaded.
        self.assertIn("vision_tower.clip_vision_model.head.proj.weight", ckpt.entries)
        self.assertNotIn("vision_tower.clip_vision_model.head.proj.weight", ckpt.tensors)
        trunk, proj, sep = ckpt.vision()
        self.assertEqual(ckpt.check_layer_scale(trunk), 5)
        pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            want = encode_crops(self.ref.trunk, self.ref.projector.proj, pixels)
            got = encode_crops(trunk, proj, pixels)
        self.assertTrue(torch.equal(got, want))
        self.assertTrue(torch.equal(sep, self.ref.projector.row_seperator))
        lm, head = ckpt.decoder()
        for name, p in self.ref.lm.model.layers.named_parameters():
            self.assertTrue(torch.equal(dict(lm.layers.named_parameters())[name], p), name)
        self.assertTrue(torch.equal(head.weight, self.ref.lm.lm_head.weight))
        self.assertTrue(torch.equal(ckpt.embed_tokens().weight, self.ref.lm.model.embed_tokens.weight))

    def test_layer_scale_stored_as_weight_is_accepted(self):
        folder = self.copy()
        tensors = load_all(folder)
        key = "vision_tower.clip_vision_model.trunk.stages.2.blocks.1.gamma"
        tensors[key.replace(".gamma", ".weight")] = tensors.pop(key)
        rewrite(folder, tensors)
        trunk, _, _ = MagmaCheckpoint(folder).vision()
        self.assertTrue(torch.equal(trunk.stages[2].blocks[1].gamma, self.ref.trunk.stages[2].blocks[1].gamma))

    # ------------------------------------------------------------ refused

    def test_missing_tensor(self):
        folder = self.copy()
        tensors = load_all(folder)
        del tensors["language_model.model.layers.1.mlp.up_proj.weight"]
        rewrite(folder, tensors)
        self.assertRefused(folder, "missing tensor language_model.model.layers.1.mlp.up_proj.weight")

    def test_missing_layer_scale_names_both_spellings(self):
        folder = self.copy()
        tensors = load_all(folder)
        del tensors["vision_tower.clip_vision_model.trunk.stages.0.blocks.0.gamma"]
        rewrite(folder, tensors)
        self.assertRefused(folder, "missing tensor vision_tower.clip_vision_model.trunk.stages.0.blocks.0.gamma",
                           "stages.0.blocks.0.weight")

    def test_extra_tensor(self):
        folder = self.copy()
        tensors = load_all(folder)
        tensors["language_model.model.layers.0.self_attn.q_norm.weight"] = torch.ones(16, dtype=torch.bfloat16)
        rewrite(folder, tensors)
        self.assertRefused(folder, "unexpected tensor language_model.model.layers.0.self_attn.q_norm.weight")

    def test_both_layer_scale_spellings(self):
        folder = self.copy()
        tensors = load_all(folder)
        key = "vision_tower.clip_vision_model.trunk.stages.1.blocks.0.gamma"
        tensors[key.replace(".gamma", ".weight")] = tensors[key].clone()
        rewrite(folder, tensors)
        self.assertRefused(folder, "stages.1.blocks.0.gamma is stored under two spellings")

    def test_misshaped_tensor(self):
        folder = self.copy()
        tensors = load_all(folder)
        name = "multi_modal_projector.proj.2.weight"
        tensors[name] = tensors[name][:, :-1].contiguous()
        rewrite(folder, tensors)
        self.assertRefused(folder, f"tensor {name} has shape [64, 63], expected [64, 64]")

    def test_tensor_in_another_dtype(self):
        folder = self.copy()
        tensors = load_all(folder)
        name = "language_model.model.norm.weight"
        tensors[name] = tensors[name].to(torch.float16)
        rewrite(folder, tensors)
        self.assertRefused(folder, f"tensor {name} is stored as F16, config torch_dtype says BF16")

    def test_non_crop_strategy(self):
        folder = self.copy()
        config = json.loads((folder / "config.json").read_text())
        config["vision_config"]["img_anyres_strategy"] = "global"
        (folder / "config.json").write_text(json.dumps(config))
        self.assertRefused(folder, "vision_config.img_anyres_strategy is 'global'")

    def test_other_config_fields(self):
        base = json.loads((self.clean / "config.json").read_text())
        for path, value, fragment in [
            (("text_config", "rope_scaling"), {"type": "llama3", "factor": 8.0}, "text_config.rope_scaling"),
            (("vision_config", "mm_projector_type"), "linear", "vision_config.mm_projector_type"),
            (("vision_config", "vision_backbone"), "convnext_large", "vision_config.vision_backbone"),
            (("text_config", "tie_word_embeddings"), True, "text_config.tie_word_embeddings"),
            (("image_token_index",), 10**6, "image_token_index"),
        ]:
            raw = json.loads(json.dumps(base))
            target = raw
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            with self.assertRaises(CheckpointError, msg=fragment) as ctx:
                parse_config(raw)
            self.assertIn(fragment, str(ctx.exception))

    def test_index_naming_a_tensor_its_shard_lacks(self):
        folder = self.copy()
        index_path = folder / "model.safetensors.index.json"
        index = json.loads(index_path.read_text())
        index["weight_map"]["language_model.model.layers.9.mlp.up_proj.weight"] = "model-00001-of-00002.safetensors"
        index_path.write_text(json.dumps(index))
        self.assertRefused(folder, "language_model.model.layers.9.mlp.up_proj.weight: listed in the index")

    def test_exporter_command_refuses_with_the_name(self):
        folder = self.copy()
        tensors = load_all(folder)
        del tensors["multi_modal_projector.row_seperator"]
        rewrite(folder, tensors)
        run = subprocess.run(
            [sys.executable, str(HERE / "hf_magma.py"), "--checkpoint", str(folder), "--revision", "0" * 40,
             "--out", str(folder.parent / "bundle"), "--dtype", "fp32", "--device", "cpu"],
            capture_output=True, text=True,
        )
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertIn("missing tensor multi_modal_projector.row_seperator", run.stderr)
        self.assertFalse((folder.parent / "bundle" / "onnx").exists())


    @unittest.skipIf(half_supported("cpu"), "this torch has fp16 CPU kernels")
    def test_exporter_refuses_fp16_where_torch_cannot_run_it(self):
        run = subprocess.run(
            [sys.executable, str(HERE / "hf_magma.py"), "--checkpoint", str(self.clean), "--revision", "0" * 40,
             "--out", str(self.tmp / "fp16-bundle"), "--dtype", "fp16", "--vision-dtype", "fp32", "--device", "cpu"],
            capture_output=True, text=True,
        )
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertIn("fp16 graphs need a device with fp16 kernels", run.stderr)


class NameMapTest(unittest.TestCase):
    def test_magma8b_shapes_add_up_to_the_hub_shards(self):
        # The Hub's four shards hold 4.98 + 5.00 + 4.92 + 2.91 GB (16-bit): the map for Magma-8B's
        # config (vocab padded to 128320) must account for the same bytes.
        raw = {
            "model_type": "magma", "image_token_index": 128257, "torch_dtype": "bfloat16",
            "vision_config": {"img_anyres_strategy": "crop", "mm_projector_type": "mlp2x_gelu",
                              "vision_backbone": "convnextxxlarge", "img_size": 512, "max_num_crops": 4,
                              "mm_hidden_size": 3072},
            "text_config": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
                            "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128320,
                            "max_position_embeddings": 8192, "rope_theta": 500000.0, "rms_norm_eps": 1e-5},
        }
        used, unused = parameter_count(parse_config(raw))
        self.assertAlmostEqual((used + unused) * 2 / 1e9, 4.98 + 5.00 + 4.92 + 2.91, delta=0.03)


class SafetensorsTest(unittest.TestCase):
    def test_round_trip_and_bad_header(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "x.safetensors"
            tensors = {"a": torch.randn(3, 5).to(torch.bfloat16), "b": torch.arange(4), "c": torch.zeros(0, 2)}
            write_file(path, tensors, {"format": "pt"})
            entries, meta = read_header(path)
            self.assertEqual(meta, {"format": "pt"})
            for name, t in tensors.items():
                got = read_tensor(entries[name])
                self.assertEqual(got.dtype, t.dtype)
                self.assertTrue(torch.equal(got, t), name)
            path.write_bytes(path.read_bytes()[:20])
            with self.assertRaises(SafetensorsError):
                read_header(path)


class DtypeCheckTest(unittest.TestCase):
    # torch 1.13 has no fp16 CPU kernels; bf16 (coarser still) exercises the same check here.
    def test_refuses_above_tolerance_and_passes_below(self):
        lin = torch.nn.Linear(64, 64)
        x = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
        worst = check_dtype("t", lambda v: (lin(v),), [lin], (x,), torch.bfloat16, "cpu", tolerance=0.1)
        self.assertGreater(worst, 0)
        with self.assertRaises(RuntimeError) as ctx:
            check_dtype("t", lambda v: (lin(v),), [lin], (x,), torch.bfloat16, "cpu", tolerance=worst / 10)
        self.assertIn("t: the torch.bfloat16 graph differs from float32", str(ctx.exception))
        self.assertIsNone(check_dtype("t", lambda v: (lin(v),), [lin], (x,), torch.float32, "cpu", tolerance=0))


if __name__ == "__main__":
    unittest.main()
