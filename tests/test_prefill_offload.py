"""Prefill with layers or routed experts in RAM beside a GPU (issue 15): llama.cpp (and Ollama, which runs it) copies
the weights held in RAM to the first GPU for every ubatch of at least 32 tokens and computes there, so prefill is
n_ubatch / (GPU compute of the ubatch + copy of the RAM weights it uses over the GPU's host link)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner
from hypothesis import given, settings as hsettings
from hypothesis import strategies as hst

from advisor import api, engines
from advisor.cli import main
from advisor.core.speed import HOST_COPY_EFFICIENCY, PREFILL_EFFICIENCY
from advisor.sources.links import host_link_for

GIB = 1024**3
TERM = "prefill, RAM weights copied to the GPU"


def fit(*args) -> dict:
    r = CliRunner().invoke(main, ["fit", *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


GPT_OSS_4090 = ("gpt-oss-120b", "--gpu", "RTX 4090", "--ram", "64", "--ram-type", "DDR5-5600", "--context", "8192")
# moe_offload.csv M01: gpt-oss-120b, --n-cpu-moe 36 on an unnamed 8 GB NVIDIA GPU (i9-14900K, DDR5): prefill 122-134
# tok/s. An 8 GB PCIe 4.0 x16 card of the catalog stands in for it.
M01 = ("gpt-oss-120b", "--gpu", "RTX 3070", "--ram", "64", "--ram-type", "DDR5-5600", "--n-cpu-moe", "36",
       "--context", "4096")


def test_cpu_moe_has_a_prefill_from_the_copy_over_the_gpus_host_link():
    d = fit(*GPT_OSS_4090, "--cpu-moe")
    assert d["placement"] == "gpu+cpu" and d["deployment"]["offload"]["kind"] == "experts"
    assert d["prefill_tokens_per_s"] is not None and d["prefill_tokens_per_s_range"] is not None
    t = d["speed_terms"][TERM]
    assert (t["link"], t["link_bandwidth_gb_s"], t["n_ubatch"], t["offload_min_batch"]) == ("PCIe 4.0 x16", 31.5,
                                                                                              512, 32)
    # a ubatch of 512 tokens routes to nearly every expert (1 - (1 - 4/128)^512 = 1 - 9e-8): all of them are copied
    assert t["bytes_copied"] == pytest.approx(t["bytes_held"], rel=1e-6)
    assert t["tokens_per_s"] == pytest.approx(512 / (t["compute_seconds"] + t["copy_seconds"]))
    assert t["copy_seconds"] > t["compute_seconds"]  # the copy dominates: PCIe, not the GPU, sets the pace
    assert any("copies the experts it uses from RAM to GeForce RTX 4090" in n for n in d["speed_notes"])


def test_m01_by_hand():
    """gpt-oss-120b MXFP4, every layer's experts in RAM, an RTX 3070 (8 GB, PCIe 4.0 x16, FP16 with FP32 accumulate
    40.74 TFLOPS, consumer: 0.55 of it):
      experts in RAM   = 36 layers x 3 tensors x 128 experts x 2880 x 2880 at 17 bytes per 32 = 60,914,073,600
                         bytes (the router, ffn_gate_inp, stays on the GPU: llama.cpp moves the ffn_{up,down,gate}_exps tensors)
      copy per ubatch  = 60,914,073,600 x (1 - (1 - 4/128)^512) / (0.46 x 31.5e9) = 4.2039 s
      active params    = 36 layers x (attention 2880 x (4096 + 512 + 512) + 4096 x 2880 + biases 5,120 + norms 5,760
                         + router 2880 x 128 + 4 of 128 experts x 3 x 2880 x 2880) + output 2880 x 201,088 + 2,880
                       = 36 x 126,454,400 + 579,136,320 = 5,131,494,720 (the model card: 5.13 B active)
      FLOPs per token  = 2 x 5,131,494,720 = 1.0263e10
      compute          = 512 x 1.0263e10 / (0.55 x 40.74e12) = 0.2345 s
      prefill          = 512 / (4.2039 + 0.2345) = 115.4 tokens/s
    (FLOPs were once inferred from bytes, 2 x 116.8 B params x the share of bytes read, 5,027,523,840 of
    64,038,032,640: 1.8338e10, 9.2 B "active", as MXFP4 experts are 4.25 bits beside BF16 attention; 110.7 tokens/s.)
    M01 measured 122-134: 5-14 % below, assuming a x16 PCIe 4.0 slot (a x8 card, as the RTX 4060 / 4060 Ti are,
    would halve the copy rate: ~59 tokens/s). The copy is 95 % of the time: the link, not the FLOPs, sets the pace."""
    d = fit(*M01)
    t = d["speed_terms"][TERM]
    assert t["bytes_held"] == 36 * 3 * 128 * 2880 * 2880 * 17 // 32 == 60_914_073_600
    copy = 60_914_073_600 * (1 - (1 - 4 / 128) ** 512) / (0.46 * 31.5e9)
    active = 36 * (2880 * (4096 + 512 + 512) + 4096 * 2880 + 5_120 + 5_760 + 2880 * 128 + 4 * 3 * 2880 * 2880) \
        + 2880 * 201_088 + 2_880
    assert t["active_params"] == active == 5_131_494_720
    flops = 2 * active
    compute = 512 * flops / (0.55 * 40.74e12)
    assert (HOST_COPY_EFFICIENCY, PREFILL_EFFICIENCY["consumer"]) == (0.46, 0.55)
    assert t["flops_per_token"] == flops
    assert t["copy_seconds"] == pytest.approx(copy, rel=1e-6) == pytest.approx(4.2039, abs=1e-4)
    assert t["compute_seconds"] == pytest.approx(compute, rel=1e-9) == pytest.approx(0.2345, abs=1e-4)
    assert d["prefill_tokens_per_s"] == pytest.approx(512 / (copy + compute), abs=0.05) == 115.4
    lo, hi = d["prefill_tokens_per_s_range"]
    assert lo <= 122 and 134 <= hi  # the measured range lies within the printed one


@hsettings(max_examples=12, deadline=None)
@given(case=hst.sampled_from([(GPT_OSS_4090, 22, 36), (("qwen3-30b-a3b", "--gpu", "RTX 4060 Ti 16GB", "--ram", "64",
                                                       "--context", "4096"), 8, 48)]),
       data=hst.data())
def test_prefill_falls_as_more_experts_move_to_ram(case, data):
    """--n-cpu-moe a < b: b layers' experts are copied per ubatch instead of a, the FLOPs are the same: slower."""
    args, low, high = case
    a = data.draw(hst.integers(low, high - 1), label="a")
    b = data.draw(hst.integers(a + 1, high), label="b")
    fewer, more = fit(*args, "--n-cpu-moe", str(a)), fit(*args, "--n-cpu-moe", str(b))
    if fewer["placement"] != "gpu+cpu":
        return  # the GPU share does not fit with only a layers' experts in RAM
    assert more["placement"] == "gpu+cpu"
    t_fewer, t_more = fewer["speed_terms"][TERM], more["speed_terms"][TERM]
    assert t_more["bytes_copied"] > t_fewer["bytes_copied"]
    assert t_more["compute_seconds"] == pytest.approx(t_fewer["compute_seconds"], rel=1e-9)
    assert more["prefill_tokens_per_s"] < fewer["prefill_tokens_per_s"]


