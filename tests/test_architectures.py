"""Today's architectures from their config.json (issue 14): hybrid linear attention, Mamba2 and short-conv
hybrids, chunked attention, KV-shared layers, sparse-attention indexer keys, MoE key spellings.

The configs are real or faithfully reconstructed files of 2025-2026 models (tests/data/configs2026/, copied from
shared/reference/configs2026 with its SOURCES.md). Each test states the hand computation next to the number.
"""

import copy
import json

import pytest
from click.testing import CliRunner

from advisor.cli import main
from advisor.core.cache import cache_layout, recurrent_state_bytes
from advisor.errors import ProfileError
from advisor.sources.hf_config import profile_from_config, read_config
from conftest import DATA

CONFIGS = DATA / "configs2026"
GIB = 1024**3


def load(name):
    return read_config(CONFIGS / name)


def imported(name, cfg=None):
    return profile_from_config(cfg if cfg is not None else load(name), name, name.split(".")[0])


def fit(path, *args):
    r = CliRunner().invoke(main, ["fit", str(path), "--ram", "4096", "--json", *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


# official parameter counts (model cards), and what the import must come within
OFFICIAL_PARAMS = {
    "deepseek-r1-distill-qwen-32b.RECON.json": 32.8e9,
    "deepseek-r1.json": 671e9,  # main model; the 14B MTP module is not loaded for decoding
    "deepseek-v3.1-nvfp4.json": 671e9,
    "deepseek-v3.2.json": 671e9,
    "devstral-small-2-24b.json": 24e9,
    "ernie-4.5-21b-a3b.RECON.json": 21.8e9,
    "gemma-3-12b-it.RECON.json": 12e9,  # the vision tower (~0.4B) is not counted
    "glm-4.5-air.RECON.json": 106e9,
    "glm-4.5.RECON.json": 355e9,
    "minimax-m2.5.json": 230e9,
    "mistral-small-3.2-24b.RECON.json": 24e9,
    "nemotron-h-56b.json": 56e9,
    "nemotron-3-nano-30b-a3b.json": 31.6e9,
    "phi-4.json": 14.7e9,
    "qwen3-235b-a22b.json": 235e9,
    "qwen3-30b-a3b.json": 30.5e9,
    "qwen3-32b.json": 32.8e9,
    "qwen3-coder-480b-a35b.json": 480e9,
    "qwen3-next-80b-a3b.RECON.json": 80e9,
    "qwen3-vl-30b-a3b.json": 30.5e9,  # the language model; the vision tower is not counted
    "smollm3-3b.RECON.json": 3.08e9,
    "llama-4-scout.TRIMMED.json": 109e9,  # with its vision tower (~0.9B), which is not counted
    # Qwen3.5 (the repo names; 397B total / 17B active in the release notes): the vision tower (~0.4B) and the MTP
    # layer are not counted
    "qwen3.5-9b.json": 9e9,
    "qwen3.5-27b.json": 27e9,
    "qwen3.5-35b-a3b.json": 35e9,
    "qwen3.5-122b-a10b.json": 122e9,
    "qwen3.5-397b-a17b.json": 397e9,
}
TOLERANCE = 0.02
# Kimi K2's card says "1T"; the checkpoint holds 1.03T (safetensors), within 1% of what the import computes
KIMI_PARAMS = 1.03e12


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMS))
def test_every_2026_config_imports_within_two_percent_of_its_parameters(name):
    d = fit(CONFIGS / name, "--quant", "BF16", "--context", "4096")
    assert abs(d["params"] / OFFICIAL_PARAMS[name] - 1) <= TOLERANCE, d["params"] / 1e9
    assert not d["upper_bound"], d["upper_bound_reason"]


def test_kimi_k2_is_read_as_deepseek_mla():
    d = fit(CONFIGS / "kimi-k2-instruct.json", "--quant", "BF16", "--context", "4096")
    assert abs(d["params"] / KIMI_PARAMS - 1) <= 0.01
    assert d["kv_layout"].startswith("MLA")


