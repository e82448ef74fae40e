"""Memory: the sums over a placement, and the largest context that fits. Pure functions over dataclasses; no I/O.

    total(ctx) = weights + cache(ctx) (windows capped) + buffers(ctx) + runtime overhead, per device

Which device holds what is the engine's decision (advisor/engines, as a Placement); this module holds what every
engine shares: the settings a user gives, the estimate it returns, the host's budget (one pool on unified-memory
machines) and the closed-form max-context solve. Memory is affine in the context between breakpoints (windows
filling up, a buffer's phase changing), so the largest context that fits is solved exactly per device.
"""

from __future__ import annotations

from dataclasses import field

from advisor.core.deployment import AllReduce, Deployment, DeviceUse
from advisor.core.hardware import Machine
from advisor.core.record import record
from advisor.core.units import GIB, MIB

# CUDA context + cuBLAS workspace per GPU. vLLM measured 0.35 GiB of non-torch memory on an RTX 3090
# (calibration/memory_logs.csv A34); llama.cpp has the same CUDA runtime underneath.
CUDA_RUNTIME_BYTES = 350 * MIB
# llama.cpp's own fitting (`--fit`) keeps 1 GiB free per GPU (design.md); printed and overridable.
DEFAULT_HEADROOM_BYTES = 1 * GIB
# vLLM's default gpu_memory_utilization (the share of each GPU's memory it may take).
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
# llama.cpp's default micro-batch (n_ubatch), which sizes its compute buffers.
DEFAULT_N_UBATCH = 512
PLACEMENTS = ("gpu", "gpu+cpu", "cpu", "none")


CPU_MOE_ALL_LAYERS = 1 << 16  # --cpu-moe: "the first N layers" with N larger than any model has


@record
class EngineSettings:
    """What a user sets on an engine. Each engine reads the fields that apply to it (advisor/engines)."""

    name: str = "llama.cpp"
    flash_attn: bool | None = None  # None: the engine's default
    n_ubatch: int = DEFAULT_N_UBATCH
    parallel: int = 1  # slots / concurrent sequences
    headroom_bytes: int = DEFAULT_HEADROOM_BYTES
    swa_full: bool = False
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
    kv_unified: bool = False  # llama.cpp --kv-unified: one cache shared by the slots (default: one per slot)
    mla_v_cache: bool = False  # llama.cpp builds of 2025-04 to 2026-01 also cached a V latent for MLA
    # where the routed experts go (llama.cpp / Ollama): "auto" (llama.cpp's --fit: experts to RAM before whole
    # layers), "layers" (whole layers only, -ngl), or "experts": those of the first cpu_moe_first layers (--n-cpu-moe
    # N; --cpu-moe is every layer) and of the layers whose expert tensors a cpu_moe_patterns regex matches
    # (-ot PATTERN=CPU)
    offload: str = "auto"
    cpu_moe_first: int = 0  # CPU_MOE_ALL_LAYERS: every layer (--cpu-moe)
    cpu_moe_patterns: tuple[str, ...] = ()


@record
class KVChoice:
    """K and V element types (`--kv-type`, `--kv-type-k/-v`) or a what-if bit width (`--kv-bits`)."""

    k: str = "f16"
    v: str = "f16"
    bits: int | None = None

    @property
    def label(self) -> str:
        if self.bits:
            return f"{self.bits}-bit"
        return self.k if self.k == self.v else f"{self.k}/{self.v}"


