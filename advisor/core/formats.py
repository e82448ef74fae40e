"""Weight and cache formats: ggml / vLLM element types and the quantization recipes that assign them to tensors.
Pure data; the tables are loaded from profiles/quants.toml by advisor/sources/profiles.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from advisor.core.record import record
from advisor.errors import suggest


@record
class ElementType:
    """A ggml (or vLLM) storage type: `block_elements` values take `block_bytes` bytes.

    Formats whose scales are stored beside the values (vLLM's safetensors) add `scale_bytes` per scale: one scale
    covers `scale_cols` elements of a row (0: the whole row) in each of `scale_rows` consecutive rows, e.g. FP8 with
    128x128 block scales: 4 bytes per 128 x 128 tile. A row is charged its share of the scales, rounded up to a byte.
    """

    name: str
    block_elements: int
    block_bytes: int
    kv: bool = False
    scale_bytes: int = 0
    scale_rows: int = 1
    scale_cols: int = 0

    def row_bytes(self, n_elements: int) -> int:
        """Bytes of a row of n elements (whole blocks; callers check divisibility)."""
        blocks = -(-n_elements // self.block_elements)
        nbytes = blocks * self.block_bytes
        if self.scale_bytes:
            scales = -(-n_elements // self.scale_cols) if self.scale_cols else 1
            nbytes += -(-scales * self.scale_bytes // self.scale_rows)
        return nbytes

    @property
    def bits(self) -> float:
        """Bits per value, the scales of a full tile included (a whole-row scale is left out: it depends on the row)."""
        bits = 8 * self.block_bytes / self.block_elements
        if self.scale_bytes and self.scale_cols:
            bits += 8 * self.scale_bytes / (self.scale_cols * self.scale_rows)
        return bits


@record
class Recipe:
    """A weight file type (Q4_K_M, BF16, ...): which element type each tensor class gets."""

    name: str
    engines: tuple[str, ...]
    base: str
    token_embd: str
    output: str
    attn_v: str = ""
    attn_v_rule: str = ""
    attn_v_else: str = ""
    ffn_down: str = ""
    ffn_down_rule: str = ""
    ffn_down_else: str = ""
    attn_output: str = ""
    attn_q: str = ""  # the attn_q tensor (llama.cpp's ATTENTION_Q category; not MLA's attn_q_a / attn_q_b)
    attn_k: str = ""
    moe8_attn_output: str = ""
    moe8_attn_kv: str = ""  # attn_k and attn_v of an 8-expert model; empty: q8_0 (tensors.MOE8_ATTN_KV_TYPE)
    size70b_attn_v_bump: str = ""
    experts: str = ""  # the routed-expert tensors (ffn_*_exps), in every recipe, quantized or not (MXFP4)


@dataclass(frozen=True, eq=False)  # hashed by identity: one table per loaded registry
class QuantTable:
    """The element types (`types`), the quantization recipes (`recipes`) and the type each format falls back to
    (`fallback`) of profiles/quants.toml."""

    types: dict
    recipes: dict
    fallback: dict

    def type(self, name: str) -> ElementType:
        try:
            return self.types[name]
        except KeyError:
            raise suggest(name, self.types, "element type") from None

    def recipe(self, name: str) -> Recipe:
        """The recipe a name means, whatever its case (asked ~500 times by a check grid: one dict lookup)."""
        recipe = self.recipes.get(name)
        if recipe is None:
            recipe = self._by_lower.get(name.lower())
        if recipe is None:
            raise suggest(name, self.recipes, "quant")
        return recipe

    @cached_property
    def _by_lower(self) -> dict:
        out: dict = {}
        for key, recipe in self.recipes.items():
            out.setdefault(key.lower(), recipe)  # the first of names that differ only in case, as the scan took it
        return out

    def kv_type(self, name: str) -> ElementType:
        t = self.types.get(name.lower()) or self.types.get(name)
        if t is None or not t.kv:
            raise suggest(name, [k for k, v in self.types.items() if v.kv], "KV type")
        return t
