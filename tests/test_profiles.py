"""Shipped profiles against real config.json files, and validation of malformed data."""

import json

import pytest

from advisor.errors import ProfileError
from advisor.sources.profiles import parse_model_file, parse_quant_file
from advisor.core.tensors import weights_layout
from conftest import DATA

CONFIGS = DATA / "configs"
# shipped profile -> the real config.json it was taken from (tests/data/configs/SOURCES.md)
REAL_CONFIGS = {
    "llama-3-8b": "meta-llama-3-8b.json",
    "llama-3.1-8b": "llama-3.1-8b.json",
    "llama-3.1-70b": "llama-3.1-70b.json",
    "llama-3.1-405b": "llama-3.1-405b.json",
    "mixtral-8x7b": "mixtral-8x7b-v0.1.json",
    "qwen2.5-7b": "qwen2.5-7b-instruct.json",
    "gemma-2-9b": "gemma-2-9b-it.json",
    "deepseek-v2-lite": "deepseek-v2-lite.json",
    "deepseek-v3": "deepseek-v3.json",
    "mistral-7b-v0.2": "mistral-7b-instruct-v0.2.MODIFIED-maxpos512.json",
}
EXACT_PARAMS = ["llama-3-8b", "llama-3.1-8b", "llama-3-70b", "llama-3.1-70b", "llama-3.1-405b", "mixtral-8x7b",
                "qwen2.5-7b", "qwen2.5-72b", "gemma-2-9b", "mistral-7b-v0.2"]


@pytest.mark.parametrize("model_id, file", sorted(REAL_CONFIGS.items()))
def test_profile_matches_its_config_json(model_id, file, registry):
    c = json.loads((CONFIGS / file).read_text())
    m = registry.model(model_id)
    assert m.layers == c["num_hidden_layers"]
    assert m.hidden == c["hidden_size"]
    assert m.heads == c["num_attention_heads"]
    assert m.kv_heads == c["num_key_value_heads"]
    assert m.vocab == c["vocab_size"]
    assert m.head_dim == c.get("head_dim", c["hidden_size"] // c["num_attention_heads"])
    if "moe_intermediate_size" in c:
        assert m.expert_intermediate == c["moe_intermediate_size"] and m.experts == c["n_routed_experts"]
        assert m.kv_lora_rank == c["kv_lora_rank"] and m.qk_rope_head_dim == c["qk_rope_head_dim"]
    else:
        assert m.intermediate == c["intermediate_size"]
    if file.startswith("mistral-7b-instruct"):
        assert c["max_position_embeddings"] == 512 and m.max_context == 32768  # vendor edit, see SOURCES.md
    else:
        assert m.max_context == c["max_position_embeddings"]


@pytest.mark.parametrize("model_id", EXACT_PARAMS)
def test_parameter_count_is_exact_for_models_with_a_published_count(model_id, registry):
    m = registry.model(model_id)
    layout = weights_layout(m, registry.quants.recipe("F16"), registry.quants)
    assert layout.params == m.params_reference


@pytest.mark.parametrize("model_id", ["deepseek-v2-lite", "deepseek-v2", "deepseek-v3", "deepseek-llm-67b", "gemma-2-27b",
                                      "qwen2.5-32b", "llama-2-7b", "llama-2-13b", "llama-2-70b"])
def test_parameter_count_within_half_a_percent(model_id, registry):
    m = registry.model(model_id)
    layout = weights_layout(m, registry.quants.recipe("F16"), registry.quants)
    assert layout.params == pytest.approx(m.params_reference, rel=0.005)


def test_moe_reads_only_active_experts(registry):
    q = registry.quants
    mixtral = weights_layout(registry.model("mixtral-8x7b"), q.recipe("F16"), q)
    assert mixtral.active_bytes / mixtral.total_bytes == pytest.approx(12.9 / 46.7, rel=0.03)


def test_models_are_found_by_alias_and_name(registry):
    assert registry.model("Meta-Llama-3-8B").id == "llama-3-8b"
    assert registry.model("llama3-70b").id == "llama-3-70b"


GOOD = """
architecture = "llama"
[[models]]
id = "tiny"
layers = 2
hidden = 64
heads = 4
vocab = 100
intermediate = 128
max_context = 512
source = "test"
"""


@pytest.mark.parametrize("edit, field", [
    (("layers = 2", 'layers = "2"'), "'layers'"),
    (("layers = 2", "layers = -2"), "'layers'"),
    (("layers = 2\n", ""), "'layers'"),
    (('source = "test"', 'source = "test"\nflavour = 3'), "'flavour'"),
    (("heads = 4", "heads = 4\nkv_heads = 3"), "'kv_heads'"),
    (('id = "tiny"', 'id = "tiny"\nattention = "sparse"'), "'attention'"),
    (("[[models]]", "[[models]\n"), "not valid TOML"),
])
def test_malformed_model_file_names_file_and_field(edit, field):
    with pytest.raises(ProfileError) as err:
        parse_model_file(GOOD.replace(*edit), "profiles/models/tiny.toml")
    assert "profiles/models/tiny.toml" in str(err.value) and field in str(err.value)


def test_malformed_quant_file():
    with pytest.raises(ProfileError, match="recipes.X: field 'base' names unknown type 'q9_K'"):
        parse_quant_file('[types.f16]\nblock_elements = 1\nblock_bytes = 2\n[recipes.X]\nengines=["llama.cpp"]\n'
                         'base = "q9_K"\ntoken_embd = "f16"\noutput = "f16"\n', "profiles/quants.toml")


@pytest.mark.parametrize("parse, text, words", [
    ("cpu_isa", "", "f.toml: isa must be a non-empty array of tables ([[isa]])"),
    ("cpu_isa", "isa = [1]", "f.toml: isa[0] must be a table"),
    ("cpu_isa", '[[isa]]\nid = "x"\nname = "y"\nrequires = ["avx2"]\n',
     "f.toml: isa[0] (x): rate must be a non-empty array of tables ([[isa.rate]])"),
    ("ram", "kits = []", "f.toml: kits must be a non-empty array of tables ([[kits]])"),
    ("ram", "kits = ['a']", "f.toml: kits[0] must be a table"),
])
def test_arrays_of_tables_are_checked_alike_naming_file_and_row(parse, text, words):
    """profiles/hardware/cpu_isa.toml and profiles/prices/ram.toml rows go through one check
    (sources/profiles.table_rows): the message names the file, the array and the row."""
    from advisor.sources.cpu_isa import parse_cpu_isas
    from advisor.sources.ram_prices import parse_ram_kits

    with pytest.raises(ProfileError) as err:
        (parse_cpu_isas if parse == "cpu_isa" else parse_ram_kits)(text, "f.toml")
    assert str(err.value) == words