def test_the_property_reaches_offloaded_rows():
    """The property above returns early where the GPU share does not fit: these fit, so it is exercised."""
    speeds = [fit(*GPT_OSS_4090, "--n-cpu-moe", str(n))["prefill_tokens_per_s"] for n in (24, 30, 36)]
    assert all(s is not None for s in speeds) and speeds == sorted(speeds, reverse=True)


def _gpu():
    return api.Device("RTX 4090-like", memory_total_bytes=24 * GIB, bandwidth_gb_s=1008, fp16_tflops=165.2,
                      segment="consumer")


def _machine(host_link=None):
    return api.Machine("simulated", gpus=(_gpu(),), ram_total_bytes=64 * GIB, host_link=host_link)


def _offloaded(machine, **settings):
    s = api.EngineSettings(offload="experts", cpu_moe_first=36, **settings)
    est = api.fit_one("gpt-oss-120b", None, api.KVChoice(), s, 8192, machine)
    assert est.placement == "gpu+cpu"
    return api.estimate_speed(est, machine)


def test_the_host_link_is_the_first_gpus_pcie_slot_from_the_catalog():
    assert api.simulated_machine(gpus=("RTX 4090",)).host_link.name == "PCIe 4.0 x16"
    assert api.simulated_machine(gpus=("2x RTX 5090",)).host_link.name == "PCIe 5.0 x16"
    assert api.simulated_machine(gpus=("RTX 3060 Ti",)).host_link.bandwidth_gb_s == 31.5
    # NVLink boards (their host side is not in links.toml), a custom card, a Mac, no GPU: not known
    for gpus, vram in ((("H100 SXM",), None), ((), 8), (("M2 Max",), None), ((), None)):
        assert api.simulated_machine(gpus=gpus, vram_gib=vram, ram_gib=64).host_link is None


