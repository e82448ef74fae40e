"""Models named the way people's tools name them, read from the Hugging Face Hub without downloading weights.

    Qwen/Qwen3-30B-A3B[@REVISION]          config.json (+ the safetensors headers: exact parameter count, dtypes)
    unsloth/gpt-oss-120b-GGUF:Q4_K_M       the GGUF file(s) of that quant: the header only, by HTTP range requests
    hf.co/ORG/REPO:QUANT                   the same (Ollama's spelling; llama.cpp's -hf takes ORG/REPO:QUANT)

Everything goes through the huggingface_hub library (imported only here, inside the functions that fetch), so
HF_ENDPOINT, HF_TOKEN (or `hf auth login`), HF_HOME / HF_HUB_CACHE and HF_HUB_OFFLINE mean what they mean for every
other Hugging Face tool; config.json and model.safetensors.index.json land in its normal cache. What advisor reads
(the config, the parameter counts, a GGUF's metadata and tensor table) is also kept as one small JSON record per
name in advisor's own cache directory (platformdirs), so the same question works offline (`--offline` forces it)
and `advisor models --remote` lists them. GGUF quant selection follows llama.cpp's -hf rules (common/download.cpp
find_best_model at ggml-org/llama.cpp@0216dab3): the first model file (not mmproj / imatrix / mtp) whose path
contains QUANT followed by '.' or '-', case-insensitively; the first part of a split file, then every part with the
same prefix and part count.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

from advisor.core.record import record
from advisor.errors import AdvisorError, ProfileError, UsageError

DEFAULT_ENDPOINT = "https://huggingface.co"
PREFIXES = ("https://huggingface.co/", "http://huggingface.co/", "https://hf.co/", "http://hf.co/", "huggingface.co/",
            "hf.co/", "hf://")
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
HUB_NAME = re.compile(rf"^(?P<repo>{_PART}/{_PART})(?:@(?P<revision>[^\s:@]+))?(?::(?P<quant>[A-Za-z0-9._-]+))?$")
CONFIG = "config.json"
SAFETENSORS_INDEX = "model.safetensors.index.json"
SAFETENSORS_SINGLE = "model.safetensors"
CONNECT_TIMEOUT = 10.0  # seconds: huggingface_hub's own HF_HUB_ETAG_TIMEOUT default
READ_TIMEOUT = 60.0
RECORD_FORMAT = 1  # bump when a cached record changes shape
SAFETENSORS_WORKERS = 8
GGUF_WORKERS = 4
FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}  # a safetensors element is one parameter only for these
# llama.cpp common/download.cpp get_gguf_split_info and gguf_filename_is_model
SPLIT = re.compile(r"^(.+)-([0-9]{5})-of-([0-9]{5})$", re.IGNORECASE)
TAG = re.compile(r"[-.]([A-Z0-9_]+)$", re.IGNORECASE)
NOT_MODEL = ("mmproj", "imatrix", "mtp-", "eagle3-", "dflash-", "dspark-")
NO_QUANT = ("", "latest")  # Ollama's hf.co/ORG/REPO:latest means "the default file"


@record
class HubRef:
    repo: str
    revision: str | None = None
    quant: str | None = None
    explicit: bool = False  # written with an hf.co/ (or similar) prefix: never a profile alias
    ollama_host: bool = False  # written hf.co/...: Ollama may have pulled it into its local store

    @property
    def key(self) -> str:
        return f"hf:{self.repo}@{self.revision or 'main'}" + (f":{self.quant.upper()}" if self.quant else "")

    def __str__(self) -> str:
        return self.repo + (f"@{self.revision}" if self.revision else "") + (f":{self.quant}" if self.quant else "")


def parse_name(name: str) -> HubRef | None:
    """A Hugging Face repo reference, or None when `name` is not written like one (no network, no imports)."""
    text = name.strip()
    explicit = False
    ollama_host = False
    for prefix in PREFIXES:
        if text.lower().startswith(prefix):
            ollama_host = prefix.rstrip("/").lower().endswith("hf.co")
            text, explicit = text[len(prefix):], True
            break
    m = HUB_NAME.match(text)
    if not m or ".." in m["repo"] or "--" in m["repo"]:
        return None
    quant = m["quant"]
    if quant is not None and quant.lower() in NO_QUANT:
        quant = None
    return HubRef(m["repo"], m["revision"], quant, explicit, ollama_host)


# ---------------------------------------------------------------- the environment, read when asked (not at import)

def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in ("1", "ON", "YES", "TRUE")


def env_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE), as huggingface_hub reads it."""
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE"))


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hf_cache_dir() -> str:
    """huggingface_hub's cache folder (constants.HF_HUB_CACHE), computed now: the library reads it once, at import."""
    given = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if given:
        return os.path.expandvars(os.path.expanduser(given))
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return os.path.join(os.path.expandvars(os.path.expanduser(home)), "hub")


