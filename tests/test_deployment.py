"""The deployment model (issue 13): per-layer cache specs, tensor groups, engines as modules, explicit parallelism.

Each answer the issue named as wrong has a test here with its number before the change (main at 89200bd) and after.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from click.testing import CliRunner
from gguf import GGUFWriter

from advisor import engines
from advisor.apps.estimate import estimate
from advisor.cli import main
from advisor.core.cache import (Allocation, FullAttention, MLALatent, NoCache, RecurrentState, SharedCache,
                                SlidingWindow, cache_layout)
from advisor.core.deployment import Deployment
from advisor.core.memory import EngineSettings, KVChoice
from advisor.core.tensors import GROUP_KINDS, group_of, weights_layout
from advisor.core.units import GIB, MIB
from advisor.engines.vllm import stage_layers, valid_tp
from advisor.sources.model_files import import_file
from advisor.sources.profiles import load_registry, model_from_fields
from fake_nvml import NOT_SUPPORTED, FakeNVML, gpu

REG = load_registry()


def fit_json(*args):
    r = CliRunner().invoke(main, ["fit", *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


# ---------------------------------------------------------------- the answers that were wrong


def test_vllm_decodes_faster_on_more_tensor_parallel_gpus():
    """Before: 67.5, 52.0, 35.7, 21.9 tok/s on 1, 2, 4, 8 H100 SXM (the ranks' times were added). After: ranks work
    at once, plus two all-reduces per layer over NVLink: 67.5, 93.7, 123.8, 147.5."""
    speeds, tps = [], []
    for n in (1, 2, 4, 8):
        d = fit_json("llama-3.1-8b", "--engine", "vllm", "--quant", "BF16", "--gpu", f"{n}x H100 SXM")
        speeds.append(d["decode_tokens_per_s"])
        tps.append(d["deployment"]["tp"])
    assert tps == [1, 2, 4, 8]
    assert all(a < b for a, b in zip(speeds, speeds[1:])), speeds
    # the all-reduces cost something: 8 GPUs are faster than one, but not 8x
    assert speeds[-1] < 8 * speeds[0]


def test_vllm_keeps_the_whole_mla_latent_on_every_rank():
    """Before: 127,401,984 bytes of KV per GPU (the latent divided by 8) and 570 concurrent sequences. After: every
    rank holds 27 layers x 576 x 2 bytes x 32768 tokens; max_sequences follows from each GPU's own budget."""
    d = fit_json("deepseek-v2-lite", "--engine", "vllm", "--gpu", "8x H100 SXM", "--context", "32768")
    assert d["deployment"]["tp"] == 8
    assert [dev["kv_bytes"] for dev in d["devices"]] == [27 * 576 * 2 * 32768] * 8 == [1_019_215_872] * 8
    # an independent recomputation from the per-device terms: what the 0.9 budget leaves after weights, activation
    # and non-torch memory, in whole sequences of 32768 tokens
    per_gpu = [(dev["usable_bytes"] - dev["weights_bytes"] - dev["compute_bytes"] - dev["overhead_bytes"])
               // dev["kv_bytes"] for dev in d["devices"]]
    assert d["max_sequences"] == min(per_gpu) < 570
    assert d["devices"][0]["usable_bytes"] == int(80 * GIB * 0.9)


def test_vllm_never_uses_a_tensor_parallel_degree_that_does_not_divide_the_heads():
    """Before: plan offered 45 3-GPU vLLM boxes for llama-3-70b as if tensor parallel 3 were possible. After: 3 GPUs
    are 3 pipeline stages, and the candidate says so."""
    r = CliRunner().invoke(main, ["plan", "--engine", "vllm", "--model", "llama-3-70b", "--max-gpus", "4",
                                  "--context", "8192", "--all", "--json"])
    assert r.exit_code == 0, r.output
    cands = json.loads(r.stdout)["candidates"]
    heads = REG.model("llama-3-70b").heads
    with_deployment = [c for c in cands if c["deployment"]]
    assert with_deployment
    for c in with_deployment:
        assert heads % c["deployment"]["tp"] == 0, c["label"]
        assert c["deployment"]["tp"] * c["deployment"]["pp"] == c["count"], c["label"]
    threes = [c for c in with_deployment if c["count"] == 3]
    assert threes and all(c["deployment"]["pp"] == 3 for c in threes)
    assert all(any("pipeline stages" in n for n in c["notes"]) for c in threes if c["meets_targets"])


def test_fit_and_check_on_three_gpus_use_pipeline_stages():
    d = fit_json("llama-3-70b", "--engine", "vllm", "--quant", "AWQ", "--gpu", "3x RTX 4090", "--context", "8192")
    assert (d["deployment"]["tp"], d["deployment"]["pp"]) == (1, 3)
    assert any("pipeline stages" in n for n in d["notes"])
    # the stages split the 80 layers as vLLM does: 27, 27, 26
    assert [dev["layers"] for dev in d["devices"]] == [27, 27, 26]
    r = CliRunner().invoke(main, ["check", "--engine", "vllm", "--gpu", "3x RTX 4090", "--model", "llama-3-70b",
                                  "--quant", "AWQ", "--json"])
    assert r.exit_code == 0, r.output
    for res in json.loads(r.stdout)["results"]:
        assert res["deployment"]["tp"] == 1 and res["deployment"]["pp"] == 3


def test_unified_memory_is_one_pool():
    """Before: a 39.9 GiB llama-2-70b 'runs on GPU+RAM' on a 36 GB M3 Max (working set and RAM added). After: what
    the GPU's working set holds is taken from the same 36 GB, and the rest does not fit."""
    d = fit_json("llama-2-70b", "--gpu", "M3 Max", "--ram", "36", "--context", "4096")
    assert d["total_bytes"] > 36 * GIB
    assert d["fits"] is False and d["placement"] == "none"
    # a model that fits the pool but not the working set spills to the CPU, which reads the same memory
    d = fit_json("llama-3-70b", "--quant", "Q2_K", "--gpu", "M3 Max", "--ram", "36", "--context", "2048")
    gpu, host = d["devices"]
    assert d["placement"] == "gpu+cpu" and d["fits"] is True
    assert host["usable_bytes"] == 36 * GIB - gpu["total_bytes"]
    assert d["machine"]["cpu_bandwidth_gb_s"] == d["machine"]["gpus"][0]["bandwidth_gb_s"]


def test_ram_not_given_makes_the_verdict_unknown_not_true():
    """Before: fits true with 800 GiB in RAM on a machine whose RAM nobody gave. After: fits null, and a note names
    the missing --ram and how much would have to be there."""
    d = fit_json("llama-3.1-405b", "--quant", "F16", "--gpu", "RTX 4090")
    assert d["fits"] is None and d["placement"] == "gpu+cpu"
    host = d["devices"][-1]
    assert host["host"] and host["fits"] is None and host["usable_bytes"] is None
    assert any("--ram" in n and "GiB would have to be in RAM" in n for n in d["notes"])
    # the table says it too, and breakevens refuse to price an unknown
    r = CliRunner().invoke(main, ["fit", "llama-3.1-405b", "--quant", "F16", "--gpu", "RTX 4090"])
    assert "GPU+RAM?" in r.output
    r = CliRunner().invoke(main, ["breakeven", "--model", "llama-3.1-405b", "--quant", "F16", "--gpu", "RTX 4090",
                                  "--kwh-price", "0.3"])
    assert r.exit_code != 0 and "unknown" in r.output and r.output.count("\n") == 1, r.output
    # given, it is answered
    assert fit_json("llama-3.1-405b", "--quant", "F16", "--gpu", "RTX 4090", "--ram", "64")["fits"] is False
    assert fit_json("llama-3.1-405b", "--quant", "F16", "--gpu", "RTX 4090", "--ram", "1024")["fits"] is True


def test_everything_on_the_gpu_does_not_need_the_ram_size():
    d = fit_json("llama-3-8b", "--gpu", "RTX 4090", "--context", "8192")
    assert d["placement"] == "gpu" and d["fits"] is True
    assert d["devices"][-1]["fits"] is None  # the host's share (token embeddings) cannot be checked


def test_a_mig_slice_whose_memory_cannot_be_read_holds_nothing(monkeypatch):
    """Before: a slice with unreadable memory counted as holding a 73 GiB model. After: it holds nothing; the model
    goes to RAM (llama.cpp) or does not run (vLLM)."""
    from advisor.detect import detect_machine, nvml

    slices = [{"name": "7g.80gb", "total": 80 * GIB, "free": 80 * GIB, "power": NOT_SUPPORTED,
               "memory": NOT_SUPPORTED, "v2": NOT_SUPPORTED}]
    fake = FakeNVML([gpu("NVIDIA A100-SXM4-80GB", 80, mig=slices)])
    monkeypatch.setattr(nvml, "_load_nvml", lambda: fake)
    machine = detect_machine(cgroup_root=Path("/nonexistent-cgroup"))
    assert len(machine.gpus) == 1 and machine.gpus[0].memory_total_bytes is None
    model = REG.model("llama-3-70b")
    est = estimate(model, "Q8_0", KVChoice(), EngineSettings(), 8192, machine, REG.quants)
    assert est.weights_bytes > 65 * GIB
    assert est.placement in ("cpu", "none") and est.gpu_layers == 0
    assert all(d.weights_bytes == 0 for d in est.devices if not d.host)
    vllm = estimate(model, "BF16", KVChoice(), EngineSettings(name="vllm"), 8192, machine, REG.quants)
    assert vllm.fits is False and any("could not be read" in n for n in vllm.notes)


# ---------------------------------------------------------------- cache specs


def test_cache_specs_shard_by_heads_and_replicate_latents():
    full = FullAttention(k_row_bytes=8 * 128 * 2, v_row_bytes=8 * 128 * 2, kv_heads=8)
    assert full.rank_fraction(2) == (4, 8) and full.rank_fraction(8) == (1, 8)
    assert full.rank_fraction(16) == (1, 8)  # fewer KV heads than ranks: each rank keeps a copy of one head
    mla = MLALatent(k_row_bytes=576 * 2)
    assert mla.rank_fraction(8) == (1, 1)
    assert full.bytes(1000) == 1000 * full.row_bytes


def test_sliding_window_keeps_a_window_per_sequence_plus_the_engines_extra():
    swa = SlidingWindow(k_row_bytes=10, v_row_bytes=10, kv_heads=1, window=4096)
    llama = Allocation(pad_tokens=256, pooled=True, window_extra_tokens=512)
    assert swa.bytes(1000, 1, llama) == 1000 * 20
    assert swa.bytes(100_000, 1, llama) == (4096 + 512) * 20
    assert swa.bytes(100_000, 4, llama) == (4 * 4096 + 512) * 20  # llama.cpp: n_swa x n_seq + n_ubatch
    paged = Allocation(pad_tokens=16, pooled=False)
    assert swa.bytes_for(100_000, 4, paged) == 4 * 4096 * 20
    assert swa.bytes_per_token == 0 and swa.fills_at(1, llama) == 4608


def test_recurrent_state_is_per_sequence_and_shared_layers_hold_nothing():
    state = RecurrentState(state_bytes=3 * MIB, kv_heads=32)
    assert state.bytes(10) == state.bytes(1_000_000) == 3 * MIB
    assert state.bytes(1_000_000, sequences=4) == 12 * MIB
    assert state.bytes_per_token == 0 and state.rank_fraction(4) == (8, 32)
    assert SharedCache(source_layer=3).bytes(1_000_000, 8) == 0 == NoCache().bytes(1_000_000, 8)


def test_yoco_and_swa_global_are_plain_lists_of_specs():
    f16 = REG.quants.kv_type("f16")
    yoco = cache_layout(REG.model("yoco-3b"), f16, f16)
    kinds = [spec.kind for spec in yoco.layers]
    assert kinds.count("full") == 1 and kinds.count("sliding_window") == len(kinds) // 2
    assert all(k == "shared" for k in kinds[len(kinds) // 2 + 1:])
    gemma = cache_layout(REG.model("gemma-2-9b"), f16, f16)
    assert {spec.kind for spec in gemma.layers} == {"full", "sliding_window"}
    assert gemma.bytes_per_token == sum(s.row_bytes for s in gemma.layers if s.kind == "full")


# ---------------------------------------------------------------- tensor groups


def _tiny_moe():
    return model_from_fields(dict(id="tiny-moe", layers=3, hidden=64, heads=4, kv_heads=2, vocab=96,
                                  max_context=4096, source="test", experts=4, experts_active=2, shared_experts=1,
                                  expert_intermediate=32, dense_layers=1, intermediate=128), "llama", "test")


def test_groups_from_a_recipe_and_from_a_gguf_header_are_the_same(tmp_path):
    """The same tiny MoE, as the F16 recipe types it and as a GGUF file written with those tensors."""
    from advisor.core.tensors import tensor_list

    model = _tiny_moe()
    recipe = REG.quants.recipe("F16")
    w = GGUFWriter(str(tmp_path / "tiny-moe.gguf"), "llama")
    w.add_block_count(3)
    w.add_embedding_length(64)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_feed_forward_length(128)
    w.add_context_length(4096)
    w.add_uint32("llama.expert_count", 4)
    w.add_uint32("llama.expert_used_count", 2)
    w.add_uint32("llama.expert_shared_count", 1)
    w.add_uint32("llama.expert_feed_forward_length", 32)
    w.add_uint32("llama.leading_dense_block_count", 1)
    for t in tensor_list(model, recipe, REG.quants):
        if t.name.startswith("output (tied"):
            continue
        dtype = np.float32 if t.type == "f32" else np.float16
        name = t.name if t.name.endswith((".bias",)) else f"{t.name}.weight"
        w.add_tensor(name, np.zeros((t.rows, t.row), dtype=dtype))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    from_file = import_file(tmp_path / "tiny-moe.gguf").weights
    from_recipe = weights_layout(model, recipe, REG.quants)

    def by_key(layout):
        return {(g.kind, g.layer): (g.nbytes, g.active_bytes) for g in layout.groups}

    assert by_key(from_file) == by_key(from_recipe)
    kinds = {g.kind for g in from_recipe.groups}
    assert kinds == set(GROUP_KINDS) - {"dense_ffn"} | {"dense_ffn"}  # every kind appears in this model
    experts = [g for g in from_recipe.groups if g.kind == "routed_experts"]
    assert experts and all(g.active_fraction < 1 for g in experts)  # 2 of 4 experts read per token
    assert all(g.active_fraction == 1 for g in from_recipe.groups if g.kind in ("attention", "shared_experts"))


@pytest.mark.parametrize("name, kind", [
    ("token_embd.weight", "embeddings"), ("output.weight", "output"), ("output_norm.weight", "output"),
    ("blk.3.attn_q.weight", "attention"), ("blk.3.attn_norm.weight", "attention"),
    ("blk.3.ffn_up.weight", "dense_ffn"), ("blk.3.ffn_norm.weight", "dense_ffn"),
    ("blk.3.ffn_gate_exps.weight", "routed_experts"), ("blk.3.ffn_up_exps.bias", "routed_experts"),
    # the router and DeepSeek's expert bias stay on the GPU under llama.cpp's expert offload (ffn_*_exps only)
    ("blk.3.ffn_gate_inp.weight", "dense_ffn"), ("blk.3.exp_probs_b.bias", "dense_ffn"),
    ("blk.3.ffn_gate_up_exps.weight", "routed_experts"), ("blk.3.ffn_up_chexps.weight", "routed_experts"),
    ("blk.3.ffn_down_shexp.weight", "shared_experts"),
])
def test_tensor_names_map_to_groups(name, kind):
    assert group_of(name) == kind


# ---------------------------------------------------------------- engines and deployments


def test_the_cli_engine_choices_are_the_registry():
    r = CliRunner().invoke(main, ["fit", "--help"])
    for name in engines.names():
        assert name in r.output
    assert set(engines.names()) >= {"llama.cpp", "ollama", "vllm"}
    r = CliRunner().invoke(main, ["fit", "llama-3-8b", "--engine", "sglang-not-yet"])
    assert r.exit_code == 2


@pytest.mark.parametrize("model_id", sorted(REG.models))
def test_vllm_default_deployment_is_the_largest_valid_tp(model_id):
    from advisor.detect.simulated import simulated_machine

    model = REG.model(model_id)
    vllm = engines.get("vllm")
    job = vllm.prepare(model, "BF16", KVChoice(), EngineSettings(name="vllm"), REG.quants)
    for n in (1, 2, 3, 4, 6, 8):
        d = vllm.deployment(job, simulated_machine((f"{n}x H100 SXM",)), 4096)
        assert d.tp * d.pp == n and valid_tp(model, d.tp)
        assert not any(valid_tp(model, t) and n % t == 0 for t in range(d.tp + 1, n + 1))


def test_pipeline_stages_cover_every_layer_once():
    for layers in (1, 27, 61, 80, 126):
        for pp in range(1, min(layers, 8) + 1):
            stages = stage_layers(layers, pp)
            assert [i for s in stages for i in s] == list(range(layers))
            assert max(map(len, stages)) - min(map(len, stages)) <= 1


def test_deployment_json_has_the_contract_fields():
    d = fit_json("llama-3-8b", "--gpu", "2x RTX 3090", "--context", "8192")
    assert set(d["deployment"]) == {"engine", "tp", "pp", "dp", "ep", "sequences", "context_per_sequence", "offload"}
    assert d["deployment"]["engine"] == "llama.cpp" and d["deployment"]["pp"] == 2
    for dev in d["devices"]:
        assert {"name", "weights_bytes", "kv_bytes", "compute_bytes", "total_bytes", "usable_bytes", "fits"} <= set(dev)
    assert isinstance(Deployment("x").as_dict()["offload"], dict)
    part = fit_json("llama-3-70b", "--gpu", "RTX 4090", "--ram", "64", "--context", "8192")
    assert part["deployment"]["offload"]["kind"] == "layers" and part["deployment"]["offload"]["host_layers"] > 0


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["gemma-2-9b", "yoco-3b", "deepseek-v2-lite", "llama-3-8b"]), st.integers(0, 64),
       st.integers(0, 64), st.integers(1, 200_000), st.integers(1, 8), st.sampled_from([1, 2, 4, 8, 16]))
def test_span_sums_equal_layer_by_layer_sums(model_id, a, b, cells, sequences, tp):
    f16 = REG.quants.kv_type("f16")
    layout = cache_layout(REG.model(model_id), f16, f16)
    n = len(layout.layers)
    start, stop = sorted((min(a, n), min(b, n)))
    alloc = Allocation(256, True, 512)
    by_layer = layout.rank_bytes(range(start, stop), cells, sequences, alloc, tp)
    assert layout.span_bytes(start, stop, cells, sequences, alloc, tp) == by_layer
    assert layout.total_for(list(range(start, stop)), cells, sequences, alloc, tp) == by_layer


def test_a_device_use_copy_is_what_replace_makes():
    """DeviceUse.but is a faster dataclasses.replace: the same object, and unknown fields refused as replace does."""
    import dataclasses

    from advisor.core.deployment import DeviceUse

    u = DeviceUse("GPU 0", 10, 100, 20, 5, 1, 200, stage=1)
    assert u.but(compute_share=0.5, read_bytes=7) == dataclasses.replace(u, compute_share=0.5, read_bytes=7)
    assert u.but(weights_bytes=1).total_bytes == 1 + 20 + 5 + 1 and u.weights_bytes == 100
    with pytest.raises(TypeError):
        u.but(no_such_field=1)
