#!/usr/bin/env python3
"""GGUF files of real model shapes with made-up weights, to load in llama.cpp and to read in advisor.

    python tests/data/llamacpp_cpu/make_gguf.py NAME OUT.gguf [--data sparse|random|header]

NAME is one of SPECS (gemma3-4b, deepseek-v2-lite, gpt-oss-20b (and gpt-oss-20b-pattern20s4a), llama4-scout, lfm2-1.2b, qwen3-30b-a3b-q4_0,
llama-3.1-8b-q4_k_m). The metadata keys and the tensor names and shapes are the ones llama.cpp's loader asks for
(src/models/<arch>.cpp load_arch_hparams / load_arch_tensors at ggml-org/llama.cpp@0c1e5709), filled from the real
config.json of each model (tests/data/configs*, or the profile for LFM2). The tokenizer is llama.cpp's "none"
vocabulary of `<arch>.vocab_size` dummy tokens (src/llama-vocab.cpp load: "adding N dummy tokens"), which
llama-bench's random prompts need nothing more of.

--data header  writes the header alone (what advisor reads; the test suite uses this);
--data sparse  extends the file to its full length without writing the data (a sparse file: no disk spent; with
               mmap llama.cpp reads the tensors only when it computes with them, or repacks them);
--data random  writes random bytes with sane block scales (so the pages are real and a benchmark computes on
               finite numbers).

Tensor types: QUANT_RULES, a copy of llama-quantize's main rules for the file type (src/llama-quant.cpp
llama_tensor_get_type): Q4_K_M keeps output (or a tied token_embd) at Q6_K and attn_v / ffn_down at Q6_K on the
"use_more_bits" layers; rows not a multiple of 256 fall back to Q5_0 (for Q4_K) or Q8_0 (for Q6_K).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T, GGUFWriter

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "configs"
CONFIGS_2026 = HERE.parent / "configs2026"
QK_K = 256  # ggml-common.h: super-block of the K quants
FALLBACK = {T.Q4_K: T.Q5_0, T.Q6_K: T.Q8_0, T.Q5_K: T.Q5_1}  # llama-quant.cpp: rows not divisible by QK_K
FILE_TYPE = {"Q4_K_M": 15, "Q4_0": 2, "MXFP4_MOE": 38, "F16": 1}  # llama.h enum llama_ftype


def _cfg(path: Path) -> dict:
    d = json.loads(path.read_text())
    return d.get("text_config", d)


def use_more_bits(i: int, n: int) -> bool:
    """llama-quant.cpp use_more_bits: the first and last eighth of the layers and every third one between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def tensor_type(ftype: str, name: str, shape: tuple, n_layer: int, tied: bool) -> T:
    """The ggml type llama-quantize gives a tensor (shape in ggml order: shape[0] is the row length)."""
    if len(shape) == 1 or name.endswith(".bias") or "norm" in name or "sinks" in name or "rope_freqs" in name \
            or "ffn_gate_inp" in name or "conv.weight" in name or "exp_probs_b" in name:
        return T.F32
    if ftype == "F16":
        return T.F16
    layer = int(name.split(".")[1]) if name.startswith("blk.") else -1
    is_output = name == "output.weight" or (tied and name == "token_embd.weight")
    if ftype == "Q4_0":
        want = T.Q6_K if is_output else T.Q4_0
    elif ftype == "MXFP4_MOE":  # gpt-oss as ggml-org ships it: MXFP4 experts, Q8_0 the other matrices
        want = T.MXFP4 if "_exps" in name else T.Q8_0
    else:  # Q4_K_M
        want = T.Q4_K
        if is_output:
            want = T.Q6_K
        elif (".attn_v." in name or ".ffn_down" in name) and use_more_bits(layer, n_layer):
            want = T.Q6_K
    block = GGML_QUANT_SIZES[want][0]
    if shape[0] % block:
        want = FALLBACK.get(want, T.F16)
        if shape[0] % GGML_QUANT_SIZES[want][0]:
            want = T.F16
    return want


# ------------------------------------------------------------------ model specs: (arch, metadata, tensors, ftype)

