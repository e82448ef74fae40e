"""Ollama model names: NAME:TAG (or ollama:[NAMESPACE/]NAME[:TAG]), read as the GGUF header of the model layer.

A model already pulled is read from the local store without the network: $OLLAMA_MODELS, else ~/.ollama/models,
holds manifests/<host>/<namespace>/<name>/<tag> (a Docker-style JSON manifest) and blobs/sha256-<hex>. Otherwise the
registry's manifest (GET /v2/<namespace>/<name>/manifests/<tag>) names the model layer (media type
application/vnd.ollama.image.model, a GGUF blob), whose header is read with HTTP range requests on
/v2/<namespace>/<name>/blobs/<digest>. What was read is recorded in advisor's cache as for Hugging Face names
(hub.py), so the same name works offline. ADVISOR_OLLAMA_REGISTRY replaces https://registry.ollama.ai (a mirror,
the tests' local server).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from advisor.core.record import record
from advisor.errors import AdvisorError, ProfileError

PREFIX = "ollama:"
DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
REGISTRY_ENV = "ADVISOR_OLLAMA_REGISTRY"
MODELS_ENV = "OLLAMA_MODELS"
MODEL_LAYER = "application/vnd.ollama.image.model"
MANIFEST_TYPES = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
MANIFEST_LIMIT = 4 * 2**20
TIMEOUT = 30.0
IGNORED_RANGE_LIMIT = 64 * 2**20  # reading this far into a blob whose server ignores Range is downloading it
_WORD = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
NAME = re.compile(rf"^(?:(?P<host>[A-Za-z0-9.-]+(?::\d+)?)/)??(?:(?P<ns>{_WORD})/)?(?P<model>{_WORD})"
                  rf"(?::(?P<tag>{_WORD}))?$")
BARE = re.compile(rf"^(?P<model>{_WORD}):(?P<tag>{_WORD})$")


@record
class OllamaRef:
    host: str
    namespace: str
    model: str
    tag: str
    explicit: bool = False  # written ollama:...: never a profile alias

    @property
    def key(self) -> str:
        return f"ollama:{self.host}/{self.namespace}/{self.model}:{self.tag}"

    def __str__(self) -> str:
        short = self.model if self.namespace == DEFAULT_NAMESPACE else f"{self.namespace}/{self.model}"
        return (short if self.host == DEFAULT_HOST else f"{self.host}/{short}") + f":{self.tag}"


def parse_name(name: str) -> OllamaRef | None:
    """ollama:[HOST/][NAMESPACE/]NAME[:TAG] (explicit), or a bare NAME:TAG; None for anything else."""
    text = name.strip()
    if text.lower().startswith(PREFIX):
        m = NAME.match(text[len(PREFIX):])
        if not m:
            return None
        host = m["host"]
        if host and "." not in host and ":" not in host and host != "localhost":
            return None  # three segments but the first is no host name
        return OllamaRef((host or DEFAULT_HOST).lower(), (m["ns"] or DEFAULT_NAMESPACE).lower(), m["model"].lower(),
                         m["tag"] or DEFAULT_TAG, True)
    m = BARE.match(text)
    if not m:
        return None
    return OllamaRef(DEFAULT_HOST, DEFAULT_NAMESPACE, m["model"].lower(), m["tag"], False)


def models_dir() -> Path:
    given = os.environ.get(MODELS_ENV)
    return Path(given).expanduser() if given else Path.home() / ".ollama" / "models"


def _registry(host: str) -> str:
    if host == DEFAULT_HOST and os.environ.get(REGISTRY_ENV):
        return os.environ[REGISTRY_ENV].rstrip("/")
    return f"https://{host}"


def local_manifest(host: str, namespace: str, model: str, tag: str) -> Path | None:
    """The manifest file of a pulled model, matched case-insensitively as Ollama names are."""
    folder = models_dir() / "manifests"
    path = folder
    for part in (host, namespace, model, tag):
        candidate = path / part
        if not candidate.exists():
            try:
                candidate = next((p for p in path.iterdir() if p.name.lower() == part.lower()), None)
            except OSError:
                return None
            if candidate is None:
                return None
        path = candidate
    return path if path.is_file() else None


def _model_layer(manifest: dict, where: str) -> dict:
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(layers, list):
        raise ProfileError(f"{where}: the manifest lists no layers")
    for layer in layers:
        if isinstance(layer, dict) and layer.get("mediaType") == MODEL_LAYER and isinstance(layer.get("digest"), str):
            if not re.fullmatch(r"sha256:[0-9a-fA-F]{64}", layer["digest"]):
                raise ProfileError(f"{where}: the model layer's digest is malformed ({layer['digest'][:80]})")
            return layer
    raise ProfileError(f"{where}: the manifest has no model layer ({MODEL_LAYER})")


def load_local(ref: OllamaRef, manifest_path: Path, model_id: str | None) -> "Imported":
    """A model in the local Ollama store: its manifest, then the blob's GGUF header (no network)."""
    from advisor.sources.files import read_regular
    from advisor.sources.gguf_file import profile_from_gguf, tensor_rows
    from advisor.sources.gguf_header import read_file

    where = f"ollama://{ref} ({manifest_path})"
    try:
        manifest = json.loads(read_regular(manifest_path, MANIFEST_LIMIT))
    except (ValueError, UnicodeDecodeError):
        raise ProfileError(f"{manifest_path}: not a readable Ollama manifest (JSON)") from None
    except OSError as exc:
        raise ProfileError(f"{manifest_path}: cannot read ({exc.strerror or exc})") from None
    layer = _model_layer(manifest, str(manifest_path))
    blob = models_dir() / "blobs" / layer["digest"].replace(":", "-")
    if not blob.is_file():
        raise ProfileError(f"{manifest_path}: its model blob {blob.name} is missing from {blob.parent}")
    header = read_file(blob, f"{blob} (ollama {ref})")
    return profile_from_gguf(header.metadata, tensor_rows(header), where, model_id or _default_id(ref), ref.model)


