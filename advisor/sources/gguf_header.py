"""A GGUF header reader of our own: the metadata and the tensor table, never the tensor data.

llama.cpp's `gguf.GGUFReader` memory-maps the whole file and builds numpy objects for every field, the 150k strings
of a vocabulary included (about 7.5 s for one file); it also needs the file on disk. This reader walks the header
with `struct` over any byte source: a local file (memory-mapped, read where needed) or a function that fetches a
byte range (HTTP range requests of a file on the Hugging Face Hub or an Ollama registry blob). Arrays under
`tokenizer.ggml.` (and any array longer than MAX_KEPT_ARRAY) are skipped without building values; fixed-size ones
are stepped over without being fetched at all.

Layout (ggml/docs/gguf.md, versions 2 and 3, little-endian): magic "GGUF", u32 version, u64 tensor count, u64
metadata count; each metadata entry is a string key, a u32 value type and the value; each tensor info is a string
name, u32 n_dims, n_dims x u64 dims, u32 ggml type, u64 offset (from the start of the aligned data section). A
string is a u64 length and the UTF-8 bytes; an array a u32 element type, a u64 count and the elements.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path
from typing import Callable

from advisor.core.record import record
from advisor.errors import ProfileError

MAGIC = b"GGUF"
VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32  # gguf.h GGUF_DEFAULT_ALIGNMENT
MAX_DIMS = 4  # ggml.h GGML_MAX_DIMS
MAX_COUNT = 1 << 24  # tensors or metadata entries: no real file comes near this; more means the bytes are not a header
MAX_STRING = 1 << 30  # one metadata string
MAX_ARRAY = 1 << 32  # elements of one array
MAX_KEPT_ARRAY = 1 << 16  # longer arrays (vocabularies, merges) are skipped, not turned into Python lists
SKIPPED_PREFIXES = ("tokenizer.ggml.",)  # vocabulary, scores, token types, merges: large and never needed
FIRST_CHUNK = 256 * 1024  # the first range request; each further one doubles, up to MAX_CHUNK
MAX_CHUNK = 16 * 1024 * 1024

# gguf.h enum gguf_type: the metadata value types
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR = {UINT8: struct.Struct("<B"), INT8: struct.Struct("<b"), UINT16: struct.Struct("<H"),
           INT16: struct.Struct("<h"), UINT32: struct.Struct("<I"), INT32: struct.Struct("<i"),
           FLOAT32: struct.Struct("<f"), BOOL: struct.Struct("<B"), UINT64: struct.Struct("<Q"),
           INT64: struct.Struct("<q"), FLOAT64: struct.Struct("<d")}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

# ggml.h enum ggml_type -> (name, elements per block, bytes per block), from ggml's type_traits (ggml/src/ggml.c) as
# gguf-py 0.19.0 lists them in GGML_QUANT_SIZES (QK_K = 256); ids 4, 5 (Q4_2, Q4_3) and 31-33, 36-38 (Q4_0_4_4 and
# other repacked layouts) were removed from GGUF files. tests/test_hub.py checks this table against gguf-py and the
# sizes in profiles/quants.toml.
GGML_TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}

# llama.h enum llama_ftype -> the label of general.file_type (gguf-py 0.19.0 LlamaFileType, MOSTLY_ / ALL_ dropped)
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0", 1024: "GUESSED",
}


@record
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # ggml order: shape[0] is the row length
    ggml_type: int
    offset: int  # from the start of the data section
    type_name: str
    n_elements: int
    n_bytes: int


@record
class GGUFHeader:
    version: int
    metadata: dict  # key -> str | int | float | bool | list (skipped arrays are absent)
    tensors: tuple[TensorInfo, ...]
    alignment: int
    data_offset: int  # where the data section starts (the header end, aligned)
    bytes_read: int  # bytes taken from the source (a remote header: what was fetched)

    @property
    def data_end(self) -> int:
        """Where the last tensor's data ends: the least size a whole file has."""
        return self.data_offset + max((t.offset + t.n_bytes for t in self.tensors), default=0)


class _Truncated(Exception):
    pass


