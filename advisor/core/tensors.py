"""Weight bytes per tensor, from the architecture and a quantization recipe.

The tensor inventory follows llama.cpp's GGUF tensor names (token_embd, blk.N.attn_q, ...,
output). Each 2-D tensor gets the element type that llama-quantize would give it (see the rules
documented in profiles/quants.toml); 1-D tensors (norms, biases) and the MoE router stay f32.
Pure functions; no I/O.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import NamedTuple

from advisor.core.formats import QuantTable, Recipe
from advisor.core.model import ATTENTION_LAYER_KINDS, ModelProfile
from advisor.core.record import record

# llama.cpp marks a llama-class model with 80 layers as LLM_TYPE_70B (src/llama-model.cpp,
# load_hparams: `case 80: type = LLM_TYPE_70B`), which bumps attn_v by one K-quant level.
LAYERS_OF_70B_CLASS = 80
# Mixtral-style models with exactly this many experts get special attn_k / attn_v / attn_output types.
MOE8_EXPERTS = 8
MOE8_ATTN_KV_TYPE = "q8_0"  # llama-quant.cpp: "for the 8-expert model, bumping this to Q8_0 trades just ~128MB"
# Element types that llama-quantize never re-quantizes per tensor (non-ggml-block formats: vLLM's safetensors).
# A recipe whose base is one of these gets no per-tensor rules (its `experts` type still applies).
_PLAIN_TYPES = ("f32", "f16", "bf16", "fp8", "fp8_b128", "nvfp4", "int4_g32", "int4_g64", "int4_g128", "int8_g128",
                "int8")


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


# looked up a row per token (GET_ROWS): token_embd, and Gemma 3n's per-layer embeddings
EMBEDDING_TENSORS = ("token_embd", "per_layer_token_embd")
# Gemma 3n's tensors outside the blocks besides the embeddings (the per-layer input projection and the AltUp
# stream projections): with the output, as the recipe's layout (_tail) counts them
OUTSIDE_BLOCKS = ("per_layer_model_proj", "per_layer_proj_norm", "altup_proj", "altup_unembd_proj")


@lru_cache(maxsize=4096)  # a few dozen distinct names per model, asked once per tensor of every layer
def group_of(name: str) -> str:
    """The group of a tensor by its llama.cpp name (bare, or blk.N.-prefixed; '.weight' and '.bias' allowed).
    Norms go with the block part they normalise. The routed experts are the `exps` tensors, as llama.cpp's expert
    offload matches them (common/common.h LLM_FFN_EXPS_REGEX "\\.ffn_(up|down|gate|gate_up)_(ch|)exps", which
    --cpu-moe and --n-cpu-moe move to RAM): the MoE router (ffn_gate_inp) and DeepSeek's expert bias (exp_probs_b)
    are read whole per token and stay with the layer on the GPU, so they are dense FFN here."""
    base = name.split(".", 2)[2] if name.startswith("blk.") else name
    if base.split(".")[0] in EMBEDDING_TENSORS:
        return "embeddings"
    if base.startswith(("output", "rope_", "cls")) or not name.startswith("blk.") and base.startswith(OUTSIDE_BLOCKS):
        return "output"
    if "_shexp" in base:
        return "shared_experts"
    if "exps" in base:  # ffn_*_exps, ffn_*_chexps (shared experts are _shexp, taken above)
        return "routed_experts"
    if base.startswith("exp_probs"):
        return "dense_ffn"
    if base.startswith("ffn"):
        return "dense_ffn"
    return "attention"


@record
class TensorGroup:
    """Tensors of one kind in one block (layer -1: outside the blocks): bytes held, bytes read per token, and the
    parameters (elements) behind each. FLOPs follow the parameters, not the bytes: with mixed precision (gpt-oss's
    MXFP4 experts beside BF16 attention, a K-quant mix's Q6_K output) the two shares differ. The read share is the
    same for both: routed experts experts_per_token / experts of each tensor, an embedding (a row lookup) none."""

    kind: str
    layer: int
    nbytes: int
    active_bytes: int
    params: int
    active_params: int

    @property
    def active_fraction(self) -> float:
        return self.active_bytes / self.nbytes if self.nbytes else 0.0


@record
class WeightsLayout:
    """The weights as tensor groups, and the sums placement reads. Built the same way from a recipe
    (`weights_layout`) and from a GGUF header (advisor/sources/gguf_file.py)."""

    groups: tuple[TensorGroup, ...]
    n_layers: int
    params: int

    # Stored (advisor check keeps ~50 layouts in the parsed-data cache), the groups travel as one pickled blob of
    # plain tuples, made TensorGroups again only when read: a start-up that has the sums (`with_sums`) never reads
    # them. Unpickling ~15,000 dataclass instances took 15 ms of a start-up, the tuples 1.5 ms (40,000 ints, two
    # thirds of the stored layouts), the blob a copy of its bytes.
    def __reduce__(self):
        import pickle

        state = dict(self.__dict__)
        packed = tuple((g.kind, g.layer, g.nbytes, g.active_bytes, g.params, g.active_params)
                       for g in state.pop("groups"))
        return _restored_layout, (type(self), pickle.dumps(packed, protocol=pickle.HIGHEST_PROTOCOL), state)

    def __getattr__(self, name):  # only for what is not in __dict__: the groups of a restored layout
        packed = self.__dict__.get("_packed_groups") if name == "groups" else None
        if packed is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        import pickle

        groups = tuple(TensorGroup(*row) for row in pickle.loads(packed))
        self.__dict__["groups"] = groups
        return groups

    @cached_property
    def token_embd_bytes(self) -> int:
        """Kept in host RAM by llama.cpp (a row lookup per token, never a full read)."""
        return sum(g.nbytes for g in self.groups if g.kind == "embeddings")

    @cached_property
    def output_bytes(self) -> int:
        """Output projection + output norm: goes with the last offloaded layer."""
        return sum(g.nbytes for g in self.groups if g.kind == "output")

    def _per_layer(self, read: bool, kind: str | None = None, params: bool = False) -> tuple[int, ...]:
        """Per block: bytes held (or read per token, `read`), of one group kind or of all; `params`: parameters
        instead of bytes."""
        out = [0] * self.n_layers
        for g in self.groups:
            if g.layer >= 0 and (kind is None or g.kind == kind):
                if params:
                    out[g.layer] += g.active_params if read else g.params
                else:
                    out[g.layer] += g.active_bytes if read else g.nbytes
        return tuple(out)

    @cached_property
    def layer_bytes(self) -> tuple[int, ...]:
        return self._per_layer(read=False)

    @cached_property
    def layer_active_bytes(self) -> tuple[int, ...]:
        return self._per_layer(read=True)

    @cached_property
    def expert_layer_bytes(self) -> tuple[int, ...]:
        """Routed-expert bytes per block (what an expert offload moves to RAM)."""
        return self._per_layer(read=False, kind="routed_experts")

    @cached_property
    def expert_layer_active_bytes(self) -> tuple[int, ...]:
        return self._per_layer(read=True, kind="routed_experts")

    @cached_property
    def active_bytes(self) -> int:
        """Bytes read per token for one decode step (MoE: active experts only; embeddings: a row, not counted)."""
        return sum(g.active_bytes for g in self.groups if g.kind != "embeddings")

    @cached_property
    def output_active_bytes(self) -> int:
        return sum(g.active_bytes for g in self.groups if g.kind == "output")

    # Parameters, where FLOPs are meant (one multiply-add per parameter read): the same sums as the bytes above.

    @cached_property
    def layer_active_params(self) -> tuple[int, ...]:
        """Parameters read per token, per block."""
        return self._per_layer(read=True, params=True)

    @cached_property
    def expert_layer_active_params(self) -> tuple[int, ...]:
        """Routed-expert parameters read per token, per block (the router's whole, the active experts' share)."""
        return self._per_layer(read=True, kind="routed_experts", params=True)

    @cached_property
    def active_params(self) -> int:
        """Parameters read per token (MoE: active experts only; the embedding lookup not counted; a tied output
        counted, as llama.cpp multiplies by it for the logits): half the FLOPs of a token's forward pass."""
        return sum(g.active_params for g in self.groups if g.kind != "embeddings")

    @cached_property
    def output_active_params(self) -> int:
        return sum(g.active_params for g in self.groups if g.kind == "output")

    @cached_property
    def _prefixes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Prefix sums of held and read bytes per block: a span of blocks in O(1)."""
        held, read = [0], [0]
        for n, a in zip(self.layer_bytes, self.layer_active_bytes):
            held.append(held[-1] + n)
            read.append(read[-1] + a)
        return tuple(held), tuple(read)

    @cached_property
    def _param_prefixes(self) -> tuple[int, ...]:
        """Prefix sums of the parameters read per block."""
        read = [0]
        for a in self.layer_active_params:
            read.append(read[-1] + a)
        return tuple(read)

    def span_bytes(self, start: int, stop: int) -> int:
        """Weights of blocks start..stop-1."""
        held = self._prefixes[0]
        return held[stop] - held[start] if stop > start else 0

    def active_span_bytes(self, start: int, stop: int) -> int:
        """Bytes read per token of blocks start..stop-1."""
        read = self._prefixes[1]
        return read[stop] - read[start] if stop > start else 0

    def active_span_params(self, start: int, stop: int) -> int:
        """Parameters read per token of blocks start..stop-1."""
        read = self._param_prefixes
        return read[stop] - read[start] if stop > start else 0

    def kind_bytes(self, kind: str) -> int:
        return sum(g.nbytes for g in self.groups if g.kind == kind)

    def kind_params(self, kind: str) -> int:
        return sum(g.params for g in self.groups if g.kind == kind)

    def with_sums(self) -> WeightsLayout:
        """Itself with every sum placement reads already computed, so that a stored (pickled) copy carries them."""
        for name in ("token_embd_bytes", "output_bytes", "layer_bytes", "layer_active_bytes", "expert_layer_bytes",
                     "expert_layer_active_bytes", "active_bytes", "output_active_bytes", "_prefixes", "total_bytes",
                     "layer_active_params", "expert_layer_active_params", "active_params", "output_active_params",
                     "_param_prefixes"):
            getattr(self, name)
        return self

    @cached_property
    def total_bytes(self) -> int:
        return self.token_embd_bytes + self.output_bytes + sum(self.layer_bytes)

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.total_bytes / self.params if self.params else 0.0


def _restored_layout(cls, packed: bytes, state: dict) -> WeightsLayout:
    """A pickled layout (WeightsLayout.__reduce__): its state, the groups' pickled tuples until read."""
    layout = object.__new__(cls)
    layout.__dict__.update(state)
    layout.__dict__["_packed_groups"] = packed
    return layout


class GroupSums:
    """Adds tensors into groups keyed by (kind, layer), in first-seen order: bytes held and read, parameters held and
    read."""

    def __init__(self):
        self.sums: dict[tuple[str, int], list[int]] = {}

    def add(self, kind: str, layer: int, nbytes: int, active_bytes: int, params: int, active_params: int) -> None:
        acc = self.sums.setdefault((kind, layer), [0, 0, 0, 0])
        acc[0] += nbytes
        acc[1] += active_bytes
        acc[2] += params
        acc[3] += active_params

    def groups(self) -> tuple[TensorGroup, ...]:
        return tuple(TensorGroup(kind, layer, *sums) for (kind, layer), sums in self.sums.items())


def read_share(kind: str, amount: int, share: float) -> int:
    """Of a tensor's bytes or parameters, those read per token: an embedding is a row lookup (none counted), a
    routed-expert tensor its experts_per_token / experts share (`share`), the rest whole (share 0)."""
    return 0 if kind == "embeddings" else int(amount * share) if share else amount


def _more_bits(i: int, n: int) -> bool:
    # llama-quant.cpp use_more_bits(): first and last eighth, and every third layer in between.
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


# The rules a recipe's `<class>_rule` may name (profiles/quants.toml documents each; parse_quant_file checks them).
RULES = ("more_bits", "first_2", "first_4", "first_8th", "first_16th", "first_8th_moe8_more_bits", "tensor_8th",
         "gqa4", "gqa4_moe4")


# llama-quant.cpp sets n_ffn_down to the layer count (hparams.n_layer). The rules added with the i-quants compare
# with it; more_bits and first_16th still get the number of ffn_down tensors, which is the same but on models with
# shared experts (DeepSeek-V3: 3 + 2 x 58 = 119, not 61 layers): a known deviation, kept so that the shipped
# answers (tests/golden) hold until they are regenerated with the fix.
_LAYER_COUNT_RULES = ("first_8th", "first_8th_moe8_more_bits", "tensor_8th")


def _rule_type(recipe: Recipe, cls: str, i: int, n: int, model: ModelProfile) -> str | None:
    """The type a rule gives tensor i of n of this class (None: the base type). For ffn_down, i is the layer (MoE:
    llama-quant.cpp's layer_info reads it from the name) or the running count (dense), and n the layer count;
    "tensor_8th" gets the running count of ffn_down tensors whatever the model."""
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
    if rule == "first_4":
        return target if i < 4 else other
    if rule in ("first_8th", "tensor_8th"):
        return target if i < n // 8 else other
    if rule == "first_16th":
        return target if i < n // 16 else other
    if rule == "first_8th_moe8_more_bits":
        return target if i < n // 8 or (model.experts == MOE8_EXPERTS and _more_bits(i, n)) else other
    if rule == "gqa4":
        return target if model.n_gqa >= 4 else other
    if rule == "gqa4_moe4":
        return target if (model.n_gqa >= 4 or model.experts >= 4) else other
    raise ValueError(f"unknown rule {rule!r}")


def _named(name: str, base: str) -> bool:
    """llama-quant.cpp's category test: the tensor name contains `<base>.weight` (blk.N.attn_k, also
    blk.N.indexer.attn_k; not attn_k_b). A caller that gives no name matches by class alone."""
    return not name or name == base or name.endswith("." + base)


class _Namer:
    """Picks element types in tensor order, keeping llama-quantize's running counters."""

    def __init__(self, model: ModelProfile, recipe: Recipe, quants: QuantTable, n_attn_v: int, n_ffn_down: int):
        self.model, self.recipe, self.quants = model, recipe, quants
        self.n_attn_v, self.n_ffn_down = n_attn_v, n_ffn_down
        self.i_attn_v = 0
        self.i_ffn_down = 0
        self.quantized = recipe.base not in _PLAIN_TYPES

    def pick(self, cls: str, layer: int, row: int, name: str = "") -> str:
        r, m = self.recipe, self.model
        if cls in ("norm", "bias", "router"):
            return "f32"
        if r.experts and name.endswith("_exps"):
            # MXFP4: the routed experts (llama-quant.cpp MXFP4_MOE: the 3-D tensors, ne[2] > 1) whatever the base
            return self._fit(r.experts, row)
        if cls == "output":
            chosen = r.output
            if self.quantized and row % self.quants.type(chosen).block_elements:
                chosen = "q8_0"  # llama-quant.cpp: output rows not divisible by the block -> Q8_0
            return chosen
        if cls == "token_embd":
            return self._fit(r.token_embd, row)
        chosen = r.base
        if self.quantized:
            moe8 = m.experts == MOE8_EXPERTS
            if cls == "attn_v":
                chosen = _rule_type(r, "attn_v", self.i_attn_v, self.n_attn_v, m) or r.base
                if r.size70b_attn_v_bump and m.layers == LAYERS_OF_70B_CLASS and chosen in ("q3_K", "q4_K"):
                    chosen = r.size70b_attn_v_bump
                if moe8:
                    chosen = r.moe8_attn_kv or MOE8_ATTN_KV_TYPE
                self.i_attn_v += 1
            elif cls == "attn_k" and _named(name, "attn_k"):
                if moe8:
                    chosen = r.moe8_attn_kv or MOE8_ATTN_KV_TYPE
                elif r.attn_k:
                    chosen = r.attn_k
            elif cls == "attn_q" and _named(name, "attn_q"):
                chosen = r.attn_q or r.base
            elif cls == "ffn_down":
                i = self.i_ffn_down if r.ffn_down_rule == "tensor_8th" or m.experts <= 1 else layer
                n = m.layers if r.ffn_down_rule in _LAYER_COUNT_RULES else self.n_ffn_down
                chosen = _rule_type(r, "ffn_down", i, n, m) or r.base
                self.i_ffn_down += 1
            elif cls == "attn_output":
                if moe8 and r.moe8_attn_output:
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


def _attention_shapes(m: ModelProfile) -> list:
    h = m.hidden
    shapes = []
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
        if m.index_head_dim:  # the sparse-attention indexer: its own query, key and head weights
            q_in = m.q_lora_rank or h
            shapes += [
                ("attn_q", "indexer.attn_q_b", q_in, m.index_heads * m.index_head_dim, 0.0),
                ("attn_k", "indexer.attn_k", h, m.index_head_dim, 0.0),
                ("norm", "indexer.k_norm", m.index_head_dim, 1, 0.0),
                ("attn_q", "indexer.proj", h, m.index_heads, 0.0),
            ]
        return shapes
    q_dim, kv_dim = m.heads * m.head_dim, m.kv_heads * m.head_dim
    q_out = 2 * q_dim if m.attn_output_gate else q_dim  # Qwen3-Next: the query projection also yields a gate
    shapes += [
        ("attn_q", "attn_q", h, q_out, 0.0),
        ("attn_k", "attn_k", h, kv_dim, 0.0),
        ("attn_v", "attn_v", h, kv_dim, 0.0),
        ("attn_output", "attn_output", q_dim, h, 0.0),
    ]
    if m.qkv_bias:
        shapes += [("bias", "attn_q.bias", q_out, 1, 0.0), ("bias", "attn_k.bias", kv_dim, 1, 0.0),
                   ("bias", "attn_v.bias", kv_dim, 1, 0.0)]
    return shapes


def _mixer_shapes(m: ModelProfile, kind: str) -> list:
    """The token mixer of a recurrent layer, with llama.cpp's tensor names (ssm_*, shortconv.*). Its 1-D and
    convolution weights stay f32 ("norm" class), as llama-quantize leaves them."""
    h = m.hidden
    if kind == "M":  # Mamba2: in_proj -> z, x, B, C, dt; depthwise conv over x, B, C
        d_inner = m.mamba_heads * m.mamba_head_dim
        conv_ch = d_inner + 2 * m.mamba_groups * m.mamba_state
        return [
            ("ssm", "ssm_in", h, 2 * d_inner + 2 * m.mamba_groups * m.mamba_state + m.mamba_heads, 0.0),
            ("norm", "ssm_conv1d", m.mamba_conv_kernel, conv_ch, 0.0),
            ("norm", "ssm_conv1d.bias", conv_ch, 1, 0.0),
            ("norm", "ssm_dt.bias", m.mamba_heads, 1, 0.0),
            ("norm", "ssm_a", m.mamba_heads, 1, 0.0),
            ("norm", "ssm_d", m.mamba_heads, 1, 0.0),
            ("norm", "ssm_norm", d_inner, 1, 0.0),
            ("ssm", "ssm_out", d_inner, h, 0.0),
        ]
    if kind == "L":  # Gated DeltaNet: in_proj -> q, k, v, z and beta, alpha; conv over q, k, v
        kd, vd = m.linear_key_heads * m.linear_key_head_dim, m.linear_value_heads * m.linear_value_head_dim
        return [
            ("ssm", "ssm_in", h, 2 * kd + 2 * vd, 0.0),
            ("ssm", "ssm_beta_alpha", h, 2 * m.linear_value_heads, 0.0),
            ("norm", "ssm_conv1d", m.linear_conv_kernel, 2 * kd + vd, 0.0),
            ("norm", "ssm_dt.bias", m.linear_value_heads, 1, 0.0),
            ("norm", "ssm_a", m.linear_value_heads, 1, 0.0),
            ("norm", "ssm_norm", m.linear_value_head_dim, 1, 0.0),
            ("ssm", "ssm_out", vd, h, 0.0),
        ]
    if kind == "V":  # LFM2 short conv: in_proj -> B, C, x; depthwise conv of conv_cache taps
        return [
            ("ssm", "shortconv.in_proj", h, 3 * h, 0.0),
            ("norm", "shortconv.conv", m.conv_cache, h, 0.0),
            ("ssm", "shortconv.out_proj", h, h, 0.0),
        ]
    return []


def _ffn_shapes(m: ModelProfile, i: int) -> list:
    h = m.hidden
    if m.is_moe_layer(i):
        # experts are gated like the dense FFN (SwiGLU: gate + up + down), or up + down only (Nemotron-3's squared
        # ReLU experts: llama.cpp's nemotron_h_moe has ffn_up_exps / ffn_down_exps and no ffn_gate_exps)
        e, ff = m.experts, m.expert_intermediate
        share = m.experts_active / e
        shapes = [("router", "ffn_gate_inp", h, e, 0.0)]
        if m.ffn_gated:
            shapes.append(("ffn_gate", "ffn_gate_exps", h, ff * e, share))
        shapes += [
            ("ffn_up", "ffn_up_exps", h, ff * e, share),
            ("ffn_down", "ffn_down_exps", ff, h * e, share),
        ]
        if m.shared_experts:
            sff = ff * m.shared_experts
            if m.ffn_gated:
                shapes.append(("ffn_gate", "ffn_gate_shexp", h, sff, 0.0))
            shapes += [
                ("ffn_up", "ffn_up_shexp", h, sff, 0.0),
                ("ffn_down", "ffn_down_shexp", sff, h, 0.0),
            ]
        return shapes
    ff = m.intermediate
    gate = [("ffn_gate", "ffn_gate", h, ff, 0.0)] if m.ffn_gated else []
    return gate + [
        ("ffn_up", "ffn_up", h, ff, 0.0),
        ("ffn_down", "ffn_down", ff, h, 0.0),
    ]


def _layer_shapes(m: ModelProfile, i: int):
    """(class, name, row, rows, expert_share) for the tensors of block i, by its layer kind: norms first, then the
    token mixer (attention or a recurrent mixer; none in an F layer), then the FFN (when the block has one)."""
    h = m.hidden
    kind = m.layer_kind(i)
    has_ffn = kind == "F" or m.block_ffn
    norms = [] if kind == "F" else [("norm", "attn_norm", h, 1, 0.0)]
    if has_ffn:
        norms.append(("norm", "ffn_norm", h, 1, 0.0))
    norms += [("norm", f"norm_{k}", h, 1, 0.0) for k in range(2, m.norms_per_layer)]
    mixer = _attention_shapes(m) if kind in ATTENTION_LAYER_KINDS else _mixer_shapes(m, kind)
    extra = []
    if m.per_layer_input:  # Gemma 3n: gate the per-layer input in, project it back out
        extra += [("ssm", "per_layer_inp_gate", h, m.per_layer_input, 0.0),
                  ("ssm", "per_layer_proj", m.per_layer_input, h, 0.0)]
    if m.laurel_rank:
        extra += [("ssm", "laurel_l", h, m.laurel_rank, 0.0), ("ssm", "laurel_r", m.laurel_rank, h, 0.0)]
    return norms + mixer + (_ffn_shapes(m, i) if has_ffn else []) + extra


# classes whose type depends on the layer (llama-quantize's running counters and per-layer rules): never memoised
_COUNTED_CLASSES = ("attn_v", "ffn_down")


def _setup(model: ModelProfile, recipe: Recipe, quants: QuantTable):
    """(the tensor shapes of every block, a typer: (class, layer, row, rows, name) -> (type, bytes))."""
    memo: dict = {}  # layers of one kind (and MoE-ness) have the same tensors
    per_layer = []
    for i in range(model.layers):
        key = (model.layer_kind(i), model.is_moe_layer(i))
        if key not in memo:
            memo[key] = _layer_shapes(model, i)
        per_layer.append(memo[key])
    n_attn_v = sum(1 for shapes in per_layer for s in shapes if s[0] == "attn_v")
    n_ffn_down = sum(1 for shapes in per_layer for s in shapes if s[0] == "ffn_down")
    namer = _Namer(model, recipe, quants, n_attn_v, n_ffn_down)
    row_bytes: dict = {}
    picked: dict = {}  # the type of a class / name / row: the same in every layer but for the counted classes

    def typed(cls, layer, row, rows, name=""):
        if cls in _COUNTED_CLASSES or layer < 0:
            t = namer.pick(cls, layer, row, name)
        else:
            key = (cls, name, row)
            t = picked.get(key)
            if t is None:
                t = picked[key] = namer.pick(cls, layer, row, name)
        if (t, row) not in row_bytes:
            row_bytes[(t, row)] = quants.type(t).row_bytes(row)
        return t, row_bytes[(t, row)] * rows

    return per_layer, typed


def _head(model: ModelProfile, typed) -> list:
    """The tensors before the blocks (and the ones llama.cpp keeps with the output), as _walk yields them."""
    out = []
    embd_cls = "output" if model.tied_embeddings else "token_embd"
    t, n = typed(embd_cls, -1, model.hidden, model.vocab)
    out.append(("embd", "token_embd", -1, model.hidden, model.vocab, t, n, 0.0))
    if model.per_layer_input:  # Gemma 3n's per-layer embeddings: looked up like token_embd, kept with it
        row = model.per_layer_input * model.layers
        t, n = typed("token_embd", -1, row, model.per_layer_vocab)
        out.append(("embd", "per_layer_token_embd", -1, row, model.per_layer_vocab, t, n, 0.0))
        t, n = typed("ssm", -1, model.hidden, row)
        out.append(("tail", "per_layer_model_proj", -1, model.hidden, row, t, n, 0.0))
    for k in range(max(0, model.altup_streams - 1)):  # AltUp: projections in and out of each extra stream
        for name in ("altup_proj", "altup_unembd_proj"):
            t, n = typed("ssm", -1, model.hidden, model.hidden)
            out.append(("tail", f"{name}.{k}", -1, model.hidden, model.hidden, t, n, 0.0))
    return out


def _tail(model: ModelProfile, typed, embd: tuple) -> list:
    t, n = typed("norm", -1, model.hidden, 1)
    out = [("tail", "output_norm", -1, model.hidden, 1, t, n, 0.0)]
    if not model.tied_embeddings:
        t, n = typed("output", -1, model.hidden, model.vocab)
        out.append(("tail", "output", -1, model.hidden, model.vocab, t, n, 0.0))
    else:
        # llama.cpp duplicates a tied embedding as the output layer on the GPU (TENSOR_DUPLICATED).
        out.append(("tail", "output (tied: copy of token_embd)", -1, model.hidden, model.vocab, embd[0], embd[1], 0.0))
    return out


def _walk(model: ModelProfile, recipe: Recipe, quants: QuantTable):
    """Every tensor in llama-quantize's order as (where, name, layer, row, rows, type, nbytes, expert_share);
    where is "embd", "layer" or "tail". Names of block tensors are bare ("attn_q"): blk.{layer}. is implied."""
    per_layer, typed = _setup(model, recipe, quants)
    head = _head(model, typed)
    yield from head
    for i, shapes in enumerate(per_layer):
        for cls, name, row, rows, share in shapes:
            t, n = typed(cls, i, row, rows, name)
            yield "layer", name, i, row, rows, t, n, share
    yield from _tail(model, typed, head[0][5:7])


@lru_cache(maxsize=256)
def tied_output_bytes(model: ModelProfile, recipe: Recipe, quants: QuantTable) -> int:
    """Bytes of the output layer llama.cpp makes of a tied embedding (token_embd's own type and size; 0 untied),
    without listing every tensor."""
    if not model.tied_embeddings:
        return 0
    _, typed = _setup(model, recipe, quants)
    return _head(model, typed)[0][6]


def tensor_list(model: ModelProfile, recipe: Recipe, quants: QuantTable) -> tuple[Tensor, ...]:
    """The per-tensor inventory with llama.cpp names (for explaining or comparing with a GGUF file)."""
    return tuple(Tensor(f"blk.{layer}.{name}" if where == "layer" else name, layer, row, rows, t, n, share)
                 for where, name, layer, row, rows, t, n, share in _walk(model, recipe, quants))


# Layouts computed earlier (advisor/apps keeps them in the parsed-data cache between runs), by (model, recipe
# name): consulted before computing. Pure data handed in; the core reads no file.
_KNOWN: dict = {}


def remember_layouts(layouts: dict) -> None:
    """Hand in layouts computed before, keyed by (ModelProfile, recipe name)."""
    _KNOWN.update(layouts)


def weights_layout(model: ModelProfile, recipe: Recipe, quants: QuantTable) -> WeightsLayout:
    """The weights as tensor groups (see _computed_layout); one handed in by remember_layouts when there is one."""
    known = _KNOWN.get((model, recipe.name))
    return known if known is not None else _computed_layout(model, recipe, quants)


@lru_cache(maxsize=256)  # inputs are immutable; a check grid asks once per KV type
def _computed_layout(model: ModelProfile, recipe: Recipe, quants: QuantTable) -> WeightsLayout:
    """The weights as tensor groups: _walk's sums, without visiting every tensor of every block (it is hot: one
    per model of a grid). Within a block only the counted classes (attn_v, ffn_down) change type from layer to
    layer; the rest of a block of a given shape is summed once and added per layer."""
    acc: dict = {}  # (kind, layer) -> [bytes, bytes read, parameters, parameters read]
    params = 0

    def add(kind, layer, n, read, p, p_read):
        a = acc.get((kind, layer))
        if a is None:
            acc[(kind, layer)] = [n, read, p, p_read]
        else:
            a[0] += n
            a[1] += read
            a[2] += p
            a[3] += p_read

    per_layer, typed = _setup(model, recipe, quants)
    head = _head(model, typed)
    ends = head + _tail(model, typed, head[0][5:7])
    for where, name, layer, row, rows, _t, n, share in ends:
        kind = "embeddings" if where == "embd" else "output"
        if not name.startswith("output (tied"):  # a copy llama.cpp makes, not a parameter
            params += row * rows
        # the tied copy's elements are held and multiplied by (the logits) like an output layer's
        add(kind, -1, n, read_share(kind, n, share), row * rows, read_share(kind, row * rows, share))
    fixed: dict = {}  # id(shapes) -> (per kind [bytes, read, params, params read], params, the counted shapes)
    for i, shapes in enumerate(per_layer):
        block = fixed.get(id(shapes))
        if block is None:
            sums: dict = {}
            counted, block_params = [], 0
            for cls, name, row, rows, share in shapes:
                block_params += row * rows
                kind = group_of(name)
                if cls in _COUNTED_CLASSES:  # its type changes by layer; its parameters do not
                    counted.append((cls, name, row, rows, share, kind, row * rows,
                                    read_share(kind, row * rows, share)))
                    continue
                _t, n = typed(cls, i, row, rows, name)
                s_ = sums.setdefault(kind, [0, 0, 0, 0])
                s_[0] += n
                s_[1] += read_share(kind, n, share)
                s_[2] += row * rows
                s_[3] += read_share(kind, row * rows, share)
            block = fixed[id(shapes)] = (sums, block_params, counted)
        sums, block_params, counted = block
        params += block_params
        for kind, (n, read, p, p_read) in sums.items():
            add(kind, i, n, read, p, p_read)
        for cls, name, row, rows, share, kind, p, p_read in counted:
            _t, n = typed(cls, i, row, rows, name)
            add(kind, i, n, read_share(kind, n, share), p, p_read)
    groups = tuple(TensorGroup(kind, layer, *sums) for (kind, layer), sums in acc.items())
    return WeightsLayout(groups, model.layers, params)
