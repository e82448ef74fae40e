"""The memory model against real llama.cpp / vLLM logs (tests/data/calibration/memory_logs.csv)."""

import csv
import re

import pytest

from advisor.core.hardware import Device, Machine
from advisor.apps.estimate import estimate
from advisor.core.memory import EngineSettings, KVChoice
from advisor.engines.llamacpp import compute_buffer_bytes, host_compute_bytes
from advisor.core.units import GIB, MIB
from conftest import DATA

ROWS = {r["id"]: r for r in csv.DictReader(open(DATA / "calibration" / "memory_logs.csv", encoding="utf-8"))}
# which shipped profile each logged model is (Llama-3.1-8B and Meta-Llama-3-8B share the architecture)
PROFILE = {
    "Meta-Llama-3-8B": "llama-3-8b",
    "Meta-Llama-3.1-8B-Instruct": "llama-3.1-8b",
    "Llama-3.1-8B-Instruct": "llama-3.1-8b",
    "Llama-2-7B": "llama-2-7b",
    "Llama-2-13B": "llama-2-13b",
    "Llama-2-13B-chat": "llama-2-13b",
    "Llama-2-70B": "llama-2-70b",
    "Mistral-7B-Instruct-v0.2": "mistral-7b-v0.2",
}
LLAMA_ROWS = [i for i, r in ROWS.items() if r["engine"].startswith(("llama.cpp", "ik_llama.cpp"))]
BIG_GPU = Machine("simulated", (Device("A100 80GB", memory_total_bytes=80 * GIB),), 256 * GIB, 256 * GIB)


def _first_int(text):
    return int(re.match(r"\s*(\d+)", text).group(1))


def _mib_values(cell):
    """'CUDA0=2113.28; CUDA1=2290.21' or 'VRAM used = 3577.55' -> [2113.28, 2290.21] / [3577.55]."""
    return [float(x) for x in re.findall(r"=\s*([\d.]+)", cell)]


def _estimate(row, registry, machine=BIG_GPU):
    flash = row["flash_attn"].strip() == "1"
    kv = KVChoice(row["kv_type_k"], row["kv_type_v"])
    quant = row["quant"].split()[0]
    if quant not in registry.quants.recipes:
        quant = "Q4_K_M"  # custom/ik quants: only the KV cache and buffers are compared for these rows
    return estimate(registry.model(PROFILE[row["model"]]), quant, kv, EngineSettings(flash_attn=flash),
                    _first_int(row["n_ctx"]), machine, registry.quants)


@pytest.mark.parametrize("row_id", LLAMA_ROWS)
def test_every_logged_kv_figure_is_reproduced_exactly(row_id, registry):
    row = ROWS[row_id]
    est = _estimate(row, registry)
    assert est.kv_bytes == round(float(row["kv_total_mib"]) * MIB)
    assert est.kv_k_bytes == round(float(row["kv_k_mib"]) * MIB)
    assert est.kv_v_bytes == round(float(row["kv_v_mib"]) * MIB)


@pytest.mark.parametrize("row_id", ["A02", "A03"])
def test_multi_gpu_kv_and_weights_split_per_device_exactly(row_id, registry):
    row = ROWS[row_id]
    n = int(row["n_gpus"])
    machine = Machine("simulated", tuple(Device(f"RTX 3090 #{i}", memory_total_bytes=24 * GIB, index=i) for i in range(n)),
                      64 * GIB, 64 * GIB)
    est = _estimate(row, registry, machine)
    gpus = [d for d in est.devices if not d.host]
    assert [round(d.kv_bytes / MIB, 2) for d in gpus] == _mib_values(row["kv_per_device_mib"])
    assert [round(d.weights_bytes / MIB, 2) for d in gpus] == _mib_values(row["model_buffer_mib_per_device"])


# Weights: rows whose quant file type is one of ours. A14 (Mistral Q2_K, built in Dec 2023) used the
# pre-2024 Q2_K recipe (ffn_gate/ffn_up at Q3_K; llama.cpp later dropped that), so today's recipe is 12%
# smaller than that file: a file-vintage difference, reported by the validation, not fitted.
WEIGHT_ROWS = ["A01", "A04", "A05", "A06", "A07", "A08", "A09", "A10"]


