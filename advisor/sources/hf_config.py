"""A Hugging Face config.json -> a ModelProfile, by the fields that matter for memory and speed.

Field names are those transformers' config classes use; what a config may leave out comes from
profiles/hf_types.toml (the class defaults). An unknown model_type with the standard fields is read as a
generic llama-like decoder, with a warning. Every problem is one ProfileError naming the file and field.
Pure functions apart from reading the file (and its safetensors index, when one lies beside it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from advisor.errors import ProfileError
from advisor.core.model import ModelProfile
from advisor.sources.profiles import model_from_fields

SAFETENSORS_INDEX = "model.safetensors.index.json"
# Bytes per parameter of the checkpoint dtype (config.json `torch_dtype`), to turn a safetensors index's
# total_size into a parameter count.
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float8_e4m3fn": 1}
PARAMS_AGREEMENT = 0.02  # computed vs checkpoint parameter count: warn beyond 2% (norms/biases we skip are <0.1%)
KNOWN_LAYER_TYPES = ("full_attention", "sliding_attention")  # transformers' layer_types values for attention
MAX_FIELD_VALUE = 1 << 40  # larger sizes are corrupt, not a model (2^40 elements in one dimension)


@dataclass(frozen=True)
class Imported:
    """A profile read from a file, with what the reader noticed along the way."""

    profile: ModelProfile
    warnings: tuple[str, ...]
    weights: object = None  # a WeightsLayout when the file fixes the weights (GGUF), else None
    quant: str = ""  # the file's weight type (GGUF), else ""


@dataclass(frozen=True)
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
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProfileError(f"{path}: not UTF-8 text; a config.json is JSON") from None
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
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


def profile_from_config(cfg: dict, where: str, model_id: str, types: dict[str, HFType] | None = None
                        ) -> Imported:
    types = types if types is not None else load_hf_types()
    cfg = _text_config(cfg)
    model_type = cfg.get("model_type")
    warnings: list[str] = []
    if not isinstance(model_type, str) or not model_type:
        model_type = ""
    kind = types.get(model_type)
    if kind is None:
        kind = HFType("llama", {})
        warnings.append(f"model_type {model_type or '(missing)'!r} is not one advisor knows; read as a generic "
                        "llama-like decoder from its standard fields")
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
    experts = f.int("n_routed_experts", required=False) or f.int("num_local_experts", required=False) \
        or f.int("num_experts", required=False)
    if experts and experts > 1:
        expert_ff = f.int("moe_intermediate_size", required=False) or f.int("intermediate_size")
        shared_ff = f.int("shared_expert_intermediate_size", required=False, minimum=0) or 0
        shared = f.int("n_shared_experts", required=False, minimum=0) or (-(-shared_ff // expert_ff) if shared_ff else 0)
        fields.update(experts=experts, experts_active=f.int("num_experts_per_tok"), expert_intermediate=expert_ff,
                      shared_experts=shared, dense_layers=f.int("first_k_dense_replace", required=False, minimum=0) or 0,
                      intermediate=f.int("intermediate_size", required=False) or expert_ff)
        if fields["experts_active"] > experts:
            _fail(where, "num_experts_per_tok", f"must not exceed the {experts} experts")
    else:
        fields["intermediate"] = f.int("intermediate_size")
    if f.cfg.get("kv_lora_rank"):
        fields.update(attention="mla", kv_heads=heads, kv_lora_rank=f.int("kv_lora_rank"),
                      q_lora_rank=f.int("q_lora_rank", required=False, minimum=0) or 0,
                      qk_rope_head_dim=f.int("qk_rope_head_dim"), qk_nope_head_dim=f.int("qk_nope_head_dim"),
                      v_head_dim=f.int("v_head_dim"))
    else:
        window, every = _sliding(f, kind, layers, warnings)
        if window:
            fields.update(sliding_window=window, global_every=every)
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
            total = json.loads(index.read_text(encoding="utf-8"))["metadata"]["total_size"]
            claimed = total // DTYPE_BYTES.get(cfg.get("torch_dtype"), 2)
            basis = f"{SAFETENSORS_INDEX} total_size / {DTYPE_BYTES.get(cfg.get('torch_dtype'), 2)} bytes"
        except (OSError, ValueError, KeyError, TypeError):
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