def environment_key() -> tuple:
    """What a remote answer depends on besides the name: an in-process cache must not outlive a change of these."""
    return tuple(os.environ.get(k) for k in ("HF_ENDPOINT", "HF_TOKEN", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE",
                                             "XDG_CACHE_HOME", "OLLAMA_MODELS", "ADVISOR_OLLAMA_REGISTRY", "HOME"))


# ---------------------------------------------------------------- advisor's record of what it read

def records_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("advisor", appauthor=False)) / "remote"


def _record_path(key: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:80]
    return records_dir() / f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.json"


def read_record(key: str) -> dict | None:
    try:
        with open(_record_path(key), encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT or record.get("key") != key:
        return None
    return record if _well_formed(record) else None


def _well_formed(record: dict) -> bool:
    """A record advisor wrote: anything else (edited, cut short, another version's) is as if absent."""
    if not isinstance(record.get("where"), str) or not isinstance(record.get("name_hint"), str):
        return False
    if record.get("kind") == "config":
        return isinstance(record.get("config"), dict)
    if record.get("kind") == "gguf":
        tensors = record.get("tensors")
        return isinstance(record.get("metadata"), dict) and isinstance(tensors, list) and all(
            isinstance(t, list) and len(t) == 4 and isinstance(t[0], str) and isinstance(t[1], str)
            and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in t[2:]) for t in tensors)
    return False