def _common(arch, c, layers, hidden, heads, kv, head_dim, ff, ctx, vocab):
    return [(f"{arch}.block_count", layers), (f"{arch}.embedding_length", hidden),
            (f"{arch}.attention.head_count", heads), (f"{arch}.attention.head_count_kv", kv),
            (f"{arch}.attention.key_length", head_dim), (f"{arch}.attention.value_length", head_dim),
            (f"{arch}.feed_forward_length", ff), (f"{arch}.context_length", ctx), (f"{arch}.vocab_size", vocab),
            (f"{arch}.rope.dimension_count", head_dim), (f"{arch}.rope.freq_base", float(c.get("rope_theta", 1e4))),
            (f"{arch}.attention.layer_norm_rms_epsilon", float(c.get("rms_norm_eps", 1e-6)))]


def _attn(i, hidden, q_dim, kv_dim, out=None):
    return [(f"blk.{i}.attn_q.weight", (hidden, q_dim)), (f"blk.{i}.attn_k.weight", (hidden, kv_dim)),
            (f"blk.{i}.attn_v.weight", (hidden, kv_dim)), (f"blk.{i}.attn_output.weight", (q_dim, out or hidden))]


def _ffn(i, hidden, ff):
    return [(f"blk.{i}.ffn_gate.weight", (hidden, ff)), (f"blk.{i}.ffn_up.weight", (hidden, ff)),
            (f"blk.{i}.ffn_down.weight", (ff, hidden))]


def _exps(i, hidden, ff, n):
    return [(f"blk.{i}.ffn_gate_inp.weight", (hidden, n)), (f"blk.{i}.ffn_gate_exps.weight", (hidden, ff, n)),
            (f"blk.{i}.ffn_up_exps.weight", (hidden, ff, n)), (f"blk.{i}.ffn_down_exps.weight", (ff, hidden, n))]


def _experts(arch, ff, n, used):
    """The routed-expert keys every MoE header has: each expert's FFN width, how many experts, how many a token
    uses."""
    return [(f"{arch}.expert_feed_forward_length", ff), (f"{arch}.expert_count", n),
            (f"{arch}.expert_used_count", used)]


def gemma3_4b():
    """google/gemma-3-4b-it (tests/data/configs/gemma-3-4b-it.json; the keys it leaves out are Gemma3TextConfig's
    defaults: 8 heads, 4 KV heads, head_dim 256, vocab 262208, sliding_window_pattern 6, 131072 positions)."""
    c = _cfg(CONFIGS / "gemma-3-4b-it.json")
    arch, L, H, heads, kv, hd, ff, vocab = "gemma3", c["num_hidden_layers"], c["hidden_size"], 8, 4, 256, \
        c["intermediate_size"], 262208
    meta = _common(arch, c, L, H, heads, kv, hd, ff, 131072, vocab) + [
        (f"{arch}.attention.sliding_window", c["sliding_window"]), (f"{arch}.rope.freq_base_swa", 10000.0)]
    t = [("token_embd.weight", (H, vocab)), ("output_norm.weight", (H,))]
    for i in range(L):
        t += [(f"blk.{i}.attn_norm.weight", (H,))] + _attn(i, H, heads * hd, kv * hd)
        t += [(f"blk.{i}.post_attention_norm.weight", (H,)), (f"blk.{i}.attn_k_norm.weight", (hd,)),
              (f"blk.{i}.attn_q_norm.weight", (hd,)), (f"blk.{i}.ffn_norm.weight", (H,))] + _ffn(i, H, ff)
        t += [(f"blk.{i}.post_ffw_norm.weight", (H,))]
    return arch, meta, t, "Q4_K_M", True


