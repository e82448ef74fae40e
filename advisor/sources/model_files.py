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

from advisor.errors import AdvisorError, ProfileError, UsageError
from advisor.core.model import ModelProfile
from advisor.sources.imported import Imported  # noqa: F401 (re-exported)
from advisor.sources.user_models import USER_MODELS_ENV, user_models_dir, user_profile_files  # noqa: F401


CONFIG_JSON = "config.json"
# Profile fields written to a user profile, in this order (the rest keep their defaults).
_WRITTEN = ("id", "name", "layers", "hidden", "heads", "kv_heads", "head_dim", "intermediate", "vocab",
            "max_context", "attention", "tied_embeddings", "qkv_bias", "norms_per_layer", "sliding_window",
            "global_every", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim",
            "experts", "experts_active", "shared_experts", "expert_intermediate", "dense_layers", "source")


_OFFLINE = [False]  # the CLI's --offline (set_offline); HF_HUB_OFFLINE and ADVISOR_OFFLINE count too
OFFLINE_ENV = "ADVISOR_OFFLINE"


def set_offline(flag: bool) -> None:
    """--offline for the models this process resolves next: remote names only from the local caches. Also forgets
    the remote answers resolved so far in this process (a new command asks afresh)."""
    _OFFLINE[0] = bool(flag)
    _load_remote.cache_clear()


def offline() -> bool:
    return _OFFLINE[0] or os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def looks_like_path(name: str) -> bool:
    """Whether `name` may be something to import (a file, a Hugging Face repo, an Ollama model) rather than only a
    profile id: the commands print the warnings of such names. Cheap: no file is read, no network."""
    if name.lower().endswith((".json", ".gguf")) or os.sep in name or "/" in name or ":" in name:
        return True
    try:
        return Path(name).is_dir()
    except (OSError, ValueError):  # a name longer than the file-name limit, or with a NUL: no path
        return False


def _explicit_path(name: str) -> bool:
    """Written as a file path: a model name never looks like this."""
    return (name.lower().endswith((".json", ".gguf")) or name.startswith(("/", "./", "../", "~", ".\\"))
            or (os.sep != "/" and os.sep in name) or (os.altsep is not None and os.altsep != "/" and os.altsep in name))


def remote_ref(name: str):
    """A HubRef or OllamaRef when `name` is written as a remote model, else None (pure parsing, nothing imported
    beyond the two small modules)."""
    from advisor.sources import hub, ollama_store

    ref = hub.parse_name(name)
    if ref is not None:
        return ref
    return ollama_store.parse_name(name)


def load_model(name: str) -> Imported:
    """What a model name means, in this order: a local path that exists (config.json, a folder holding one, a
    .gguf); a shipped or user profile by id, name or alias (so `Qwen/Qwen3-30B-A3B` or `gpt-oss:120b` is the shipped
    profile); a Hugging Face repo (ORG/NAME[@REV], ORG/REPO-GGUF:QUANT, hf.co/ORG/REPO:QUANT); an Ollama model
    (NAME:TAG, ollama:NAME:TAG). A name with an explicit prefix (hf.co/, ollama:) skips the profiles."""
    path = Path(name).expanduser()
    if _explicit_path(name) or _path_exists(path):
        return import_file(path)
    ref = remote_ref(name) if ("/" in name or ":" in name) else None
    if ref is None and ("/" in name or os.sep in name):
        return import_file(path)  # a/b/c: a path, and there is no such file
    unknown = None
    if ref is None or not ref.explicit:
        from advisor.sources.profiles import load_registry

        try:
            return Imported(load_registry().model(name), ())
        except UsageError as exc:
            if ref is None:
                raise
            unknown = exc
    try:
        return _load_remote(ref, offline(), None, _environment())
    except AdvisorError as exc:
        from advisor.sources.hub import NotFound, Uncached

        hint = str(unknown).partition("; ")[2] if unknown is not None else ""
        if isinstance(exc, (NotFound, Uncached)) and hint.startswith("did you mean"):
            raise type(exc)(f"{exc}; not a profile either: {hint}") from None  # perhaps a typo of a profile name
        raise


