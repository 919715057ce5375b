"""The tiny random-init Qwen-VL's sizes: the one definition of ``model.tiny`` (the engine's
config section) and of the spec :mod:`openvlthinker.engine.modeling` builds from (the verl
plugin's ``openvlthinker.tiny_model`` builds one too). Free of transformers, so
``openvlthinker config-help`` stays light."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from openvlthinker.engine.config.base import Section

#: Model families the tiny builder and the processor fallback know (modeling's table).
TINY_ARCHITECTURES: tuple[str, ...] = ("qwen3_vl", "qwen2_5_vl", "qwen2_vl")


@dataclass
class TinySpec(Section):
    """Sizes of a random-init Qwen-VL built from a config (defaults: about 0.1M parameters)."""

    SECTION = "model.tiny"

    architecture: str = field(
        default="qwen3_vl",
        metadata={"help": "Tiny model family: qwen3_vl, qwen2_5_vl or qwen2_vl."},
    )
    hidden_size: int = field(default=64, metadata={"help": "Text hidden size."})
    num_layers: int = field(default=2, metadata={"help": "Text decoder layers."})
    num_heads: int = field(
        default=4, metadata={"help": "Attention heads (head_dim = hidden_size / num_heads)."}
    )
    num_kv_heads: int = field(
        default=2, metadata={"help": "Key/value heads (grouped-query attention)."}
    )
    intermediate_size: int = field(default=128, metadata={"help": "Text MLP width."})
    vision_depth: int = field(default=2, metadata={"help": "Vision transformer blocks."})
    vision_hidden_size: int = field(default=32, metadata={"help": "Vision hidden size."})
    vision_heads: int = field(default=2, metadata={"help": "Vision attention heads."})
    tokenizer_vocab_size: int = field(
        default=400,
        metadata={
            "help": "Size of the tiny tokenizer (a byte-level BPE trained locally) before the "
            "Qwen special tokens."
        },
    )
    vocab_size: int = field(
        default=0,
        metadata={
            "help": "Embedding/LM-head rows; 0 = the tokenizer's size. Larger (e.g. 151936) gives "
            "a real-size LM head; rows past the tokenizer are never sampled."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the random initial weights."})

    def __post_init__(self) -> None:
        self._check(
            self.architecture in TINY_ARCHITECTURES,
            "architecture",
            f"known: {', '.join(TINY_ARCHITECTURES)}",
        )
        self._check(
            self.hidden_size % self.num_heads == 0,
            "hidden_size",
            "must be a multiple of num_heads",
        )

    def key(self) -> str:
        """A short hash naming this spec's cache folder."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]
