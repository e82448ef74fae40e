"""The model: one architecture, with the sizes memory and speed depend on. Pure data; no I/O.

A profile comes from profiles/models/*.toml, a config.json or a GGUF header (advisor/sources); its per-layer cache
specs are built by core/cache.py and its tensor groups by core/tensors.py.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

ATTENTION_KINDS = ("gqa", "mla", "yoco")


@dataclass(frozen=True)
class ModelProfile:
    """One model architecture: what memory and speed depend on. Sizes are element counts."""

    id: str
    name: str
    architecture: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    max_context: int
    source: str
    attention: str = "gqa"
    tied_embeddings: bool = False
    qkv_bias: bool = False
    norms_per_layer: int = 2
    # sliding-window attention: every `global_every`-th layer is global, the others see `sliding_window`
    sliding_window: int = 0
    global_every: int = 0
    # MLA (DeepSeek-V2/V3)
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    # YOCO: the self-decoder half keeps only this many tokens per layer
    self_decoder_window: int = 0
    # mixture of experts
    experts: int = 0
    experts_active: int = 0
    shared_experts: int = 0
    expert_intermediate: int = 0
    dense_layers: int = 0
    params_reference: float = 0.0
    family: str = ""  # "Qwen3", "gpt-oss": `advisor models` groups by it
    release_date: str = ""  # YYYY-MM-DD of the first public weights
    native_quant: str = ""  # the format the weights ship in (a recipe in profiles/quants.toml), e.g. MXFP4
    tier: str = ""
    what_if: str = ""
    base: str = ""
    aliases: tuple[str, ...] = ()
    origin: str = ""  # the file it came from

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def n_gqa(self) -> int:
        return self.heads // self.kv_heads if self.kv_heads else 1

    def is_global_layer(self, i: int) -> bool:
        """True when layer i attends over the whole context (not a sliding window)."""
        if not self.sliding_window or not self.global_every:
            return True
        return (i + 1) % self.global_every == 0

    @property
    def attention_label(self) -> str:
        if self.attention == "mla":
            return "MLA"
        if self.attention == "yoco":
            return "YOCO"
        if self.sliding_window:
            return "SWA+global"
        if self.kv_heads == self.heads:
            return "MHA"
        if self.kv_heads == 1:
            return "MQA"
        return "GQA"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)