def deepseek_v2_lite():
    """deepseek-ai/DeepSeek-V2-Lite (tests/data/configs/deepseek-v2-lite.json), as today's convert_hf_to_gguf.py
    writes MLA: key_length 576 / value_length 512 with one KV head, k_b and v_b split, *_mla the per-head sizes."""
    c = _cfg(CONFIGS / "deepseek-v2-lite.json")
    arch, L, H, heads = "deepseek2", c["num_hidden_layers"], c["hidden_size"], c["num_attention_heads"]
    rank, rope, nope, vd = c["kv_lora_rank"], c["qk_rope_head_dim"], c["qk_nope_head_dim"], c["v_head_dim"]
    ff, eff, n_exp, vocab = c["intermediate_size"], c["moe_intermediate_size"], c["n_routed_experts"], c["vocab_size"]
    meta = _common(arch, c, L, H, heads, 1, rank + rope, ff, c["max_position_embeddings"], vocab)
    meta = [(k, v) for k, v in meta if not k.endswith(("value_length", "rope.dimension_count"))] + [
        (f"{arch}.attention.value_length", rank), (f"{arch}.rope.dimension_count", rope),
        (f"{arch}.attention.key_length_mla", nope + rope), (f"{arch}.attention.value_length_mla", vd),
        (f"{arch}.attention.kv_lora_rank", rank), (f"{arch}.leading_dense_block_count", c["first_k_dense_replace"]),
        *_experts(arch, eff, n_exp, c["num_experts_per_tok"]), (f"{arch}.expert_shared_count", c["n_shared_experts"]),
        (f"{arch}.expert_weights_scale", 1.0), (f"{arch}.expert_gating_func", 1)]
    t = [("token_embd.weight", (H, vocab)), ("output_norm.weight", (H,)), ("output.weight", (H, vocab))]
    for i in range(L):
        t += [(f"blk.{i}.attn_norm.weight", (H,)), (f"blk.{i}.attn_kv_a_norm.weight", (rank,)),
              (f"blk.{i}.attn_q.weight", (H, heads * (nope + rope))),
              (f"blk.{i}.attn_kv_a_mqa.weight", (H, rank + rope)),
              (f"blk.{i}.attn_k_b.weight", (nope, rank, heads)), (f"blk.{i}.attn_v_b.weight", (rank, vd, heads)),
              (f"blk.{i}.attn_output.weight", (heads * vd, H)), (f"blk.{i}.ffn_norm.weight", (H,))]
        if i < c["first_k_dense_replace"]:
            t += _ffn(i, H, ff)
        else:
            sh = eff * c["n_shared_experts"]
            t += _exps(i, H, eff, n_exp) + [(f"blk.{i}.ffn_gate_shexp.weight", (H, sh)),
                                            (f"blk.{i}.ffn_up_shexp.weight", (H, sh)),
                                            (f"blk.{i}.ffn_down_shexp.weight", (sh, H))]
    return arch, meta, t, "Q4_K_M", False


def gpt_oss_20b():
    """openai/gpt-oss-20b (tests/data/configs/gpt-oss-20b.json): 24 layers alternating a 128-token window and full
    attention (llama.cpp's default pattern 2 for gpt-oss), 32 experts of 2880 with biases, attention sinks."""
    c = _cfg(CONFIGS / "gpt-oss-20b.json")
    arch, L, H, heads, kv, hd = "gpt-oss", c["num_hidden_layers"], c["hidden_size"], c["num_attention_heads"], \
        c["num_key_value_heads"], c["head_dim"]
    ff, n_exp, vocab = c["intermediate_size"], c["num_local_experts"], c["vocab_size"]
    meta = _common(arch, c, L, H, heads, kv, hd, ff, c["max_position_embeddings"], vocab) + [
        *_experts(arch, ff, n_exp, c["num_experts_per_tok"]), (f"{arch}.attention.sliding_window", c["sliding_window"])]
    t = [("token_embd.weight", (H, vocab)), ("output_norm.weight", (H,)), ("output.weight", (H, vocab))]
    for i in range(L):
        t += [(f"blk.{i}.attn_norm.weight", (H,)), (f"blk.{i}.post_attention_norm.weight", (H,))]
        t += _attn(i, H, heads * hd, kv * hd)
        t += [(f"blk.{i}.attn_q.bias", (heads * hd,)), (f"blk.{i}.attn_k.bias", (kv * hd,)),
              (f"blk.{i}.attn_v.bias", (kv * hd,)), (f"blk.{i}.attn_output.bias", (H,)),
              (f"blk.{i}.attn_sinks.weight", (heads,))]
        t += _exps(i, H, ff, n_exp) + [(f"blk.{i}.ffn_gate_inp.bias", (n_exp,)),
                                       (f"blk.{i}.ffn_gate_exps.bias", (ff, n_exp)),
                                       (f"blk.{i}.ffn_up_exps.bias", (ff, n_exp)),
                                       (f"blk.{i}.ffn_down_exps.bias", (H, n_exp))]
    return arch, meta, t, "MXFP4_MOE", False


