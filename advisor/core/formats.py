"""Weight and cache formats: ggml / vLLM element types and the quantization recipes that assign them to tensors.
Pure data; the tables are loaded from profiles/quants.toml by advisor/sources/profiles.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from advisor.errors import suggest


@dataclass(frozen=True)
class ElementType:
    """A ggml (or vLLM) storage type: `block_elements` values take `block_bytes` bytes."""

    name: str
    block_elements: int
    block_bytes: int
    kv: bool = False

    def row_bytes(self, n_elements: int) -> int:
        """Bytes of a row of n elements (whole blocks; callers check divisibility)."""
        blocks = -(-n_elements // self.block_elements)
        return blocks * self.block_bytes

    @property
    def bits(self) -> float:
        return 8 * self.block_bytes / self.block_elements


@dataclass(frozen=True)
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
    moe8_attn_output: str = ""
    size70b_attn_v_bump: str = ""


@dataclass(frozen=True, eq=False)  # hashed by identity: one table per loaded registry
class QuantTable:
    types: dict
    recipes: dict
    fallback: dict

    def type(self, name: str) -> ElementType:
        try:
            return self.types[name]
        except KeyError:
            raise suggest(name, self.types, "element type") from None

    def recipe(self, name: str) -> Recipe:
        for key, recipe in self.recipes.items():
            if key.lower() == name.lower():
                return recipe
        raise suggest(name, self.recipes, "quant")

    def kv_type(self, name: str) -> ElementType:
        t = self.types.get(name.lower()) or self.types.get(name)
        if t is None or not t.kv:
            raise suggest(name, [k for k, v in self.types.items() if v.kv], "KV type")
        return t
