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
"""

from __future__ import annotations

from dataclasses import dataclass

from .machine import Device, Machine
from .memory import Estimate

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
    decode_tokens_per_s: float | None
    decode_range: tuple[float, float] | None
    prefill_tokens_per_s: float | None
    prefill_range: tuple[float, float] | None
    terms: dict
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        def r(x):
            return None if x is None else round(x, 1)

        return {
            "decode_tokens_per_s": r(self.decode_tokens_per_s),
            "decode_tokens_per_s_range": [r(x) for x in self.decode_range] if self.decode_range else None,
            "prefill_tokens_per_s": r(self.prefill_tokens_per_s),
            "prefill_tokens_per_s_range": [r(x) for x in self.prefill_range] if self.prefill_range else None,
            "speed_terms": self.terms,
            "speed_notes": list(self.notes),
        }


def _range(value, spread):
    return (value * (1 - spread), value * (1 + spread))


def decode_seconds(bytes_read: float, layers: int, bandwidth_gb_s: float, fit: tuple[float, float]) -> float:
    efficiency, per_layer_s = fit
    return bytes_read / (efficiency * bandwidth_gb_s * 1e9) + layers * per_layer_s


def _device_fit(device: Device):
    return DECODE_FIT["apple" if device.kind == "apple" else "gpu"]


def estimate_speed(est: Estimate, machine: Machine) -> Speed:
    notes = []
    if est.placement == "none":
        return Speed(None, None, None, None, {}, ("does not fit: no speed",))
    # token_embd is a row lookup, not a full read; MoE layers read only the active experts
    read_weights = est.weights_bytes - est.token_embd_bytes
    active_share = min(1.0, est.active_weights_bytes / read_weights) if read_weights else 1.0
    kv_share = 1 / est.parallel  # one sequence reads its own slot of the cache
    seconds, terms, spread = 0.0, {}, 0.0
    for use, device in zip([d for d in est.devices if not d.host], machine.gpus):
        if not use.layers:
            continue
        if device.bandwidth_gb_s is None:
            notes.append(f"{device.name}: bandwidth unknown, decode speed unknown")
            return Speed(None, None, None, None, {}, tuple(notes))
        read = use.weights_bytes * active_share + use.kv_bytes * kv_share
        t = decode_seconds(read, use.layers, device.bandwidth_gb_s, _device_fit(device))
        seconds += t
        spread = max(spread, DECODE_SPREAD["apple" if device.kind == "apple" else "gpu"])
        terms[device.name] = {"bytes_read": int(read), "layers": use.layers, "bandwidth_gb_s": device.bandwidth_gb_s,
                              "seconds": t}
    host = next((d for d in est.devices if d.host), None)
    if host is not None and host.layers:
        bw = machine.cpu_bandwidth_gb_s
        if bw is None:
            bw = DEFAULT_CPU_BANDWIDTH_GB_S
            notes.append(f"RAM bandwidth unknown: assumed {bw:g} GB/s (dual-channel DDR5-5600)")
        read = (host.weights_bytes - est.token_embd_bytes) * active_share + host.kv_bytes * kv_share
        t = decode_seconds(read, host.layers, bw, CPU_DECODE_FIT)
        seconds += t
        spread = max(spread, DECODE_SPREAD["cpu"])
        terms["host RAM"] = {"bytes_read": int(read), "layers": host.layers, "bandwidth_gb_s": bw, "seconds": t}
    decode = 1 / seconds if seconds else None
    prefill, prefill_range = _prefill(est, machine, active_share, notes)
    return Speed(decode, _range(decode, spread) if decode else None, prefill, prefill_range, terms, tuple(notes))


def _prefill(est: Estimate, machine: Machine, active_share: float, notes: list):
    if est.placement != "gpu" or not machine.gpus:
        return None, None
    from .catalog import load_catalog

    segments = {s.id: s.segment for s in load_catalog()}
    # layers run one GPU after another: the slowest sets the pace only for its share
    seconds_per_token = 0.0
    units = sum(d.layers for d in est.devices if not d.host) or 1
    for use, device in zip([d for d in est.devices if not d.host], machine.gpus):
        if not use.layers:
            continue
        if not device.fp16_tflops:
            notes.append(f"{device.name}: FP16 throughput unknown, prefill speed unknown")
            return None, None
        kind = "apple" if device.kind == "apple" else segments.get(device.catalog_id or "", "datacenter")
        eff = PREFILL_EFFICIENCY.get(kind, PREFILL_EFFICIENCY["datacenter"])
        flops = FLOPS_PER_PARAM_PER_TOKEN * est.params * active_share * use.layers / units
        seconds_per_token += flops / (eff * device.fp16_tflops * 1e12)
    value = 1 / seconds_per_token
    return value, _range(value, PREFILL_SPREAD)