# A what-if of gpt-oss-20b whose GGUF carries its own per-layer sliding_window_pattern (20 sliding layers, then 4
# full), as convert_hf_to_gguf writes the key for gemma3n / gemma4 / cohere2 / exaone4: llama.cpp reads the array
# in place of the architecture's default (llama_model_base::load_swa_pattern).
WHAT_IF_SWA_PATTERN = [True] * 20 + [False] * 4


def gpt_oss_20b_own_pattern():
    arch, meta, t, ftype, tied = gpt_oss_20b()
    return arch, meta + [(f"{arch}.attention.sliding_window_pattern", WHAT_IF_SWA_PATTERN)], t, ftype, tied


def llama4_scout():
    """meta-llama/Llama-4-Scout-17B-16E (tests/data/configs2026/llama-4-scout.TRIMMED.json): 48 layers, every one
    MoE (interleave_moe_layer_step 1) with 16 experts of 8192 and a shared expert; chunked attention of 8192 on three
    layers of four (llama.cpp's default for llama4 when the GGUF has no sliding_window key, as convert writes it)."""
    c = _cfg(CONFIGS_2026 / "llama-4-scout.TRIMMED.json")
    arch, L, H, heads, kv, hd = "llama4", c["num_hidden_layers"], c["hidden_size"], c["num_attention_heads"], \
        c["num_key_value_heads"], c["head_dim"]
    ff, n_exp, vocab = c["intermediate_size"], c["num_local_experts"], c["vocab_size"]
    meta = _common(arch, c, L, H, heads, kv, hd, c["intermediate_size_mlp"], c["max_position_embeddings"], vocab) + [
        *_experts(arch, ff, n_exp, c["num_experts_per_tok"]),
        (f"{arch}.interleave_moe_layer_step", c["interleave_moe_layer_step"])]
    t = [("token_embd.weight", (H, vocab)), ("output_norm.weight", (H,)), ("output.weight", (H, vocab))]
    for i in range(L):
        t += [(f"blk.{i}.attn_norm.weight", (H,))] + _attn(i, H, heads * hd, kv * hd)
        t += [(f"blk.{i}.ffn_norm.weight", (H,))] + _exps(i, H, ff, n_exp)
        t += [(f"blk.{i}.ffn_gate_shexp.weight", (H, ff)), (f"blk.{i}.ffn_up_shexp.weight", (H, ff)),
              (f"blk.{i}.ffn_down_shexp.weight", (ff, H))]
    return arch, meta, t, "Q4_K_M", False


# LiquidAI/LFM2-1.2B: the geometry of profiles/models/lfm2.toml (its source line: the config.json's full_attn_idxs
# [2, 5, 8, 10, 12, 14], hidden 2048, 32/8 heads, conv_L_cache 3, block_ff_dim 12288 auto-adjusted to 8192).
LFM2_ATTENTION_LAYERS = (2, 5, 8, 10, 12, 14)