@pytest.mark.parametrize("row_id", WEIGHT_ROWS)
def test_weights_within_3_percent_of_the_log(row_id, registry):
    row = ROWS[row_id]
    logged = sum(_mib_values(row["model_buffer_mib_per_device"]) + _mib_values(row["cpu_or_host_model_buffer_mib"]))
    est = _estimate(row, registry)
    assert est.weights_bytes / MIB == pytest.approx(logged, rel=0.03)


def test_llama3_8b_q4_k_m_weights_match_the_log_to_the_hundredth_mib(registry):
    est = _estimate(ROWS["A01"], registry)
    gpu = est.devices[0]
    host = est.devices[-1]
    assert round(gpu.weights_bytes / MIB, 2) == 4403.49
    assert round(host.weights_bytes / MIB, 2) == 281.81
    assert est.bits_per_weight == pytest.approx(4.89, abs=0.005)  # llama.cpp prints 4.89 BPW


# Compute buffers (flash attention off or on, n_ubatch 512): the rows that print them per device.
COMPUTE_ROWS = ["A01", "A04", "A05", "A14", "A26", "A27", "A28"]


@pytest.mark.parametrize("row_id", COMPUTE_ROWS)
def test_compute_buffer_within_25_percent(row_id, registry):
    row = ROWS[row_id]
    model = registry.model(PROFILE[row["model"]])
    settings = EngineSettings(flash_attn=row["flash_attn"].strip() == "1")
    cells = _first_int(row["n_ctx"])
    assert compute_buffer_bytes(model, cells, settings) / MIB == pytest.approx(_mib_values(row["compute_buffer_mib_per_device"])[0], rel=0.25)
    assert host_compute_bytes(model, cells, settings) / MIB == pytest.approx(_mib_values(row["host_compute_buffer_mib"])[0], rel=0.25)


def test_compute_buffer_grows_with_context_without_flash_attention(registry):
    # A14: 2094.50 MiB at 32000 tokens, A01: 560.00 at 8192 -- not a constant
    model = registry.model("mistral-7b-v0.2")
    no_fa = EngineSettings(flash_attn=False)
    assert round(compute_buffer_bytes(model, 32000, no_fa) / MIB, 2) == 2094.50
    assert round(compute_buffer_bytes(registry.model("llama-3-8b"), 8192, no_fa) / MIB, 2) == 560.00


@pytest.mark.parametrize("row_id", ["A34", "A35"])
def test_vllm_block_counts_follow_from_kv_bytes_per_token(row_id, registry):
    row = ROWS[row_id]
    blocks = int(re.search(r"GPU blocks: (\d+)", row["kv_total_mib"]).group(1))
    kv_gib = float(re.search(r"kv_cache_size=([\d.]+)GiB", row["kv_total_mib"]).group(1))
    from advisor.apps.estimate import kv_bytes_per_token

    per_token = kv_bytes_per_token(registry.model("llama-3.1-8b"), KVChoice(), EngineSettings(name="vllm"), registry.quants)
    assert per_token == 128 * 1024
    assert round(blocks * 16 * per_token / GIB, 2) == kv_gib


def test_vllm_refuses_29k_but_serves_20k_on_a_3090(registry):
    # A34/A35: RTX 3090 (23.58 GiB), Llama-3.1-8B BF16: max_model_len 20000 runs, 29000 is refused
    machine = Machine("simulated", (Device("RTX 3090", memory_total_bytes=int(23.58 * GIB)),), 64 * GIB, 64 * GIB)
    model = registry.model("llama-3.1-8b")
    vllm = EngineSettings(name="vllm")
    ok = estimate(model, "BF16", KVChoice(), vllm, 20000, machine, registry.quants)
    refused = estimate(model, "BF16", KVChoice(), vllm, 29000, machine, registry.quants)
    assert ok.placement == "gpu" and refused.placement == "none"
    assert round(ok.weights_bytes / GIB, 2) == 14.96  # "model weights take 14.96GiB" (A32)
