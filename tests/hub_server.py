"""A local HTTP server speaking the parts of the Hugging Face Hub and Ollama registry APIs that advisor uses, for
tests that drive the real huggingface_hub client (HF_ENDPOINT) and urllib against it. Listens on 127.0.0.1 only.

Hub (what huggingface_hub 2.x calls, read from its source: hf_api.py list_repo_tree / parse_safetensors_file_metadata,
file_download.py hf_hub_download / get_hf_file_metadata):
    GET  /api/models/{org}/{name}/tree/{revision}[?recursive=true&cursor=N]   JSON list, paginated with a Link header
    HEAD /{org}/{name}/resolve/{revision}/{path}    X-Repo-Commit, ETag, Content-Length (X-Linked-* on redirects)
    GET  /{org}/{name}/resolve/{revision}/{path}    the bytes, honouring Range; large ("LFS") files by a 302 to /cdn/
Ollama registry:
    GET  /v2/{namespace}/{model}/manifests/{tag}    the manifest JSON
    GET  /v2/{namespace}/{model}/blobs/{digest}     307 to /cdn/, as registry.ollama.ai redirects to its CDN
Errors as the Hub sends them: 401 + X-Error-Code GatedRepo without the token, 404 RepoNotFound / EntryNotFound /
RevisionNotFound; a renamed repo answers 307 to its new name. Every body byte sent is counted per file.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".gguf", ".safetensors")
CHUNK = 64 * 1024


@dataclass
class Repo:
    files: dict  # path -> bytes or Path, in the order the tree lists them
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    token: str | None = None  # gated: this bearer token is needed
    page_size: int = 1000


@dataclass
class Blob:
    """A file as served: where its bytes are, its size, its hashes."""
    source: object  # bytes or Path
    size: int
    sha256: str
    sha1: str
    label: str

    def read(self, start: int, end: int) -> bytes:
        if isinstance(self.source, bytes):
            return self.source[start:end]
        with open(self.source, "rb") as fh:
            fh.seek(start)
            return fh.read(end - start)


def _blob(source, label: str) -> Blob:
    sha256, sha1 = hashlib.sha256(), hashlib.sha1()
    if isinstance(source, bytes):
        sha256.update(source)
        sha1.update(source)
        size = len(source)
    else:
        size = 0
        with open(source, "rb") as fh:
            while chunk := fh.read(1 << 20):
                sha256.update(chunk)
                sha1.update(chunk)
                size += len(chunk)
    return Blob(source, size, sha256.hexdigest(), sha1.hexdigest(), label)


@dataclass
class HubServer:
    repos: dict = field(default_factory=dict)  # "org/name" -> Repo
    renamed: dict = field(default_factory=dict)  # old "org/name" -> new
    ollama: dict = field(default_factory=dict)  # "namespace/model:tag" -> list of (media type, bytes or Path)
    sent: Counter = field(default_factory=Counter)  # label ("org/name/path" or "ollama:...") -> body bytes sent
    requests: list = field(default_factory=list)  # (method, path, Range header)
    _blobs: dict = field(default_factory=dict)  # (repo, path) -> Blob
    _by_sha: dict = field(default_factory=dict)  # sha256 -> Blob

    def add_repo(self, name: str, files: dict, **kw) -> None:
        self.repos[name] = Repo(files, **kw)
        for path, source in files.items():
            blob = _blob(source, f"{name}/{path}")
            self._blobs[(name, path)] = blob
            self._by_sha.setdefault(blob.sha256, blob)

    def add_ollama(self, name: str, layers: list) -> dict:
        """`name` as namespace/model:tag; layers [(media type, bytes or Path)]. Returns the manifest."""
        out = []
        for media, source in layers:
            blob = _blob(source, f"ollama:{name}")
            self._by_sha.setdefault(blob.sha256, blob)
            out.append({"mediaType": media, "digest": f"sha256:{blob.sha256}", "size": blob.size})
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                               "digest": "sha256:" + "0" * 64, "size": 2}, "layers": out}
        self.ollama[name] = manifest
        return manifest

    def bytes_sent(self, label: str) -> int:
        return self.sent[label]

    # ------------------------------------------------------------ running

    def start(self) -> "HubServer":
        server = self

        class Handler(_Handler):
            hub = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")
MANIFEST = re.compile(r"^/v2/(?P<name>[^/]+/[^/]+)/manifests/(?P<tag>[^/]+)$")
OLLAMA_BLOB = re.compile(r"^/v2/(?P<name>[^/]+/[^/]+)/blobs/sha256:(?P<sha>[0-9a-f]{64})$")
CDN = re.compile(r"^/cdn/(?P<sha>[0-9a-f]{64})$")
RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def do_HEAD(self):
        self._route(head=True)

    def do_GET(self):
        self._route(head=False)

    # ------------------------------------------------------------ plumbing

    def _send(self, status: int, headers: dict | None = None, body: bytes = b"", head: bool = False, label=None):
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head and body:
            self._write(body, label)

    def _write(self, body: bytes, label) -> None:
        try:
            for i in range(0, len(body), CHUNK):
                piece = body[i:i + CHUNK]
                self.wfile.write(piece)
                if label:
                    self.hub.sent[label] += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _error(self, status: int, code: str, message: str, head: bool, extra: dict | None = None):
        body = json.dumps({"error": message}).encode()
        self._send(status, {"Content-Type": "application/json", "X-Error-Code": code, "X-Error-Message": message,
                            **(extra or {})}, body, head)

    def _route(self, head: bool):
        url = urlsplit(self.path)
        path = unquote(url.path)
        self.hub.requests.append((self.command, self.path, self.headers.get("Range")))
        for pattern, handler in ((TREE, self._tree), (RESOLVE, self._resolve), (MANIFEST, self._manifest),
                                 (OLLAMA_BLOB, self._ollama_blob), (CDN, self._cdn)):
            m = pattern.match(path)
            if m:
                return handler(m, parse_qs(url.query), head)
        self._error(404, "NotFound", f"no route {path}", head)

    def _repo(self, name: str, head: bool, rest: str):
        """The Repo, or None after answering (renamed: 307; missing: 404; gated without token: 401)."""
        if name in self.hub.renamed:
            self._send(307, {"Location": rest.replace(name, self.hub.renamed[name], 1)}, head=head)
            return None
        repo = self.hub.repos.get(name)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found", head)
            return None
        if repo.token and self.headers.get("Authorization") != f"Bearer {repo.token}":
            self._error(401, "GatedRepo", f"Access to model {name} is restricted. You must have access to it and be "
                        "authenticated to access it. Please log in.", head)
            return None
        return repo

    def _tree(self, m, query, head):
        repo = self._repo(m["repo"], head, self.path)
        if repo is None:
            return
        if m["rev"] not in ("main", repo.commit):
            return self._error(404, "RevisionNotFound", "Invalid rev id", head)
        entries, folders = [], set()
        for p in repo.files:
            blob = self.hub._blobs[(m["repo"], p)]
            parts = p.split("/")
            for i in range(1, len(parts)):
                folder = "/".join(parts[:i])
                if folder not in folders:
                    folders.add(folder)
                    entries.append({"type": "directory", "oid": "f" * 40, "path": folder})
            entry = {"type": "file", "oid": blob.sha1, "size": blob.size, "path": p}
            if p.endswith(LFS_SUFFIXES):
                entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": 134}
            entries.append(entry)
        start = int(query.get("cursor", ["0"])[0])
        page = entries[start:start + repo.page_size]
        headers = {"Content-Type": "application/json"}
        if start + repo.page_size < len(entries):
            headers["Link"] = (f'<{self.hub.url}/api/models/{m["repo"]}/tree/{m["rev"]}?recursive=true&'
                               f'cursor={start + repo.page_size}>; rel="next"')
        self._send(200, headers, json.dumps(page).encode(), head)

    def _resolve(self, m, query, head):
        repo = self._repo(m["repo"], head, self.path)
        if repo is None:
            return
        if m["rev"] not in ("main", repo.commit):
            return self._error(404, "RevisionNotFound", "Invalid rev id", head)
        blob = self.hub._blobs.get((m["repo"], m["path"]))
        commit = {"X-Repo-Commit": repo.commit}
        if blob is None:
            return self._error(404, "EntryNotFound", "Entry not found", head, commit)
        if m["path"].endswith(LFS_SUFFIXES):  # the Hub sends large files to its CDN
            return self._send(302, {"Location": f"/cdn/{blob.sha256}", "X-Linked-Etag": f'"{blob.sha256}"',
                                    "X-Linked-Size": str(blob.size), "ETag": f'"{blob.sha1}"', **commit}, head=head)
        self._serve(blob, head, {"ETag": f'"{blob.sha1}"', **commit})

    def _cdn(self, m, query, head):
        blob = self.hub._by_sha.get(m["sha"])
        if blob is None:
            return self._error(404, "NotFound", "no such blob", head)
        self._serve(blob, head, {"ETag": f'"{blob.sha256}"', "X-Repo-Commit": "0" * 40})

    def _serve(self, blob: Blob, head: bool, headers: dict):
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream", **headers}
        rng = self.headers.get("Range")
        start, end, status = 0, blob.size, 200
        if rng:
            r = RANGE.match(rng.strip())
            if not r:
                return self._send(416, {"Content-Range": f"bytes */{blob.size}"}, head=head)
            start = int(r[1])
            end = min(int(r[2]) + 1, blob.size) if r[2] else blob.size
            if start >= blob.size:
                return self._send(416, {"Content-Range": f"bytes */{blob.size}"}, head=head)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
        headers["Content-Length"] = str(end - start)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if head:
            return
        pos = start
        try:
            while pos < end:
                piece = blob.read(pos, min(end, pos + CHUNK))
                self.wfile.write(piece)
                self.hub.sent[blob.label] += len(piece)
                pos += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _manifest(self, m, query, head):
        manifest = self.hub.ollama.get(f"{m['name']}:{m['tag']}")
        if manifest is None:
            return self._error(404, "MANIFEST_UNKNOWN", "manifest unknown", head)
        self._send(200, {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"},
                   json.dumps(manifest).encode(), head)

    def _ollama_blob(self, m, query, head):
        if m["sha"] not in self.hub._by_sha:
            return self._error(404, "BLOB_UNKNOWN", "blob unknown", head)
        self._send(307, {"Location": f"/cdn/{m['sha']}"}, head=head)


def write_safetensors(path: Path, tensors: dict, dtype: str = "BF16") -> Path:
    """A real safetensors file: an 8-byte header length, the JSON header, then zero-filled tensor data."""
    width = {"F32": 4, "BF16": 2, "F16": 2, "U8": 1, "I32": 4}[dtype]
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in tensors.items():
        n = width
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as fh:
        fh.write(len(raw).to_bytes(8, "little") + raw)
        fh.truncate(8 + len(raw) + offset)
    return path
