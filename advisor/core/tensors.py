"""Weight bytes per tensor, from the architecture and a quantization recipe.

The tensor inventory follows llama.cpp's GGUF tensor names (token_embd, blk.N.attn_q, ...,
output). Each 2-D tensor gets the element type that llama-quantize would give it (see the rules
documented in profiles/quants.toml); 1-D tensors (norms, biases) and the MoE router stay f32.
Pure functions; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import NamedTuple

from advisor.core.formats import QuantTable, Recipe
from advisor.core.model import ModelProfile

# llama.cpp marks a llama-class model with 80 layers as LLM_TYPE_70B (src/llama-model.cpp,
# load_hparams: `case 80: type = LLM_TYPE_70B`), which bumps attn_v by one K-quant level.
LAYERS_OF_70B_CLASS = 80
# Mixtral-style models with exactly this many experts get special attn_k / attn_v / attn_output types.
MOE8_EXPERTS = 8
MOE8_ATTN_KV_TYPE = "q8_0"  # llama-quant.cpp: "for the 8-expert model, bumping this to Q8_0 trades just ~128MB"
# Element types that llama-quantize never re-quantizes per tensor (non-ggml-block formats).
_PLAIN_TYPES = ("f32", "f16", "bf16", "fp8", "int4_g128")


class Tensor(NamedTuple):
    """One weight tensor (a NamedTuple, not a dataclass: a 405B model has thousands and a check grid builds
    them for every model, so construction cost shows in start-up time)."""

    name: str
    layer: int  # -1 for tensors outside the repeating blocks
    row: int  # ne[0]: the row length that a block type must divide
    rows: int  # ne[1] x ne[2]
    type: str
    nbytes: int
    expert_share: float = 0.0  # fraction of this tensor read per token (MoE experts), else 0

    @property
    def elements(self) -> int:
        return self.row * self.rows


# The groups placement moves as a unit: llama.cpp keeps `embeddings` in host RAM, an expert offload moves
# `routed_experts` alone, tensor parallelism splits the rest.
GROUP_KINDS = ("embeddings", "attention", "dense_ffn", "routed_experts", "shared_experts", "output")


@lru_cache(maxsize=4096)  # a few dozen distinct names per model, asked once per tensor of every layer
def group_of(name: str) -> str:
    """The group of a tensor by its llama.cpp name (bare, or blk.N.-prefixed; '.weight' and '.bias' allowed).
    Norms go with the block part they normalise; the MoE router with the routed experts."""
    base = name.split(".", 2)[2] if name.startswith("blk.") else name
    if base.split(".")[0] == "token_embd":
        return "embeddings"
    if base.startswith("output") or base.startswith("rope_") or base.startswith("cls"):
        return "output"
    if "_shexp" in base:
        return "shared_experts"
    if "_exps" in base or base.startswith("ffn_gate_inp") or base.startswith("exp_probs"):
        return "routed_experts"
    if base.startswith("ffn"):
        return "dense_ffn"
    return "attention"


@dataclass(frozen=True)
class TensorGroup:
    """Tensors of one kind in one block (layer -1: outside the blocks): bytes held, bytes read per token."""

    kind: str
    layer: int
    nbytes: int
    active_bytes: int

    @property
    def active_fraction(self) -> float:
        return self.active_bytes / self.nbytes if self.nbytes else 0.0


@dataclass(frozen=True)
class WeightsLayout:
    """The weights as tensor groups, and the sums placement reads. Built the same way from a recipe
    (`weights_layout`) and from a GGUF header (`layout_from_tensors`)."""

    groups: tuple[TensorGroup, ...]
    n_layers: int
    params: int

    @cached_property
    def token_embd_bytes(self) -> int:
        """Kept in host RAM by llama.cpp (a row lookup per token, never a full read)."""
        return sum(g.nbytes for g in self.groups if g.kind == "embeddings")

    @cached_property
    def output_bytes(self) -> int:
        """Output projection + output norm: goes with the last offloaded layer."""
        return sum(g.nbytes for g in self.groups if g.kind == "output")

    @cached_property
    def layer_bytes(self) -> tuple[int, ...]:
        out = [0] * self.n_layers
        for g in self.groups:
            if g.layer >= 0:
                out[g.layer] += g.nbytes
        return tuple(out)

    @cached_property
    def active_bytes(self) -> int:
        """Bytes read per token for one decode step (MoE: active experts only; embeddings: a row, not counted)."""
        return sum(g.active_bytes for g in self.groups if g.kind != "embeddings")

    def kind_bytes(self, kind: str) -> int:
        return sum(g.nbytes for g in self.groups if g.kind == kind)

    @property
    def total_bytes(self) -> int:
        return self.token_embd_bytes + self.output_bytes + sum(self.layer_bytes)

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.total_bytes / self.params if self.params else 0.0


class GroupSums:
    """Adds tensors into groups keyed by (kind, layer), in first-seen order."""

    def __init__(self):
        self.sums: dict[tuple[str, int], list[int]] = {}

    def add(self, kind: str, layer: int, nbytes: int, active_bytes: int) -> None:
        acc = self.sums.setdefault((kind, layer), [0, 0])
        acc[0] += nbytes
        acc[1] += active_bytes

    def groups(self) -> tuple[TensorGroup, ...]:
        return tuple(TensorGroup(kind, layer, n, a) for (kind, layer), (n, a) in self.sums.items())


def _more_bits(i: int, n: int) -> bool:
    # llama-quant.cpp use_more_bits(): first and last eighth, and every third layer in between.
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _rule_type(recipe: Recipe, cls: str, i: int, n: int, model: ModelProfile) -> str | None:
    target = getattr(recipe, cls)
    if not target:
        return None
    rule = getattr(recipe, f"{cls}_rule")
    other = getattr(recipe, f"{cls}_else") or None
    if not rule:
        return target
    if rule == "more_bits":
        return target if _more_bits(i, n) else other
    if rule == "first_2":
        return target if i < 2 else other
    if rule == "first_16th":
        return target if i < n // 16 else other
    if rule == "gqa4":
        return target if (model.n_gqa >= 4 or model.experts >= 4) else other
    raise ValueError(f"unknown rule {rule!r}")


class _Namer:
    """Picks element types in tensor order, keeping llama-quantize's running counters."""

    def __init__(self, model: ModelProfile, recipe: Recipe, quants: QuantTable, n_attn_v: int, n_ffn_down: int):
        self.model, self.recipe, self.quants = model, recipe, quants
        self.n_attn_v, self.n_ffn_down = n_attn_v, n_ffn_down
        self.i_attn_v = 0
        self.i_ffn_down = 0
        self.quantized = recipe.base not in _PLAIN_TYPES

    def pick(self, cls: str, layer: int, row: int) -> str:
        r, m = self.recipe, self.model
        if cls in ("norm", "bias", "router"):
            return "f32"
        if cls == "output":
            chosen = r.output
            if self.quantized and row % self.quants.type(chosen).block_elements:
                chosen = "q8_0"  # llama-quant.cpp: output rows not divisible by the block -> Q8_0
            return chosen
        if cls == "token_embd":
            return self._fit(r.token_embd, row)
        chosen = r.base
        if self.quantized:
            if cls == "attn_v":
                chosen = _rule_type(r, "attn_v", self.i_attn_v, self.n_attn_v, m) or r.base
                if r.size70b_attn_v_bump and m.layers == LAYERS_OF_70B_CLASS and chosen in ("q3_K", "q4_K"):
                    chosen = r.size70b_attn_v_bump
                if m.experts == MOE8_EXPERTS:
                    chosen = MOE8_ATTN_KV_TYPE
                self.i_attn_v += 1
            elif cls == "attn_k" and m.experts == MOE8_EXPERTS:
                chosen = MOE8_ATTN_KV_TYPE
            elif cls == "ffn_down":
                i = layer if m.experts > 1 else self.i_ffn_down
                chosen = _rule_type(r, "ffn_down", i, self.n_ffn_down, m) or r.base
                self.i_ffn_down += 1
            elif cls == "attn_output":
                if m.experts == MOE8_EXPERTS and r.moe8_attn_output:
                    chosen = r.moe8_attn_output
                elif r.attn_output:
                    chosen = r.attn_output
        return self._fit(chosen, row)

    def _fit(self, chosen: str, row: int) -> str:
        # llama-quant.cpp: rows that a block type does not divide fall back, finally to f16.
        seen = set()
        while row % self.quants.type(chosen).block_elements and chosen not in seen:
            seen.add(chosen)
            chosen = self.quants.fallback.get(chosen, "f16")
        if row % self.quants.type(chosen).block_elements:
            chosen = "f16"
        return chosen


