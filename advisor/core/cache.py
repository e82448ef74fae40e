"""KV-cache layout: bytes per cached token for every layer, by attention type and element type.

- MHA / GQA / MQA: K and V rows of n_kv_heads x head_dim per layer.
- Sliding-window layers keep at most `window` tokens (plus one ubatch in llama.cpp).
- MLA (DeepSeek-V2/V3): one latent of kv_lora_rank + qk_rope_head_dim per layer ("latent" layout,
  as vLLM / SGLang / ik_llama.cpp store it); llama.cpp mainline also keeps a separate V latent of
  kv_lora_rank ("latent+v" layout, 1088 elements per layer for DeepSeek).
- YOCO: the self-decoder half keeps a window; the cross-decoder half shares ONE global K/V.
Pure functions; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from advisor.core.formats import ElementType
from advisor.core.model import ModelProfile

MLA_LAYOUTS = ("latent", "latent+v")


@dataclass(frozen=True)
class KVLayer:
    k_row_bytes: int  # bytes per cached token
    v_row_bytes: int
    window: int  # 0: caches the whole context; else the most tokens it keeps

    @property
    def row_bytes(self) -> int:
        return self.k_row_bytes + self.v_row_bytes


@dataclass(frozen=True)
class KVLayout:
    layers: tuple[KVLayer, ...]  # one per model block (layers that cache nothing have 0 bytes)
    k_type: str
    v_type: str
    label: str  # "GQA", "MLA latent", "YOCO shared", ...

    @property
    def bytes_per_token(self) -> int:
        """Growth per token of context once every window is full: the full-context layers."""
        return sum(layer.row_bytes for layer in self.layers if not layer.window)

    def layer_bytes(self, i: int, cells: int, window_extra: int = 0) -> int:
        layer = self.layers[i]
        kept = cells if not layer.window else min(cells, layer.window + window_extra)
        return layer.row_bytes * kept

    def total_bytes(self, cells: int, window_extra: int = 0) -> int:
        return sum(self.layer_bytes(i, cells, window_extra) for i in range(len(self.layers)))

    def split_bytes(self, cells: int, window_extra: int = 0) -> tuple[int, int]:
        """(K bytes, V bytes) at `cells` tokens, as llama.cpp prints them."""
        k = v = 0
        for layer in self.layers:
            kept = cells if not layer.window else min(cells, layer.window + window_extra)
            k += layer.k_row_bytes * kept
            v += layer.v_row_bytes * kept
        return k, v


def bits_type(bits: int) -> ElementType:
    """A what-if element type of `bits` bits per value (8 values in `bits` bytes)."""
    return ElementType(name=f"{bits}-bit", block_elements=8, block_bytes=bits, kv=True)


# pure and its inputs are frozen: `advisor plan` asks for the same few layouts once per machine in the catalog
@lru_cache(maxsize=256)
def kv_layout(
    model: ModelProfile,
    k_type: ElementType,
    v_type: ElementType,
    mla_layout: str = "latent",
    swa_full: bool = False,
) -> KVLayout:
    m = model
    if m.attention == "mla":
        latent = m.kv_lora_rank + m.qk_rope_head_dim
        v_elems = m.kv_lora_rank if mla_layout == "latent+v" else 0
        layer = KVLayer(k_type.row_bytes(latent), v_type.row_bytes(v_elems) if v_elems else 0, 0)
        label = "MLA latent" if not v_elems else "MLA latent+V"
        return KVLayout((layer,) * m.layers, k_type.name, v_type.name, label)

    k_row = k_type.row_bytes(m.kv_heads * m.head_dim)
    v_row = v_type.row_bytes(m.kv_heads * m.head_dim)
    if m.attention == "yoco":
        half = m.layers // 2
        window = m.self_decoder_window
        self_layers = [KVLayer(k_row, v_row, window) for _ in range(half)]
        shared = KVLayer(k_row, v_row, 0)  # computed once, read by every cross-decoder layer
        empty = [KVLayer(0, 0, 0) for _ in range(m.layers - half - 1)]
        return KVLayout(tuple(self_layers + [shared] + empty), k_type.name, v_type.name, "YOCO shared")

    layers = []
    for i in range(m.layers):
        window = 0 if (swa_full or m.is_global_layer(i)) else m.sliding_window
        layers.append(KVLayer(k_row, v_row, window))
    label = m.attention_label if not swa_full else f"{m.attention_label} (full)"
    return KVLayout(tuple(layers), k_type.name, v_type.name, label)