def write_record(key: str, record: dict) -> None:
    """Atomically (a temporary file renamed into place); a cache that cannot be written is not an error."""
    record = {**record, "format": RECORD_FORMAT, "key": key,
              "fetched": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path = _record_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def cached_records() -> list[dict]:
    """Every readable record, newest first (`advisor models --remote`)."""
    folder = records_dir()
    out = []
    try:
        paths = sorted(folder.glob("*.json"))
    except OSError:
        return []
    for path in paths:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (isinstance(record, dict) and record.get("format") == RECORD_FORMAT and isinstance(record.get("key"), str)
                and _well_formed(record)):
            out.append({**record, "path": str(path)})
    return sorted(out, key=lambda r: str(r.get("fetched", "")), reverse=True)


def cached_note(record: dict, why: str) -> str:
    return f"{why}: the answer cached on {str(record.get('fetched', '?'))[:10]} from {record.get('source', '?')}"


# ---------------------------------------------------------------- records -> profiles

def from_record(record: dict, model_id: str | None, notes=()) -> "Imported":
    """The Imported a record describes (a config.json, or a GGUF's metadata and tensor table)."""
    from dataclasses import replace

    where = record["where"]
    if record["kind"] == "config":
        from advisor.sources.hf_config import profile_from_config

        cfg = record["config"]
        imported = profile_from_config(cfg, where, model_id or _clean_id(record["name_hint"]))
        checked = _safetensors_check(imported.profile, cfg, record.get("safetensors"))
        return replace(imported, warnings=imported.warnings + tuple(checked) + tuple(notes))
    from advisor.sources.gguf_file import profile_from_gguf
    from advisor.sources.hf_config import default_id

    hint = record["name_hint"]
    imported = profile_from_gguf(record["metadata"], [tuple(t) for t in record["tensors"]], where,
                                 model_id or default_id(Path(hint + ".gguf")), hint)
    return replace(imported, warnings=imported.warnings + tuple(notes))


def _clean_id(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-._" else "-" for c in name.strip().lower()).strip("-.")
    return cleaned or "imported-model"


def _safetensors_check(profile, cfg: dict, st: dict | None) -> list[str]:
    """The parameter count computed from the architecture against the safetensors headers' exact count, when the
    config does not state one (hf_config checks num_parameters itself) and every tensor is a float type."""
    from advisor.sources.hf_config import PARAMS_AGREEMENT

    if not st or not st.get("parameters") or isinstance(cfg.get("num_parameters"), int):
        return []
    counts = st["parameters"]
    if not set(counts) <= FLOAT_DTYPES or any(isinstance(cfg.get(k), dict) for k in ("vision_config", "audio_config")):
        return []  # packed integer or fp8 tensors (with scales) are not one parameter per element
    from advisor.core.tensors import weights_layout
    from advisor.sources.profiles import load_registry

    quants = load_registry().quants
    computed = weights_layout(profile, quants.recipe("BF16"), quants).params
    claimed = sum(counts.values())
    off = computed / claimed - 1 if claimed else 0.0
    if abs(off) > PARAMS_AGREEMENT:
        return [f"computed {computed / 1e9:.2f}B parameters, the safetensors headers hold {claimed / 1e9:.2f}B "
                f"({off:+.1%}): some tensors of this architecture are not modelled"]
    return []


# ---------------------------------------------------------------- resolving a name

def load(ref: HubRef, offline: bool = False, model_id: str | None = None) -> "Imported":
    """Resolve `ref`: from the Hub (recording what was read), or from the record when offline or unreachable."""
    offline = offline or env_offline()
    record = read_record(ref.key)
    if offline:
        if record is not None:
            return from_record(record, model_id, (cached_note(record, "offline"),))
        record = _from_hf_cache(ref)
        if record is not None:
            return from_record(record, model_id, ("offline: config.json from the Hugging Face cache "
                                                  f"({hf_cache_dir()}); parameter count not cross-checked",))
        raise Uncached(f"{ref}: offline and not in the cache; run it once with the network (the answer is then "
                       "kept for offline use)")
    try:
        fresh = _fetch(ref, record)
    except _Unreachable as exc:
        if record is not None:
            return from_record(record, model_id, (cached_note(record, f"cannot reach {endpoint()} ({exc})"),))
        fallback = _from_hf_cache(ref)
        if fallback is not None:
            return from_record(fallback, model_id, (f"cannot reach {endpoint()} ({exc}): config.json from the "
                                                    f"Hugging Face cache ({hf_cache_dir()})",))
        raise Uncached(f"{ref}: cannot reach {endpoint()} ({exc}) and nothing is cached for it; connect, set "
                       "HF_ENDPOINT to a mirror, or ask again when online") from None
    write_record(ref.key, fresh)
    return from_record(fresh, model_id)


class _Unreachable(Exception):
    """No answer from the endpoint (no network, refused, timed out, offline mode): the cache may answer instead."""


class NotFound(UsageError):
    """No such repo / model where the name points (exit 2, like an unknown profile id)."""


class Uncached(AdvisorError):
    """Offline or unreachable, and nothing cached for the name (exit 1: the environment)."""


def _httpx():
    """The HTTP library huggingface_hub is built on (httpx2 in 2.x, httpx in 1.x)."""
    try:
        import httpx2

        return httpx2
    except ImportError:  # pragma: no cover - huggingface_hub 1.x
        import httpx

        return httpx


def _fail(ref: HubRef, exc: Exception, what: str = "") -> Exception:
    """One-line AdvisorError for a huggingface_hub / HTTP failure; _Unreachable for a network failure."""
    from huggingface_hub import errors

    transport = _httpx().TransportError
    if isinstance(exc, AdvisorError):
        return exc
    if isinstance(exc, (transport, errors.OfflineModeIsEnabled, errors.LocalEntryNotFoundError)):
        reason = type(exc).__name__ if isinstance(exc, transport) else "offline or unreachable"
        detail = str(exc).splitlines()[0][:80] if isinstance(exc, transport) and str(exc) else ""
        return _Unreachable(f"{reason}: {detail}" if detail else reason)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    on = f" {what}" if what else ""
    if isinstance(exc, errors.GatedRepoError) or status in (401, 403):
        gated = isinstance(exc, errors.GatedRepoError)
        kind = "a gated repo" if gated else "private, gated or missing"
        return AdvisorError(f"{ref}: {kind} ({status or 401}{on}): log in with `hf auth login` or set HF_TOKEN to a "
                            "token that has access" + ("; accept the model's terms on its Hub page first" if gated
                                                       else ""))
    if isinstance(exc, errors.RevisionNotFoundError):
        return UsageError(f"{ref}: no revision '{ref.revision or 'main'}' in {ref.repo} on {endpoint()}")
    if isinstance(exc, errors.RepositoryNotFoundError) or status == 404:
        if isinstance(exc, errors.RemoteEntryNotFoundError):
            return ProfileError(f"{ref}: {what or 'a file'} is missing on {endpoint()} (404)")
        return NotFound(f"{ref}: no such file, shipped profile or Hugging Face repo ({endpoint()} says 404)")
    if isinstance(exc, errors.HfHubHTTPError):
        return AdvisorError(f"{ref}: {endpoint()} answered HTTP {status}{on}; try again later")
    if isinstance(exc, ValueError):  # a JSON body that is not JSON
        return ProfileError(f"{ref}: {endpoint()} sent an unreadable answer{on}")
    return AdvisorError(f"{ref}: {type(exc).__name__}{on}: {str(exc).splitlines()[0][:120] if str(exc) else ''}")


def _timeout():
    return _httpx().Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)


def _headers() -> dict:
    from advisor import __version__
    from huggingface_hub.utils import build_hf_headers

    return build_hf_headers(library_name="advisor", library_version=__version__)


def _list_files(ref: HubRef) -> list[dict]:
    """The repo's files at the revision, in the Hub's order: {"path", "size", "sha"} (the tree API, paginated)."""
    from urllib.parse import quote

    from huggingface_hub.utils import get_session, hf_raise_for_status

    url = f"{endpoint()}/api/models/{ref.repo}/tree/{quote(ref.revision or 'main', safe='')}"
    params = {"recursive": "true", "expand": "false"}
    headers = _headers()
    out = []
    try:
        while url:
            response = get_session().get(url, params=params, headers=headers, timeout=_timeout(),
                                         follow_redirects=True)
            hf_raise_for_status(response)
            for entry in response.json():
                if isinstance(entry, dict) and entry.get("type") == "file" and isinstance(entry.get("path"), str):
                    lfs = entry.get("lfs") if isinstance(entry.get("lfs"), dict) else {}
                    out.append({"path": entry["path"], "size": int(entry.get("size") or 0),
                                "sha": str(lfs.get("oid") or entry.get("oid") or "")})
            url, params = response.links.get("next", {}).get("url"), None
    except Exception as exc:
        raise _fail(ref, exc, "listing the files") from None
    return out


def _download(ref: HubRef, filename: str, revision: str | None = None) -> Path:
    """A small file (config.json, the safetensors index) through hf_hub_download, into the Hugging Face cache."""
    from huggingface_hub import hf_hub_download

    from advisor import __version__

    try:
        return Path(hf_hub_download(ref.repo, filename, revision=revision or ref.revision, cache_dir=hf_cache_dir(),
                                    endpoint=endpoint(), library_name="advisor", library_version=__version__,
                                    tqdm_class=_quiet_tqdm()))
    except Exception as exc:
        raise _fail(ref, exc, filename) from None


def _quiet_tqdm():
    from huggingface_hub.utils import tqdm

    class Quiet(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return Quiet


def _read_json(path: Path, where: str) -> dict:
    from advisor.sources.hf_config import read_config

    try:
        return read_config(path)
    except ProfileError as exc:  # name the file as the user knows it, not the cache path
        raise ProfileError(str(exc).replace(str(path), where, 1)) from None


def _commit_of(path: Path) -> str:
    """hf_hub_download's path is .../snapshots/<commit>/<file>."""
    parts = path.parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else ""


def _fetch(ref: HubRef, previous: dict | None) -> dict:
    files = _list_files(ref)
    names = {f["path"] for f in files}
    ggufs = [f for f in files if f["path"].endswith(".gguf") and is_model_gguf(f["path"])]
    if ref.quant or (CONFIG not in names and ggufs):
        if not ggufs:
            raise UsageError(f"{ref}: {ref.repo} holds no GGUF files"
                             + (f" (it has {CONFIG}: name it without ':{ref.quant}')" if CONFIG in names else ""))
        if not ref.quant:
            raise UsageError(f"{ref}: a GGUF repo; name a quant, e.g. {ref.repo}:{_first_quant(ggufs)} "
                             f"({', '.join(f'{q} {_size(size)}' for q, size, _ in quant_list(ggufs))})")
        return _fetch_gguf(ref, files, previous)
    if CONFIG not in names:
        raise ProfileError(f"{ref}: {ref.repo} has no {CONFIG} and no GGUF files: not a model advisor can read")
    return _fetch_config(ref, names, previous)


def _fetch_config(ref: HubRef, names: set, previous: dict | None) -> dict:
    where = f"hf://{ref.repo}@{ref.revision or 'main'}/{CONFIG}"
    path = _download(ref, CONFIG)
    cfg = _read_json(path, where)
    commit = _commit_of(path)
    if previous and previous.get("commit") == commit and previous.get("kind") == "config" and commit:
        safetensors = previous.get("safetensors")
    else:
        safetensors = _safetensors_counts(ref, names, commit or ref.revision)
    return {"kind": "config", "name": str(ref), "repo": ref.repo, "revision": ref.revision or "main",
            "commit": commit, "where": where, "source": f"{endpoint()}/{ref.repo}", "endpoint": endpoint(),
            "name_hint": ref.repo.split("/")[-1], "config": cfg, "safetensors": safetensors}


def _safetensors_counts(ref: HubRef, names: set, revision: str | None) -> dict | None:
    """Parameters per dtype over every shard's header (range requests: only the headers are read)."""
    if SAFETENSORS_INDEX in names:
        index = _read_json(_download(ref, SAFETENSORS_INDEX, revision), f"hf://{ref.repo}/{SAFETENSORS_INDEX}")
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict):
            return None
        shards = sorted({v for v in weight_map.values() if isinstance(v, str) and v in names})
    elif SAFETENSORS_SINGLE in names:
        shards = [SAFETENSORS_SINGLE]
    else:
        return None
    if not shards:
        return None
    from concurrent.futures import ThreadPoolExecutor

    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint(), library_name="advisor")

    def header(shard):
        return api.parse_safetensors_file_metadata(ref.repo, shard, revision=revision, timeout=READ_TIMEOUT)

    try:
        with ThreadPoolExecutor(max_workers=min(SAFETENSORS_WORKERS, len(shards))) as pool:
            metas = list(pool.map(header, shards))
    except Exception as exc:
        from huggingface_hub import errors

        if isinstance(exc, errors.SafetensorsParsingError):
            return None  # a header we cannot parse: no cross-check, not an error
        raise _fail(ref, exc, "reading the safetensors headers") from None
    counts: dict[str, int] = {}
    for meta in metas:
        for dtype, n in meta.parameter_count.items():
            counts[dtype] = counts.get(dtype, 0) + int(n)
    return {"parameters": counts, "shards": len(shards)}