def test_an_unknown_host_link_leaves_prefill_unknown_with_a_note():
    assert _offloaded(_machine(host_link_for("rtx4090"))).prefill_tokens_per_s is not None
    speed = _offloaded(_machine())
    assert speed.prefill_tokens_per_s is None and speed.prefill_range is None and TERM not in speed.terms
    assert any("link to the host is not known" in n for n in speed.notes)
    assert speed.decode_tokens_per_s is not None  # decode does not cross the link
    # an SXM board: its NVLink joins the GPUs; the table has no row for its host side
    d = fit("gpt-oss-120b", "--gpu", "H100 SXM", "--ram", "128", "--cpu-moe", "--context", "8192")
    assert d["placement"] == "gpu+cpu" and d["prefill_tokens_per_s"] is None
    assert any("link to the host is not known" in n for n in d["speed_notes"])


def test_the_link_is_the_machines_not_the_estimates():
    """`advisor plan` reuses one memory estimate on every machine of the same memory shape (an RTX 4060 and an RTX
    5060): the copy's link is read from the machine the speed is asked for. Twice the link, half the copy time."""
    gen4 = _machine(host_link_for("rtx4090"))
    s = api.EngineSettings(offload="experts", cpu_moe_first=36)
    est = api.fit_one("gpt-oss-120b", None, api.KVChoice(), s, 8192, gen4)
    slow = api.estimate_speed(est, gen4).terms[TERM]
    fast = api.estimate_speed(est, replace(gen4, host_link=host_link_for("rtx5090"))).terms[TERM]
    assert (slow["link"], fast["link"]) == ("PCIe 4.0 x16", "PCIe 5.0 x16")
    assert fast["copy_seconds"] == pytest.approx(slow["copy_seconds"] * 31.5 / 63.0)
    assert fast["tokens_per_s"] > slow["tokens_per_s"]


def test_a_ubatch_below_the_offload_minimum_is_not_modelled():
    machine = _machine(host_link_for("rtx4090"))
    speed = _offloaded(machine, n_ubatch=16)
    assert speed.prefill_tokens_per_s is None
    assert any("below the 32 at which the engine computes the experts in RAM on the GPU" in n for n in speed.notes)


def test_a_layer_split_copies_whole_layers_and_ollama_does_it_too():
    d = fit("llama-3.3-70b", "--gpu", "RTX 4090", "--ram", "64", "--context", "8192")
    assert d["deployment"]["offload"]["kind"] == "layers"
    t = d["speed_terms"][TERM]
    host = next(x for x in d["devices"] if x["host"])
    assert t["bytes_held"] == host["weights_bytes"] - d["token_embd_bytes"] == t["bytes_copied"]  # dense: all used
    assert d["prefill_tokens_per_s"] == pytest.approx(512 / t["seconds_per_ubatch"], abs=0.05)
    ollama = fit(*GPT_OSS_4090, "--engine", "ollama")  # Ollama runs llama.cpp: a layer split, offloaded the same way
    assert ollama["deployment"]["offload"]["kind"] == "layers" and ollama["prefill_tokens_per_s"] is not None
    assert engines.get("ollama").offload_min_batch == engines.get("llama.cpp").offload_min_batch == 32
    assert engines.get("vllm").offload_min_batch is None


def test_explain_shows_the_terms():
    r = CliRunner().invoke(main, ["fit", *M01, "--explain"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "Prefill with weights in RAM: for each ubatch of >= 32 tokens the engine copies them to GeForce RTX 3070" \
           in text
    assert "copy = bytes used / (efficiency x link) = 60914068289 / (0.46 x 31.5 GB/s, PCIe 4.0 x16) = 4.204 s" in text
    assert "prefill = n_ubatch / (compute + copy) = 512 / 4.438 s = 115.4 tokens/s" in text
    d = fit(*M01, "--explain")
    assert any("copy    = bytes used" in line for line in d["explain"])


def test_unified_memory_is_not_a_link_and_is_not_modelled():
    """An M1 with 8 GB holding part of a model on its GPU: Metal also takes large batches of the CPU's layers, but the
    copy stays within the one RAM; no PCIe figure applies, so prefill is left unknown and says why."""
    d = fit("llama-3-8b", "--quant", "Q4_K_M", "--context", "512", "--no-flash-attn", "--gpu", "M1", "--ram", "8")
    assert d["placement"] == "gpu+cpu" and d["prefill_tokens_per_s"] is None
    assert any("shares the host's memory" in n for n in d["speed_notes"])