class _Source:
    """Sequential reads over a byte source, with a buffer that grows (remote) or a memory map (local file)."""

    def __init__(self, data, fetch: Callable[[int, int], bytes] | None, size: int | None):
        self.data = data  # bytes-like holding the file from offset `base`
        self.base = 0
        self.pos = 0
        self.fetch = fetch
        self.size = size
        self.chunk = FIRST_CHUNK
        self.fetched = 0

    def ensure(self, n: int) -> int:
        """Make `n` bytes at pos available; returns pos relative to the buffer."""
        off = self.pos - self.base
        if off + n <= len(self.data):
            return off
        if self.size is not None and self.pos + n > self.size:
            raise _Truncated()
        if self.fetch is None:
            raise _Truncated()
        start = self.base + len(self.data)
        want = max(off + n - len(self.data), self.chunk)
        if self.size is not None:
            want = min(want, self.size - start)
        got = self.fetch(start, want)
        self.fetched += len(got)
        self.chunk = min(self.chunk * 2, MAX_CHUNK)
        if not isinstance(self.data, bytearray):
            self.data = bytearray(self.data)
        self.data += got
        if off + n > len(self.data):
            raise _Truncated()
        return off

    def skip(self, n: int) -> None:
        """Step over n bytes; a remote source drops its buffer rather than fetch bytes nobody reads."""
        self.pos += n
        if self.size is not None and self.pos > self.size:
            raise _Truncated()
        if self.fetch is not None and self.pos > self.base + len(self.data):
            self.data, self.base = bytearray(), self.pos

    def unpack(self, st: struct.Struct):
        off = self.ensure(st.size)
        self.pos += st.size
        return st.unpack_from(self.data, off)[0]

    def string(self, where: str) -> str:
        n = self.unpack(_U64)
        if n > MAX_STRING:
            raise ProfileError(f"{where}: not a readable GGUF header (a string of {n} bytes)")
        off = self.ensure(n)
        self.pos += n
        return bytes(self.data[off:off + n]).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        """Step over `count` strings (a vocabulary): lengths read, contents not decoded."""
        data, base, pos = self.data, self.base, self.pos
        end = base + len(data)
        u64 = _U64.unpack_from
        remaining = count
        while remaining:
            if pos + 8 <= end:
                n = u64(data, pos - base)[0]
                if pos + 8 + n <= end:
                    pos += 8 + n
                    remaining -= 1
                    continue
                if n > MAX_STRING:
                    raise _Truncated()
                need = 8 + n
            else:
                need = 8
            self.pos = pos
            self.ensure(need)
            data, base = self.data, self.base
            end = base + len(data)
        self.pos = pos


def _value(src: _Source, vtype: int, where: str, keep: bool):
    if vtype in _SCALAR:
        v = src.unpack(_SCALAR[vtype])
        return bool(v) if vtype == BOOL else v
    if vtype == STRING:
        return src.string(where)
    if vtype == ARRAY:
        etype = src.unpack(_U32)
        count = src.unpack(_U64)
        if count > MAX_ARRAY:
            raise ProfileError(f"{where}: not a readable GGUF header (an array of {count} elements)")
        if not keep or count > MAX_KEPT_ARRAY:
            _skip_array(src, etype, count, where)
            return None
        return [_value(src, etype, where, True) for _ in range(count)]
    raise ProfileError(f"{where}: not a readable GGUF header (unknown value type {vtype})")


def _skip_array(src: _Source, etype: int, count: int, where: str) -> None:
    if etype in _SCALAR:
        src.skip(_SCALAR[etype].size * count)
    elif etype == STRING:
        src.skip_strings(count)
    elif etype == ARRAY:
        for _ in range(count):
            inner, n = src.unpack(_U32), src.unpack(_U64)
            if n > MAX_ARRAY:
                raise ProfileError(f"{where}: not a readable GGUF header (an array of {n} elements)")
            _skip_array(src, inner, n, where)
    else:
        raise ProfileError(f"{where}: not a readable GGUF header (unknown array type {etype})")