def _from_hf_cache(ref: HubRef) -> dict | None:
    """A config repo answered from huggingface_hub's cache alone (files another tool already downloaded)."""
    if ref.quant:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(ref.repo, CONFIG, cache_dir=hf_cache_dir(), revision=ref.revision)
    if not isinstance(found, str):
        return None
    where = f"hf://{ref.repo}@{ref.revision or 'main'}/{CONFIG}"
    return {"kind": "config", "name": str(ref), "where": where, "name_hint": ref.repo.split("/")[-1],
            "config": _read_json(Path(found), where), "safetensors": None, "source": found}


# ---------------------------------------------------------------- GGUF repos

def split_info(path: str) -> tuple[str, str, int, int]:
    """(prefix, quant tag, part index, part count) of a GGUF path, as llama.cpp's get_gguf_split_info reads it."""
    prefix = path[:-len(".gguf")] if path.endswith(".gguf") else path
    index = count = 1
    m = SPLIT.match(prefix)
    if m:
        prefix, index, count = m[1], int(m[2]), int(m[3])
    t = TAG.search(prefix)
    return prefix, (t[1].upper() if t else ""), index, count


def is_model_gguf(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".gguf") and not any(word in name for word in NOT_MODEL)


def quant_list(ggufs: list[dict]) -> list[tuple[str, int, str]]:
    """(quant tag, bytes over all parts, first path) per GGUF model in the repo, in the repo's order."""
    seen: dict[tuple[str, int], list] = {}
    for f in ggufs:
        prefix, tag, _, count = split_info(f["path"])
        entry = seen.setdefault((prefix, count), [tag or f["path"].rsplit("/", 1)[-1], 0, f["path"]])
        entry[1] += f["size"]
    return [tuple(v) for v in seen.values()]


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def _first_quant(ggufs) -> str:
    tags = [q for q, _, _ in quant_list(ggufs)]
    return "Q4_K_M" if "Q4_K_M" in tags else (tags[0] if tags else "Q4_K_M")