def lfm2_1_2b():
    """LiquidAI/LFM2-1.2B: 16 layers, 10 short-conv (head_count_kv 0 in the per-layer array) and 6 attention."""
    arch, L, H, heads, kv, hd, ff, vocab = "lfm2", 16, 2048, 32, 8, 64, 8192, 65536
    c = {"rope_theta": 1e6, "rms_norm_eps": 1e-5}
    meta = _common(arch, c, L, H, heads, kv, hd, ff, 128000, vocab)
    meta = [(k, v) for k, v in meta if not k.endswith("head_count_kv")] + [
        (f"{arch}.attention.head_count_kv", [kv if i in LFM2_ATTENTION_LAYERS else 0 for i in range(L)]),
        (f"{arch}.shortconv.l_cache", 3)]
    t = [("token_embd.weight", (H, vocab)), ("token_embd_norm.weight", (H,))]
    for i in range(L):
        t += [(f"blk.{i}.ffn_norm.weight", (H,))] + _ffn(i, H, ff) + [(f"blk.{i}.attn_norm.weight", (H,))]
        if i in LFM2_ATTENTION_LAYERS:
            t += [(f"blk.{i}.attn_q_norm.weight", (hd,)), (f"blk.{i}.attn_k_norm.weight", (hd,))]
            t += _attn(i, H, H, kv * hd)
        else:
            t += [(f"blk.{i}.shortconv.conv.weight", (3, H)), (f"blk.{i}.shortconv.in_proj.weight", (H, 3 * H)),
                  (f"blk.{i}.shortconv.out_proj.weight", (H, H))]
    return arch, meta, t, "Q4_K_M", True


def qwen3_30b_a3b_q4_0():
    """Qwen/Qwen3-30B-A3B (tests/data/configs2026/qwen3-30b-a3b.json) quantized Q4_0: 48 MoE layers of 128 experts
    of 768, 8 active, q/k norms; the Q4_0 MoE of the CPU_REPACK question."""
    c = _cfg(CONFIGS_2026 / "qwen3-30b-a3b.json")
    arch, L, H, heads, kv, hd = "qwen3moe", c["num_hidden_layers"], c["hidden_size"], c["num_attention_heads"], \
        c["num_key_value_heads"], c["head_dim"]
    eff, n_exp, vocab = c["moe_intermediate_size"], c["num_experts"], c["vocab_size"]
    meta = _common(arch, c, L, H, heads, kv, hd, c["intermediate_size"], c["max_position_embeddings"], vocab) + \
        _experts(arch, eff, n_exp, c["num_experts_per_tok"])
    t = [("token_embd.weight", (H, vocab)), ("output_norm.weight", (H,)), ("output.weight", (H, vocab))]
    for i in range(L):
        t += [(f"blk.{i}.attn_norm.weight", (H,))] + _attn(i, H, heads * hd, kv * hd)
        t += [(f"blk.{i}.attn_k_norm.weight", (hd,)), (f"blk.{i}.attn_q_norm.weight", (hd,)),
              (f"blk.{i}.ffn_norm.weight", (H,))] + _exps(i, H, eff, n_exp)
    return arch, meta, t, "Q4_0", False


