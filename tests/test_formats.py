"""Weight formats (profiles/quants.toml): the block layouts next to their sources, and each recipe's per-tensor
rules recomputed by hand on small profiles.

Sources: ggml/src/ggml-common.h (block structs; ggml.c type_traits takes type_size = sizeof(block_*)) at
ggml-org/llama.cpp@01243c58, llama_tensor_get_type_impl() in src/llama-quant.cpp at ggml-org/llama.cpp@007dbbf3,
vLLM's checkpoint layouts for the safetensors formats (quoted per row in quants.toml).
"""

import dataclasses
import json

import pytest
from click.testing import CliRunner

from advisor.cli import main
from advisor.core.formats import Recipe
from advisor.core.tensors import tensor_list, weights_layout
from advisor.errors import ProfileError
from advisor.sources.profiles import load_registry, model_from_fields, parse_quant_file

QK_K = 256
HALF = 2  # ggml_half
# (block_elements, block_bytes) of each ggml type, from its struct in ggml-common.h
GGML_BLOCKS = {
    "iq1_s": (QK_K, HALF + QK_K // 8 + QK_K // 16),  # d; qs[QK_K/8]; uint16 qh[QK_K/32] -> 50
    "iq1_m": (QK_K, QK_K // 8 + QK_K // 16 + QK_K // 32),  # qs; qh[QK_K/16]; scales[QK_K/32] -> 56
    "iq2_xxs": (QK_K, HALF + QK_K // 8 * 2),  # d; uint16 qs[QK_K/8] -> 66
    "iq2_xs": (QK_K, HALF + QK_K // 8 * 2 + QK_K // 32),  # d; uint16 qs[QK_K/8]; scales[QK_K/32] -> 74
    "iq2_s": (QK_K, HALF + QK_K // 4 + QK_K // 16),  # d; qs[QK_K/4]; qh[QK_K/32] + scales[QK_K/32] -> 82
    "iq3_xxs": (QK_K, HALF + 3 * (QK_K // 8)),  # d; qs[3*QK_K/8] -> 98
    "iq3_s": (QK_K, HALF + 13 * (QK_K // 32) + QK_K // 64),  # d; qs, qh, signs = 13*QK_K/32; scales[QK_K/64] -> 110
    "iq4_nl": (32, HALF + 32 // 2),  # QK4_NL = 32: d; qs[16] -> 18
    "iq4_xs": (QK_K, HALF + 2 + QK_K // 64 + QK_K // 2),  # d; scales_h; scales_l[QK_K/64]; qs[QK_K/2] -> 136
    "tq1_0": (QK_K, (QK_K - 4 * QK_K // 64) // 5 + QK_K // 64 + HALF),  # qs[48]; qh[4]; d -> 54
    "tq2_0": (QK_K, QK_K // 4 + HALF),  # qs[QK_K/4]; d -> 66
    "mxfp4": (32, 1 + 32 // 2),  # QK_MXFP4 = 32: E8M0 e; qs[16] -> 17
    # the types the older recipes use (same header)
    "q2_K": (QK_K, 2 * HALF + QK_K // 16 + QK_K // 4),  # 84
    "q3_K": (QK_K, HALF + QK_K // 4 + QK_K // 8 + 12),  # 110
    "q4_K": (QK_K, 2 * HALF + 12 + QK_K // 2),  # 144
    "q5_K": (QK_K, 2 * HALF + 12 + QK_K // 2 + QK_K // 8),  # 176
    "q6_K": (QK_K, HALF + QK_K // 16 + 3 * QK_K // 4),  # 210
    "q4_0": (32, HALF + 16),  # 18
    "q5_0": (32, HALF + 4 + 16),  # 22
    "q5_1": (32, 2 * HALF + 4 + 16),  # 24
    "q8_0": (32, HALF + 32),  # 34
}
# the numbers the structs come to, as the brief and ggml's bpw comments state them (a typo in either list shows)
STATED = {"iq1_s": 50, "iq1_m": 56, "iq2_xxs": 66, "iq2_xs": 74, "iq2_s": 82, "iq3_xxs": 98, "iq3_s": 110,
          "iq4_nl": 18, "iq4_xs": 136, "tq1_0": 54, "tq2_0": 66, "mxfp4": 17}
PLAIN = {"f32": (1, 4), "f16": (1, 2), "bf16": (1, 2)}
BLOCKS = {**GGML_BLOCKS, **PLAIN}


@pytest.fixture(scope="module")
def quants():
    return load_registry().quants


def test_ggml_block_layouts_match_the_structs(quants):
    for name, (elements, nbytes) in GGML_BLOCKS.items():
        t = quants.type(name)
        assert (t.block_elements, t.block_bytes) == (elements, nbytes), name
        assert not t.scale_bytes, name
    for name, nbytes in STATED.items():
        assert GGML_BLOCKS[name][1] == nbytes, name
    assert quants.type("iq1_s").bits == 1.5625 and quants.type("mxfp4").bits == 4.25


def test_vllm_layouts_charge_their_scales(quants):
    # FP8 with 128x128 f32 block scales (DeepSeek-V3): a 7168-row has 56 tiles, whose 4-byte scales are shared by
    # 128 rows: 56 * 4 / 128 = 1.75 bytes of scale per row, charged as 2
    assert quants.type("fp8_b128").row_bytes(7168) == 7168 + 2
    assert quants.type("fp8_b128").bits == 8 + 8 * 4 / (128 * 128)
    # NVFP4: 8 bytes of nibbles + 1 FP8 scale per 16 values
    assert quants.type("nvfp4").row_bytes(4096) == 4096 // 16 * (8 + 1)
    # W8A8 int8: one f32 scale per output channel, i.e. per row
    assert quants.type("int8").row_bytes(4096) == 4096 + 4
    # AWQ/GPTQ as the int4_g128 row counts them: N bits per value + fp16 scale + fp16 zero per group
    for name, (bits, group) in {"int4_g32": (4, 32), "int4_g64": (4, 64), "int4_g128": (4, 128),
                                "int8_g128": (8, 128)}.items():
        assert quants.type(name).row_bytes(4096) == 4096 // group * (group * bits // 8 + 2 + 2), name
    # the KV types are untouched by the scale fields
    assert quants.type("q8_0").row_bytes(4096) == 4096 // 32 * 34


def test_every_recipe_names_existing_types_and_known_engines(quants):
    engines = {"llama.cpp", "ollama", "vllm"}
    for name, recipe in quants.recipes.items():
        assert recipe.engines and set(recipe.engines) <= engines, name
        for f in dataclasses.fields(Recipe):
            value = getattr(recipe, f.name)
            if f.name in ("name", "engines") or f.name.endswith("_rule") or not value:
                continue
            assert value in quants.types, (name, f.name, value)
    for src, dst in quants.fallback.items():
        assert src in quants.types and dst in quants.types
        assert quants.type(src).block_elements % quants.type(dst).block_elements == 0, src


def test_the_quant_file_rejects_unknown_rules_and_stray_scale_fields():
    base = '[types.f16]\nblock_elements = 1\nblock_bytes = 2\n'
    recipe = '[recipes.X]\nengines = ["vllm"]\nbase = "f16"\ntoken_embd = "f16"\noutput = "f16"\n'
    assert parse_quant_file(base + recipe, "t").recipe("x").base == "f16"
    with pytest.raises(ProfileError, match="unknown rule 'firts_8th'"):
        parse_quant_file(base + recipe + 'ffn_down = "f16"\nffn_down_rule = "firts_8th"\n', "t")
    with pytest.raises(ProfileError, match="need 'scale_bytes'"):
        parse_quant_file(base.replace("block_bytes = 2", "block_bytes = 2\nscale_rows = 128") + recipe, "t")
    with pytest.raises(ProfileError, match="unknown field 'scale_byte'"):
        parse_quant_file(base + "scale_byte = 4\n" + recipe, "t")


# ---------------------------------------------------------------- the rules, by hand on small profiles

H, FF, VOCAB, LAYERS = 256, 512, 1024, 16  # every row a multiple of 256: no fallback anywhere


def small(kv_heads=1, layers=LAYERS, **extra):
    """A Llama-shaped toy: 4 heads of 64, so kv_heads=1 is n_gqa 4 and kv_heads=4 is MHA (n_gqa 1)."""
    fields = dict(id="toy", layers=layers, hidden=H, heads=4, kv_heads=kv_heads, intermediate=FF, vocab=VOCAB,
                  max_context=4096, source="test")
    return model_from_fields({**fields, **extra}, "llama", "test")


def nbytes(t, row, rows):
    elements, size = BLOCKS[t]
    assert row % elements == 0, (t, row)
    return row // elements * size * rows


def per_layer(spec, cls, i):
    v = spec.get(cls, spec["base"])
    return v[i] if isinstance(v, list) else v


def dense_total(spec, kv_dim, layers=LAYERS):
    """Bytes of the toy under `spec`: class -> type, or a per-layer list of types."""
    total = nbytes(spec["token_embd"], H, VOCAB) + nbytes(spec["output"], H, VOCAB) + 4 * H  # + output_norm
    for i in range(layers):
        total += 2 * 4 * H  # attn_norm, ffn_norm
        total += nbytes(per_layer(spec, "attn_q", i), H, 256) + nbytes(per_layer(spec, "attn_k", i), H, kv_dim)
        total += nbytes(per_layer(spec, "attn_v", i), H, kv_dim) + nbytes(per_layer(spec, "attn_output", i), 256, H)
        total += 2 * nbytes(spec["base"], H, FF) + nbytes(per_layer(spec, "ffn_down", i), FF, H)
    return total


def first(n, t, rest, layers=LAYERS):
    return [t] * n + [rest] * (layers - n)


# n_gqa = 4 (kv_heads 1). Each spec is llama_tensor_get_type_impl's answer for that file type, read off the source:
GQA4 = {
    # i-quant branch: token_embd Q2_K (IQ3_S for IQ2_S/M), output Q5_K, attn_v Q4_K (n_gqa >= 4), the first
    # n_ffn_down/8 = 2 ffn_down tensors Q2_K (IQ3_S), attn_output IQ2_XXS for IQ1_S/M, IQ3_S for IQ2_S/M
    "IQ1_S": dict(base="iq1_s", token_embd="q2_K", output="q5_K", attn_v="q4_K", attn_output="iq2_xxs",
                  ffn_down=first(2, "q2_K", "iq1_s")),
    "IQ1_M": dict(base="iq1_m", token_embd="q2_K", output="q5_K", attn_v="q4_K", attn_output="iq2_xxs",
                  ffn_down=first(2, "q2_K", "iq1_m")),
    "IQ2_XXS": dict(base="iq2_xxs", token_embd="q2_K", output="q5_K", attn_v="q4_K",
                    ffn_down=first(2, "q2_K", "iq2_xxs")),
    "IQ2_XS": dict(base="iq2_xs", token_embd="q2_K", output="q5_K", attn_v="q4_K",
                   ffn_down=first(2, "q2_K", "iq2_xs")),
    "IQ2_S": dict(base="iq2_xs", token_embd="iq3_s", output="q5_K", attn_v="q4_K", attn_output="iq3_s",
                  ffn_down=first(2, "iq3_s", "iq2_xs")),  # default type of IQ2_S is IQ2_XS
    "IQ2_M": dict(base="iq2_s", token_embd="iq3_s", output="q5_K", attn_v="q4_K", attn_output="iq3_s",
                  ffn_down=first(2, "iq3_s", "iq2_s")),
    # IQ3_XXS (imatrix): token_embd IQ3_S, output Q5_K, attn_v Q4_K, attn_q/attn_k IQ2_S, attn_output IQ3_S
    "IQ3_XXS": dict(base="iq3_xxs", token_embd="iq3_s", output="q5_K", attn_v="q4_K", attn_q="iq2_s",
                    attn_k="iq2_s", attn_output="iq3_s"),
    "IQ3_S": dict(base="iq3_s", token_embd="iq3_s", output="q6_K", attn_v="q4_K"),
    # IQ3_M: attn_v Q4_K, ffn_down Q4_K for layers < n/8, attn_output Q4_K
    "IQ3_M": dict(base="iq3_s", token_embd="iq3_s", output="q6_K", attn_v="q4_K", attn_output="q4_K",
                  ffn_down=first(2, "q4_K", "iq3_s")),
    # IQ4_NL, no imatrix: attn_v Q5_K (n_gqa >= 4), ffn_down Q5_K for layers < n/8
    "IQ4_NL": dict(base="iq4_nl", token_embd="iq4_nl", output="q6_K", attn_v="q5_K",
                   ffn_down=first(2, "q5_K", "iq4_nl")),
    "IQ4_XS": dict(base="iq4_xs", token_embd="iq4_xs", output="q6_K", attn_v="q5_K",
                   ffn_down=first(2, "q5_K", "iq4_xs")),
    "TQ1_0": dict(base="tq1_0", token_embd="q4_K", output="q6_K"),
    "TQ2_0": dict(base="tq2_0", token_embd="q4_K", output="q6_K"),
    # Q2_K_S: attn_v Q4_K (n_gqa >= 4), ffn_down Q4_K for layers < n/8
    "Q2_K_S": dict(base="q2_K", token_embd="q2_K", output="q6_K", attn_v="q4_K", ffn_down=first(2, "q4_K", "q2_K")),
    "Q3_K_S": dict(base="q3_K", token_embd="q3_K", output="q6_K"),
    # Q3_K_L: attn_v, ffn_down, attn_output Q5_K
    "Q3_K_L": dict(base="q3_K", token_embd="q3_K", output="q6_K", attn_v="q5_K", ffn_down="q5_K",
                   attn_output="q5_K"),
    # Q4_K_S: attn_v Q5_K while i_attention_wv < 4, ffn_down Q5_K for layers < n/8
    "Q4_K_S": dict(base="q4_K", token_embd="q4_K", output="q6_K", attn_v=first(4, "q5_K", "q4_K"),
                   ffn_down=first(2, "q5_K", "q4_K")),
    "Q5_K_S": dict(base="q5_K", token_embd="q5_K", output="q6_K"),
    "MXFP4_MOE": dict(base="q8_0", token_embd="q8_0", output="q8_0"),  # no experts: all Q8_0
    "MXFP4": dict(base="bf16", token_embd="bf16", output="bf16"),  # no experts: BF16 as shipped
}
# n_gqa = 1 (kv_heads 4): the `else` sides of the n_gqa >= 4 tests
MHA_CHANGES = {
    "IQ1_S": dict(attn_v="q2_K"), "IQ1_M": dict(attn_v="q2_K"), "IQ2_XXS": dict(attn_v="q2_K"),
    "IQ2_XS": dict(attn_v="q2_K"), "IQ2_S": dict(attn_v="iq3_s"), "IQ2_M": dict(attn_v="iq3_s"),
    "IQ3_XXS": dict(attn_v="iq3_xxs"),  # with the imatrix IQ3_XXS needs (IQ3_S without one)
    "IQ3_S": dict(attn_v="iq3_s"), "IQ4_NL": dict(attn_v="iq4_nl"), "IQ4_XS": dict(attn_v="iq4_xs"),
    "Q2_K_S": dict(attn_v="q2_K"),
}


@pytest.mark.parametrize("recipe", sorted(GQA4))
@pytest.mark.parametrize("kv_heads", [1, 4])
def test_recipe_rules_by_hand(quants, recipe, kv_heads):
    spec = dict(GQA4[recipe])
    if kv_heads == 4:
        spec.update(MHA_CHANGES.get(recipe, {}))
    m = small(kv_heads=kv_heads)
    got = weights_layout(m, quants.recipe(recipe), quants).total_bytes
    assert got == dense_total(spec, kv_dim=64 * kv_heads)
    types = {t.name: t.type for t in tensor_list(m, quants.recipe(recipe), quants)}
    assert types["token_embd"] == spec["token_embd"] and types["output"] == spec["output"]
    assert [types[f"blk.{i}.attn_v"] for i in range(LAYERS)] == [per_layer(spec, "attn_v", i) for i in range(LAYERS)]
    assert [types[f"blk.{i}.ffn_down"] for i in range(LAYERS)] == [per_layer(spec, "ffn_down", i)
                                                                   for i in range(LAYERS)]


# vLLM's formats: one type for every linear layer, 16-bit embeddings and lm_head; bytes of a row of n values:
VLLM_ROW = {
    "FP8-BLOCK": lambda n: n + -(-(n // 128) * 4 // 128),  # + its share of the f32 scale per 128 x 128 tile
    "NVFP4": lambda n: n // 16 * 9,
    "GPTQ-INT4": lambda n: n // 128 * (64 + 4), "GPTQ-INT4-G64": lambda n: n // 64 * (32 + 4),
    "GPTQ-INT4-G32": lambda n: n // 32 * (16 + 4), "GPTQ-INT8": lambda n: n // 128 * (128 + 4),
    "W8A8": lambda n: n + 4, "FP8": lambda n: n, "AWQ": lambda n: n // 128 * (64 + 4),
}


@pytest.mark.parametrize("recipe", sorted(VLLM_ROW))
def test_vllm_recipes_by_hand(quants, recipe):
    row = VLLM_ROW[recipe]
    per_layer_bytes = (256 + 2 * 64) * row(H) + 256 * row(256) + 2 * FF * row(H) + H * row(FF)  # q, k, v | o | ffn
    sixteen = 2 * 2 * H * VOCAB  # token_embd and output, 2 bytes a value
    norms = (2 * LAYERS + 1) * H * 4
    expected = sixteen + LAYERS * per_layer_bytes + norms
    assert weights_layout(small(), quants.recipe(recipe), quants).total_bytes == expected


def test_mxfp4_recipes_on_a_toy_moe(quants):
    m = moe(4)
    experts = LAYERS * 3 * 4 * H * FF // 32 * 17  # gate, up, down x 4 experts, 17 bytes per 32 values
    attn = LAYERS * (256 + 2 * 64 + 256) * H  # q, k, v, o values
    router, norms = LAYERS * 4 * H * 4, (2 * LAYERS + 1) * H * 4  # f32
    # as gpt-oss ships: the rest BF16; llama-quantize MXFP4_MOE: the rest (and the output) Q8_0
    assert weights_layout(m, quants.recipe("MXFP4"), quants).total_bytes == (
        experts + 2 * (attn + 2 * H * VOCAB) + router + norms)
    assert weights_layout(m, quants.recipe("MXFP4_MOE"), quants).total_bytes == (
        experts + (attn + 2 * H * VOCAB) // 32 * 34 + router + norms)


def test_iq1_s_by_hand_in_bytes(quants):
    # the same answer written out: 16 layers of the n_gqa 4 toy under IQ1_S
    layer = (256 + 64) * 50 + 64 * 144 + 256 * 66 + 2 * 512 * 50  # attn_q, attn_k | attn_v Q4_K | attn_output
    # IQ2_XXS | ffn_gate, ffn_up (256-element rows: one block per row)
    down = [256 * 2 * (84 if i < 2 else 50) for i in range(LAYERS)]  # ffn_down: 2 blocks a row, Q2_K for 2 layers
    norms = (2 * LAYERS + 1) * 256 * 4
    expected = 1024 * 84 + 1024 * 176 + LAYERS * layer + sum(down) + norms  # token_embd Q2_K, output Q5_K
    assert weights_layout(small(), quants.recipe("IQ1_S"), quants).total_bytes == expected == 2_237_440


def test_70b_class_bump_and_the_i_quants_that_skip_it(quants):
    # LLM_TYPE_70B (80 layers): a Q3_K / Q4_K attn_v becomes Q5_K; the i-quant branch has no such bump
    m = small(kv_heads=1, layers=80)
    for recipe, want in {"Q4_K_S": "q5_K", "Q3_K_S": "q5_K", "IQ3_S": "q5_K", "Q2_K_S": "q5_K", "IQ1_S": "q4_K",
                         "Q5_K_S": "q5_K", "TQ1_0": "tq1_0"}.items():
        types = {t.name: t.type for t in tensor_list(m, quants.recipe(recipe), quants)}
        assert {types[f"blk.{i}.attn_v"] for i in range(80)} == {want}, recipe


def moe(experts, shared=0, dense_layers=0, layers=LAYERS):
    return small(kv_heads=1, layers=layers, experts=experts, experts_active=2, expert_intermediate=FF,
                 shared_experts=shared, dense_layers=dense_layers)


def test_eight_expert_models(quants):
    m = moe(8)
    def types(recipe):
        return {t.name: t.type for t in tensor_list(m, quants.recipe(recipe), quants)}
    # most recipes: attn_k and attn_v Q8_0 ("bumping this to Q8_0 trades just ~128MB"); attn_output Q5_K in the
    # listed file types; the i-quant branch: attn_k Q4_K, attn_v Q4_K (>= 4 experts), attn_output Q5_K
    want = {"Q3_K_S": ("q8_0", "q8_0", "q5_K"), "Q4_K_S": ("q8_0", "q8_0", "q5_K"),
            "Q3_K_L": ("q8_0", "q8_0", "q3_K"),  # Q3_K_L is not in the 8-expert attn_output list
            "Q5_K_S": ("q8_0", "q8_0", "q5_K"), "Q2_K_S": ("q8_0", "q8_0", "q2_K"),
            "IQ3_XXS": ("q8_0", "q8_0", "q5_K"), "IQ4_NL": ("q8_0", "q8_0", "q5_K"),
            "IQ1_S": ("q4_K", "q4_K", "q5_K"), "IQ2_S": ("q4_K", "q4_K", "q5_K")}
    for recipe, (k, v, o) in want.items():
        t = types(recipe)
        assert (t["blk.5.attn_k"], t["blk.5.attn_v"], t["blk.5.attn_output"]) == (k, v, o), recipe
    # IQ3_M on 8 experts: ffn_down Q4_K for layers < n/8 and for use_more_bits layers (every third in between, the
    # last eighth); n = 16 layers: 0, 1, 4, 7, 10, 13, 14, 15
    t = types("IQ3_M")
    q4 = [i for i in range(LAYERS) if t[f"blk.{i}.ffn_down_exps"] == "q4_K"]
    assert q4 == [0, 1, 4, 7, 10, 13, 14, 15]


def test_i_quant_ffn_down_counts_tensors_not_layers(quants):
    # IQ1_S's rule is qs.i_ffn_down < qs.n_ffn_down / 8 with n_ffn_down = 16 layers -> the first 2 ffn_down
    # tensors in file order: layer 0's dense ffn_down and layer 1's ffn_down_exps; layer 1's ffn_down_shexp is the
    # third, so it keeps IQ1_S. Q2_K_S's rule reads the layer from the name: every ffn_down of layers 0-1.
    m = moe(16, shared=1, dense_layers=1)
    iq = {t.name: t.type for t in tensor_list(m, quants.recipe("IQ1_S"), quants) if "ffn_down" in t.name}
    assert [n for n, ty in iq.items() if ty == "q2_K"] == ["blk.0.ffn_down", "blk.1.ffn_down_exps"]
    k = {t.name: t.type for t in tensor_list(m, quants.recipe("Q2_K_S"), quants) if "ffn_down" in t.name}
    assert [n for n, ty in k.items() if ty == "q4_K"] == ["blk.0.ffn_down", "blk.1.ffn_down_exps",
                                                          "blk.1.ffn_down_shexp"]


def test_gqa_tests_read_heads_and_only_the_i_quants_count_experts(quants):
    # n_gqa 1 with 16 experts: Q2_K_S / IQ4_NL / IQ3_S test n_gqa() >= 4 alone, the i-quant branch
    # n_gqa() >= 4 || n_expert >= 4
    m = small(kv_heads=4, experts=16, experts_active=2, expert_intermediate=FF)
    want = {"Q2_K_S": "q2_K", "IQ4_NL": "iq4_nl", "IQ3_S": "iq3_s", "IQ3_XXS": "iq3_xxs", "IQ1_S": "q4_K",
            "IQ2_M": "q4_K"}
    for recipe, t in want.items():
        assert {x.type for x in tensor_list(m, quants.recipe(recipe), quants) if x.name.endswith("attn_v")} == {t}


def test_attn_q_and_attn_k_rules_follow_llama_cpp_names(quants):
    # IQ3_XXS gives attn_q / attn_k IQ2_S: llama.cpp matches "attn_q.weight", so MLA's attn_q_a / attn_q_b keep
    # the base type; DeepSeek-V2-Lite (no query LoRA) has a plain attn_q
    v3 = {t.name: t.type for t in tensor_list(load_registry().model("deepseek-v3"), quants.recipe("IQ3_XXS"), quants)}
    assert (v3["blk.5.attn_q_a"], v3["blk.5.attn_q_b"], v3["blk.5.attn_kv_b"]) == ("iq3_xxs",) * 3
    lite = load_registry().model("deepseek-v2-lite")
    assert lite.q_lora_rank == 0
    assert {t.name: t.type for t in tensor_list(lite, quants.recipe("IQ3_XXS"), quants)}["blk.5.attn_q"] == "iq2_s"


def test_rows_a_block_does_not_divide_fall_back(quants):
    # hidden 2880 = 11.25 x 256 and ffn rows 5760 = 22.5 x 256 (both multiples of 32): IQ1_S's iq1_s falls back to
    # iq4_nl, its Q2_K (token_embd, attn_v at n_gqa 1, the first n/8 ffn_down) to Q4_0; the output is Q8_0
    m = model_from_fields(dict(id="odd", layers=8, hidden=2880, heads=45, kv_heads=45, intermediate=5760,
                               vocab=512, max_context=4096, source="test"), "llama", "test")
    types = {t.name: t.type for t in tensor_list(m, quants.recipe("IQ1_S"), quants)}
    assert (types["blk.3.attn_q"], types["blk.3.attn_v"], types["blk.3.ffn_down"]) == ("iq4_nl", "q4_0", "iq4_nl")
    assert (types["blk.0.ffn_down"], types["token_embd"], types["output"]) == ("q4_0", "q4_0", "q8_0")
    # a row that not even 32 divides ends in f16
    m = model_from_fields(dict(id="odder", layers=8, hidden=2880, heads=45, kv_heads=45, intermediate=5770,
                               vocab=512, max_context=4096, source="test"), "llama", "test")
    assert {t.name: t.type for t in tensor_list(m, quants.recipe("IQ1_S"), quants)}["blk.3.ffn_down"] == "f16"


# ---------------------------------------------------------------- MXFP4 and the vLLM formats on real models

def gpt_oss_120b():
    registry = load_registry()
    if "gpt-oss-120b" in registry.models:
        return registry.model("gpt-oss-120b")
    return model_from_fields(dict(  # HF config.json openai/gpt-oss-120b
        id="gpt-oss-120b", layers=36, hidden=2880, heads=64, kv_heads=8, head_dim=64, intermediate=2880,
        vocab=201088, max_context=131072, qkv_bias=True, sliding_window=128, global_every=2, experts=128,
        experts_active=4, expert_intermediate=2880, source="test"), "gpt_oss", "test")


def test_gpt_oss_120b_as_released(quants):
    m = gpt_oss_120b()
    layout = weights_layout(m, quants.recipe("MXFP4"), quants)
    types = {t.name: t.type for t in tensor_list(m, quants.recipe("MXFP4"), quants)}
    assert {types[f"blk.7.ffn_{k}_exps"] for k in ("gate", "up", "down")} == {"mxfp4"}
    assert {types["blk.7.attn_q"], types["blk.7.attn_output"], types["token_embd"], types["output"]} == {"bf16"}
    # by hand: 36 layers x 3 expert tensors x 128 experts x 2880 x 2880 values at 17 bytes per 32
    experts = 36 * 3 * 128 * 2880 * 2880 * 17 // 32
    assert layout.kind_bytes("routed_experts") == experts  # the f32 router (36 x 2880 x 128 x 4) is not an expert
    assert layout.kind_bytes("dense_ffn") >= 36 * 2880 * 128 * 4
    # the HF repo openai/gpt-oss-120b holds 65.3 GB = 60.8 GiB of weights
    assert abs(layout.total_bytes / 2**30 / 60.8 - 1) < 0.03, layout.total_bytes / 2**30


def test_deepseek_r1_iq1_s_is_near_the_131_gb_file(quants):
    # unsloth's DeepSeek-R1 UD-IQ1_S is 131 GB: a mixed "dynamic" file, not plain llama-quantize IQ1_S, which
    # gives 133.6 GB by the rules (MoE experts iq1_s, the first 7 ffn_down tensors q2_K, attn_output iq2_xxs)
    r1 = load_registry().model("deepseek-r1")
    got = weights_layout(r1, quants.recipe("IQ1_S"), quants).total_bytes
    assert abs(got / 131e9 - 1) < 0.05, got / 1e9
    assert 1.55 < 8 * got / r1.params_reference < 1.65  # close to IQ1_S's own 1.5625 bits


def test_fp8_block_scales_on_deepseek_v3(quants):
    m = load_registry().model("deepseek-v3")
    fp8 = [t for t in tensor_list(m, quants.recipe("FP8-BLOCK"), quants) if t.type == "fp8_b128"]
    block = weights_layout(m, quants.recipe("FP8-BLOCK"), quants).total_bytes
    plain = weights_layout(m, quants.recipe("FP8"), quants).total_bytes  # 1 byte a value, per-tensor scales
    # 4 bytes per 128 x 128 tile, each row charged its share rounded up to a byte: at least the exact share,
    # at most one byte a row more
    exact = sum(-(-t.row // 128) * -(-t.rows // 128) * 4 for t in fp8)
    assert exact <= block - plain <= exact + sum(t.rows for t in fp8)
    assert 0.0002 < (block - plain) / plain < 0.0004  # 0.024 % exactly; 0.035 % as charged


NEW_RECIPES = ["IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_S", "IQ3_M", "IQ4_NL",
               "TQ1_0", "TQ2_0", "Q2_K_S", "Q3_K_S", "Q3_K_L", "Q4_K_S", "Q5_K_S", "MXFP4", "MXFP4_MOE", "FP8-BLOCK",
               "NVFP4", "GPTQ-INT4", "GPTQ-INT4-G64", "GPTQ-INT4-G32", "GPTQ-INT8", "W8A8"]


@pytest.mark.parametrize("name", NEW_RECIPES)
def test_fit_takes_every_new_quant(quants, name):
    engine = quants.recipe(name).engines[0]
    result = CliRunner().invoke(main, ["fit", "llama-3-8b", "--quant", name.lower(), "--engine", engine, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["quant"] == name and out["engine"] == engine
    m = load_registry().model("llama-3-8b")
    assert out["weights_bytes"] == weights_layout(m, quants.recipe(name), quants).total_bytes