def select_quant(ggufs: list[dict], quant: str) -> list[dict] | None:
    """The file(s) of `quant`: llama.cpp find_best_model + get_split_files; None when no file matches."""
    pattern = re.compile(re.escape(quant) + r"[.-]", re.IGNORECASE)
    for f in ggufs:
        if not pattern.search(f["path"]):
            continue
        prefix, _, index, count = split_info(f["path"])
        if count > 1 and index != 1:
            continue
        if count <= 1:
            return [f]
        parts = {split_info(g["path"])[2]: g for g in ggufs
                 if split_info(g["path"])[0] == prefix and split_info(g["path"])[3] == count}
        return [parts[i] if i in parts else {"path": f"{prefix}-{i:05d}-of-{count:05d}.gguf", "missing": True}
                for i in range(1, count + 1)]
    return None


def range_fetcher(url: str, headers: dict, where: str, counter: list | None = None, commit: list | None = None):
    """fetch(offset, length) over HTTP range requests with huggingface_hub's session (redirects followed, the
    token dropped off-Hub as the library does). A server that ignores Range is read only as far as needed."""
    from huggingface_hub.utils import get_session, hf_raise_for_status

    limit = 64 * 2**20  # reading past this much of a file that ignores Range is downloading it: refuse

    def fetch(offset: int, length: int) -> bytes:
        h = {**headers, "Range": f"bytes={offset}-{offset + length - 1}", "Accept-Encoding": "identity"}
        with get_session().stream("GET", url, headers=h, timeout=_timeout(), follow_redirects=True) as r:
            if r.status_code == 416:
                return b""
            if r.status_code >= 400:
                r.read()
                hf_raise_for_status(r)
            if commit is not None and not commit:
                for resp in (*r.history, r):
                    if resp.headers.get("X-Repo-Commit"):
                        commit.append(resp.headers["X-Repo-Commit"])
                        break
            skip = offset if r.status_code == 200 else 0
            if skip + length > limit and r.status_code == 200:
                raise ProfileError(f"{where}: the server ignores HTTP range requests; reading the header would mean "
                                   "downloading the file")
            out = bytearray()
            for chunk in r.iter_bytes():
                if skip:
                    cut = min(skip, len(chunk))
                    chunk, skip = chunk[cut:], skip - cut
                out += chunk
                if len(out) >= length:
                    break
        if counter is not None:
            counter.append(len(out))
        return bytes(out[:length])

    return fetch