def test_qwen3_next_caches_only_its_full_attention_layers_plus_a_deltanet_state():
    """48 layers, full_attention_interval 4 -> 12 full-attention layers: 12 x 2 KV heads x 256 x 2 (K, V) x 2 bytes
    = 24,576 bytes per token. The 36 Gated DeltaNet layers keep, per sequence, a conv state of (4 - 1) x
    (2 x 16 x 128 + 32 x 128) = 24,576 values and a 32 x 128 x 128 = 524,288-value delta-rule state, f32 in llama.cpp:
    36 x 548,864 x 4 = 79,036,416 bytes."""
    m = imported("qwen3-next-80b-a3b.RECON.json").profile
    assert m.layer_pattern.count("A") == 12 and m.layer_pattern.count("L") == 36
    d = fit(CONFIGS / "qwen3-next-80b-a3b.RECON.json", "--context", "32768")
    assert d["kv_bytes_per_token"] == 24_576
    assert d["kv_bytes"] == 24_576 * 32_768 + 79_036_416
    d4 = fit(CONFIGS / "qwen3-next-80b-a3b.RECON.json", "--context", "32768", "--parallel", "4")
    assert d4["kv_bytes"] == 24_576 * 32_768 + 4 * 79_036_416  # one state per sequence; -c shared by the slots


def test_nemotron_h_caches_ten_attention_layers_plus_mamba_states():
    """hybrid_override_pattern: 10 attention layers x 8 KV heads x 128 x 2 x 2 bytes = 40,960 bytes per token.
    Each Mamba2 layer keeps (4 - 1) x (256 x 64 + 2 x 8 x 256) conv values and 256 x 64 x 256 SSM values."""
    m = imported("nemotron-h-56b.json").profile
    mamba = m.layer_pattern.count("M")
    assert m.layer_pattern.count("A") == 10 and mamba + 10 + m.layer_pattern.count("F") == 118
    per_layer = (3 * (256 * 64 + 2 * 8 * 256) + 256 * 64 * 256) * 4
    assert recurrent_state_bytes(m, "M", 4) == per_layer
    d = fit(CONFIGS / "nemotron-h-56b.json", "--context", "8192")
    assert d["kv_bytes_per_token"] == 40_960
    assert d["kv_bytes"] == 40_960 * 8192 + mamba * per_layer


def test_gemma_3n_shares_the_cache_of_its_last_fifteen_layers():
    """35 layers, the last 15 read earlier layers' caches; of the first 20, every 5th is global: 4 global layers
    x 2 KV heads x 256 x 2 x 2 bytes = 8,192 bytes per token."""
    m = imported("gemma-3n-e4b.RECON.json").profile
    assert m.layer_pattern.endswith("X" * 15) and m.layer_pattern[:20].count("A") == 4
    d = fit(CONFIGS / "gemma-3n-e4b.RECON.json", "--context", "32768")
    assert d["kv_bytes_per_token"] == 8_192


def test_deepseek_v32_caches_the_indexer_key_beside_the_latent():
    """The MLA latent (512 + 64) plus the DSA indexer's 128-value key, per layer and token: 61 x (576 + 128) x 2
    bytes = 85,888 in f16, 14% more than V3's 70,272."""
    d32 = fit(CONFIGS / "deepseek-v3.2.json", "--context", "4096")
    d3 = fit(CONFIGS / "deepseek-r1.json", "--context", "4096")
    assert d32["kv_bytes_per_token"] - d3["kv_bytes_per_token"] == 61 * 128 * 2


def test_ernie_moe_keys_are_read():
    """moe_num_experts 64 / moe_k 6 / 2 shared / from layer 1: 21.8B parameters, 3B active (not 3.35 of 21.8)."""
    m = imported("ernie-4.5-21b-a3b.RECON.json").profile
    assert (m.experts, m.experts_active, m.shared_experts, m.dense_layers) == (64, 6, 2, 1)
    d = fit(CONFIGS / "ernie-4.5-21b-a3b.RECON.json", "--quant", "BF16", "--context", "4096")
    assert 2.5e9 < d["active_weights_bytes"] / 2 < 3.5e9


def test_llama4_chunked_layers_interleaved_moe_and_the_shared_expert():
    """Scout: every 4th layer global (NoPE), the other 36 chunked at 8192 tokens; 16 experts top-1 plus a shared
    expert on every layer. Maverick (same dims, 128 experts, MoE every 2nd layer, dense layers of 16384): ~400B."""
    cfg = load("llama-4-scout.TRIMMED.json")
    m = imported("scout", cfg).profile
    assert m.layer_pattern.count("A") == 12 and m.layer_pattern.count("C") == 36 and m.attention_chunk == 8192
    assert m.shared_experts == 1
    maverick = copy.deepcopy(cfg)
    maverick["text_config"].update(num_local_experts=128, interleave_moe_layer_step=2)
    mav = fit_cfg(maverick, "--quant", "BF16", "--context", "4096")
    assert abs(mav["params"] / 400e9 - 1) < 0.02, mav["params"] / 1e9