def _layer_shapes(m: ModelProfile, i: int):
    """(class, name, row, rows, expert_share) for the tensors of block i."""
    h = m.hidden
    shapes = [("norm", "attn_norm", h, 1, 0.0), ("norm", "ffn_norm", h, 1, 0.0)]
    shapes += [("norm", f"norm_{k}", h, 1, 0.0) for k in range(2, m.norms_per_layer)]
    if m.attention == "mla" and m.qk_nope_head_dim:
        q_dim = m.heads * (m.qk_nope_head_dim + m.qk_rope_head_dim)
        if m.q_lora_rank:
            shapes += [
                ("attn_q", "attn_q_a", h, m.q_lora_rank, 0.0),
                ("norm", "attn_q_a_norm", m.q_lora_rank, 1, 0.0),
                ("attn_q", "attn_q_b", m.q_lora_rank, q_dim, 0.0),
            ]
        else:
            shapes.append(("attn_q", "attn_q", h, q_dim, 0.0))
        shapes += [
            ("attn_kv", "attn_kv_a_mqa", h, m.kv_lora_rank + m.qk_rope_head_dim, 0.0),
            ("norm", "attn_kv_a_norm", m.kv_lora_rank, 1, 0.0),
            ("attn_kv", "attn_kv_b", m.kv_lora_rank, m.heads * (m.qk_nope_head_dim + m.v_head_dim), 0.0),
            ("attn_output", "attn_output", m.heads * m.v_head_dim, h, 0.0),
        ]
    else:
        q_dim, kv_dim = m.heads * m.head_dim, m.kv_heads * m.head_dim
        shapes += [
            ("attn_q", "attn_q", h, q_dim, 0.0),
            ("attn_k", "attn_k", h, kv_dim, 0.0),
            ("attn_v", "attn_v", h, kv_dim, 0.0),
            ("attn_output", "attn_output", q_dim, h, 0.0),
        ]
        if m.qkv_bias:
            shapes += [("bias", "attn_q.bias", q_dim, 1, 0.0), ("bias", "attn_k.bias", kv_dim, 1, 0.0),
                       ("bias", "attn_v.bias", kv_dim, 1, 0.0)]
    if m.experts and i >= m.dense_layers:
        e, ff = m.experts, m.expert_intermediate
        share = m.experts_active / e
        shapes += [
            ("router", "ffn_gate_inp", h, e, 0.0),
            ("ffn_gate", "ffn_gate_exps", h, ff * e, share),
            ("ffn_up", "ffn_up_exps", h, ff * e, share),
            ("ffn_down", "ffn_down_exps", ff, h * e, share),
        ]
        if m.shared_experts:
            sff = ff * m.shared_experts
            shapes += [
                ("ffn_gate", "ffn_gate_shexp", h, sff, 0.0),
                ("ffn_up", "ffn_up_shexp", h, sff, 0.0),
                ("ffn_down", "ffn_down_shexp", sff, h, 0.0),
            ]
    else:
        ff = m.intermediate
        shapes += [
            ("ffn_gate", "ffn_gate", h, ff, 0.0),
            ("ffn_up", "ffn_up", h, ff, 0.0),
            ("ffn_down", "ffn_down", ff, h, 0.0),
        ]
    return shapes