def _fetch_gguf(ref: HubRef, files: list[dict], previous: dict | None) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    from huggingface_hub import hf_hub_url

    from advisor.sources.gguf_file import tensor_rows
    from advisor.sources.gguf_header import read_remote

    ggufs = [f for f in files if f["path"].endswith(".gguf") and is_model_gguf(f["path"])]
    parts = select_quant(ggufs, ref.quant)
    if parts is None:
        raise UsageError(f"{ref}: no {ref.quant} file in {ref.repo}; it has "
                         + ", ".join(f"{q} ({_size(size)})" for q, size, _ in quant_list(ggufs)))
    missing = [p["path"] for p in parts if p.get("missing")]
    if missing:
        raise ProfileError(f"{ref}: split GGUF is missing {', '.join(missing[:3])} in {ref.repo}")
    revision = ref.revision or "main"
    where = f"hf://{ref.repo}@{revision}/{parts[0]['path']}"
    shas = [p["sha"] for p in parts]
    if (previous and previous.get("kind") == "gguf" and previous.get("shas") == shas and all(shas)
            and previous.get("where") == where):
        return {**previous}  # the same files (by their sha256): the header read before still holds
    headers = _headers()
    commit: list = []
    counter: list = []

    def read(part):
        url = hf_hub_url(ref.repo, part["path"], revision=revision, endpoint=endpoint())
        return read_remote(range_fetcher(url, headers, where, counter, commit), f"hf://{ref.repo}@{revision}/"
                           f"{part['path']}", part["size"] or None)

    try:
        with ThreadPoolExecutor(max_workers=min(GGUF_WORKERS, len(parts))) as pool:
            read_headers = list(pool.map(read, parts))
    except Exception as exc:
        raise _fail(ref, exc, parts[0]["path"]) from None
    tensors = [row for h in read_headers for row in tensor_rows(h)]
    name_hint = split_info(parts[0]["path"].rsplit("/", 1)[-1])[0]
    return {"kind": "gguf", "name": str(ref), "repo": ref.repo, "revision": revision,
            "commit": commit[0] if commit else "", "where": where, "source": f"{endpoint()}/{ref.repo}",
            "endpoint": endpoint(), "files": [p["path"] for p in parts], "shas": shas,
            "file_bytes": sum(p["size"] for p in parts), "header_bytes": sum(counter), "name_hint": name_hint,
            "metadata": _jsonable(read_headers[0].metadata), "tensors": [list(t) for t in tensors]}


def _jsonable(meta: dict) -> dict:
    """Metadata a JSON record can hold (every GGUF value type is str, int, float, bool or a list of them)."""
    return {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool, list))}