def fit_cfg(cfg, *args, tmp=None):
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp())
    path = folder / "config.json"
    path.write_text(json.dumps(cfg))
    return fit(path, *args)


def test_multimodal_configs_say_the_vision_tower_is_not_counted():
    result = imported("qwen3-vl-30b-a3b.json")
    assert any("vision" in w for w in result.warnings)


def test_an_unknown_type_with_hybrid_keys_is_refused_not_read_as_full_attention():
    cfg = load("nemotron-h-56b.json")
    cfg["model_type"] = "nemotron_h_v9"
    with pytest.raises(ProfileError, match="hybrid_override_pattern"):
        imported("x", cfg)
    r = CliRunner().invoke(main, ["fit", str(write_tmp(cfg))])
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "hybrid_override_pattern" in r.output


def write_tmp(cfg):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def test_layer_types_it_cannot_model_are_an_upper_bound_in_the_json_and_the_table():
    cfg = json.loads((DATA / "configs" / "qwen3-8b.json").read_text())
    cfg["layer_types"] = ["linear_attention"] * 27 + ["full_attention"] * 9
    d = fit(write_tmp(cfg), "--context", "8192")
    assert d["upper_bound"] is True and "upper bound" in d["upper_bound_reason"]
    r = CliRunner().invoke(main, ["check", "--model", str(write_tmp(cfg)), "--gpu", "RTX 4090", "--ram", "64",
                                  "--context", "8192"])
    assert r.exit_code == 0 and "<=" in r.output and "upper bound" in r.output


def test_an_unseen_qwen35_style_config_with_layer_types_is_a_hybrid():
    cfg = load("qwen3-next-80b-a3b.RECON.json")
    cfg.pop("full_attention_interval")
    cfg["model_type"] = "qwen3_5_moe"
    cfg["layer_types"] = ["linear_attention", "linear_attention", "linear_attention", "full_attention"] * 12
    m = imported("q35", cfg).profile
    assert m.layer_pattern == ("LLLA" * 12)
    assert cache_layout(m, *(2 * (_f16(),))).bytes_per_token == 24_576


def _f16():
    from advisor.sources.profiles import load_registry

    return load_registry().quants.kv_type("f16")


def test_lfm2_adjusts_its_ffn_width_and_caches_only_attention_layers():
    """LFM2-1.2B (config of LiquidAI/LFM2-1.2B): block_ff_dim 12288 -> int(2/3 x 12288) = 8192 -> x1.0 -> rounded up
    to 256: 8192. 6 attention layers x 8 KV heads x 64 x 2 x 2 bytes = 12,288 bytes per token; 10 conv layers keep
    (3 - 1) x 2048 values each."""
    cfg = {"model_type": "lfm2", "hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32,
           "num_key_value_heads": 8, "vocab_size": 65536, "max_position_embeddings": 128000,
           "intermediate_size": 12288, "block_ff_dim": 12288, "block_auto_adjust_ff_dim": True,
           "block_ffn_dim_multiplier": 1.0, "block_multiple_of": 256, "conv_L_cache": 3,
           "full_attn_idxs": [2, 5, 8, 10, 12, 14], "tie_word_embeddings": True}
    m = imported("lfm2", cfg).profile
    assert m.intermediate == 8192 and m.layer_pattern.count("A") == 6
    d = fit_cfg(cfg, "--context", "4096")
    assert d["kv_bytes_per_token"] == 12_288
    assert d["kv_bytes"] == 12_288 * 4096 + 10 * 2 * 2048 * 4
    assert abs(d["params"] / 1.17e9 - 1) < 0.02  # LFM2-1.2B: 1.17B parameters (model card)


def test_vllm_stores_the_indexer_key_as_fp8_with_a_scale():
    """vLLM: 128 fp8 values + one 4-byte fp32 scale = 132 bytes per token and layer, whatever the KV dtype; the
    latent itself in bf16: 61 x (576 x 2 + 132) = 78,324 bytes per token."""
    d = fit(CONFIGS / "deepseek-v3.2.json", "--engine", "vllm", "--gpu", "8x H200 SXM", "--context", "4096")
    assert d["kv_bytes_per_token"] == 61 * (576 * 2 + 132)