def _walk(model: ModelProfile, recipe: Recipe, quants: QuantTable):
    """Every tensor in llama-quantize's order as (where, name, layer, row, rows, type, nbytes, expert_share);
    where is "embd", "layer" or "tail". Names of block tensors are bare ("attn_q"): blk.{layer}. is implied."""
    per_layer = [_layer_shapes(model, i) for i in range(model.layers)]
    n_attn_v = sum(1 for shapes in per_layer for s in shapes if s[0] == "attn_v")
    n_ffn_down = sum(1 for shapes in per_layer for s in shapes if s[0] == "ffn_down")
    namer = _Namer(model, recipe, quants, n_attn_v, n_ffn_down)
    row_bytes: dict = {}

    def typed(cls, layer, row, rows):
        t = namer.pick(cls, layer, row)
        if (t, row) not in row_bytes:
            row_bytes[(t, row)] = quants.type(t).row_bytes(row)
        return t, row_bytes[(t, row)] * rows

    embd_cls = "output" if model.tied_embeddings else "token_embd"
    t, n = typed(embd_cls, -1, model.hidden, model.vocab)
    yield "embd", "token_embd", -1, model.hidden, model.vocab, t, n, 0.0
    embd = (t, n)
    for i, shapes in enumerate(per_layer):
        for cls, name, row, rows, share in shapes:
            t, n = typed(cls, i, row, rows)
            yield "layer", name, i, row, rows, t, n, share
    t, n = typed("norm", -1, model.hidden, 1)
    yield "tail", "output_norm", -1, model.hidden, 1, t, n, 0.0
    if not model.tied_embeddings:
        t, n = typed("output", -1, model.hidden, model.vocab)
        yield "tail", "output", -1, model.hidden, model.vocab, t, n, 0.0
    else:
        # llama.cpp duplicates a tied embedding as the output layer on the GPU (TENSOR_DUPLICATED).
        yield "tail", "output (tied: copy of token_embd)", -1, model.hidden, model.vocab, embd[0], embd[1], 0.0


def tensor_list(model: ModelProfile, recipe: Recipe, quants: QuantTable) -> tuple[Tensor, ...]:
    """The per-tensor inventory with llama.cpp names (for explaining or comparing with a GGUF file)."""
    return tuple(Tensor(f"blk.{layer}.{name}" if where == "layer" else name, layer, row, rows, t, n, share)
                 for where, name, layer, row, rows, t, n, share in _walk(model, recipe, quants))


@lru_cache(maxsize=256)  # inputs are immutable; a check grid asks once per KV type
def weights_layout(model: ModelProfile, recipe: Recipe, quants: QuantTable) -> WeightsLayout:
    """The weights as tensor groups (sums only: no per-tensor objects, it is hot)."""
    sums = GroupSums()
    params = 0
    for where, name, layer, row, rows, _t, n, share in _walk(model, recipe, quants):
        if not name.startswith("output (tied"):
            params += row * rows
        kind = "embeddings" if where == "embd" else "output" if where == "tail" else group_of(name)
        read = 0 if kind == "embeddings" else int(n * share) if share else n  # an embedding is a row lookup
        sums.add(kind, layer, n, read)
    return WeightsLayout(sums.groups(), model.layers, params)