def _parse(src: _Source, where: str) -> GGUFHeader:
    try:
        off = src.ensure(4)
        if bytes(src.data[off:off + 4]) != MAGIC:
            raise ProfileError(f"{where}: not a GGUF file (no GGUF magic)")
        src.pos = 4
        version = src.unpack(_U32)
        if version not in VERSIONS:
            if version == 1:
                raise ProfileError(f"{where}: GGUF version 1 is not supported (versions 2 and 3 are)")
            if version & 0xFFFF == 0 and version >> 16:
                raise ProfileError(f"{where}: a big-endian GGUF file; llama.cpp reads little-endian ones")
            raise ProfileError(f"{where}: unsupported GGUF version {version}")
        n_tensors, n_kv = src.unpack(_U64), src.unpack(_U64)
        if n_tensors > MAX_COUNT or n_kv > MAX_COUNT:
            raise ProfileError(f"{where}: not a readable GGUF header ({n_tensors} tensors, {n_kv} metadata entries)")
        metadata: dict = {}
        for _ in range(n_kv):
            key = src.string(where)
            vtype = src.unpack(_U32)
            keep = not key.startswith(SKIPPED_PREFIXES)
            value = _value(src, vtype, where, keep)
            if value is not None:
                metadata[key] = value
        tensors = []
        for _ in range(n_tensors):
            name = src.string(where)
            n_dims = src.unpack(_U32)
            if not 1 <= n_dims <= MAX_DIMS:
                raise ProfileError(f"{where}: tensor '{name}' has {n_dims} dimensions (1 to {MAX_DIMS} are allowed)")
            shape = tuple(src.unpack(_U64) for _ in range(n_dims))
            ggml_type = src.unpack(_U32)
            offset = src.unpack(_U64)
            tensors.append(_tensor(name, shape, ggml_type, offset, where))
    except _Truncated:
        raise ProfileError(f"{where}: truncated GGUF header (the file ends at byte {src.size})"
                           if src.size is not None else f"{where}: truncated GGUF header") from None
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if isinstance(alignment, bool) or not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise ProfileError(f"{where}: metadata 'general.alignment' must be a power of two, got {alignment!r}")
    data_offset = -(-src.pos // alignment) * alignment
    return GGUFHeader(version, metadata, tuple(tensors), alignment, data_offset,
                      src.fetched if src.fetch is not None else src.pos)


def _tensor(name: str, shape: tuple[int, ...], ggml_type: int, offset: int, where: str) -> TensorInfo:
    kind = GGML_TYPES.get(ggml_type)
    if kind is None:
        raise ProfileError(f"{where}: tensor '{name}' has unknown ggml type {ggml_type}")
    type_name, block_elements, block_bytes = kind
    elements = 1
    for d in shape:
        elements *= d
    if elements >= 1 << 62:
        raise ProfileError(f"{where}: tensor '{name}' is impossibly large ({shape})")
    if shape[0] % block_elements:
        raise ProfileError(f"{where}: tensor '{name}' rows of {shape[0]} are not whole {type_name} blocks of "
                           f"{block_elements}")
    return TensorInfo(name, shape, ggml_type, offset, type_name, elements, elements // block_elements * block_bytes)


def read_file(path: Path, where: str | None = None) -> GGUFHeader:
    """The header of a local GGUF file; checks that the file holds all the tensor data the header lists. Only a
    regular file is opened (a FIFO or device named as a model would block or never end)."""
    import os

    where = where or str(path)
    try:
        fd = _open_regular(path)
    except OSError as exc:
        raise ProfileError(f"{where}: cannot read ({exc.strerror or exc})") from None
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            raise ProfileError(f"{where}: empty file, not a GGUF")
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mm:
            header = _parse(_Source(mm, None, size), where)
    except OSError as exc:
        raise ProfileError(f"{where}: cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if header.data_end > size:
        raise ProfileError(f"{where}: truncated: its tensors end at byte {header.data_end:,}, the file has "
                           f"{size:,} bytes (an unfinished download?)")
    return header


def _open_regular(path: Path) -> int:
    try:
        from advisor.sources.files import open_regular
    except ImportError:  # pragma: no cover - files.py is the shared rule for user files
        import os

        return os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    return open_regular(path)


def read_remote(fetch: Callable[[int, int], bytes], where: str, size: int | None = None) -> GGUFHeader:
    """The header of a GGUF read through `fetch(offset, length)` (which may return fewer bytes only at the end of
    the file), fetching only the header's bytes, in requests that double in size."""
    header = _parse(_Source(bytearray(), fetch, size), where)
    if size is not None and header.data_end > size:
        raise ProfileError(f"{where}: truncated: its tensors end at byte {header.data_end:,}, the file has "
                           f"{size:,} bytes")
    return header


def file_type_label(metadata: dict) -> str | None:
    """general.file_type's label (Q4_K_M), or None when absent or unknown."""
    ft = metadata.get("general.file_type")
    if isinstance(ft, int) and not isinstance(ft, bool):
        return FILE_TYPES.get(ft)
    return None