def llama31_8b_q4_k_m():
    """meta-llama/Llama-3.1-8B (tests/data/configs/llama-3.1-8b.json) at Q4_K_M: about 4.9 GB, as the released
    Q4_K_M files of it are (4.92 GB)."""
    c = _cfg(CONFIGS / "llama-3.1-8b.json")
    arch, L, H, heads, kv = "llama", c["num_hidden_layers"], c["hidden_size"], c["num_attention_heads"], \
        c["num_key_value_heads"]
    hd, ff, vocab = H // heads, c["intermediate_size"], c["vocab_size"]
    meta = _common(arch, c, L, H, heads, kv, hd, ff, c["max_position_embeddings"], vocab)
    t = [("token_embd.weight", (H, vocab)), ("rope_freqs.weight", (hd // 2,)), ("output_norm.weight", (H,)),
         ("output.weight", (H, vocab))]
    for i in range(L):
        t += [(f"blk.{i}.attn_norm.weight", (H,))] + _attn(i, H, H, kv * hd)
        t += [(f"blk.{i}.ffn_norm.weight", (H,))] + _ffn(i, H, ff)
    return arch, meta, t, "Q4_K_M", False


SPECS = {"gemma3-4b": gemma3_4b, "deepseek-v2-lite": deepseek_v2_lite, "gpt-oss-20b": gpt_oss_20b,
         "gpt-oss-20b-pattern20s4a": gpt_oss_20b_own_pattern,
         "llama4-scout": llama4_scout, "lfm2-1.2b": lfm2_1_2b, "qwen3-30b-a3b-q4_0": qwen3_30b_a3b_q4_0,
         "llama-3.1-8b-q4_k_m": llama31_8b_q4_k_m}


def tensors_of(name: str):
    """[(tensor name, ggml shape, ggml type)] of a spec, and its (arch, metadata, ftype)."""
    arch, meta, tensors, ftype, tied = SPECS[name]()
    n_layer = dict(meta)[f"{arch}.block_count"]
    return arch, meta, ftype, [(n, s, tensor_type(ftype, n, s, n_layer, tied)) for n, s in tensors]


def nbytes(shape, ggml_type) -> int:
    block, size = GGML_QUANT_SIZES[ggml_type]
    return int(np.prod(shape)) // block * size


# The byte offsets of each block's f16 scale(s), so random data has finite, moderate scales (ggml-common.h)
F16_SCALE_OFFSETS = {T.Q4_0: (0,), T.Q5_0: (0,), T.Q8_0: (0,), T.Q4_K: (0, 2), T.Q6_K: (208,), T.Q5_K: (0, 2)}
SCALE_F16 = np.float16(1 / 256).view(np.uint16)
MXFP4_E8M0_ONE = 127  # E8M0 exponent bias: 2^0


def _random_bytes(shape, ggml_type, rng) -> bytes:
    if ggml_type == T.F32:
        return np.ones(shape, dtype=np.float32).tobytes()
    if ggml_type == T.F16:
        return (rng.standard_normal(int(np.prod(shape)), dtype=np.float32) * 0.02).astype(np.float16).tobytes()
    block, size = GGML_QUANT_SIZES[ggml_type]
    data = rng.integers(0, 256, size=(int(np.prod(shape)) // block, size), dtype=np.uint8)
    for off in F16_SCALE_OFFSETS.get(ggml_type, ()):
        data[:, off:off + 2] = np.frombuffer(SCALE_F16.tobytes(), dtype=np.uint8)
    if ggml_type == T.MXFP4:
        data[:, 0] = MXFP4_E8M0_ONE - 8
    return data.tobytes()


def write(name: str, path: Path, data: str = "header", seed: int = 0) -> Path:
    arch, meta, ftype, tensors = tensors_of(name)
    w = GGUFWriter(str(path), arch)
    w.add_name(name)
    w.add_file_type(FILE_TYPE[ftype])
    for key, value in meta:
        if isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value)
        elif isinstance(value, float):
            w.add_float32(key, value)
        elif isinstance(value, list):
            w.add_array(key, value)
        else:
            w.add_string(key, value)
    w.add_tokenizer_model("none")
    for tname, shape, ggml_type in tensors:
        w.add_tensor_info(tname, tuple(reversed(shape)), np.dtype(np.float32), nbytes(shape, ggml_type),
                          raw_dtype=ggml_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    fout = w.fout[0]
    start = fout.tell()
    start += -start % w.data_alignment
    total = sum(GGUFWriter.ggml_pad(nbytes(s, t), w.data_alignment) for _, s, t in tensors)
    if data == "random":
        rng = np.random.default_rng(seed)
        fout.seek(start)
        for _, shape, ggml_type in tensors:
            blob = _random_bytes(shape, ggml_type, rng)
            fout.write(blob + b"\0" * (-len(blob) % w.data_alignment))
    fout.flush()
    w.close()
    if data in ("sparse", "random"):
        os.truncate(path, start + total)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", choices=sorted(SPECS))
    p.add_argument("out", type=Path)
    p.add_argument("--data", choices=("header", "sparse", "random"), default="sparse")
    args = p.parse_args(argv)
    write(args.name, args.out, args.data)
    _, _, ftype, tensors = tensors_of(args.name)
    print(f"{args.out}: {len(tensors)} tensors, {sum(nbytes(s, t) for _, s, t in tensors) / 2**20:.2f} MiB of "
          f"tensor data ({ftype}, {args.data})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
