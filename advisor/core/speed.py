"""Decode and prefill speed (tokens/s) for a memory estimate on a machine. Pure functions.

Decode (one sequence) is memory-bound, but small models on fast GPUs are launch-bound, so a single
"bandwidth x constant" is not enough. Per device that holds layers:

    seconds per token = bytes read / (efficiency x bandwidth) + layers x per-layer overhead

summed over the devices in the layer pipeline (a layer split adds capacity, not single-stream speed).
Bytes read: the active weights (MoE: shared tensors plus the active experts' share) and the KV cache
of one sequence at the requested context. Both constants are fitted per backend on
calibration/throughput.csv (llama.cpp tg128, Llama-2 7B/13B/70B F16/Q8_0/Q4_0; CUDA 36 rows: median
error 6%, all within 25%; Metal 94 rows: median 3.3%, 97% within 25%).

Prefill is compute-bound: tokens/s = efficiency x FP16 peak / (2 x active parameters), with the
efficiency llama.cpp reached in the same file (pp512).

Batched decode (`concurrency` N sequences, each in its own slot) reads the weights once per step for all N
tokens, plus each sequence's cache, and cannot go faster than compute allows:

    seconds per step = max(bytes read / (efficiency x bandwidth), N x FLOPs per token / FLOPS) + layers x overhead

aggregate tokens/s = N / seconds per step. MoE: N tokens touch 1 - (1 - active share)^N of the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from advisor.core.hardware import Device, Machine
from advisor.core.memory import Estimate

# (bandwidth efficiency, seconds of per-layer overhead), least-squares fit on relative error of
# throughput.csv decode rows, by backend.
DECODE_FIT = {
    "gpu": (0.954, 137.8e-6),  # CUDA: A100, H100 PCIe, RTX 3090/4080/4090, RTX A6000, RTX 4000-6000 Ada
    "apple": (0.910, 187.5e-6),  # Metal: M1 to M4, 7- to 80-core GPUs
}
# CPU decode is not in the calibration data: a typical share of DDR bandwidth that llama.cpp's CPU
# backend reaches, and a small per-layer cost. Shown with a wide range.
CPU_DECODE_FIT = (0.6, 20e-6)
# Relative half-width of the printed range: about the 90th percentile of |error| of each fit.
DECODE_SPREAD = {"gpu": 0.20, "apple": 0.15, "cpu": 0.5}
# A desktop with DDR5-5600 in two channels (catalog row cpu-ddr5-5600-2ch), when RAM bandwidth is unknown.
DEFAULT_CPU_BANDWIDTH_GB_S = 89.6
# Prefill: share of the FP16 (FP32-accumulate) tensor peak llama.cpp reached in throughput.csv pp512 rows:
# GeForce 0.45-0.72 of the FP32-acc figure, pro/datacenter cards 0.14-0.33 of theirs, Apple 0.62-0.76.
PREFILL_EFFICIENCY = {"consumer": 0.55, "workstation": 0.25, "datacenter": 0.25, "apple": 0.70}
PREFILL_SPREAD = 0.5
FLOPS_PER_PARAM_PER_TOKEN = 2  # one multiply-add per weight


@dataclass(frozen=True)
class Speed:
    decode_tokens_per_s: float | None  # all sequences together (one sequence when concurrency is 1)
    decode_range: tuple[float, float] | None
    prefill_tokens_per_s: float | None
    prefill_range: tuple[float, float] | None
    terms: dict
    notes: tuple[str, ...] = ()
    concurrency: int = 1
    compute_share: float = 0.0  # share of decode time bound by compute rather than memory (drives power draw)
    gpu_busy_share: tuple[float, ...] = ()  # per GPU (machine order): share of each decode step it is working

    def as_dict(self) -> dict:
        def r(x):
            return None if x is None else round(x, 1)

        return {
            "decode_tokens_per_s": r(self.decode_tokens_per_s),
            "decode_tokens_per_s_range": [r(x) for x in self.decode_range] if self.decode_range else None,
            "prefill_tokens_per_s": r(self.prefill_tokens_per_s),
            "prefill_tokens_per_s_range": [r(x) for x in self.prefill_range] if self.prefill_range else None,
            "concurrency": self.concurrency,
            "decode_tokens_per_s_per_sequence": r(self.decode_tokens_per_s / self.concurrency)
            if self.decode_tokens_per_s else None,
            "speed_terms": self.terms,
            "speed_notes": list(self.notes),
        }


def _range(value, spread):
    return (value * (1 - spread), value * (1 + spread))


def _device_fit(device: Device):
    return DECODE_FIT["apple" if device.kind == "apple" else "gpu"]


@lru_cache(maxsize=1)  # estimate_speed runs once per row of a check grid
def _segments() -> dict[str, str]:
    from advisor.sources.catalog import load_catalog

    return {s.id: s.segment for s in load_catalog()}


def _flops_per_s(device: Device, segments: dict[str, str]) -> float | None:
    """FLOPS llama.cpp reaches on this device in compute-bound work (prefill, large batches)."""
    if not device.fp16_tflops:
        return None
    kind = "apple" if device.kind == "apple" else segments.get(device.catalog_id or "", "datacenter")
    return PREFILL_EFFICIENCY.get(kind, PREFILL_EFFICIENCY["datacenter"]) * device.fp16_tflops * 1e12


def estimate_speed(est: Estimate, machine: Machine, concurrency: int = 1) -> Speed:
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    notes = []
    if est.placement == "none":
        return Speed(None, None, None, None, {}, ("does not fit: no speed",), concurrency)
    # token_embd is a row lookup, not a full read; MoE layers read only the active experts
    read_weights = est.weights_bytes - est.token_embd_bytes
    active_share = min(1.0, est.active_weights_bytes / read_weights) if read_weights else 1.0
    batch_share = 1 - (1 - active_share) ** concurrency  # weights N tokens touch (MoE); 1.0 for dense
    # each sequence reads its own slot of the cache
    kv_share = min(concurrency, est.parallel) / est.parallel
    flops_per_token = FLOPS_PER_PARAM_PER_TOKEN * est.params * active_share
    units = sum(d.layers for d in est.devices) or 1
    segments = _segments()
    seconds = compute_seconds = 0.0
    terms, spread = {}, 0.0
    gpu_seconds = [0.0] * len(machine.gpus)
    for i, (use, device) in enumerate(zip([d for d in est.devices if not d.host], machine.gpus)):
        if not use.layers:
            continue
        if device.bandwidth_gb_s is None:
            notes.append(f"{device.name}: bandwidth unknown, decode speed unknown")
            return Speed(None, None, None, None, {}, tuple(notes), concurrency)
        read = use.weights_bytes * batch_share + use.kv_bytes * kv_share
        flops = _flops_per_s(device, segments)
        compute_t = concurrency * flops_per_token * use.layers / units / flops if flops else 0.0
        t, mem_t = _step_seconds(read, use.layers, device.bandwidth_gb_s, _device_fit(device), compute_t)
        seconds += t
        gpu_seconds[i] = t
        compute_seconds += max(0.0, compute_t - mem_t)
        spread = max(spread, DECODE_SPREAD["apple" if device.kind == "apple" else "gpu"])
        terms[f"GPU {device.index} ({device.name})"] = {"bytes_read": int(read), "layers": use.layers, "bandwidth_gb_s": device.bandwidth_gb_s,
                              "compute_seconds": compute_t, "seconds": t}
    host = next((d for d in est.devices if d.host), None)
    if host is not None and host.layers:
        bw = machine.cpu_bandwidth_gb_s
        if bw is None:
            bw = DEFAULT_CPU_BANDWIDTH_GB_S
            notes.append(f"RAM bandwidth unknown: assumed {bw:g} GB/s (dual-channel DDR5-5600)")
        read = (host.weights_bytes - est.token_embd_bytes) * batch_share + host.kv_bytes * kv_share
        t, _ = _step_seconds(read, host.layers, bw, CPU_DECODE_FIT, 0.0)
        seconds += t
        spread = max(spread, DECODE_SPREAD["cpu"])
        terms["host RAM"] = {"bytes_read": int(read), "layers": host.layers, "bandwidth_gb_s": bw, "seconds": t}
        if concurrency > 1:
            notes.append("CPU layers: batched decode modelled as memory-bound only (CPU FLOPS unknown)")
    decode = concurrency / seconds if seconds else None
    prefill, prefill_range = _prefill(est, machine, active_share, segments, notes)
    if est.engine == "vllm":  # tensor parallel: every GPU works on every layer
        busy = tuple(1.0 if t else 0.0 for t in gpu_seconds)
    else:  # layer split: the GPUs take turns within each token
        busy = tuple(t / seconds if seconds else 0.0 for t in gpu_seconds)
    return Speed(decode, _range(decode, spread) if decode else None, prefill, prefill_range, terms, tuple(notes),
                 concurrency, compute_seconds / seconds if seconds else 0.0, busy)


def _step_seconds(bytes_read: float, layers: int, bandwidth_gb_s: float, fit: tuple[float, float],
                  compute_seconds: float) -> tuple[float, float]:
    """(seconds per decode step, of which the memory part): the slower of memory and compute, plus launches."""
    efficiency, per_layer_s = fit
    memory_seconds = bytes_read / (efficiency * bandwidth_gb_s * 1e9)
    return max(memory_seconds, compute_seconds) + layers * per_layer_s, memory_seconds


def _prefill(est: Estimate, machine: Machine, active_share: float, segments: dict, notes: list):
    if est.placement != "gpu" or not machine.gpus:
        return None, None
    # layers run one GPU after another: each GPU takes the time of its share of the layers
    seconds_per_token = 0.0
    units = sum(d.layers for d in est.devices if not d.host) or 1
    for use, device in zip([d for d in est.devices if not d.host], machine.gpus):
        if not use.layers:
            continue
        flops_per_s = _flops_per_s(device, segments)
        if flops_per_s is None:
            notes.append(f"{device.name}: FP16 throughput unknown, prefill speed unknown")
            return None, None
        flops = FLOPS_PER_PARAM_PER_TOKEN * est.params * active_share * use.layers / units
        seconds_per_token += flops / flops_per_s
    value = 1 / seconds_per_token
    return value, _range(value, PREFILL_SPREAD)