# ---------------------------------------------------------------- the same rules from a GGUF header

def write_gguf(path, arch, layers, hidden=64, heads=4, kv=2, head_dim=16, extra=(), arrays=()):
    """A GGUF with real metadata keys and tiny tensors (the cache comes from the metadata)."""
    import numpy as np
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), arch)
    w.add_block_count(layers)
    w.add_embedding_length(hidden)
    w.add_head_count(heads)
    if not any(k == f"{arch}.attention.head_count_kv" for k, _ in arrays):
        w.add_head_count_kv(kv)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_feed_forward_length(128)
    w.add_context_length(131072)
    for key, value in extra:
        w.add_uint32(key, value)
    for key, values in arrays:
        w.add_array(key, values)
    w.add_tensor("token_embd.weight", np.zeros((100, hidden), dtype=np.float16))
    w.add_tensor("output.weight", np.zeros((100, hidden), dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def gguf_fit(path, *args):
    return fit(path, "--context", "32768", *args)


def test_gpt_oss_gguf_has_alternating_windows(tmp_path):
    """llama.cpp: even layers slide over 128 tokens, odd layers are full (set_swa_pattern(2)). 24 layers x 2 KV
    heads x 16 x 2 x 2 bytes = 128 bytes per layer and token: 12 full layers x 32768 + 12 windows of
    pad256(128 + 512) = 768 cells."""
    path = write_gguf(tmp_path / "gpt-oss.gguf", "gpt-oss", 24, extra=[("gpt-oss.attention.sliding_window", 128)])
    d = gguf_fit(path)
    assert d["kv_bytes"] == 128 * (12 * 32768 + 12 * 768)


def test_gemma3_gguf_with_four_slots_has_a_window_per_slot(tmp_path):
    """--parallel 4, not unified (llama.cpp's default since 2025-07): each slot's stream has pad256(32768 / 4) =
    8192 cells; a sliding layer keeps min(8192, pad256(1024 + 512)) = 1536 of them per slot. 12 layers, every 6th
    global: 2 x 8192 x 4 + 10 x 1536 x 4 cells of 128 bytes. --kv-unified: one stream, 1024 x 4 + 512 cells."""
    path = write_gguf(tmp_path / "gemma3.gguf", "gemma3", 12, extra=[("gemma3.attention.sliding_window", 1024)])
    d = gguf_fit(path, "--parallel", "4")
    assert d["kv_bytes"] == 128 * (2 * 8192 * 4 + 10 * 1536 * 4)
    u = gguf_fit(path, "--parallel", "4", "--kv-unified")
    assert u["kv_bytes"] == 128 * (2 * 32768 + 10 * (1024 * 4 + 512))


def test_llama4_gguf_has_chunked_layers(tmp_path):
    """Layers il % 4 < 3 chunked at 8192 tokens (the SWA size rule: pad256(8192 + 512) = 8704 cells), every 4th
    full. Llama-4-Scout at 32K in f16: 12 x 4096 x 32768 + 36 x 4096 x 8704 bytes = 2.695 GiB (the issue's
    2.625 GiB leaves out llama.cpp's extra ubatch)."""
    path = write_gguf(tmp_path / "llama4.gguf", "llama4", 8)
    d = gguf_fit(path)
    assert d["kv_bytes"] == 128 * (2 * 32768 + 6 * 8704)
    scout = fit(CONFIGS / "llama-4-scout.TRIMMED.json", "--context", "32768")
    assert scout["kv_bytes"] == 12 * 4096 * 32768 + 36 * 4096 * 8704
    assert round(scout["kv_bytes"] / GIB, 3) == 2.695


def test_lfm2_gguf_reads_its_conv_layers_from_the_kv_head_array(tmp_path):
    """head_count_kv 0 marks a short-conv layer: 4 of 6 layers keep (3 - 1) x 64 f32 values per sequence."""
    path = write_gguf(tmp_path / "lfm2.gguf", "lfm2", 6, extra=[("lfm2.shortconv.l_cache", 3)],
                      arrays=[("lfm2.attention.head_count_kv", [0, 0, 2, 0, 0, 2])])
    d = gguf_fit(path)
    assert d["kv_bytes"] == 2 * 128 * 32768 + 4 * 2 * 64 * 4
    assert not any("differ per layer" in n for n in d["notes"])


def test_deepseek_latent_only_in_todays_llama_cpp():
    """deepseek-v3: 61 layers x (512 + 64) x 2 bytes = 70,272 bytes per token, V 0.00 MiB; with --mla-v-cache the
    2025 builds' extra 512-wide V latent: 61 x 1088 x 2 = 132,736."""
    r = CliRunner().invoke(main, ["fit", "deepseek-v3", "--context", "4096", "--json"])
    d = json.loads(r.stdout)
    assert d["kv_bytes_per_token"] == 70_272 and d["kv_v_bytes"] == 0
    r = CliRunner().invoke(main, ["fit", "deepseek-v3", "--context", "4096", "--mla-v-cache", "--json"])
    assert json.loads(r.stdout)["kv_bytes_per_token"] == 132_736


@pytest.mark.parametrize("path, engine, native", [
    (DATA / "configs" / "gpt-oss-20b.json", "llama.cpp", "MXFP4"),  # quant_method mxfp4
    (CONFIGS / "deepseek-r1.json", "vllm", "FP8-BLOCK"),  # fp8 with weight_block_size [128, 128]
    ("nvfp4", "vllm", "NVFP4"),  # modelopt NVFP4 (that repo keeps it in hf_quant_config.json; written here)
])
def test_a_configs_own_quantization_is_its_native_format_and_the_default(path, engine, native):
    if path == "nvfp4":
        cfg = load("deepseek-v3.1-nvfp4.json")
        cfg["quantization_config"] = {"quant_method": "modelopt", "quant_algo": "NVFP4"}
        path = write_tmp(cfg)
    gpu = ["--gpu", "8x H200 SXM"] if engine == "vllm" else ["--gpu", "RTX 4090"]
    d = fit(path, "--engine", engine, "--context", "4096", *gpu)
    assert d["quant"] == native and any("native format" in n for n in d["notes"])
    # a format the engine cannot load is no default: llama.cpp has no FP8 checkpoints
    if engine == "vllm":
        assert fit(path, "--context", "4096")["quant"] == "Q4_K_M"


def test_gpt_oss_120b_profile_defaults_to_mxfp4_within_3_percent_of_the_checkpoint():
    """openai/gpt-oss-120b: 65.3 GB of safetensors = 60.8 GiB; MXFP4 experts (17 bytes per 32), BF16 the rest."""
    r = CliRunner().invoke(main, ["fit", "gpt-oss-120b", "--context", "8192", "--json"])
    d = json.loads(r.stdout)
    assert d["quant"] == "MXFP4" and abs(d["weights_bytes"] / (60.8 * GIB) - 1) < 0.03


# ---------------------------------------------------------------- Jamba, Falcon-H1, Nemotron-3 (Mamba hybrids)

# ai21labs/AI21-Jamba-1.5-Mini config.json as quoted by sdpython/experimental-experiment
# experimental_experiment/torch_models/llm_model_helper.py @ 04097e30 (get_ai21_jamba_15_mini; that file sets
# use_mamba_kernels false, which changes no size). No verbatim copy of the file was found (see SOURCES.md).
JAMBA_15_MINI = {
    "architectures": ["JambaForCausalLM"], "attention_dropout": 0.0, "attn_layer_offset": 4, "attn_layer_period": 8,
    "bos_token_id": 1, "eos_token_id": [2, 518], "expert_layer_offset": 1, "expert_layer_period": 2,
    "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
    "mamba_conv_bias": True, "mamba_d_conv": 4, "mamba_d_state": 16, "mamba_dt_rank": 256, "mamba_expand": 2,
    "mamba_proj_bias": False, "max_position_embeddings": 262144, "model_type": "jamba", "num_attention_heads": 32,
    "num_experts": 16, "num_experts_per_tok": 2, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "num_logits_to_keep": 1, "output_router_logits": False, "pad_token_id": 0, "rms_norm_eps": 1e-06,
    "router_aux_loss_coef": 0.001, "sliding_window": None, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "transformers_version": "4.40.2", "use_cache": True, "use_mamba_kernels": False, "vocab_size": 65536,
}
# AI21's Jamba 1.5 announcement / model card: Jamba 1.5 Mini has 52B total and 12B active parameters
JAMBA_15_MINI_PARAMS, JAMBA_15_MINI_ACTIVE = 52e9, 12e9


def test_jamba_attention_every_eighth_layer_moe_every_second_and_a_mamba_state():
    """attn_layer_period 8, offset 4: layers 4, 12, 20, 28 attend: 4 x 8 KV heads x 128 x (K, V) x 2 bytes = 16,384
    bytes per token. The 28 Mamba layers keep, per sequence, f32: conv (4 - 1) x (d_inner 2 x 4096 + 2 x 1 group x
    d_state 16) = 24,672 values and the SSM state 8192 x 16 = 131,072: 28 x 155,744 x 4 = 17,443,328 bytes
    (llama.cpp's Mamba1 state leaves out the 2 x 16 B/C conv channels: 17,432,576, 0.06 % less). MoE on layers
    1, 3, ... (expert_layer_offset 1, period 2): 16 experts, 2 active."""
    m = imported("jamba", copy.deepcopy(JAMBA_15_MINI)).profile
    assert [i for i, c in enumerate(m.layer_pattern) if c == "A"] == [4, 12, 20, 28]
    assert [i for i in range(m.layers) if m.is_moe_layer(i)] == list(range(1, 32, 2))
    assert (m.experts, m.experts_active, m.mamba_heads * m.mamba_head_dim, m.mamba_state) == (16, 2, 8192, 16)
    d = fit_cfg(JAMBA_15_MINI, "--quant", "BF16", "--context", "32768")
    assert d["kv_bytes_per_token"] == 16_384
    assert d["kv_bytes"] == 16_384 * 32_768 + 17_443_328
    assert abs(d["params"] / JAMBA_15_MINI_PARAMS - 1) <= TOLERANCE, d["params"] / 1e9
    assert abs(d["active_weights_bytes"] / 2 / JAMBA_15_MINI_ACTIVE - 1) <= 0.05, d["active_weights_bytes"] / 2e9
    assert not d["upper_bound"]


def test_jamba_moe_layers_it_cannot_place_are_refused():
    cfg = dict(JAMBA_15_MINI, expert_layer_offset=0)  # MoE on layers 0, 2, ...: not (i + 1) % period == 0
    with pytest.raises(ProfileError, match="expert_layer_offset"):
        imported("jamba", cfg)


def test_falcon_h1_is_refused_with_the_reason():
    """Falcon-H1 runs attention and Mamba2 side by side in every layer: one layer would need both a KV row per token
    and a state per sequence, and both mixers' weights; the layer model has one mixer per layer. The keys are those
    of tiiuae/Falcon-H1 configs (no real file was found to vendor; the refusal depends only on model_type)."""
    cfg = {"model_type": "falcon_h1", "hidden_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 8,
           "num_key_value_heads": 2, "head_dim": 128, "intermediate_size": 2048, "vocab_size": 32768,
           "max_position_embeddings": 16384, "mamba_d_ssm": 1536, "mamba_n_heads": 24, "mamba_d_head": 64,
           "mamba_n_groups": 1, "mamba_d_state": 128, "mamba_d_conv": 4}
    with pytest.raises(ProfileError, match="in parallel in every layer"):
        imported("falcon", cfg)
    r = CliRunner().invoke(main, ["fit", str(write_tmp(cfg))])
    assert r.exit_code == 1 and "falcon_h1" in r.output and "one mixer" in r.output


def test_nemotron_3_nano_moe_layers_have_ungated_experts():
    """The real NVIDIA-Nemotron-3-Nano-30B-A3B config: hybrid_override_pattern with E (MoE) layers whose experts are
    ungated (relu2: up + down). Read as gated experts they would be 1.5x too large (~42 B instead of 31.6 B); the
    shared expert is 3712 wide = 2 experts of 1856."""
    m = imported("nemotron-3-nano-30b-a3b.json").profile
    assert (m.experts, m.experts_active, m.shared_experts, m.ffn_gated) == (128, 6, 2, False)
    assert m.layer_pattern.count("F") == 23 and m.layer_pattern.count("A") == 6


def test_a_nemotron_pattern_mixing_dense_and_moe_layers_is_refused():
    cfg = load("nemotron-3-nano-30b-a3b.json")
    cfg["hybrid_override_pattern"] = cfg["hybrid_override_pattern"].replace("E", "-", 1)
    with pytest.raises(ProfileError, match="mixes dense MLP"):
        imported("mixed", cfg)
