"""The bundle's byte-level BPE tokenizer and chat template, read from tokenizer.json and
tokenizer_config.json, as Hugging Face's PreTrainedTokenizerFast applies them to Magma's prompt
(the rendered template starts with BOS and the post-processor adds another one)."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Dict, List

import jinja2
import regex

SYSTEM_PROMPT = "You are agent that can see, talk and act."
IMAGE_PREFIX = "<image_start><image><image_end>\n"


def bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (ByteLevel pre-tokenizer)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars)}


class BundleTokenizer:
    def __init__(self, model_dir: Path):
        tok = json.loads((model_dir / "tokenizer.json").read_text())
        config = json.loads((model_dir / "tokenizer_config.json").read_text())
        model = tok["model"]
        if model["type"] != "BPE":
            raise ValueError("only byte-level BPE tokenizers are supported")
        self.vocab: Dict[str, int] = dict(model["vocab"])
        self.ranks = {tuple(m if isinstance(m, list) else m.split(" ")): i for i, m in enumerate(model["merges"])}
        self.ignore_merges = bool(model.get("ignore_merges"))
        self.added = {a["content"]: a["id"] for a in tok["added_tokens"]}
        self.special_ids = {a["id"] for a in tok["added_tokens"] if a["special"]}
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.id_to_token.update({i: t for t, i in self.added.items()})
        split = [p for p in tok["pre_tokenizer"]["pretokenizers"] if p["type"] == "Split"][0]
        self.split_pattern = regex.compile(split["pattern"]["Regex"])
        self.special_pattern = regex.compile("|".join(regex.escape(t) for t in sorted(self.added, key=len, reverse=True)))
        self.byte_chars = bytes_to_unicode()
        self.char_bytes = {c: b for b, c in self.byte_chars.items()}
        self.bos_token = config["bos_token"]
        self.add_bos = bool(config.get("add_bos_token"))
        self.template = jinja2.Environment().from_string(config["chat_template"])

    def render(self, question: str) -> str:
        return self.template.render(
            messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": IMAGE_PREFIX + question}],
            add_generation_prompt=True,
            bos_token=self.bos_token,
        )

    def prompt_ids(self, question: str) -> List[int]:
        text = self.render(question)
        ids: List[int] = [self.vocab.get(self.bos_token, self.added.get(self.bos_token))] if self.add_bos else []
        at = 0
        for special in self.special_pattern.finditer(text):
            ids += self._encode_plain(text[at : special.start()])
            ids.append(self.added[special.group()])
            at = special.end()
        return ids + self._encode_plain(text[at:])

    def decode(self, ids: List[int]) -> str:
        text = "".join(self.id_to_token[i] for i in ids if i not in self.special_ids)
        return bytes(self.char_bytes[c] for c in text).decode("utf-8", errors="replace")

    def _encode_plain(self, text: str) -> List[int]:
        ids: List[int] = []
        for piece in self.split_pattern.findall(text):
            word = "".join(self.byte_chars[b] for b in piece.encode("utf-8"))
            ids += [self.vocab[t] for t in self._bpe(word)]
        return ids

    @lru_cache(maxsize=4096)
    def _bpe(self, word: str) -> tuple:
        if self.ignore_merges and word in self.vocab:
            return (word,)
        parts = list(word)
        while len(parts) > 1:
            pairs = [(self.ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            rank, i = min(pairs)
            if rank == 1 << 30:
                break
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        return tuple(parts)