def _default_id(ref: OllamaRef) -> str:
    from advisor.sources.hub import _clean_id

    return _clean_id(f"{ref.model}-{ref.tag}" if ref.tag != DEFAULT_TAG else ref.model)


def load(ref: OllamaRef, offline: bool = False, model_id: str | None = None) -> "Imported":
    """The local store, then the record (offline), then the registry (recorded for next time)."""
    from advisor.sources import hub

    manifest = local_manifest(ref.host, ref.namespace, ref.model, ref.tag)
    if manifest is not None:
        return load_local(ref, manifest, model_id)
    record = hub.read_record(ref.key)
    if offline or hub.env_offline():
        if record is not None:
            return hub.from_record(record, model_id or _default_id(ref), (hub.cached_note(record, "offline"),))
        raise hub.Uncached(f"{ref}: offline, not in the local Ollama store ({models_dir()}) and not cached; run it "
                           "once with the network, or `ollama pull` it")
    try:
        fresh = _fetch(ref, record)
    except _Unreachable as exc:
        if record is not None:
            return hub.from_record(record, model_id or _default_id(ref),
                                   (hub.cached_note(record, f"cannot reach {_registry(ref.host)} ({exc})"),))
        raise hub.Uncached(f"{ref}: cannot reach {_registry(ref.host)} ({exc}), it is not in the local Ollama store "
                           f"({models_dir()}) and nothing is cached for it") from None
    hub.write_record(ref.key, fresh)
    return hub.from_record(fresh, model_id or _default_id(ref))


class _Unreachable(Exception):
    pass


def _open(url: str, headers: dict, what: str, ref: OllamaRef):
    import socket
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "advisor", **headers})
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 404:
            from advisor.sources.hub import NotFound

            raise NotFound(f"{ref}: no such model in the Ollama registry ({_registry(ref.host)} says 404 for "
                             f"{what})") from None
        if exc.code in (401, 403):
            raise AdvisorError(f"{ref}: the registry refused access ({exc.code}) to {what}; a private model needs "
                               "`ollama pull` with your key") from None
        if exc.code == 416:
            return None
        raise AdvisorError(f"{ref}: {_registry(ref.host)} answered HTTP {exc.code} for {what}") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Unreachable(str(reason)[:80] or type(exc).__name__) from None


def _fetch(ref: OllamaRef, previous: dict | None) -> dict:
    from advisor.sources.gguf_file import tensor_rows
    from advisor.sources.gguf_header import read_remote

    base = f"{_registry(ref.host)}/v2/{ref.namespace}/{ref.model}"
    with _open(f"{base}/manifests/{ref.tag}", {"Accept": MANIFEST_TYPES}, "its manifest", ref) as r:
        raw = r.read(MANIFEST_LIMIT + 1)
    if len(raw) > MANIFEST_LIMIT:
        raise ProfileError(f"{ref}: the registry's manifest is larger than {MANIFEST_LIMIT // 2**20} MiB")
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise ProfileError(f"{ref}: the registry's manifest is not JSON") from None
    layer = _model_layer(manifest, f"ollama://{ref}")
    digest = layer["digest"]
    size = layer.get("size") if isinstance(layer.get("size"), int) and layer["size"] > 0 else None
    where = f"ollama://{ref}"
    if previous and previous.get("kind") == "gguf" and previous.get("shas") == [digest]:
        return {**previous}
    counter: list = []
    url = f"{base}/blobs/{digest}"

    def fetch(offset: int, length: int) -> bytes:
        r = _open(url, {"Range": f"bytes={offset}-{offset + length - 1}"}, "the model blob", ref)
        if r is None:
            return b""
        with r:
            if r.status == 200 and offset + length > IGNORED_RANGE_LIMIT:
                raise ProfileError(f"{where}: the registry ignores HTTP range requests; reading the header would "
                                   "mean downloading the model")
            if r.status == 200 and offset:  # a server that ignores Range: read up to the bytes wanted
                skipped = 0
                while skipped < offset:
                    chunk = r.read(min(offset - skipped, 2**20))
                    if not chunk:
                        return b""
                    skipped += len(chunk)
            data = r.read(length)
        counter.append(len(data))
        return data

    header = read_remote(fetch, where, size)
    return {"kind": "gguf", "name": str(ref), "where": where, "source": f"{base}/manifests/{ref.tag}",
            "endpoint": _registry(ref.host), "files": [digest], "shas": [digest], "file_bytes": size or 0,
            "header_bytes": sum(counter), "name_hint": ref.model, "metadata": {k: v for k, v in header.metadata.items()
                                                                               if isinstance(v, (str, int, float,
                                                                                                 bool, list))},
            "tensors": [list(t) for t in tensor_rows(header)]}
