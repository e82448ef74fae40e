"""The model: one architecture, with the sizes memory and speed depend on. Pure data; no I/O.

A profile comes from profiles/models/*.toml, a config.json or a GGUF header (advisor/sources); its per-layer cache
specs are built by core/cache.py and its tensor groups by core/tensors.py.
"""

from __future__ import annotations

import dataclasses
from advisor.core.record import record

ATTENTION_KINDS = ("gqa", "mla", "yoco")
# One character per layer in `layer_pattern` (an empty pattern: every layer attends, windows from sliding_window
# and global_every):
LAYER_KINDS = {
    "A": "full attention",
    "S": "sliding-window attention (sliding_window tokens)",
    "C": "chunked local attention (attention_chunk tokens: Llama 4)",
    "L": "linear attention (Gated DeltaNet: a state per sequence)",
    "M": "Mamba2 (a conv + SSM state per sequence)",
    "V": "short convolution (LFM2: a conv state per sequence)",
    "F": "feed-forward only (no mixer: Nemotron-H's MLP layers)",
    "X": "attention reading an earlier layer's cache (Gemma 3n KV sharing)",
}
ATTENTION_LAYER_KINDS = "ASCX"
# `advisor check` evaluates the models released since this date unless --all-models: what people run in late 2026
CURRENT_SINCE = "2025-01-01"


@record
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
    # hybrid and local layers (see LAYER_KINDS)
    layer_pattern: str = ""
    attention_chunk: int = 0  # Llama 4: chunked layers attend within chunks of this many tokens
    attn_output_gate: bool = False  # Qwen3-Next: q_proj also yields a gate (2 x heads x head_dim outputs)
    block_ffn: bool = True  # every mixer layer carries its own FFN (False: Nemotron-H, whose FFNs are F layers)
    ffn_gated: bool = True  # gate + up + down (SwiGLU); False: up + down only (Nemotron-H's squared ReLU)
    # Gated DeltaNet (L layers)
    linear_key_heads: int = 0
    linear_value_heads: int = 0
    linear_key_head_dim: int = 0
    linear_value_head_dim: int = 0
    linear_conv_kernel: int = 0
    # Mamba2 (M layers): d_inner = mamba_heads x mamba_head_dim
    mamba_heads: int = 0
    mamba_head_dim: int = 0
    mamba_state: int = 0  # d_state
    mamba_groups: int = 0  # n_groups
    mamba_conv_kernel: int = 0
    # short convolution (V layers): the conv keeps conv_cache - 1 past inputs of hidden size
    conv_cache: int = 0
    # DeepSeek V3.2 / GLM-5 sparse attention: the indexer's key per token (and its query heads, for weights)
    index_head_dim: int = 0
    index_heads: int = 0
    # Gemma 3n: per-layer embeddings (a vocab_per_layer x layers x per_layer_input table, read a row per token),
    # LAuReL low-rank residuals and AltUp's extra streams (projections of hidden x hidden each)
    per_layer_input: int = 0
    per_layer_vocab: int = 0
    laurel_rank: int = 0
    altup_streams: int = 0
    # Llama 4: MoE on every moe_every-th layer (the others dense, of `intermediate` width); 0 or 1: every layer
    moe_every: int = 0
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
    upper_bound: str = ""  # why the cache is an upper bound (layers of a kind not modelled, counted as full)
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

    def layer_kind(self, i: int) -> str:
        """The LAYER_KINDS character of layer i."""
        if self.layer_pattern:
            return self.layer_pattern[i]
        return "A" if self.is_global_layer(i) else "S"

    def layer_kinds(self) -> str:
        """The LAYER_KINDS character of every layer, in order."""
        if self.layer_pattern:
            return self.layer_pattern
        if not self.sliding_window or not self.global_every:
            return "A" * self.layers
        return "".join("A" if self.is_global_layer(i) else "S" for i in range(self.layers))

    def is_moe_layer(self, i: int) -> bool:
        if not self.experts or i < self.dense_layers:
            return False
        return self.moe_every <= 1 or (i + 1) % self.moe_every == 0

    @property
    def is_current(self) -> bool:
        return bool(self.release_date) and self.release_date >= CURRENT_SINCE and not self.what_if

    @property
    def is_hybrid(self) -> bool:
        return any(c not in ATTENTION_LAYER_KINDS for c in self.layer_pattern)

    def is_global_layer(self, i: int) -> bool:
        """True when layer i attends over the whole context (not a sliding window)."""
        if not self.sliding_window or not self.global_every:
            return True
        return (i + 1) % self.global_every == 0

    @property
    def attention_label(self) -> str:
        kinds = set(self.layer_pattern)
        if kinds & set("LMV"):
            return {"L": "hybrid DeltaNet", "M": "hybrid Mamba2", "V": "hybrid conv"}[sorted(kinds & set("LMV"))[0]]
        if "C" in kinds:
            return "chunked+global"
        if "X" in kinds:
            return "KV-shared"
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


def newest_families_first(models, size=lambda m: m.params_reference) -> list:
    """Models by family, the family with the newest release first (undated last), then by `size` within a family:
    the order `advisor models` lists them in and `advisor check` reports them in."""
    models = list(models)
    newest: dict[str, str] = {}
    for m in models:
        fam = m.family or m.architecture
        newest[fam] = max(newest.get(fam, ""), m.release_date)

    def key(m):
        fam = m.family or m.architecture
        date = newest[fam]
        return (tuple(-ord(c) for c in date) if date else (1,)), fam, size(m), m.id

    return sorted(models, key=key)
