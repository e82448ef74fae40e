"""A Hugging Face config.json -> a ModelProfile, by the fields that matter for memory and speed.

Field names are those transformers' config classes use; what a config may leave out comes from
profiles/hf_types.toml (the class defaults). An unknown model_type with the standard fields is read as a
generic llama-like decoder, with a warning. Every problem is one ProfileError naming the file and field.
Pure functions apart from reading the file (and its safetensors index, when one lies beside it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from advisor.core.model import ModelProfile
from advisor.core.record import record
from advisor.errors import AdvisorError, ProfileError
from advisor.sources.imported import Imported  # noqa: F401 (re-exported: where importers built it)
from advisor.sources.profiles import model_from_fields

SAFETENSORS_INDEX = "model.safetensors.index.json"
SAFETENSORS_INDEX_MAX_BYTES = 64 << 20  # a 1T-parameter index lists ~100k tensors in a few MiB
# Bytes per parameter of the checkpoint dtype (config.json `torch_dtype`), to turn a safetensors index's
# total_size into a parameter count.
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float8_e4m3fn": 1}
PARAMS_AGREEMENT = 0.02  # computed vs checkpoint parameter count: warn beyond 2% (norms/biases we skip are <0.1%)
KNOWN_LAYER_TYPES = ("full_attention", "sliding_attention")  # transformers' layer_types values for attention
MAX_FIELD_VALUE = 1 << 40  # larger sizes are corrupt, not a model (2^40 elements in one dimension)




@record
class HFType:
    architecture: str
    defaults: dict
    norms_per_layer: int = 2
    qkv_bias: bool = False
    ignore_sliding_window: bool = False
    sliding_window_pattern: int = 0


def load_hf_types() -> dict[str, HFType]:
    from advisor.sources.profiles import _profiles_root, parse_toml

    where = "profiles/hf_types.toml"
    doc = parse_toml(_profiles_root().joinpath("hf_types.toml").read_text(encoding="utf-8"), where)
    raw = doc.get("types", {})
    out = {}
    for name, t in raw.items():
        if "same_as" in t:
            t = raw.get(t["same_as"]) or _fail(where, f"types.{name}.same_as", "names an unknown type")
        if not isinstance(t.get("architecture"), str):
            raise ProfileError(f"{where}: types.{name}: missing field 'architecture'")
        out[name] = HFType(t["architecture"], dict(t.get("defaults", {})), t.get("norms_per_layer", 2),
                           t.get("qkv_bias", False), t.get("ignore_sliding_window", False),
                           t.get("sliding_window_pattern", 0))
    return out


def _fail(where: str, key: str, why: str):
    raise ProfileError(f"{where}: field '{key}' {why}")


def read_config(path: Path) -> dict:
    """The JSON object of a config.json: a regular file of at most CONFIG_JSON_LIMIT bytes (a FIFO, a device or
    /dev/zero is refused before a byte is read), parsed without RecursionError or int-conversion errors escaping:
    every failure one ProfileError. NaN and Infinity are read as Python's json reads them (transformers writes
    them: Nemotron-H's time_step_limit is [0.0, Infinity]); every field a profile uses is checked finite."""
    from advisor.sources.files import CONFIG_JSON_LIMIT, read_regular

    try:
        raw = read_regular(path, CONFIG_JSON_LIMIT)
    except OSError as exc:  # FileNotFoundError; read_regular turns every other failure into a ProfileError
        raise ProfileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProfileError(f"{path}: not UTF-8 text; a config.json is JSON") from None
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ProfileError(f"{path}: not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # an integer of more than 4300 digits (Python's int conversion limit)
        raise ProfileError(f"{path}: not valid JSON ({str(exc).split(';')[0]})") from None
    if not isinstance(doc, dict):
        raise ProfileError(f"{path}: a config.json holds a JSON object, got {type(doc).__name__}")
    return doc


class _Fields:
    """Typed access to config keys, with the model type's defaults and errors that name the field."""

    def __init__(self, cfg: dict, defaults: dict, where: str):
        self.cfg, self.defaults, self.where = cfg, defaults, where

    def get(self, key: str, fallback=None):
        value = self.cfg.get(key)
        return self.defaults.get(key, fallback) if value is None else value

    def int(self, key: str, required: bool = True, fallback=None, minimum: int = 1) -> int | None:
        value = self.get(key, fallback)
        if value is None:
            if required:
                _fail(self.where, key, "is missing")
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(self.where, key, f"must be an integer, got {value!r}")
        if value < minimum:
            _fail(self.where, key, f"must be at least {minimum}, got {value}")
        if value > MAX_FIELD_VALUE:
            _fail(self.where, key, f"is implausibly large ({value})")
        return value

    def bool(self, key: str, fallback: bool) -> bool:
        value = self.get(key, fallback)
        if not isinstance(value, bool):
            _fail(self.where, key, f"must be true or false, got {value!r}")
        return value


def _text_config(cfg: dict) -> dict:
    """Multimodal configs (Gemma 3, Llama 4, ...) keep the language model under text_config."""
    text = cfg.get("text_config")
    if isinstance(text, dict):
        merged = {k: v for k, v in cfg.items() if k not in ("text_config", "vision_config")}
        merged.update(text)
        merged["model_type"] = cfg.get("model_type") or text.get("model_type")
        return merged
    return cfg


def _max_context(f: _Fields) -> int:
    """max_position_embeddings, stretched by rope scaling when the config gives the original length only."""
    limit = f.int("max_position_embeddings")
    scaling = f.cfg.get("rope_scaling")
    if isinstance(scaling, dict):
        factor, original = scaling.get("factor"), scaling.get("original_max_position_embeddings")
        if isinstance(factor, (int, float)) and not isinstance(factor, bool) and isinstance(original, int) \
                and not isinstance(original, bool) and math.isfinite(factor) and 1 < factor < 1e4 \
                and 0 < original and limit <= original:
            return int(original * factor)
    return limit


def _sliding(f: _Fields, kind: HFType, layers: int, warnings: list) -> tuple[int, int]:
    """(sliding_window, global_every) from layer_types, a pattern or the type's known pattern."""
    window = f.cfg.get("sliding_window", kind.defaults.get("sliding_window"))
    if window is not None:  # validated once here: every branch below compares it with numbers
        window = f.int("sliding_window", fallback=window, minimum=0)
    layer_types = f.cfg.get("layer_types")
    if isinstance(layer_types, list) and layer_types:
        if len(layer_types) != layers or not all(isinstance(t, str) for t in layer_types):
            _fail(f.where, "layer_types", f"must list one attention type per layer ({layers})")
        unknown = sorted({t for t in layer_types if t not in KNOWN_LAYER_TYPES})
        if unknown:
            warnings.append(f"layer_types {', '.join(unknown)} not modelled: counted as full attention (an upper "
                            "bound for linear or recurrent layers)")
        global_at = [i for i, t in enumerate(layer_types) if "sliding" not in t]
        if len(global_at) == layers or not window:
            return 0, 0
        window = f.int("sliding_window")
        if not global_at:
            warnings.append(f"every layer uses a {window}-token sliding window; counted as full-context "
                            "layers (an upper bound)")
            return 0, 0
        every = global_at[0] + 1
        if global_at != list(range(every - 1, layers, every)):
            every = max(1, round(layers / len(global_at)))
            warnings.append(f"layer_types has {len(global_at)} global layers in an irregular order; counted "
                            f"as every {every}th layer global")
        return window, every
    pattern = f.cfg.get("sliding_window_pattern") or kind.sliding_window_pattern
    if window and pattern:
        if isinstance(pattern, bool) or not isinstance(pattern, int) or pattern < 1:
            _fail(f.where, "sliding_window_pattern", f"must be a positive integer, got {pattern!r}")
        return f.int("sliding_window"), pattern
    if window and f.cfg.get("use_sliding_window", True) and not kind.ignore_sliding_window:
        warnings.append(f"sliding_window {window} on every layer: counted as full-context layers (an upper bound)")
    elif window and kind.ignore_sliding_window and f.cfg.get("use_sliding_window", True) \
            and window < _max_context(f):
        warnings.append(f"sliding_window {window}: llama.cpp caches the full context for this architecture, "
                        "and so does this estimate")
    return 0, 0


# Key spellings of the same fact across model types (transformers config classes).
EXPERT_COUNT_KEYS = ("n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts")
ACTIVE_EXPERT_KEYS = ("num_experts_per_tok", "experts_per_token", "moe_k", "top_k_experts")
SHARED_EXPERT_KEYS = ("n_shared_experts", "moe_num_shared_experts")
DENSE_PREFIX_KEYS = ("first_k_dense_replace", "moe_layer_start_index", "num_dense_layers")
MOE_EVERY_KEYS = ("interleave_moe_layer_step", "moe_layer_interval", "decoder_sparse_step")

# Keys that change memory. A config that has one the reader of its model_type does not use is refused: a silent
# full-attention reading of a hybrid model is wrong by 4-12x.
MEMORY_KEYS = ("hybrid_override_pattern", "full_attention_interval", "attention_chunk_size", "num_kv_shared_layers",
               "attn_layer_period", "expert_layer_period", "mamba_num_heads", "mamba_n_heads", "mamba_d_state",
               "ssm_state_size", "linear_num_value_heads", "conv_L_cache", "hidden_size_per_layer_input",
               "index_head_dim", "full_attn_idxs")


def native_format(qc, warnings: list) -> str:
    """The recipe (profiles/quants.toml) of a config's own quantization_config: the format its weights ship in."""
    if not isinstance(qc, dict):
        return ""
    method = str(qc.get("quant_method", "")).lower()
    bits, group = qc.get("bits"), qc.get("group_size")
    if method == "fp8":
        return "FP8-BLOCK" if qc.get("weight_block_size") else "FP8"
    if method == "mxfp4":
        return "MXFP4"
    if method == "awq" and bits == 4:
        return "AWQ"
    if method == "gptq" and bits in (4, 8):
        suffix = {64: "-G64", 32: "-G32"}.get(group, "") if bits == 4 else ""
        return f"GPTQ-INT{bits}{suffix}"
    if method == "modelopt" and "nvfp4" in str(qc.get("quant_algo", "")).lower():
        return "NVFP4"
    if method == "compressed-tensors" and "int8" in json.dumps(qc).lower():
        return "W8A8"
    warnings.append(f"quantization_config {method or '(no quant_method)'} is not a format advisor models; the "
                    "weights are estimated at the --quant you give")
    return ""


def _per_layer_widths(cfg: dict, where: str, warnings: list) -> dict:
    """An intermediate_size given per layer (Gemma 3n) becomes one width: exact when they agree, the widest (an
    upper bound, said) when they do not."""
    widths = cfg.get("intermediate_size")
    if not isinstance(widths, list):
        return cfg
    if not widths or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths):
        _fail(where, "intermediate_size", "must be a positive integer or a list of them")
    if len(set(widths)) > 1:
        warnings.append(f"intermediate_size differs per layer ({min(widths)}-{max(widths)}): every layer counted at "
                        f"{max(widths)} (an upper bound)")
    return {**cfg, "intermediate_size": max(widths)}


