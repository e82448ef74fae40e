"""The cache, one spec per layer: what each layer keeps per token or per sequence, and how it shards.

Kinds (vLLM's v1/kv_cache_interface.py has the same idea, one spec per layer with its page size):

- FullAttention: K and V rows of n_kv_heads x head_dim for every token of the context.
- SlidingWindow: the same rows for at most `window` tokens per sequence (llama.cpp keeps one ubatch more).
- MLALatent (DeepSeek-V2/V3): one latent of kv_lora_rank + qk_rope_head_dim per token ("latent", as vLLM / SGLang /
  ik_llama.cpp store it); llama.cpp mainline also keeps a V latent of kv_lora_rank ("latent+v", 1088 elements per
  layer for DeepSeek). A latent is one "head": every tensor-parallel rank holds all of it.
- RecurrentState: a fixed state per *sequence* (Mamba, Gated DeltaNet, short conv), whatever the context.
- SharedCache: reads another layer's cache (YOCO's cross-decoder, Gemma 3n's shared layers): 0 bytes.
- NoCache: a layer that caches nothing.

Each spec gives its bytes for a number of cells (tokens the engine allocates, see `Allocation`) and sequences, and
its share under tensor parallelism. A model's cache is a `CacheLayout`: a tuple of specs, one per layer. Pure; no I/O.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from itertools import accumulate
from typing import ClassVar

from advisor.core.formats import ElementType
from advisor.core.model import ModelProfile
from advisor.core.record import record

MLA_LAYOUTS = ("latent", "latent+v")


@record
class Allocation:
    """How an engine hands out cache cells: in steps of `pad_tokens`; in one pool shared by every sequence (llama.cpp's
    -c) or per sequence (vLLM's pages); `window_extra_tokens` more cells in a sliding-window cache (llama.cpp: one
    ubatch)."""

    pad_tokens: int = 1
    pooled: bool = True
    window_extra_tokens: int = 0

    def pad(self, tokens: int) -> int:
        return -(-tokens // self.pad_tokens) * self.pad_tokens

    def cells(self, tokens_per_sequence: int, sequences: int = 1) -> int:
        if self.pooled:
            return self.pad(tokens_per_sequence * sequences)
        return self.pad(tokens_per_sequence) * sequences


NO_PADDING = Allocation()


@record
class CacheSpec:
    """One layer's cache. `k_row_bytes` / `v_row_bytes`: bytes per cached token; `state_bytes`: bytes per sequence;
    `kv_heads`: the heads the rows hold (what tensor parallelism splits)."""

    kind: ClassVar[str] = "none"
    k_row_bytes: int = 0
    v_row_bytes: int = 0
    state_bytes: int = 0
    kv_heads: int = 1

    @property
    def row_bytes(self) -> int:
        return self.k_row_bytes + self.v_row_bytes

    @property
    def bytes_per_token(self) -> int:
        """Growth per token of context once any window is full (0 for windows, states and shared layers)."""
        return self.row_bytes

    def fills_at(self, sequences: int, alloc: Allocation) -> int | None:
        """Cells past which this layer stops growing (a window), else None."""
        return None

    def tokens_kept(self, cells: int, sequences: int, alloc: Allocation) -> int:
        return cells

    def split_bytes(self, cells: int, sequences: int = 1, alloc: Allocation = NO_PADDING) -> tuple[int, int]:
        """(K bytes, V bytes) at `cells` allocated cells, as llama.cpp prints them (a state counts as K)."""
        kept = self.tokens_kept(cells, sequences, alloc)
        return self.k_row_bytes * kept + self.state_bytes * sequences, self.v_row_bytes * kept

    def bytes(self, cells: int, sequences: int = 1, alloc: Allocation = NO_PADDING) -> int:
        k, v = self.split_bytes(cells, sequences, alloc)
        return k + v

    def bytes_for(self, tokens_per_sequence: int, sequences: int, alloc: Allocation) -> int:
        """Bytes when `sequences` sequences hold `tokens_per_sequence` tokens each, at the engine's granularity."""
        return self.bytes(alloc.cells(tokens_per_sequence, sequences), sequences, alloc)

    def rank_fraction(self, tp: int) -> tuple[int, int]:
        """(numerator, denominator) of this layer's cache one of `tp` tensor-parallel ranks holds: heads split over
        the ranks when there are at least as many as ranks, else each rank keeps a copy of one head."""
        if tp <= 1 or not self.kv_heads:
            return 1, 1
        return max(1, self.kv_heads // tp), self.kv_heads


class FullAttention(CacheSpec):  # no fields of its own: the frozen dataclass methods are inherited
    kind: ClassVar[str] = "full"


@record
class SlidingWindow(CacheSpec):
    """At most `window` tokens per sequence. llama.cpp sizes its SWA cache min(n_ctx_seq, pad256(n_swa x (unified ?
    n_seq : 1) + n_ubatch)) per stream (src/llama-kv-cache-iswa.cpp:73 at 749f688f); a paged engine keeps the
    window of each sequence."""

    kind: ClassVar[str] = "sliding_window"
    window: int = 0

    @property
    def bytes_per_token(self) -> int:
        return 0

    def fills_at(self, sequences: int, alloc: Allocation) -> int | None:
        if alloc.pooled:
            return alloc.pad(self.window * sequences + alloc.window_extra_tokens)
        return alloc.pad(self.window + alloc.window_extra_tokens) * sequences

    def tokens_kept(self, cells: int, sequences: int, alloc: Allocation) -> int:
        return min(cells, self.fills_at(sequences, alloc))


class ChunkedAttention(SlidingWindow):  # no fields of its own: the frozen dataclass methods are inherited
    """Llama 4's chunked local attention: a token attends within its chunk of `window` tokens; engines keep at
    most a chunk (plus their extra) per sequence, as for a sliding window."""

    kind: ClassVar[str] = "chunked"


class MLALatent(CacheSpec):  # no fields of its own: the frozen dataclass methods are inherited
    """The compressed latent (K row) and, in llama.cpp mainline, a V latent. One head: replicated on every rank."""

    kind: ClassVar[str] = "mla_latent"

    def rank_fraction(self, tp: int) -> tuple[int, int]:
        return 1, 1


class RecurrentState(CacheSpec):  # no fields of its own: the frozen dataclass methods are inherited
    """A fixed state per sequence (conv + SSM / delta-rule state), split over ranks by heads like attention."""

    kind: ClassVar[str] = "recurrent"

    @property
    def bytes_per_token(self) -> int:
        return 0

    def tokens_kept(self, cells: int, sequences: int, alloc: Allocation) -> int:
        return 0


@record
class SharedCache(CacheSpec):
    """Reads the cache of layer `source_layer`; holds nothing itself."""

    kind: ClassVar[str] = "shared"
    source_layer: int = 0

    def tokens_kept(self, cells: int, sequences: int, alloc: Allocation) -> int:
        return 0


class NoCache(CacheSpec):  # no fields of its own: the frozen dataclass methods are inherited
    kind: ClassVar[str] = "none"

    def tokens_kept(self, cells: int, sequences: int, alloc: Allocation) -> int:
        return 0


@record
class CacheLayout:
    """A model's cache: one spec per layer, the element types, and a label ("GQA", "MLA latent", "YOCO shared")."""

    layers: tuple[CacheSpec, ...]
    k_type: str
    v_type: str
    label: str

    @cached_property
    def bytes_per_token(self) -> int:
        """Growth per token of context once every window is full: the full-context layers."""
        specs, counts = self._spans
        return sum(spec.bytes_per_token * row[-1] for spec, row in zip(specs, counts))

    def layer_bytes(self, i: int, cells: int, sequences: int = 1, alloc: Allocation = NO_PADDING) -> int:
        return self.layers[i].bytes(cells, sequences, alloc)

    @cached_property
    def _spans(self) -> tuple[tuple[CacheSpec, ...], tuple[tuple[int, ...], ...]]:
        """The distinct specs, and for each the number of layers before layer i that use it (prefix counts): a
        model has a handful of distinct specs over hundreds of layers, and placement asks for many spans."""
        # by identity first (a layout repeats a few spec objects: ids are cheaper than hashing each layer's record),
        # then the distinct objects merged by value
        ids = list(map(id, self.layers))
        objects = dict(zip(ids, self.layers))
        unique: dict[CacheSpec, int] = {}
        slot = {key: unique.setdefault(spec, len(unique)) for key, spec in objects.items()}
        index = list(map(slot.__getitem__, ids))
        counts = tuple(tuple(accumulate(map(u.__eq__, index), initial=0)) for u in range(len(unique)))
        return tuple(unique), counts

    def span_bytes(self, start: int, stop: int, cells: int, sequences: int = 1, alloc: Allocation = NO_PADDING,
                   tp: int = 1) -> int:
        """Bytes of layers start..stop-1 (one of `tp` ranks' share): the same as summing layer by layer."""
        if stop <= start:
            return 0
        specs, counts = self._spans
        total = 0
        for spec, row in zip(specs, counts):
            n = row[stop] - row[start]
            if n:
                num, den = spec.rank_fraction(tp)
                total += n * (spec.bytes(cells, sequences, alloc) * num // den)
        return total

    def spans_at(self, cells: int, sequences: int = 1, alloc: Allocation = NO_PADDING, tp: int = 1):
        """`span_bytes` at one size for many spans: a function (start, stop) -> bytes, each spec's bytes computed
        once (a placement over 16 GPUs asks for 16 spans at every size it tries)."""
        specs, counts = self._spans
        each = []
        for spec in specs:
            num, den = spec.rank_fraction(tp)
            each.append(spec.bytes(cells, sequences, alloc) * num // den)
        pairs = tuple(zip(each, counts))

        def span(start: int, stop: int) -> int:
            if stop <= start:
                return 0
            return sum(n * (row[stop] - row[start]) for n, row in pairs)

        return span

    def total_bytes(self, cells: int, sequences: int = 1, alloc: Allocation = NO_PADDING) -> int:
        return sum(spec.bytes(cells, sequences, alloc) for spec in self.layers)

    def split_bytes(self, cells: int, sequences: int = 1, alloc: Allocation = NO_PADDING) -> tuple[int, int]:
        """(K bytes, V bytes) over every layer (each distinct spec once, times the layers that use it)."""
        k = v = 0
        specs, counts = self._spans
        for spec, row in zip(specs, counts):
            dk, dv = spec.split_bytes(cells, sequences, alloc)
            k, v = k + dk * row[-1], v + dv * row[-1]
        return k, v

    def rank_bytes(self, layers, cells: int, sequences: int, alloc: Allocation, tp: int) -> int:
        """Bytes one of `tp` tensor-parallel ranks holds for the given layer indices."""
        total = 0
        for i in layers:
            spec = self.layers[i]
            num, den = spec.rank_fraction(tp)
            total += spec.bytes(cells, sequences, alloc) * num // den
        return total

    def total_for(self, layers, cells: int, sequences: int = 1, alloc: Allocation = NO_PADDING, tp: int = 1) -> int:
        """`rank_bytes` for a contiguous run of layer indices (a range or a list), by spans."""
        layers = list(layers)
        if not layers:
            return 0
        if layers == list(range(layers[0], layers[-1] + 1)):
            return self.span_bytes(layers[0], layers[-1] + 1, cells, sequences, alloc, tp)
        return self.rank_bytes(layers, cells, sequences, alloc, tp)

    def breakpoints(self, sequences: int, alloc: Allocation) -> set[int]:
        """Cells where the cache's growth changes slope (windows filling up)."""
        return {c for spec in self._spans[0] if (c := spec.fills_at(sequences, alloc)) is not None}


def bits_type(bits: int) -> ElementType:
    """A what-if element type of `bits` bits per value (8 values in `bits` bytes)."""
    return ElementType(name=f"{bits}-bit", block_elements=8, block_bytes=bits, kv=True)


def recurrent_state_bytes(m: ModelProfile, kind: str, element_bytes: int) -> int:
    """Bytes of one sequence's state in a recurrent layer (llama.cpp's n_embd_r + n_embd_s, src/llama-hparams.cpp):
    the convolution keeps kernel - 1 past inputs of its channels; the SSM / delta rule keeps a matrix per head."""
    if kind == "M":  # Mamba2: conv over x, B, C; SSM state d_state per channel of d_inner
        d_inner = m.mamba_heads * m.mamba_head_dim
        conv = (m.mamba_conv_kernel - 1) * (d_inner + 2 * m.mamba_groups * m.mamba_state)
        return (conv + d_inner * m.mamba_state) * element_bytes
    if kind == "L":  # Gated DeltaNet: conv over q, k, v; a k_dim x v_dim state per value head
        channels = 2 * m.linear_key_heads * m.linear_key_head_dim + m.linear_value_heads * m.linear_value_head_dim
        conv = (m.linear_conv_kernel - 1) * channels
        return (conv + m.linear_value_heads * m.linear_key_head_dim * m.linear_value_head_dim) * element_bytes
    if kind == "V":  # LFM2 short conv: conv_cache - 1 past inputs of hidden size
        return (m.conv_cache - 1) * m.hidden * element_bytes
    raise ValueError(f"layer kind {kind!r} keeps no recurrent state")


# pure and its inputs are frozen: `advisor plan` asks for the same few layouts once per machine in the catalog
@lru_cache(maxsize=256)
def cache_layout(
    model: ModelProfile,
    k_type: ElementType,
    v_type: ElementType,
    mla_layout: str = "latent",
    swa_full: bool = False,
    state_element_bytes: int = 4,
    index_row_bytes=None,
) -> CacheLayout:
    """The per-layer specs of a profile: MLA latents (with a sparse-attention indexer key: `index_row_bytes(dim)`
    when the engine stores it in a fixed format, else in the K type), YOCO's windowed self-decoder plus one shared
    global cache, or per layer kind: full, sliding-window, chunked, recurrent state, shared, none."""
    m = model
    if m.attention == "mla":
        latent = m.kv_lora_rank + m.qk_rope_head_dim
        v_elems = m.kv_lora_rank if mla_layout == "latent+v" else 0
        # DeepSeek V3.2 / GLM-5 sparse attention: the indexer keeps one more small key per token
        index_bytes = 0
        if m.index_head_dim:  # in the cache's type, unless the engine stores it its own way
            index_bytes = index_row_bytes(m.index_head_dim) if index_row_bytes else k_type.row_bytes(m.index_head_dim)
        spec = MLALatent(k_type.row_bytes(latent) + index_bytes, v_type.row_bytes(v_elems) if v_elems else 0)
        label = "MLA latent" if not v_elems else "MLA latent+V"
        if index_bytes:
            label += " + indexer"
        return CacheLayout((spec,) * m.layers, k_type.name, v_type.name, label)

    k_row = k_type.row_bytes(m.kv_heads * m.head_dim)
    v_row = v_type.row_bytes(m.kv_heads * m.head_dim)
    if m.attention == "yoco":
        half = m.layers // 2
        window = m.self_decoder_window
        self_layers = [SlidingWindow(k_row, v_row, kv_heads=m.kv_heads, window=window)] * half
        shared = FullAttention(k_row, v_row, kv_heads=m.kv_heads)  # computed once, read by every cross-decoder layer
        readers = [SharedCache(source_layer=half) for _ in range(m.layers - half - 1)]
        return CacheLayout(tuple(self_layers + [shared] + readers), k_type.name, v_type.name, "YOCO shared")

    full = FullAttention(k_row, v_row, kv_heads=m.kv_heads)
    by_kind = {
        "A": full,
        "S": full if swa_full else SlidingWindow(k_row, v_row, kv_heads=m.kv_heads, window=m.sliding_window),
        "C": full if swa_full else ChunkedAttention(k_row, v_row, kv_heads=m.kv_heads, window=m.attention_chunk),
        "F": NoCache(),
    }
    for kind, heads in (("L", m.linear_value_heads), ("M", m.mamba_heads), ("V", 1)):
        if kind in m.layer_pattern:
            by_kind[kind] = RecurrentState(state_bytes=recurrent_state_bytes(m, kind, state_element_bytes),
                                           kv_heads=heads)
    kinds = m.layer_kinds()
    label = m.attention_label if not swa_full else f"{m.attention_label} (full)"
    if "X" not in kinds:
        return CacheLayout(tuple(map(by_kind.__getitem__, kinds)), k_type.name, v_type.name, label)
    layers, last_owner = [], {}
    for i, kind in enumerate(kinds):
        if kind == "X":  # reads the cache of the last earlier layer that owns one (Gemma 3n)
            layers.append(SharedCache(source_layer=last_owner.get("A", last_owner.get("S", 0))))
            continue
        if kind in "AS":
            last_owner[kind] = i
        layers.append(by_kind[kind])
    return CacheLayout(tuple(layers), k_type.name, v_type.name, label)
