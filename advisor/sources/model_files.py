"""Models from the user's files: a config.json or GGUF named on the command line, and saved user profiles.

`load_model(name)` is what every command calls: a path is imported (config.json, a folder holding one, a
.gguf), anything else is a profile id from the registry (shipped profiles plus the user's own, which live as
TOML in the platformdirs data dir and shadow shipped ones of the same id).
"""

from __future__ import annotations

from dataclasses import dataclass

import json
import os
from functools import lru_cache
from pathlib import Path

from advisor.errors import ProfileError, UsageError
from advisor.core.model import ModelProfile


@dataclass(frozen=True)
class Imported:
    """A profile read from a file, with what the reader noticed along the way."""

    profile: ModelProfile
    warnings: tuple[str, ...]
    weights: object = None  # a WeightsLayout when the file fixes the weights (GGUF), else None
    quant: str = ""  # the file's weight type (GGUF), else ""


USER_MODELS_ENV = "ADVISOR_USER_MODELS"  # another user-profile folder (tests, a shared team folder)
CONFIG_JSON = "config.json"
# Profile fields written to a user profile, in this order (the rest keep their defaults).
_WRITTEN = ("id", "name", "layers", "hidden", "heads", "kv_heads", "head_dim", "intermediate", "vocab",
            "max_context", "attention", "tied_embeddings", "qkv_bias", "norms_per_layer", "sliding_window",
            "global_every", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim",
            "experts", "experts_active", "shared_experts", "expert_intermediate", "dense_layers", "source")


def user_models_dir() -> Path:
    if os.environ.get(USER_MODELS_ENV):
        return Path(os.environ[USER_MODELS_ENV])
    from platformdirs import user_data_dir

    return Path(user_data_dir("advisor")) / "models"


def looks_like_path(name: str) -> bool:
    return name.lower().endswith((".json", ".gguf")) or os.sep in name or "/" in name or Path(name).is_dir()


def load_model(name: str) -> Imported:
    """A registry profile by id/alias, or an imported file when `name` is a path."""
    if looks_like_path(name):
        return import_file(Path(name).expanduser())
    from advisor.sources.profiles import load_registry

    return Imported(load_registry().model(name), ())


def import_file(path: Path, model_id: str | None = None) -> Imported:
    """Import once per file version: a command may ask again (for its warnings) without parsing twice."""
    try:
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = None
    return _import_file(path, model_id, key)


@lru_cache(maxsize=32)
def _import_file(path: Path, model_id: str | None, _version) -> Imported:
    if path.is_dir():
        if not (path / CONFIG_JSON).is_file():
            raise UsageError(f"{path}: a folder needs a {CONFIG_JSON} in it")
        path = path / CONFIG_JSON
    elif not path.exists():
        raise UsageError(f"{path}: no such file")
    if path.name.lower().endswith(".gguf"):
        from advisor.sources.gguf_file import import_gguf

        return import_gguf(path, model_id)
    if _starts_with_gguf_magic(path):
        from advisor.sources.gguf_file import import_gguf

        return import_gguf(path, model_id)
    from advisor.sources.hf_config import import_config

    return import_config(path, model_id)


def _starts_with_gguf_magic(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"GGUF"
    except OSError:
        return False


# ---------------------------------------------------------------- user profiles on disk

def toml_value(value) -> str:
    """A TOML literal for the profile field types (str, bool, int, float, list of str)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # JSON string escapes are TOML basic-string escapes; TOML also wants DEL escaped
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def profile_toml(profile: ModelProfile, origin: str) -> str:
    lines = [f"# advisor user profile, imported from {origin}".replace("\n", " "),
             f"architecture = {toml_value(profile.architecture)}", "", "[[models]]"]
    defaults = ModelProfile(id="", name="", architecture="", layers=1, hidden=1, heads=1, kv_heads=1, head_dim=1,
                            intermediate=1, vocab=1, max_context=1, source="")
    for key in _WRITTEN:
        value = getattr(profile, key)
        if key in ("id", "name", "layers", "hidden", "heads", "kv_heads", "head_dim", "intermediate", "vocab",
                   "max_context", "source") or value != getattr(defaults, key):
            lines.append(f"{key} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def save_user_profile(imported: Imported, origin: str, force: bool = False) -> Path:
    folder = user_models_dir()
    path = folder / f"{imported.profile.id}.toml"
    if path.exists() and not force:
        raise UsageError(f"a user profile '{imported.profile.id}' exists ({path}); --force replaces it, "
                         "--name picks another id")
    text = profile_toml(imported.profile, origin)
    from advisor.sources.profiles import parse_model_file

    parse_model_file(text, str(path))  # what we write must load back
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".toml.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise ProfileError(f"{path}: cannot write the profile ({exc.strerror or exc})") from None
    return path


def user_profile_files() -> list[Path]:
    folder = user_models_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(".toml") and p.is_file())