def _first_int(f: "_Fields", keys, minimum: int = 1):
    for key in keys:
        if f.get(key) is not None:
            return f.int(key, minimum=minimum)
    return None


def _layer_types(f: "_Fields", layers: int, names: dict) -> str | None:
    """layer_types as a LAYER_KINDS pattern, or None when the config has none; an unknown type is refused."""
    types = f.cfg.get("layer_types")
    if not isinstance(types, list) or not types:
        return None
    if len(types) != layers or not all(isinstance(t, str) for t in types):
        _fail(f.where, "layer_types", f"must list one layer type per layer ({layers})")
    unknown = sorted({t for t in types if t not in names})
    if unknown:
        _fail(f.where, "layer_types", f"has layer types advisor does not model: {', '.join(unknown)}")
    return "".join(names[t] for t in types)


def _qwen3_next(f, layers, fields, warnings) -> dict:
    """Qwen3-Next / Qwen3.5: Gated DeltaNet layers with a full (gated) attention layer every
    full_attention_interval layers (the release has no layer_types key)."""
    pattern = _layer_types(f, layers, {"full_attention": "A", "linear_attention": "L"})
    if pattern is None:
        interval = f.int("full_attention_interval")
        pattern = "".join("A" if (i + 1) % interval == 0 else "L" for i in range(layers))
    return dict(layer_pattern=pattern, attn_output_gate=True,
                linear_key_heads=f.int("linear_num_key_heads"), linear_value_heads=f.int("linear_num_value_heads"),
                linear_key_head_dim=f.int("linear_key_head_dim"),
                linear_value_head_dim=f.int("linear_value_head_dim"),
                linear_conv_kernel=f.int("linear_conv_kernel_dim"))


