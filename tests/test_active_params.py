"""FLOPs count parameters, not bytes: WeightsLayout.active_params (every parameter a token multiplies by) from a recipe
and from a GGUF header, and the speed model's compute terms built on it.

With mixed precision the share of bytes read is not the share of parameters: gpt-oss ships MXFP4 experts (4.25 bits)
beside BF16 attention, so 2 x params x (bytes read / bytes) made gpt-oss-120b a 9.2 B-active model where it has 5.1 B
(OpenAI's model card: 5.13 B active of 116.83 B); a K-quant mix (Q6_K output, Q4_K elsewhere) shifts it less."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFWriter

from advisor import api
from advisor.core.memory import EngineSettings, KVChoice
from advisor.core.speed import PREFILL_EFFICIENCY, estimate_speed
from advisor.core.tensors import _computed_layout, group_of, tensor_list, weights_layout
from advisor.sources.gguf_file import import_gguf
from advisor.sources.profiles import load_registry

REG = load_registry()
Q = REG.quants


def layout(model_id: str, recipe: str):
    return weights_layout(REG.model(model_id), Q.recipe(recipe), Q)


# ---------------------------------------------------------------- the counts, by hand


def test_gpt_oss_120b_is_5_1_b_active():
    """From profiles/models/gpt-oss.toml (hidden 2880, 64 query and 8 KV heads of 64, 128 experts of 2880, 4 active,
    36 layers, vocab 201,088, qkv biases), per layer:
        attention  q 2880 x 4096 + k 2880 x 512 + v 2880 x 512 + o 4096 x 2880  = 26,542,080
                   + biases 4096 + 512 + 512 = 5,120; attn_norm + ffn_norm 2 x 2880 = 5,760
        router     2880 x 128                                                   =    368,640
        experts    4 of 128 x (gate + up + down) 3 x 2880 x 2880                 = 99,532,800
                                                                                   -----------
                                                                                   126,454,400
    x 36 layers = 4,552,358,400, + output 2880 x 201,088 = 579,133,440 and output_norm 2,880:
    5,131,494,720 (the model card: 5.13 B; the embedding lookup, 579 M more, is no multiply). Bytes said 9.17 B:
    116.8 B params x 5.03 GB read / 64.0 GB held."""
    w = layout("gpt-oss-120b", "MXFP4")
    per_layer = (2880 * (4096 + 512 + 512) + 4096 * 2880 + 5_120 + 5_760 + 2880 * 128 + 4 * 3 * 2880 * 2880)
    assert per_layer == 126_454_400
    assert w.active_params == 36 * per_layer + 2880 * 201_088 + 2_880 == 5_131_494_720
    assert w.active_params == pytest.approx(5.1e9, rel=0.05)
    assert set(w.layer_active_params) == {per_layer}
    assert w.output_active_params == 2880 * 201_088 + 2_880
    by_bytes = w.params * w.active_bytes / (w.total_bytes - w.token_embd_bytes)
    assert by_bytes == pytest.approx(9.17e9, rel=0.01)  # what the byte share made of it


def test_gpt_oss_20b_is_3_6_b_active():
    """24 layers of 32 experts: per layer 26,542,080 + 5,120 + 5,760 + router 2880 x 32 = 92,160 + 99,532,800 =
    126,177,920; x 24 + 579,136,320 (output and its norm) = 3,607,406,400 (model card: 3.61 B)."""
    w = layout("gpt-oss-20b", "MXFP4")
    assert w.active_params == 24 * 126_177_920 + 579_136_320 == 3_607_406_400
    assert w.active_params == pytest.approx(3.6e9, rel=0.01)


@pytest.mark.parametrize("recipe", ["F16", "Q8_0", "Q4_K_M", "Q2_K", "IQ2_XXS"])
def test_a_dense_models_active_params_are_its_params_less_the_embedding(recipe):
    """llama-3-8b (untied): 8,030,261,248 params, of which token_embd 128,256 x 4096 = 525,336,576 is looked up, not
    multiplied: 7,504,924,672 whatever the format (bytes made Q4_K_M's 8.03 B, all of the params)."""
    w = layout("llama-3-8b", recipe)
    embd = 128_256 * 4096
    assert w.kind_params("embeddings") == embd
    assert w.active_params == w.params - embd == 7_504_924_672
    assert w.active_params == sum(w.layer_active_params) + w.output_active_params


def test_a_tied_output_is_multiplied_by_once():
    """llama-3.2-1b ties its output to token_embd: the lookup is free, the logits' matmul is not (llama.cpp
    multiplies by the same matrix, duplicated on a GPU): every parameter counts once."""
    w = layout("llama-3.2-1b", "Q8_0")
    assert REG.model("llama-3.2-1b").tied_embeddings
    assert w.active_params == w.params


def test_routed_experts_count_their_active_share_and_the_router_whole():
    w = layout("qwen3-30b-a3b", "Q4_K_M")
    m = REG.model("qwen3-30b-a3b")
    experts = 3 * m.hidden * m.expert_intermediate * m.experts
    router = m.hidden * m.experts
    # the router is read whole and stays with the layer (llama.cpp's expert offload moves only the _exps tensors)
    assert w.expert_layer_active_params[0] == experts * m.experts_active // m.experts
    assert w.layer_active_params[0] - w.expert_layer_active_params[0] >= router
    assert w.active_span_params(0, m.layers) == sum(w.layer_active_params)
    assert w.active_span_params(3, 7) == sum(w.layer_active_params[3:7])
    assert w.active_span_params(5, 5) == 0


# ---------------------------------------------------------------- recipe, tensor list and GGUF header agree


def _groups_of_tensor_list(model, recipe):
    """tensor_list summed the way _computed_layout sums: (kind, layer) -> [bytes, read, params, params read]."""
    out: dict = {}
    for t in tensor_list(model, recipe, Q):
        if t.layer >= 0:
            kind = group_of(t.name)
        else:
            kind = "embeddings" if t.name in ("token_embd", "per_layer_token_embd") else "output"
        read = 0 if kind == "embeddings" else None
        acc = out.setdefault((kind, t.layer), [0, 0, 0, 0])
        acc[0] += t.nbytes
        acc[1] += read if read is not None else int(t.nbytes * t.expert_share) if t.expert_share else t.nbytes
        acc[2] += t.elements
        acc[3] += read if read is not None else int(t.elements * t.expert_share) if t.expert_share else t.elements
    return out


@pytest.mark.parametrize("model_id, recipe", [
    ("gpt-oss-120b", "MXFP4"), ("llama-3-8b", "Q4_K_M"), ("llama-3.2-1b", "Q8_0"), ("deepseek-v2-lite", "Q4_K_M"),
    ("qwen3-30b-a3b", "IQ2_XXS"), ("gemma-3n-e4b", "Q4_K_M"), ("deepseek-v3", "IQ1_S"),
])
def test_the_recipe_layout_is_the_tensor_lists_sum(model_id, recipe):
    model = REG.model(model_id)
    got = {(g.kind, g.layer): [g.nbytes, g.active_bytes, g.params, g.active_params]
           for g in _computed_layout(model, Q.recipe(recipe), Q).groups}
    assert got == _groups_of_tensor_list(model, Q.recipe(recipe))


def _gguf_of_tensor_list(path, model_id, recipe, arch="llama"):
    """A GGUF header (sparse data) holding exactly the tensors tensor_list gives, with their types and sizes."""
    m = REG.model(model_id)
    w = GGUFWriter(str(path), arch)
    w.add_block_count(m.layers)
    w.add_embedding_length(m.hidden)
    w.add_head_count(m.heads)
    w.add_head_count_kv(m.kv_heads)
    w.add_key_length(m.head_dim)
    w.add_feed_forward_length(m.intermediate)
    w.add_context_length(m.max_context)
    if m.experts > 1:
        w.add_uint32(f"{arch}.expert_count", m.experts)
        w.add_uint32(f"{arch}.expert_used_count", m.experts_active)
        w.add_uint32(f"{arch}.expert_feed_forward_length", m.expert_intermediate)
    total = 0
    for t in tensor_list(m, Q.recipe(recipe), Q):
        if t.name.startswith("output (tied"):
            continue  # llama.cpp's copy, not in the file
        name = t.name if t.name.endswith(".bias") else f"{t.name}.weight"
        if "_exps" in t.name:  # experts stacked: ggml (row, ff, experts)
            shape = (m.experts, t.rows // m.experts, t.row)
        else:
            shape = (t.rows, t.row) if t.rows > 1 else (t.row,)
        w.add_tensor_info(name, shape, np.dtype(np.float32), t.nbytes, raw_dtype=GGMLQuantizationType[t.type.upper()])
        total += GGUFWriter.ggml_pad(t.nbytes, w.data_alignment)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    start = w.fout[0].tell()
    w.close()
    os.truncate(path, start + -start % w.data_alignment + total)  # holes: the reader checks the length only
    return path


@pytest.mark.parametrize("model_id, recipe, arch", [("gpt-oss-20b", "MXFP4", "gpt-oss"),
                                                     ("llama-3-8b", "Q4_K_M", "llama")])
def test_a_gguf_headers_layout_is_the_recipes(tmp_path, model_id, recipe, arch):
    """The same tensors read back from a GGUF header: bytes and parameters, held and read, group by group."""
    path = _gguf_of_tensor_list(tmp_path / f"{model_id}.gguf", model_id, recipe, arch)
    from_file = import_gguf(path).weights
    from_recipe = layout(model_id, recipe)

    def by_key(w):
        return {(g.kind, g.layer): (g.nbytes, g.active_bytes, g.params, g.active_params) for g in w.groups}

    assert by_key(from_file) == by_key(from_recipe)
    assert from_file.active_params == from_recipe.active_params
    assert from_file.expert_layer_active_params == from_recipe.expert_layer_active_params
    assert from_file.params == from_recipe.params


def test_a_real_shaped_gguf_counts_what_the_file_holds(tmp_path):
    """make_gguf.py's gpt-oss-20b (MXFP4_MOE: MXFP4 experts, Q8_0 the other matrices, as ggml-org ships it) has the
    tensors the profile leaves out (attention sinks, o_proj and expert biases: 0.04 % of the weights): its count is
    the profile's within 0.1 %, and its own Q8_0 attention does not move it (bytes would)."""
    import importlib.util

    from conftest import DATA

    spec = importlib.util.spec_from_file_location("make_gguf", DATA / "llamacpp_cpu" / "make_gguf.py")
    make_gguf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_gguf)
    w = import_gguf(make_gguf.write("gpt-oss-20b", tmp_path / "gpt-oss-20b.gguf", "sparse")).weights
    assert w.active_params == pytest.approx(3_607_406_400, rel=1e-3)


# ---------------------------------------------------------------- the stored layout keeps them


def test_a_pickled_layout_keeps_the_parameter_counts():
    """advisor check keeps layouts in the parsed-data cache: the groups travel packed, the sums precomputed."""
    fresh = _computed_layout(REG.model("gpt-oss-20b"), Q.recipe("MXFP4"), Q)
    stored = pickle.loads(pickle.dumps(fresh.with_sums()))
    for name in ("active_params", "layer_active_params", "expert_layer_active_params", "output_active_params"):
        assert name in stored.__dict__ and getattr(stored, name) == getattr(fresh, name)
    assert stored.active_span_params(2, 9) == fresh.active_span_params(2, 9)
    assert stored.groups == fresh.groups
    bare = pickle.loads(pickle.dumps(_computed_layout(REG.model("llama-3-8b"), Q.recipe("Q4_K_M"), Q)))
    assert bare.active_params == 7_504_924_672  # computed from the unpacked groups


# ---------------------------------------------------------------- the speed model uses them


def _estimate(model_id, machine, **settings):
    return api.fit_one(model_id, None, KVChoice(), EngineSettings(**settings), 8192, machine)


def test_gpt_oss_120b_gpu_prefill_rises_by_the_bytes_over_the_count():
    """On one H100 SXM (whole model on the GPU): prefill = 0.25 x 989 TFLOPS / (2 x 5,131,494,720) = 24,091
    tokens/s, where 2 x 9.17 B (the byte share) gave 13,483: x 1.787 (= 9.17 / 5.13)."""
    machine = api.simulated_machine(gpus=("H100 SXM",))
    est = _estimate("gpt-oss-120b", machine)
    assert est.placement == "gpu" and est.active_params == 5_131_494_720
    gpu = machine.gpus[0]
    speed = estimate_speed(est, machine)
    want = PREFILL_EFFICIENCY[gpu.segment or "datacenter"] * gpu.fp16_tflops * 1e12 / (2 * est.active_params)
    assert speed.prefill_tokens_per_s == pytest.approx(want, rel=1e-9)
    by_bytes = est.params * est.active_weights_bytes / (est.weights_bytes - est.token_embd_bytes)
    assert by_bytes / est.active_params == pytest.approx(1.787, abs=0.002)
    assert speed.prefill_tokens_per_s == pytest.approx(13_483 * 1.787, rel=0.002)
    terms = next(v for k, v in speed.terms.items() if k.startswith("GPU 0"))
    assert terms["active_params"] == est.active_params


def test_cpu_decode_ceiling_counts_the_hosts_share_of_active_params():
    """CPU only, an 8B Q4_K_M on 2 AVX2 cores: the ceiling multiplies by every active parameter once (7.50 B, not
    the 7.55 B that 4,617,396,224 bytes read x 8 / 4.894 bits per weight made of it), and so does CPU prefill."""
    from advisor.detect.simulated import simulated_machine, with_cpu

    machine = with_cpu(simulated_machine((), ram_gib=64, cpu_bandwidth_gb_s=50.0), 2, None, "avx2")
    est = api.fit_one("llama-3-8b", "Q4_K_M", KVChoice(), EngineSettings(), 4096, machine)
    assert est.placement == "cpu"
    speed = estimate_speed(est, machine)
    host = speed.terms["host RAM"]
    assert host["compute_share"] == 1.0
    assert host["params_read"] == host["active_params"] == est.active_params == 7_504_924_672
    assert speed.terms["CPU prefill"]["flops_per_token"] == 2 * est.active_params
    # N sequences: each token multiplies by its own active parameters
    four = estimate_speed(est, machine, concurrency=4).terms["host RAM"]
    assert four["compute_seconds"] == pytest.approx(4 * host["compute_seconds"])


def test_explain_shows_the_counted_parameters(no_gpu_machine):
    """--explain writes the formulas with the active parameters they now use (moe_offload.csv M01's setup)."""
    import json

    from click.testing import CliRunner

    from advisor.cli import main

    m01 = ["gpt-oss-120b", "--gpu", "RTX 3070", "--ram", "64", "--ram-type", "DDR5-5600", "--n-cpu-moe", "36",
           "--context", "4096"]
    r = CliRunner().invoke(main, ["fit", *m01, "--explain"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "compute = n_ubatch x 2 x active parameters / GPU FLOPS = 512 x 2 x 5131494720 / 2.241e+13 = 0.235 s" in text
    r = CliRunner().invoke(main, ["fit", "llama-3-8b", "--ram", "64", "--ram-bandwidth", "100", "--cpu-cores", "2",
                                  "--cpu-isa", "avx2", "--explain"])
    text = " ".join(r.output.split())
    assert "parameters read = the CPU's share of the active parameters = 1 x 7504924672" in text
    assert "/ (2 x 7504924672) =" in text  # CPU prefill
    d = json.loads(CliRunner().invoke(main, ["fit", *m01, "--json"]).stdout)
    assert d["speed_terms"]["prefill, RAM weights copied to the GPU"]["active_params"] == 5_131_494_720


def test_gemma_3n_per_layer_embeddings_are_looked_up_in_a_gguf_as_in_the_recipe():
    """Gemma 3n's per_layer_token_embd (262,144 x 35 x 256) is read a row per token, like token_embd: the GGUF path
    put it with the output layer, read whole every token (~2.3 GB at Q8_0 for E4B), and a tied model's output copy
    took its bytes too. Now the file's layout groups it as the recipe's does, and the tied copy is token_embd's."""
    from advisor.sources.gguf_file import _layout

    m = REG.model("gemma-3n-e4b")
    recipe = Q.recipe("Q4_K_M")
    tensors = [(t.name if t.name.endswith(".bias") else f"{t.name}.weight", t.type, t.row * t.rows, t.nbytes)
               for t in tensor_list(m, recipe, Q) if not t.name.startswith("output (tied")]
    from_file = _layout(tensors, m, "test", {})
    from_recipe = layout("gemma-3n-e4b", "Q4_K_M")
    assert from_file.token_embd_bytes == from_recipe.token_embd_bytes  # both embeddings, looked up
    assert from_file.active_bytes == from_recipe.active_bytes and from_file.output_bytes == from_recipe.output_bytes
    token_embd = next(n for name, _, _, n in tensors if name == "token_embd.weight")
    assert from_file.tied_copy_bytes == token_embd < from_file.token_embd_bytes
