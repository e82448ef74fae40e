"""Load and validate the data under profiles/ into frozen dataclasses.

Model profiles (profiles/models/*.toml), element types and quantization recipes
(profiles/quants.toml). Every check names the file and the field, so a malformed file gives one
clear line. Data is found through the installed `advisor.data` package, so a wheel works anywhere.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import field
from functools import lru_cache
from pathlib import Path

from advisor.core.formats import ElementType, QuantTable, Recipe
from advisor.core.model import ATTENTION_KINDS, LAYER_KINDS, ModelProfile
from advisor.core.record import record
from advisor.errors import ProfileError, suggest

MAX_LAYERS = 4096  # real models have at most a few hundred blocks; more is a corrupt file, and costs a walk per layer
MAX_INT_FIELD = 1 << 40  # any size or count (2^40 elements in one dimension): beyond it a file is corrupt
MAX_FLOAT_FIELD = 1e15  # a parameter count: a quadrillion; beyond it a file is corrupt


# ---------------------------------------------------------------- validation helpers

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_REQUIRED = ("id", "layers", "hidden", "heads", "vocab", "max_context", "source")


def _check_type(where: str, key: str, value, kind):
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        raise ProfileError(f"{where}: field '{key}' must be {kind.__name__}, got {value!r}")
    if kind is int and value > MAX_INT_FIELD:
        raise ProfileError(f"{where}: field '{key}' is implausibly large ({value.bit_length()}-bit integer; at most "
                           "2^40)")
    if kind is float:
        import math

        try:
            number = float(value)
        except OverflowError:  # an integer beyond float's range
            number = math.inf
        if not math.isfinite(number):
            got = f"a {value.bit_length()}-bit integer" if isinstance(value, int) else repr(value)
            raise ProfileError(f"{where}: field '{key}' must be a finite number, got {got}")
        if number > MAX_FLOAT_FIELD:
            raise ProfileError(f"{where}: field '{key}' is implausibly large ({number:g}; at most {MAX_FLOAT_FIELD:g})")


def _model_from_table(table: dict, where: str, architecture: str, bases: dict) -> ModelProfile:
    known = {f.name for f in dataclasses.fields(ModelProfile)}
    for key in table:
        if key not in known or key in ("origin", "architecture"):
            raise ProfileError(f"{where}: unknown field '{key}'")
    merged: dict = {}
    if "base" in table:
        base = bases.get(table["base"])
        if base is None:
            raise ProfileError(f"{where}: field 'base' names unknown model '{table['base']}'")
        merged.update(dataclasses.asdict(base))
        merged.update(aliases=(), what_if="", params_reference=base.params_reference)
    merged.update(table)
    merged["architecture"] = architecture
    for key in _REQUIRED:
        if key not in merged:
            raise ProfileError(f"{where}: missing field '{key}'")
    merged.setdefault("name", merged["id"])
    merged.setdefault("kv_heads", merged["heads"])
    merged.setdefault("head_dim", merged["hidden"] // merged["heads"] if merged["heads"] else 0)
    merged.setdefault("intermediate", 0)
    for f in dataclasses.fields(ModelProfile):
        if f.name not in merged or f.name in ("origin",):
            continue
        value = merged[f.name]
        if f.type == "int":
            _check_type(where, f.name, value, int)
            if value < 0:
                raise ProfileError(f"{where}: field '{f.name}' must not be negative, got {value}")
        elif f.type == "str":
            _check_type(where, f.name, value, str)
        elif f.type == "bool":
            _check_type(where, f.name, value, bool)
        elif f.type == "float":
            _check_type(where, f.name, value, float)
            if value < 0:
                raise ProfileError(f"{where}: field '{f.name}' must not be negative, got {value}")
    for key in ("layers", "hidden", "heads", "kv_heads", "head_dim", "vocab", "max_context"):
        if merged[key] <= 0:
            raise ProfileError(f"{where}: field '{key}' must be positive, got {merged[key]}")
    if merged["layers"] > MAX_LAYERS:
        raise ProfileError(f"{where}: field 'layers' is implausibly large ({merged['layers']}; at most {MAX_LAYERS})")
    if merged.get("attention", "gqa") not in ATTENTION_KINDS:
        raise ProfileError(
            f"{where}: field 'attention' must be one of {', '.join(ATTENTION_KINDS)}, got {merged['attention']!r}"
        )
    if merged["heads"] % merged["kv_heads"]:
        raise ProfileError(f"{where}: field 'kv_heads' must divide heads ({merged['heads']})")
    if merged.get("attention") == "mla" and not (merged.get("kv_lora_rank") and merged.get("qk_rope_head_dim")):
        raise ProfileError(f"{where}: an MLA model needs 'kv_lora_rank' and 'qk_rope_head_dim'")
    if merged.get("experts") and not (merged.get("experts_active") and merged.get("expert_intermediate")):
        raise ProfileError(f"{where}: a MoE model needs 'experts_active' and 'expert_intermediate'")
    if not merged.get("experts") and merged["intermediate"] <= 0:
        raise ProfileError(f"{where}: field 'intermediate' must be positive")
    _check_pattern(merged, where)
    aliases = merged.get("aliases", ())
    if not isinstance(aliases, (list, tuple)) or not all(isinstance(a, str) for a in aliases):
        raise ProfileError(f"{where}: field 'aliases' must be a list of strings")
    merged["aliases"] = tuple(aliases)
    merged["origin"] = where
    return ModelProfile(**merged)


# what each layer kind needs beside the common fields
_KIND_NEEDS = {
    "S": ("sliding_window",),
    "C": ("attention_chunk",),
    "L": ("linear_key_heads", "linear_value_heads", "linear_key_head_dim", "linear_value_head_dim",
          "linear_conv_kernel"),
    "M": ("mamba_heads", "mamba_head_dim", "mamba_state", "mamba_groups", "mamba_conv_kernel"),
    "V": ("conv_cache",),
}


def _check_pattern(merged: dict, where: str) -> None:
    pattern = merged.get("layer_pattern", "")
    if not pattern:
        return
    if len(pattern) != merged["layers"]:
        raise ProfileError(f"{where}: field 'layer_pattern' must have one character per layer ({merged['layers']}),"
                           f" got {len(pattern)}")
    unknown = sorted(set(pattern) - set(LAYER_KINDS))
    if unknown:
        raise ProfileError(f"{where}: field 'layer_pattern' has unknown layer kinds {''.join(unknown)!r}; "
                           f"known: {''.join(LAYER_KINDS)}")
    if pattern[0] == "X":
        raise ProfileError(f"{where}: field 'layer_pattern' starts with a shared layer (X) that has nothing to share")
    for kind in sorted(set(pattern)):
        for key in _KIND_NEEDS.get(kind, ()):
            if not merged.get(key):
                raise ProfileError(f"{where}: layer kind {kind} ({LAYER_KINDS[kind]}) needs field '{key}'")


def model_from_fields(fields: dict, architecture: str, where: str) -> ModelProfile:
    """A validated profile from plain fields (an imported config.json or GGUF header)."""
    return _model_from_table(fields, where, architecture, {})


def parse_model_file(text: str, where: str, bases: dict | None = None) -> list[ModelProfile]:
    """Parse one models/*.toml document. `bases` holds already loaded profiles for `base =`."""
    doc = parse_toml(text, where)
    architecture = doc.get("architecture", "")
    if not isinstance(architecture, str) or not architecture:
        raise ProfileError(f"{where}: missing field 'architecture'")
    tables = doc.get("models")
    if not isinstance(tables, list) or not tables:
        raise ProfileError(f"{where}: missing [[models]] tables")
    known = dict(bases or {})
    out = []
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            raise ProfileError(f"{where}: models[{i}] must be a table")
        model = _model_from_table(table, f"{where} models[{i}] ({table.get('id', '?')})", architecture, known)
        known[model.id] = model
        out.append(model)
    return out


def parse_toml(text: str, where: str) -> dict:
    """A TOML document, or one line naming the file (every data file under profiles/, and user files)."""
    import tomllib  # here: a start-up served from the parsed cache never parses TOML

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{where}: not valid TOML ({exc})") from None
    except RecursionError:  # arrays or tables nested thousands deep
        raise ProfileError(f"{where}: not valid TOML (nested too deeply)") from None
    except ValueError as exc:  # an integer of more than 4300 digits (Python's int conversion limit)
        raise ProfileError(f"{where}: not valid TOML ({str(exc).split(';')[0]})") from None


def table_rows(value, where: str, name: str, header: str = ""):
    """(where, table) for each table of the TOML array of tables `name` (written [[header]], by default
    [[name]]), `where` naming the file and the row ("file: name[2]"): one line naming them when the array is
    absent, empty or holds something else."""
    if not isinstance(value, list) or not value:
        raise ProfileError(f"{where}: {name} must be a non-empty array of tables ([[{header or name}]])")
    for i, row in enumerate(value):
        at = f"{where}: {name}[{i}]"
        if not isinstance(row, dict):
            raise ProfileError(f"{at} must be a table")
        yield at, row


def parse_quant_file(text: str, where: str) -> QuantTable:
    from advisor.core.tensors import RULES  # the rule names _rule_type knows (tensors imports nothing of ours)

    doc = parse_toml(text, where)
    types = {}
    for name, t in doc.get("types", {}).items():
        for key in t:
            if key not in _TYPE_FIELDS:
                raise ProfileError(f"{where}: types.{name}: unknown field '{key}'")
        for key in ("block_elements", "block_bytes"):
            if key not in t:
                raise ProfileError(f"{where}: types.{name}: missing field '{key}'")
        for key in ("block_elements", "block_bytes", "scale_bytes", "scale_rows", "scale_cols"):
            if key not in t:
                continue
            _check_type(f"{where}: types.{name}", key, t[key], int)
            if t[key] <= 0:
                raise ProfileError(f"{where}: types.{name}: field '{key}' must be positive")
        if ("scale_rows" in t or "scale_cols" in t) and "scale_bytes" not in t:
            raise ProfileError(f"{where}: types.{name}: 'scale_rows' / 'scale_cols' need 'scale_bytes'")
        types[name] = ElementType(name, t["block_elements"], t["block_bytes"], bool(t.get("kv", False)),
                                  t.get("scale_bytes", 0), t.get("scale_rows", 1), t.get("scale_cols", 0))
    recipes = {}
    rfields = {f.name for f in dataclasses.fields(Recipe)}
    for name, r in doc.get("recipes", {}).items():
        for key, value in r.items():
            if key not in rfields:
                raise ProfileError(f"{where}: recipes.{name}: unknown field '{key}'")
            if key == "engines":
                if not isinstance(value, list) or not all(isinstance(e, str) for e in value):
                    raise ProfileError(f"{where}: recipes.{name}: field 'engines' must be a list of strings")
                continue
            if key.endswith("_rule"):
                if value not in RULES:
                    raise ProfileError(f"{where}: recipes.{name}: field '{key}' names unknown rule '{value}'; "
                                       f"known: {', '.join(RULES)}")
                continue
            if value not in types:
                raise ProfileError(f"{where}: recipes.{name}: field '{key}' names unknown type '{value}'")
        for key in ("engines", "base", "token_embd", "output"):
            if key not in r:
                raise ProfileError(f"{where}: recipes.{name}: missing field '{key}'")
        recipes[name] = Recipe(name=name, **{**r, "engines": tuple(r["engines"])})
    fallback = dict(doc.get("fallback", {}))
    for src, dst in fallback.items():
        if src not in types or dst not in types:
            raise ProfileError(f"{where}: fallback.{src}: names unknown type '{src if src not in types else dst}'")
    return QuantTable(types=types, recipes=recipes, fallback=fallback)


_TYPE_FIELDS = ("block_elements", "block_bytes", "kv", "scale_bytes", "scale_rows", "scale_cols")


# ---------------------------------------------------------------- the registry

@record
class Registry:
    """Every loaded model profile (shipped and the user's), the quantization table, and the notices loading them
    gave (a user profile that shadows a shipped one)."""

    models: dict  # id -> ModelProfile, in file order
    quants: QuantTable
    notices: tuple[str, ...] = field(default=())

    def model(self, name: str) -> ModelProfile:
        key = name.lower().strip()
        if key in self.models:
            return self.models[key]
        for m in self.models.values():
            if key == m.name.lower() or key in (a.lower() for a in m.aliases):
                return m
        names = list(self.models) + [a for m in self.models.values() for a in m.aliases]
        raise suggest(name, names, "model")


# A source checkout (tests run against it, or `python -m advisor` from the repo) has the data beside
# the package instead of installed as advisor.data.
_CHECKOUT_PROFILES = Path(__file__).resolve().parent.parent.parent / "profiles"


def _profiles_root() -> Path:
    """The data directory. Wheels install packages as directories, so the package's folder is the data;
    importlib.resources would work for zipped installs too but costs ~5 ms of imports at every start."""
    try:
        import advisor.data

        return Path(advisor.data.__file__).parent
    except ModuleNotFoundError:
        if _CHECKOUT_PROFILES.is_dir():
            return _CHECKOUT_PROFILES
        raise ProfileError("advisor's data files (advisor.data) are not installed; reinstall the package") from None


def _read_models(root) -> dict:
    models: dict = {}
    files = sorted((p for p in root.joinpath("models").iterdir() if p.name.endswith(".toml")), key=lambda p: p.name)
    for path in files:
        for model in parse_model_file(path.read_text(encoding="utf-8"), f"profiles/models/{path.name}", models):
            if model.id in models:
                raise ProfileError(f"profiles/models/{path.name}: duplicate model id '{model.id}'")
            models[model.id] = model
    return models


def _add_user_models(models: dict) -> tuple[str, ...]:
    """The user's profiles (advisor import) on top of the shipped ones; returns the shadowing notices."""
    from advisor.sources.user_models import user_profile_files

    shipped = set(models)
    notices = []
    for path in user_profile_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(f"{path}: cannot read ({exc})") from None
        for model in parse_model_file(text, str(path), models):
            if model.id in shipped:
                notices.append(f"user profile '{model.id}' ({path}) shadows the shipped one")
            models[model.id] = model
    return tuple(notices)


@lru_cache(maxsize=1)
def load_registry() -> Registry:
    """The shipped profiles plus the user's, loaded once per process (parsed once per change of the files)."""
    from advisor.sources.user_models import user_profile_files
    from advisor.sources.parsed_cache import cached

    root = _profiles_root()
    models_dir = root.joinpath("models")
    files = [root / "quants.toml", *(models_dir / f for f in os.listdir(models_dir) if f.endswith(".toml")),
             *user_profile_files()]
    return cached("registry", files, _build_registry)


def _build_registry() -> Registry:
    root = _profiles_root()
    quants = parse_quant_file(root.joinpath("quants.toml").read_text(encoding="utf-8"), "profiles/quants.toml")
    models = _read_models(root)
    notices = _add_user_models(models)
    seen: dict[str, str] = {}
    for m in models.values():
        for name in (m.id, m.name, *m.aliases):
            key = name.lower()
            if seen.get(key, m.id) != m.id:
                raise ProfileError(f"{m.origin}: '{name}' already names profile '{seen[key]}'; ids, names and "
                                   "aliases must be unique")
            seen[key] = m.id
    for m in models.values():
        if m.native_quant and m.native_quant.lower() not in {k.lower() for k in quants.recipes}:
            raise ProfileError(f"{m.origin}: field 'native_quant' names unknown recipe '{m.native_quant}'")
        if m.release_date and not _DATE.match(m.release_date):
            raise ProfileError(f"{m.origin}: field 'release_date' must be YYYY-MM-DD, got {m.release_date!r}")
    return Registry(models=models, quants=quants, notices=notices)


def profiles_path() -> Path:
    return _profiles_root()