@record
class Estimate:
    """One model at one quant, KV type and context on one machine: the memory terms, the placement per device,
    the verdict (None: unknown) and the notes saying why."""

    model: str
    quant: str
    kv_type: str
    kv_layout: str
    engine: str
    context: int
    kv_cells: int
    parallel: int
    flash_attn: bool
    weights_bytes: int
    token_embd_bytes: int
    kv_bytes: int
    kv_k_bytes: int
    kv_v_bytes: int
    kv_bytes_per_token: int
    compute_bytes: int
    host_compute_bytes: int
    overhead_bytes: int
    headroom_bytes: int
    placement: str
    gpu_layers: int
    max_context: int | None
    model_max_context: int
    devices: tuple[DeviceUse, ...]
    params: int
    bits_per_weight: float
    active_weights_bytes: int
    active_params: int  # parameters read per token (WeightsLayout.active_params): what FLOPs count
    what_if: str = ""
    max_sequences: int | None = None  # sequences of `context` tokens that fit at once (paged engines)
    notes: tuple[str, ...] = field(default=())
    deployment: Deployment | None = None
    verdict: bool | None = True  # fits: True / False, None when a memory it depends on is unknown
    allreduce: AllReduce | None = None  # per tensor-parallel stage, per token
    settings: EngineSettings | None = None  # as the engine resolved them
    upper_bound: str = ""  # why the cache is an upper bound (layers of a kind not modelled, counted as full)
    offload_min_batch: int | None = None  # the engine's Engine.offload_min_batch (prefill with weights in RAM)
    # check without --context: the model's trained maximum, where it did not run, when `context` is the largest
    # power-of-two context that does (apps/estimate.largest_context_that_runs); None: evaluated as asked
    context_reduced_from: int | None = None

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.compute_bytes + self.host_compute_bytes + self.overhead_bytes

    @property
    def fits(self) -> bool | None:
        return False if self.placement == "none" else self.verdict

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "quant": self.quant,
            "kv_type": self.kv_type,
            "kv_layout": self.kv_layout,
            "engine": self.engine,
            "context": self.context,
            "context_reduced_from": self.context_reduced_from,
            "kv_cells": self.kv_cells,
            "parallel": self.parallel,
            "flash_attn": self.flash_attn,
            "weights_bytes": self.weights_bytes,
            "token_embd_bytes": self.token_embd_bytes,
            "kv_bytes": self.kv_bytes,
            "kv_k_bytes": self.kv_k_bytes,
            "kv_v_bytes": self.kv_v_bytes,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "compute_bytes": self.compute_bytes,
            "host_compute_bytes": self.host_compute_bytes,
            "overhead_bytes": self.overhead_bytes,
            "headroom_bytes": self.headroom_bytes,
            "total_bytes": self.total_bytes,
            "fits": self.fits,
            "placement": self.placement,
            "gpu_layers": self.gpu_layers,
            "max_context": self.max_context,
            "model_max_context": self.model_max_context,
            "max_sequences": self.max_sequences,
            "params": self.params,
            "bits_per_weight": round(self.bits_per_weight, 3),
            "active_weights_bytes": self.active_weights_bytes,
            "active_params": self.active_params,
            "what_if": self.what_if or None,
            "devices": [d.as_dict() for d in self.devices],
            "deployment": self.deployment.as_dict() if self.deployment else None,
            "upper_bound": bool(self.upper_bound),
            "upper_bound_reason": self.upper_bound or None,
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------- shared by every engine


def gpu_usable_bytes(device, headroom_bytes: int) -> int | None:
    """What a GPU may hold: free (else total) memory minus the headroom; None when its memory is not known."""
    if device.usable_bytes is None:
        return None
    return device.usable_bytes - headroom_bytes


def host_usable_bytes(machine: Machine, gpu_uses) -> int | None:
    """What host RAM may hold beside the GPUs. On a unified-memory machine the GPU's working set is part of the
    RAM: what the GPU holds is taken from the same pool. None when the RAM is not known."""
    ram = machine.ram_usable_bytes
    if ram is None:
        return None
    if machine.unified:
        return max(0, ram - sum(u.total_bytes for u in gpu_uses))
    return ram


def max_context(fits, totals, step: int, limit: int, breakpoints) -> int | None:
    """The largest context (a multiple of `step`, at most `limit`; `limit` itself when it fits) for which
    `fits(context)` holds; None when not even one step does. `totals(context)` gives (bytes needed, bytes usable)
    per device; `breakpoints` the contexts where memory changes slope.

    Memory is nondecreasing and affine between the breakpoints, so the answer is found by bisecting the knots and
    solving the one affine piece that crosses the budget, not by scanning contexts.
    """
    trained, limit = limit, limit // step * step
    if limit < step or not fits(step):
        return None
    if fits(trained):  # the model's own limit, even where it is not a multiple of the step
        return trained
    if fits(limit):
        return limit
    knots = {1, limit // step}
    for b in breakpoints:
        k = b // step
        knots.update({max(1, min(limit // step, k + d)) for d in (-1, 0, 1)})
    knots = sorted(knots)
    # the knots that fit are a prefix (memory never shrinks as the context grows): bisect for its end. knots[0] is
    # 1 (fits, checked above) and knots[-1] the limit (does not)
    a, b = 0, len(knots) - 1  # fits(knots[a]), not fits(knots[b])
    while b - a > 1:
        mid = (a + b) // 2
        if fits(knots[mid] * step):
            a = mid
        else:
            b = mid
    lo, hi = knots[a], knots[b]
    # within (lo, hi) memory is affine in k: solve it per device, then correct float rounding
    k = lo + _affine_steps(totals, lo, hi, step)
    while k + 1 < hi and fits((k + 1) * step):
        k += 1
    while k > lo and not fits(k * step):
        k -= 1
    return k * step


def _affine_steps(totals, lo: int, hi: int, step: int) -> int:
    """How many steps past `lo` still fit, from the slope of each device's memory on [lo, hi]."""
    at_lo = totals(lo * step)
    at_hi = totals(hi * step)
    best = hi - lo - 1
    for (t0, usable), (t1, _) in zip(at_lo, at_hi):
        if usable is None:
            continue
        slope = (t1 - t0) / (hi - lo)
        if slope > 0:
            best = min(best, int((usable - t0) // slope))
    return max(0, best)