NEMOTRON_PATTERN = {"M": "M", "*": "A", "-": "F"}  # hybrid_override_pattern: Mamba2, attention, MLP
NEMOTRON_MOE = "E"  # Nemotron-3's MoE layer (transformers NemotronHConfig: "E" -> "moe"), an F layer with experts


def _nemotron_h(f, layers, fields, warnings) -> dict:
    """Nemotron-H: one mixer or MLP per layer (M Mamba2, * attention, - MLP with squared ReLU, no gate)."""
    raw = f.get("hybrid_override_pattern")
    if not isinstance(raw, str) or len(raw) != layers:
        _fail(f.where, "hybrid_override_pattern", f"must have one character per layer ({layers})")
    unknown = sorted(set(raw) - set(NEMOTRON_PATTERN) - {NEMOTRON_MOE})
    if unknown:
        _fail(f.where, "hybrid_override_pattern", f"has layer kinds advisor does not model: {''.join(unknown)}")
    moe = NEMOTRON_MOE in raw
    if moe and "-" in raw:
        _fail(f.where, "hybrid_override_pattern", f"mixes dense MLP (-) and MoE ({NEMOTRON_MOE}) layers, which "
              "advisor's MoE layer rule (every layer past a dense prefix) cannot place")
    if moe and not fields.get("experts"):
        _fail(f.where, "n_routed_experts", f"is needed for the MoE layers ({NEMOTRON_MOE}) of hybrid_override_pattern")
    out = dict(layer_pattern="".join(NEMOTRON_PATTERN.get(c, "F") for c in raw), block_ffn=False,
               ffn_gated=str(f.get("mlp_hidden_act", "relu2")) not in ("relu2",),
               mamba_heads=f.int("mamba_num_heads"), mamba_head_dim=f.int("mamba_head_dim"),
               mamba_state=f.int("ssm_state_size"), mamba_groups=f.int("n_groups"),
               mamba_conv_kernel=f.int("conv_kernel"))
    head_dim = f.int("attention_head_dim", required=False) or f.int("head_dim", required=False)
    if head_dim:
        out["head_dim"] = head_dim
    if moe:  # Nemotron-3: every F layer is an MoE layer; the shared expert's width in units of one expert
        shared_ff = f.int("moe_shared_expert_intermediate_size", required=False, minimum=0) or 0
        out.update(dense_layers=0, moe_every=1,
                   shared_experts=-(-shared_ff // fields["expert_intermediate"]) if shared_ff else 0)
    return out


def _granite_hybrid(f, layers, fields, warnings) -> dict:
    """Granite-4.0-H: Mamba2 and attention layers (layer_types), each with its FFN (MoE or a shared MLP)."""
    pattern = _layer_types(f, layers, {"mamba": "M", "attention": "A"})
    if pattern is None:
        _fail(f.where, "layer_types", "is missing (Granite hybrids list mamba / attention per layer)")
    out = dict(layer_pattern=pattern, mamba_heads=f.int("mamba_n_heads"), mamba_head_dim=f.int("mamba_d_head"),
               mamba_state=f.int("mamba_d_state"), mamba_groups=f.int("mamba_n_groups"),
               mamba_conv_kernel=f.int("mamba_d_conv"))
    shared = f.int("shared_intermediate_size", required=False, minimum=0)
    if shared and not fields.get("experts"):
        out["intermediate"] = shared
    elif shared:  # the shared MLP beside the routed experts, in units of one expert
        out["shared_experts"] = max(1, -(-shared // fields["expert_intermediate"]))
    return out


def _lfm2(f, layers, fields, warnings) -> dict:
    """LFM2: short-convolution layers and attention layers; the FFN width is adjusted as the model code does
    (block_auto_adjust_ff_dim: 2/3, times block_ffn_dim_multiplier, rounded up to block_multiple_of)."""
    pattern = _layer_types(f, layers, {"conv": "V", "full_attention": "A"})
    if pattern is None:
        idxs = f.get("full_attn_idxs")
        if not isinstance(idxs, list) or not all(isinstance(i, int) and 0 <= i < layers for i in idxs):
            _fail(f.where, "full_attn_idxs", "must list the attention layers (or give layer_types)")
        pattern = "".join("A" if i in idxs else "V" for i in range(layers))
    ff = f.int("block_ff_dim", required=False) or f.int("intermediate_size")
    if f.bool("block_auto_adjust_ff_dim", False):
        ff = int(2 * ff / 3)
        multiplier = f.get("block_ffn_dim_multiplier")
        if isinstance(multiplier, (int, float)) and not isinstance(multiplier, bool) and multiplier > 0:
            ff = int(multiplier * ff)
        step = f.int("block_multiple_of", required=False) or 1
        ff = step * -(-ff // step)
    return dict(layer_pattern=pattern, conv_cache=f.int("conv_L_cache"), intermediate=ff)


def _llama4(f, layers, fields, warnings) -> dict:
    """Llama 4: chunked local attention with RoPE, a global NoPE layer every 4th (no_rope_layers when given);
    MoE every interleave_moe_layer_step-th layer with one shared expert, dense layers of intermediate_size_mlp."""
    chunk = f.int("attention_chunk_size")
    flags = f.cfg.get("no_rope_layers")
    if isinstance(flags, list) and len(flags) == layers:
        pattern = "".join("C" if flag else "A" for flag in flags)  # 1: the layer uses RoPE (chunked)
    else:
        pattern = "".join("A" if (i + 1) % LLAMA4_NOPE_EVERY == 0 else "C" for i in range(layers))
    out = dict(layer_pattern=pattern, attention_chunk=chunk)
    if fields.get("experts"):
        out.update(shared_experts=1, intermediate=f.int("intermediate_size_mlp", required=False)
                   or fields["expert_intermediate"])
    return out


def _gemma3n(f, layers, fields, warnings) -> dict:
    """Gemma 3n: sliding / full layers (layer_types), the last num_kv_shared_layers reading the cache of earlier
    layers, per-layer embeddings, LAuReL and AltUp; intermediate_size may be a list (one width per layer)."""
    pattern = _layer_types(f, layers, {"sliding_attention": "S", "full_attention": "A"})
    if pattern is None:
        _fail(f.where, "layer_types", "is missing (Gemma 3n lists sliding / full attention per layer)")
    shared = f.int("num_kv_shared_layers", required=False, minimum=0) or 0
    if shared >= layers:
        _fail(f.where, "num_kv_shared_layers", f"must be fewer than the {layers} layers")
    pattern = pattern[:layers - shared] + "X" * shared
    out = dict(layer_pattern=pattern, sliding_window=f.int("sliding_window"),
               per_layer_input=f.int("hidden_size_per_layer_input", required=False, minimum=0) or 0,
               per_layer_vocab=f.int("vocab_size_per_layer_input", required=False, minimum=0) or 0,
               laurel_rank=f.int("laurel_rank", required=False, minimum=0) or 0,
               altup_streams=f.int("altup_num_inputs", required=False, minimum=0) or 0)
    return out


def _jamba(f, layers, fields, warnings) -> dict:
    """Jamba: Mamba (v1) layers with an attention layer where i % attn_layer_period == attn_layer_offset, and MoE
    layers where i % expert_layer_period == expert_layer_offset (transformers JambaConfig.layers_block_type and
    layers_num_experts). A Mamba1 mixer is read as the M kind with one group: its state is d_inner x d_state per
    sequence as in llama.cpp, and the conv keeps d_conv - 1 inputs of d_inner channels plus 2 x d_state (B and C,
    which Mamba1 computes from x instead of convolving: +0.06 % of the state for Jamba 1.5); the low-rank dt path
    (x_proj, dt_proj) is counted as dt_rank heads of the input projection."""
    period = f.int("attn_layer_period")
    offset = f.int("attn_layer_offset", minimum=0)
    if offset >= period:
        _fail(f.where, "attn_layer_offset", f"must be smaller than attn_layer_period ({period})")
    out = dict(layer_pattern="".join("A" if i % period == offset else "M" for i in range(layers)))
    if fields.get("experts"):
        every = f.int("expert_layer_period")
        first = f.int("expert_layer_offset", minimum=0)
        if every > 1 and first != every - 1:  # advisor's MoE layers: (i + 1) % moe_every == 0
            _fail(f.where, "expert_layer_offset", f"{first} with expert_layer_period {every} is not modelled (MoE "
                  f"layers are read as layers {every - 1}, {2 * every - 1}, ...)")
        out["moe_every"] = every
    d_inner = f.int("mamba_expand") * fields["hidden"]
    dt_rank = f.get("mamba_dt_rank")
    dt_rank = -(-fields["hidden"] // JAMBA_DT_RANK_DIVISOR) if dt_rank == "auto" else f.int("mamba_dt_rank")
    if d_inner % dt_rank:
        _fail(f.where, "mamba_dt_rank", f"must divide the Mamba inner size {d_inner}")
    out.update(mamba_heads=dt_rank, mamba_head_dim=d_inner // dt_rank, mamba_state=f.int("mamba_d_state"),
               mamba_groups=MAMBA1_GROUPS, mamba_conv_kernel=f.int("mamba_d_conv"))
    warnings.append("Mamba (v1) layers read as Mamba2 with one group: the recurrent state is within 0.1 % (B and C "
                    "counted in the conv state), the weights within 0.3 % (x_proj and dt_proj as dt_rank heads)")
    return out


# transformers JambaConfig: mamba_dt_rank "auto" = ceil(hidden_size / 16)
JAMBA_DT_RANK_DIVISOR = 16
MAMBA1_GROUPS = 1  # a Mamba1 mixer has one B and one C for all channels: Mamba2's n_groups = 1


def _falcon_h1(f, layers, fields, warnings) -> dict:
    """Falcon-H1 runs attention and a Mamba2 mixer side by side in every layer: refused (see the message)."""
    raise ProfileError(
        f"{f.where}: model_type 'falcon_h1' runs attention and a Mamba2 mixer in parallel in every layer, so each "
        "layer keeps both a KV cache and a recurrent state and holds both mixers' weights; advisor's layers have one "
        "mixer each (layer_pattern: A or M), so reading it would count only one half. Refusing rather than guessing")


# Llama 4 text model: `use_rope = (layer_idx + 1) % 4 != 0` when no_rope_layers is not given
# (transformers models/llama4/modeling_llama4.py Llama4TextAttention; llama.cpp n_no_rope_layer_step = 4).
LLAMA4_NOPE_EVERY = 4

HYBRID_READERS = {
    "qwen3_next": _qwen3_next, "qwen3_5": _qwen3_next, "qwen3_5_moe": _qwen3_next,
    "nemotron_h": _nemotron_h, "granitemoehybrid": _granite_hybrid,
    "lfm2": _lfm2, "lfm2_moe": _lfm2,
    "llama4": _llama4, "llama4_text": _llama4,
    "gemma3n": _gemma3n, "gemma3n_text": _gemma3n,
    "jamba": _jamba, "falcon_h1": _falcon_h1,
}
# the MEMORY_KEYS each reader consumes
HANDLED_KEYS = {
    "_qwen3_next": {"full_attention_interval", "linear_num_value_heads"},
    "_nemotron_h": {"hybrid_override_pattern", "mamba_num_heads", "ssm_state_size"},
    "_granite_hybrid": {"mamba_n_heads", "mamba_d_state"},
    "_lfm2": {"conv_L_cache", "full_attn_idxs"},
    "_llama4": {"attention_chunk_size"},
    "_gemma3n": {"num_kv_shared_layers", "hidden_size_per_layer_input"},
    "_jamba": {"attn_layer_period", "expert_layer_period", "mamba_d_state"},
}


def handler_keys(model_type: str) -> set:
    reader = HYBRID_READERS.get(model_type)
    keys = set(HANDLED_KEYS.get(reader.__name__, ())) if reader else set()
    return keys | {"index_head_dim"}  # read with MLA above


def _refuse_unmodelled(f: "_Fields", model_type: str, handled: set) -> None:
    present = [k for k in MEMORY_KEYS if f.cfg.get(k) not in (None, 0, [], "") and k not in handled]
    if present:
        raise ProfileError(f"{f.where}: model_type {model_type or '(missing)'!r} has {', '.join(present)}, which "
                           "change the memory a model needs and which advisor does not model for it; refusing "
                           "rather than guessing (a full-attention reading would overstate or miss its cache)")


def profile_from_config(cfg: dict, where: str, model_id: str, types: dict[str, HFType] | None = None
                        ) -> Imported:
    types = types if types is not None else load_hf_types()
    towers = [k for k in ("vision_config", "audio_config") if isinstance(cfg.get(k), dict)]
    cfg = _text_config(cfg)
    model_type = cfg.get("model_type")
    warnings: list[str] = []
    if towers:
        warnings.append(f"{' and '.join(t.split('_')[0] for t in towers)} tower not counted: the language model only "
                        "(add its weights if you feed images or audio)")
    if not isinstance(model_type, str) or not model_type:
        model_type = ""
    kind = types.get(model_type)
    if kind is None:
        kind = HFType("llama", {})
        warnings.append(f"model_type {model_type or '(missing)'!r} is not one advisor knows; read as a generic "
                        "llama-like decoder from its standard fields")
    cfg = _per_layer_widths(cfg, where, warnings)
    f = _Fields(cfg, kind.defaults, where)
    layers = f.int("num_hidden_layers")
    hidden = f.int("hidden_size")
    heads = f.int("num_attention_heads")
    kv_heads = f.int("num_key_value_heads", fallback=heads)
    if heads % kv_heads:
        _fail(where, "num_key_value_heads", f"must divide num_attention_heads ({heads}), got {kv_heads}")
    head_dim = f.int("head_dim", required=False) or (hidden // heads if hidden % heads == 0 else None)
    if head_dim is None:
        _fail(where, "head_dim", f"is missing and hidden_size {hidden} is not a multiple of {heads} heads")
    fields = dict(
        id=model_id, name=str(cfg.get("_name_or_path") or model_id), layers=layers, hidden=hidden, heads=heads,
        kv_heads=kv_heads, head_dim=head_dim, vocab=f.int("vocab_size"), max_context=_max_context(f),
        tied_embeddings=f.bool("tie_word_embeddings", False),
        qkv_bias=kind.qkv_bias or f.bool("attention_bias", False),
        norms_per_layer=kind.norms_per_layer, source=f"imported from {where}",
    )
    experts = _first_int(f, EXPERT_COUNT_KEYS)
    if experts and experts > 1:
        expert_ff = f.int("moe_intermediate_size", required=False) or f.int("intermediate_size")
        shared_ff = f.int("shared_expert_intermediate_size", required=False, minimum=0) or 0
        shared = _first_int(f, SHARED_EXPERT_KEYS, minimum=0) or (-(-shared_ff // expert_ff) if shared_ff else 0)
        active_key = next((k for k in ACTIVE_EXPERT_KEYS if f.get(k) is not None), ACTIVE_EXPERT_KEYS[0])
        fields.update(experts=experts, experts_active=f.int(active_key), expert_intermediate=expert_ff,
                      shared_experts=shared, dense_layers=_first_int(f, DENSE_PREFIX_KEYS, minimum=0) or 0,
                      intermediate=f.int("intermediate_size", required=False) or expert_ff)
        every = _first_int(f, MOE_EVERY_KEYS, minimum=1) or 0
        if every > 1:
            fields["moe_every"] = every
        if fields["experts_active"] > experts:
            _fail(where, active_key, f"must not exceed the {experts} experts")
    else:
        fields["intermediate"] = f.int("intermediate_size")
    if f.cfg.get("kv_lora_rank"):
        fields.update(attention="mla", kv_heads=heads, kv_lora_rank=f.int("kv_lora_rank"),
                      q_lora_rank=f.int("q_lora_rank", required=False, minimum=0) or 0,
                      qk_rope_head_dim=f.int("qk_rope_head_dim"), qk_nope_head_dim=f.int("qk_nope_head_dim"),
                      v_head_dim=f.int("v_head_dim"))
        if f.get("index_head_dim"):  # DeepSeek V3.2 / GLM-5 sparse attention (DSA)
            fields.update(index_head_dim=f.int("index_head_dim"), index_heads=f.int("index_n_heads"))
    else:
        handler = HYBRID_READERS.get(model_type)
        if handler is not None:
            fields.update(handler(f, layers, fields, warnings))
        else:
            window, every = _sliding(f, kind, layers, warnings)
            if window:
                fields.update(sliding_window=window, global_every=every)
    _refuse_unmodelled(f, model_type, handler_keys(model_type))
    native = native_format(cfg.get("quantization_config"), warnings)
    if native:
        fields["native_quant"] = native
    upper = [w for w in warnings if "upper bound" in w]
    if upper:
        fields["upper_bound"] = "; ".join(upper)
    profile = model_from_fields(fields, kind.architecture, where)
    warnings += _check_params(profile, cfg, where)
    return Imported(profile, tuple(warnings))


def _check_params(profile: ModelProfile, cfg: dict, where: str) -> list[str]:
    """Compare the parameter count computed from the architecture with what the checkpoint says, if it says."""
    from advisor.sources.profiles import load_registry
    from advisor.core.tensors import weights_layout

    quants = load_registry().quants
    computed = weights_layout(profile, quants.recipe("BF16"), quants).params
    claimed, basis = cfg.get("num_parameters"), "num_parameters"
    index = Path(where).parent / SAFETENSORS_INDEX
    if not isinstance(claimed, int) and index.is_file():
        try:
            from advisor.sources.files import read_text

            total = json.loads(read_text(index, SAFETENSORS_INDEX_MAX_BYTES))["metadata"]["total_size"]
            claimed = total // DTYPE_BYTES.get(cfg.get("torch_dtype"), 2)
            basis = f"{SAFETENSORS_INDEX} total_size / {DTYPE_BYTES.get(cfg.get('torch_dtype'), 2)} bytes"
        except (OSError, ValueError, KeyError, TypeError, RecursionError, AdvisorError):
            return [f"{index} is unreadable; parameter count not cross-checked"]
    if isinstance(claimed, int) and not isinstance(claimed, bool) and claimed > 0:
        off = computed / claimed - 1
        if abs(off) > PARAMS_AGREEMENT:
            return [f"computed {computed / 1e9:.2f}B parameters, the checkpoint says {claimed / 1e9:.2f}B "
                    f"({basis}, {off:+.1%}): some tensors of this architecture are not modelled"]
    return []


def import_config(path: Path, model_id: str | None = None) -> Imported:
    cfg = read_config(path)
    return profile_from_config(cfg, str(path), model_id or default_id(path, cfg))


def default_id(path: Path, cfg: dict | None = None) -> str:
    """A profile id from the checkpoint name (`_name_or_path`) or the folder the file is in."""
    name = (cfg or {}).get("_name_or_path")
    if not isinstance(name, str) or not name.strip():
        name = path.parent.name if path.name == "config.json" else path.stem
    name = name.strip().rstrip("/").split("/")[-1].lower()
    cleaned = "".join(c if c.isalnum() or c in "-._" else "-" for c in name).strip("-.")
    return cleaned or "imported-model"