def import_source(name: str, model_id: str | None = None) -> Imported:
    """`advisor import NAME`: a local file, else a remote model (never a shipped profile: importing one means
    reading the file or the repo)."""
    path = Path(name).expanduser()
    if _explicit_path(name) or _path_exists(path):
        return import_file(path, model_id)
    ref = remote_ref(name)
    if ref is None:
        return import_file(path, model_id)  # says: no such file
    return _load_remote(ref, offline(), model_id, _environment())


def _path_exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long for a path, or with a NUL
        return False


def _environment() -> tuple:
    from advisor.sources.hub import environment_key

    return environment_key()


@lru_cache(maxsize=64)
def _load_remote(ref, offline_: bool, model_id: str | None, _environment_key: tuple) -> Imported:
    """Once per process and environment: a command asks again (for the warnings) without fetching twice."""
    from advisor.sources import hub, ollama_store

    if isinstance(ref, hub.HubRef):
        if ref.ollama_host and ref.quant:  # hf.co/ORG/REPO:QUANT that `ollama pull` already fetched
            org, repo = ref.repo.split("/")
            manifest = ollama_store.local_manifest("hf.co", org, repo, ref.quant)
            if manifest is not None:
                oref = ollama_store.OllamaRef("hf.co", org.lower(), repo.lower(), ref.quant, True)
                return ollama_store.load_local(oref, manifest, model_id)
        return hub.load(ref, offline_, model_id)
    return ollama_store.load(ref, offline_, model_id)


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
    """Whether the file starts like a GGUF. Opened as the readers open files: a FIFO or a device is refused here
    (one line) instead of blocking the sniff."""
    from advisor.sources.files import open_regular

    try:
        fd = open_regular(path)
    except FileNotFoundError:
        return False
    try:
        return os.read(fd, 4) == b"GGUF"
    except OSError:
        return False
    finally:
        os.close(fd)


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
    """Write the profile as `<id>.toml` in the user folder, atomically: a reader sees the old file or the whole new
    one, never a part. Without `force` the name is claimed create-exclusive, so of two imports of one id at once
    exactly one succeeds and the other is told it exists."""
    folder = user_models_dir()
    path = folder / f"{imported.profile.id}.toml"
    if not force and os.path.lexists(path):
        raise _exists(imported.profile.id, path)
    text = profile_toml(imported.profile, origin)
    from advisor.sources.profiles import parse_model_file

    parse_model_file(text, str(path))  # what we write must load back
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, text.encode("utf-8"), replace=force)
    except FileExistsError:
        raise _exists(imported.profile.id, path) from None
    except OSError as exc:
        raise ProfileError(f"{path}: cannot write the profile ({exc.strerror or exc})") from None
    return path


def _exists(model_id: str, path: Path) -> UsageError:
    return UsageError(f"a user profile '{model_id}' exists ({path}); --force replaces it, --name picks another id")


def _write_atomic(path: Path, data: bytes, replace: bool) -> None:
    """A unique temp file beside `path` (mkstemp: O_CREAT|O_EXCL, mode 0600 then the umask's), written and fsynced,
    then put in place: os.replace when replacing, else os.link, which fails with FileExistsError if the name was
    taken meanwhile (rename would silently overwrite). A file system without hard links gets an O_EXCL claim of the
    name and a rename over it. The folder is fsynced so the new name survives a crash; the temp file never stays."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            os.fchmod(fd, 0o666 & ~_umask())
        except (AttributeError, OSError):
            pass  # Windows, or a file system without modes
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError:  # no hard links here (FAT, some network file systems): claim the name, then rename
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                os.replace(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass  # renamed away, or never made
    _fsync_dir(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # Windows cannot open a folder: its rename is durable enough
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
