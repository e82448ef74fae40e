"""Memory model: weights + KV cache + compute buffer + runtime overhead, per device, per engine.

    total(ctx) = weights + kv_bytes_per_token x cells(ctx) (windows capped) + compute(ctx) + overhead

Everything is affine in the context (piecewise, where sliding windows fill up and where the compute
buffer's attention phase overtakes its logits phase), so the largest context that fits is solved
exactly per device (`max_context`). Pure functions over dataclasses; no I/O.

Engines
- llama.cpp: `-c` is the total KV size over all `--parallel` slots; layers split across GPUs in
  proportion to their memory (n_layer + 1 units, the output layer last); token embeddings stay in
  host RAM; one compute buffer per GPU; quantized V needs flash attention.
- ollama: llama.cpp underneath; allocates num_ctx x OLLAMA_NUM_PARALLEL cells; flash attention off
  unless the KV cache is quantized (which requires it).
- vllm: gpu_memory_utilization x total - weights - activation peak - non-torch memory = KV budget,
  paged in 16-token blocks, tensor parallel over the GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from advisor.errors import UsageError
from advisor.core.cache import KVLayout, bits_type, kv_layout
from advisor.core.hardware import Device, Machine
from advisor.core.formats import QuantTable
from advisor.core.model import ModelProfile
from advisor.core.units import GIB, MIB
from advisor.core.tensors import WeightsLayout, weights_layout

ENGINES = ("llama.cpp", "ollama", "vllm")
GGUF_ENGINES = ("llama.cpp", "ollama")  # the engines that load a GGUF file as it is

# llama.cpp pads the KV size to 256 cells with flash attention, 32 without
# (llama_kv_cache_get_padding in llama.cpp builds of 2024; A14 in calibration/memory_logs.csv keeps
# n_ctx = 32000 without flash attention).
LLAMA_CPP_PAD_FLASH = 256
LLAMA_CPP_PAD_NO_FLASH = 32
# llama.cpp's default micro-batch (n_ubatch) that sizes the compute buffer.
LLAMA_CPP_N_UBATCH = 512
# f32 activations in the compute graph; f16 for the K/V views and the flash-attention mask.
F32_BYTES = 4
F16_BYTES = 2
# Live activation rows of n_ubatch x n_embd f32 beside the attention scores (residual, norm, Q, attn out):
# fitted so that Llama-3-8B at 8192 (560.00 MiB) and Mistral-7B at 32000 (2094.50 MiB) are exact
# (calibration/memory_logs.csv A01, A14).
ATTN_PHASE_EMBD_ROWS = 4
# The logits phase keeps the output logits and two n_embd rows per token (A04, A26, A27: 258.5-266.5 MiB).
LOGITS_PHASE_EMBD_ROWS = 2
# CUDA context + cuBLAS workspace per GPU. vLLM measured 0.35 GiB of non-torch memory on an RTX 3090
# (calibration/memory_logs.csv A34); llama.cpp has the same CUDA runtime underneath.
CUDA_RUNTIME_BYTES = 350 * MIB
# llama.cpp's own fitting (`--fit`) keeps 1 GiB free per GPU (design.md); printed and overridable.
DEFAULT_HEADROOM_BYTES = 1 * GIB
# vLLM defaults: gpu_memory_utilization 0.9, 16-token KV blocks, non-torch memory per GPU (A34).
VLLM_GPU_MEMORY_UTILIZATION = 0.9
VLLM_BLOCK_TOKENS = 16
VLLM_NON_TORCH_BYTES = 350 * MIB
# vLLM profiles one forward pass of max(max_model_len, max_num_batched_tokens) tokens; its activation
# peak per token is about 8 x intermediate bytes (gate+up outputs and the SwiGLU product in bf16):
# 20000 tokens -> 2.14 GiB vs 2.07 measured, 29000 -> 3.10 vs 2.99 for Llama-3.1-8B (A34, A35).
VLLM_ACTIVATION_BYTES_PER_TOKEN_PER_FF = 8
VLLM_MIN_PROFILE_TOKENS = 2048
PLACEMENTS = ("gpu", "gpu+cpu", "cpu", "none")


@dataclass(frozen=True)
class EngineSettings:
    name: str = "llama.cpp"
    flash_attn: bool | None = None  # None: the engine's default
    n_ubatch: int = LLAMA_CPP_N_UBATCH
    parallel: int = 1
    headroom_bytes: int = DEFAULT_HEADROOM_BYTES
    swa_full: bool = False
    gpu_memory_utilization: float = VLLM_GPU_MEMORY_UTILIZATION

    def resolved(self, kv_quantized: bool) -> "EngineSettings":
        """Fill the engine defaults: llama.cpp builds enable flash attention automatically (-fa auto);
        Ollama keeps it off unless the cache is quantized."""
        if self.flash_attn is not None:
            return self
        if self.name == "ollama":
            return replace(self, flash_attn=kv_quantized)
        return replace(self, flash_attn=True)


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class DeviceUse:
    name: str
    layers: int
    weights_bytes: int
    kv_bytes: int
    compute_bytes: int
    overhead_bytes: int
    usable_bytes: int | None  # free (or total) memory minus the headroom
    host: bool = False

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.compute_bytes + self.overhead_bytes

    @property
    def fits(self) -> bool:
        return self.usable_bytes is None or self.total_bytes <= self.usable_bytes

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "host": self.host,
            "layers": self.layers,
            "weights_bytes": self.weights_bytes,
            "kv_bytes": self.kv_bytes,
            "compute_bytes": self.compute_bytes,
            "overhead_bytes": self.overhead_bytes,
            "total_bytes": self.total_bytes,
            "usable_bytes": self.usable_bytes,
            "fits": self.fits,
        }


@dataclass(frozen=True)
class Estimate:
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
    what_if: str = ""
    max_sequences: int | None = None  # vLLM: sequences of `context` tokens that fit at once
    notes: tuple[str, ...] = field(default=())

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.compute_bytes + self.host_compute_bytes + self.overhead_bytes

    @property
    def fits(self) -> bool:
        return self.placement != "none"

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "quant": self.quant,
            "kv_type": self.kv_type,
            "kv_layout": self.kv_layout,
            "engine": self.engine,
            "context": self.context,
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
            "what_if": self.what_if or None,
            "devices": [d.as_dict() for d in self.devices],
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------- the pieces


def _element_types(model: ModelProfile, kv: KVChoice, engine: EngineSettings, quants: QuantTable):
    if kv.bits is not None:
        if not 1 <= kv.bits <= 32:
            raise UsageError(f"--kv-bits must be between 1 and 32, got {kv.bits}")
        t = bits_type(kv.bits)
        return t, t
    k, v = quants.kv_type(kv.k), quants.kv_type(kv.v)
    if engine.name == "vllm":
        allowed = ("f16", "bf16", "fp8")
        for t in (k, v):
            if t.name not in allowed:
                raise UsageError(f"vLLM caches KV as {', '.join(allowed)} (got '{t.name}'); use --engine llama.cpp")
        if k.name != v.name:
            raise UsageError("vLLM uses one KV type for K and V (--kv-type)")
    elif "fp8" in (k.name, v.name):
        raise UsageError("llama.cpp has no fp8 KV cache; use q8_0 (or --engine vllm)")
    return k, v


def _mla_layout(engine: EngineSettings) -> str:
    # llama.cpp mainline keeps a V latent beside the K latent; vLLM / SGLang cache the latent only.
    return "latent" if engine.name == "vllm" else "latent+v"


def pad_cells(cells: int, engine: EngineSettings) -> int:
    if engine.name == "vllm":
        step = VLLM_BLOCK_TOKENS
    else:
        step = LLAMA_CPP_PAD_FLASH if engine.flash_attn else LLAMA_CPP_PAD_NO_FLASH
    return -(-cells // step) * step


def context_step(engine: EngineSettings) -> int:
    """The granularity of a context the engine allocates (one step more is the next size up)."""
    return pad_cells(1, engine)


def engine_context(per_sequence: int, engine: EngineSettings) -> int:
    """The context to give `estimate` so that each of `engine.parallel` sequences holds `per_sequence` tokens:
    llama.cpp's -c is shared by its slots; Ollama's num_ctx and vLLM's max_model_len are per sequence."""
    return per_sequence * engine.parallel if engine.name == "llama.cpp" else per_sequence


def per_sequence_context(context: int, engine: EngineSettings) -> int:
    """The inverse of `engine_context`: tokens one sequence gets from a context given to `estimate`."""
    return context // engine.parallel if engine.name == "llama.cpp" else context


def kv_cells(context: int, engine: EngineSettings) -> int:
    """KV cells the engine allocates for a requested context."""
    if engine.name == "llama.cpp":
        cells = context  # -c is the total over all slots
    else:
        cells = context * engine.parallel  # ollama num_ctx x OLLAMA_NUM_PARALLEL; vLLM: concurrent sequences
    return pad_cells(cells, engine)


def compute_buffer_bytes(model: ModelProfile, cells: int, engine: EngineSettings) -> int:
    """llama.cpp's per-GPU compute buffer: the larger of the attention phase and the logits phase.

    Without flash attention the attention phase holds the f32 scores n_ctx x n_ubatch x n_head, and an
    f16 copy of V; with it only the f16 mask. Calibrated on calibration/memory_logs.csv (A01, A04, A14,
    A26, A27: all within 4%).
    """
    ub, m = engine.n_ubatch, model
    rows = ATTN_PHASE_EMBD_ROWS * ub * m.hidden * F32_BYTES
    if engine.flash_attn:
        attention = cells * ub * F16_BYTES + rows
    else:
        v_dim = m.kv_lora_rank if m.attention == "mla" else m.kv_heads * m.head_dim
        attention = cells * ub * m.heads * F32_BYTES + cells * v_dim * F16_BYTES + rows
    logits = ub * (m.vocab + LOGITS_PHASE_EMBD_ROWS * m.hidden) * F32_BYTES
    return max(attention, logits)


def host_compute_bytes(model: ModelProfile, cells: int, engine: EngineSettings) -> int:
    """llama.cpp's CUDA_Host/CPU compute buffer: the f32 KQ mask and the input embeddings.
    Reproduces A01 (24.01 MiB), A04 (9.01), A14 (70.51), A26 (10.01) and A27 (12.01) to 0.01 MiB."""
    return cells * engine.n_ubatch * F32_BYTES + engine.n_ubatch * model.hidden * F32_BYTES


def _runtime_overhead(device: Device) -> int:
    return CUDA_RUNTIME_BYTES if device.kind == "gpu" else 0


def layer_split(n_layers: int, n_gpu_layers: int, weights_of_gpus: list[float]) -> list[list[int]]:
    """llama.cpp's default layer split: the last `n_gpu_layers` of n_layer + 1 units (the output
    layer is unit n_layer) go to the GPUs in proportion to their memory. Returns unit indices per GPU.

    Matches calibration A02 (17/15 layers on two RTX 3090) and A03 (9/8/8/7 on four)."""
    start = n_layers + 1 - n_gpu_layers
    if len(weights_of_gpus) == 1:
        return [list(range(start, n_layers + 1))]
    total = sum(weights_of_gpus)
    cumulative, acc = [], 0.0
    for w in weights_of_gpus:
        acc += w
        cumulative.append(acc / total)
    split = [[] for _ in weights_of_gpus]
    dev, last = 0, len(cumulative) - 1
    for unit in range(start, n_layers + 1):
        frac = (unit - start) / n_gpu_layers
        while dev < last and frac >= cumulative[dev]:  # fractions only grow: walk the devices once
            dev += 1
        split[dev].append(unit)
    return split


# ---------------------------------------------------------------- the estimate


@dataclass(frozen=True)
class _Parts:
    """Everything that does not depend on the context."""

    model: ModelProfile
    weights: WeightsLayout
    kv: KVLayout
    engine: EngineSettings
    window_extra: int


def _parts(model, quant, kv, engine, quants, weights: WeightsLayout | None = None) -> _Parts:
    if engine.name not in ENGINES:
        raise UsageError(f"unknown engine '{engine.name}'; choose from {', '.join(ENGINES)}")
    if weights is not None:
        if engine.name not in GGUF_ENGINES:
            raise UsageError(f"a GGUF file runs on {' or '.join(GGUF_ENGINES)}, not {engine.name}")
        recipe = None
    else:
        recipe = quants.recipe(quant)
    if recipe is not None and engine.name not in recipe.engines:
        raise UsageError(
            f"{engine.name} does not load {recipe.name} weights; it loads "
            + ", ".join(n for n, r in quants.recipes.items() if engine.name in r.engines)
        )
    k_type, v_type = _element_types(model, kv, engine, quants)
    engine = engine.resolved(kv_quantized=k_type.block_elements > 1 or v_type.block_elements > 1)
    if engine.name != "vllm" and v_type.block_elements > 1 and not engine.flash_attn:
        raise UsageError(f"llama.cpp needs flash attention for a quantized V cache ({v_type.name}); drop --no-flash-attn")
    if engine.parallel < 1:
        raise UsageError(f"--parallel must be at least 1, got {engine.parallel}")
    layout = kv_layout(model, k_type, v_type, _mla_layout(engine), engine.swa_full)
    weights = weights if weights is not None else weights_layout(model, recipe, quants)
    # llama.cpp keeps n_swa (x sequences) + n_ubatch cells in a sliding-window cache
    window_extra = 0 if engine.name == "vllm" else engine.n_ubatch
    return _Parts(model, weights, layout, engine, window_extra)


def _device_uses_llama(p: _Parts, cells: int, gpus: tuple[Device, ...], n_gpu_layers: int) -> list[DeviceUse]:
    m, eng = p.model, p.engine
    weights_of = [float(d.usable_bytes or 1) for d in gpus]
    split = layer_split(m.layers, n_gpu_layers, weights_of) if gpus and n_gpu_layers else [[] for _ in gpus]
    compute = compute_buffer_bytes(m, cells, eng)
    uses = []
    for dev, units in zip(gpus, split):
        layers = [u for u in units if u < m.layers]
        w = sum(p.weights.layer_bytes[i] for i in layers)
        if m.layers in units:
            w += p.weights.output_bytes
        kvb = sum(p.kv.layer_bytes(i, cells, p.window_extra) for i in layers)
        usable = None if dev.usable_bytes is None else dev.usable_bytes - eng.headroom_bytes
        uses.append(
            DeviceUse(dev.name, len(units), w, kvb, compute if units else 0,
                      _runtime_overhead(dev) if units else 0, usable)
        )
    return uses


def _host_use(p: _Parts, cells: int, n_gpu_layers: int, ram_usable: int | None, has_gpu: bool) -> DeviceUse:
    m = p.model
    cpu_layers = list(range(m.layers + 1 - n_gpu_layers)) if n_gpu_layers <= m.layers else []
    cpu_layers = [i for i in cpu_layers if i < m.layers]
    w = p.weights.token_embd_bytes + sum(p.weights.layer_bytes[i] for i in cpu_layers)
    if n_gpu_layers == 0:
        w += p.weights.output_bytes
    kvb = sum(p.kv.layer_bytes(i, cells, p.window_extra) for i in cpu_layers)
    compute = host_compute_bytes(m, cells, p.engine)
    if not has_gpu or n_gpu_layers == 0:
        compute += compute_buffer_bytes(m, cells, p.engine)  # the CPU backend runs the whole graph
    return DeviceUse("host RAM", len(cpu_layers), w, kvb, compute, 0, ram_usable, host=True)


def _all_fit(uses: list[DeviceUse]) -> bool:
    return all(u.fits for u in uses)


def _estimate_llama(p: _Parts, context: int, machine: Machine) -> tuple[str, int, list[DeviceUse]]:
    m = p.model
    cells = kv_cells(context, p.engine)
    gpus = machine.gpus
    ram = machine.ram_usable_bytes
    full = m.layers + 1
    if gpus:
        uses = _device_uses_llama(p, cells, gpus, full) + [_host_use(p, cells, full, ram, True)]
        if _all_fit(uses):
            return "gpu", full, uses
        # partial offload: the most layers whose GPU share still fits (fewer layers never need more
        # GPU memory, so bisect)
        lo, hi = 0, m.layers  # fits(lo) holds trivially (nothing offloaded), fits(full) does not
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _all_fit(_device_uses_llama(p, cells, gpus, mid)):
                lo = mid
            else:
                hi = mid - 1
        if lo:
            uses = _device_uses_llama(p, cells, gpus, lo) + [_host_use(p, cells, lo, ram, True)]
            return ("gpu+cpu" if uses[-1].fits else "none"), lo, uses
    uses = [_host_use(p, cells, 0, ram, bool(gpus))]
    return ("cpu" if uses[0].fits else "none"), 0, uses


def _vllm_activation(m: ModelProfile, context: int) -> int:
    ff = m.expert_intermediate * m.experts_active if m.experts else m.intermediate
    tokens = max(context, VLLM_MIN_PROFILE_TOKENS)
    return tokens * VLLM_ACTIVATION_BYTES_PER_TOKEN_PER_FF * ff


def _estimate_vllm(p: _Parts, context: int, machine: Machine):
    """Tensor parallel over all GPUs: each holds 1/tp of the weights, the cache and the activations."""
    gpus = machine.gpus
    if not gpus or any(d.kind != "gpu" for d in gpus):
        return "none", 0, [], None
    tp = len(gpus)
    cells = kv_cells(context, p.engine)
    kvb = p.kv.total_bytes(cells) // tp
    per_seq = max(1, p.kv.total_bytes(pad_cells(context, p.engine)) // tp)
    uses, max_seqs = [], None
    for d in gpus:
        total = d.memory_total_bytes
        budget = None if total is None else int(total * p.engine.gpu_memory_utilization)
        w = p.weights.total_bytes // tp
        act = _vllm_activation(p.model, context) // tp
        uses.append(DeviceUse(d.name, p.model.layers, w, kvb, act, VLLM_NON_TORCH_BYTES, budget))
        if budget is not None:
            free_for_kv = budget - w - act - VLLM_NON_TORCH_BYTES
            seqs = max(0, free_for_kv // per_seq)
            max_seqs = seqs if max_seqs is None else min(max_seqs, seqs)
    placement = "gpu" if _all_fit(uses) else "none"
    return placement, p.model.layers + 1, uses, max_seqs


def _max_context_limit(model: ModelProfile, engine: EngineSettings) -> int:
    """The model's trained maximum, as a context value for this engine."""
    if engine.name == "llama.cpp":
        return model.max_context * engine.parallel  # -c is shared by the slots
    return model.max_context


def _fits_on_gpus(p: _Parts, context: int, machine: Machine) -> bool:
    if p.engine.name == "vllm":
        return _estimate_vllm(p, context, machine)[0] == "gpu"
    gpus = machine.gpus
    if not gpus:
        return False
    cells = kv_cells(context, p.engine)
    return _all_fit(_device_uses_llama(p, cells, gpus, p.model.layers + 1))


def _breakpoints(p: _Parts) -> list[int]:
    """Contexts where the memory function changes slope: windows filling up, and where the
    attention phase of the compute buffer overtakes the logits phase."""
    points = {layer.window + p.window_extra for layer in p.kv.layers if layer.window}
    m, eng = p.model, p.engine
    at_zero = compute_buffer_bytes(m, 0, eng)  # the logits phase, or the attention phase's constant
    per_cell = compute_buffer_bytes(m, 1, eng) - at_zero
    logits = eng.n_ubatch * (m.vocab + LOGITS_PHASE_EMBD_ROWS * m.hidden) * F32_BYTES
    rows = ATTN_PHASE_EMBD_ROWS * eng.n_ubatch * m.hidden * F32_BYTES
    attention_per_cell = per_cell if per_cell else None
    if attention_per_cell is None:
        # while the logits phase dominates the slope is 0: find where attention overtakes it
        attention_per_cell = compute_buffer_bytes(m, 10**9, eng) // 10**9 or 1
    points.add(max(1, (logits - rows) // attention_per_cell))
    points.add(VLLM_MIN_PROFILE_TOKENS)
    return sorted(points)


def max_context(p: _Parts, machine: Machine) -> int | None:
    """The largest context (a multiple of the engine's step, at most the model's maximum) that runs
    entirely on the GPU(s); None when not even one step does.

    Memory is nondecreasing and affine between the breakpoints, so the answer is found by evaluating
    the knots and solving the one affine piece that crosses the budget, not by scanning contexts.
    """
    step = context_step(p.engine)
    cells_per_context = 1 if p.engine.name == "llama.cpp" else p.engine.parallel
    limit = _max_context_limit(p.model, p.engine) // step * step
    if limit < step or not _fits_on_gpus(p, step, machine):
        return None
    if _fits_on_gpus(p, limit, machine):
        return limit
    knots = {1, limit // step}
    for b in _breakpoints(p):
        k = b // cells_per_context // step
        knots.update({max(1, min(limit // step, k + d)) for d in (-1, 0, 1)})
    knots = sorted(knots)
    lo = max(k for k in knots if _fits_on_gpus(p, k * step, machine))
    hi = min(k for k in knots if k > lo)
    # within (lo, hi) memory is affine in k: solve it per device, then correct float rounding
    k = lo + _affine_steps(p, machine, lo, hi, step)
    while k + 1 < hi and _fits_on_gpus(p, (k + 1) * step, machine):
        k += 1
    while k > lo and not _fits_on_gpus(p, k * step, machine):
        k -= 1
    return k * step


def _device_totals(p: _Parts, machine: Machine, context: int) -> list[tuple[int, int | None]]:
    if p.engine.name == "vllm":
        uses = _estimate_vllm(p, context, machine)[2]
    else:
        uses = _device_uses_llama(p, kv_cells(context, p.engine), machine.gpus, p.model.layers + 1)
    return [(u.total_bytes, u.usable_bytes) for u in uses]


def _affine_steps(p: _Parts, machine: Machine, lo: int, hi: int, step: int) -> int:
    """How many steps past `lo` still fit, from the slope of each device's memory on [lo, hi]."""
    at_lo = _device_totals(p, machine, lo * step)
    at_hi = _device_totals(p, machine, hi * step)
    best = hi - lo - 1
    for (t0, usable), (t1, _) in zip(at_lo, at_hi):
        if usable is None:
            continue
        slope = (t1 - t0) / (hi - lo)
        if slope > 0:
            best = min(best, int((usable - t0) // slope))
    return max(0, best)


def estimate(
    model: ModelProfile,
    quant: str,
    kv: KVChoice,
    engine: EngineSettings,
    context: int | None,
    machine: Machine,
    quants: QuantTable,
    weights: WeightsLayout | None = None,
    solve_max_context: bool = True,
) -> Estimate:
    """Memory needed for `model` at `context` (the model's maximum when None) on `machine`. `weights` fixes the
    weights as a file has them (GGUF); `quant` is then only the file's label. `solve_max_context=False` leaves
    `max_context` None (a search over many machines solves it only for the combination it keeps)."""
    p = _parts(model, quant, kv, engine, quants, weights)
    eng = p.engine
    if context is None:
        context = _max_context_limit(model, eng)
    if context < 1:
        raise UsageError(f"context must be a positive number of tokens, got {context}")
    limit = _max_context_limit(model, eng)
    notes = []
    if context > limit:
        notes.append(f"context {context} is beyond the model's trained maximum ({limit})")
    cells = kv_cells(context, eng)
    max_seqs = None
    if eng.name == "vllm":
        placement, gpu_layers, uses, max_seqs = _estimate_vllm(p, context, machine)
        if not machine.gpus:
            notes.append("vLLM needs a GPU")
        compute = sum(u.compute_bytes for u in uses) or _vllm_activation(model, context)
        overhead = sum(u.overhead_bytes for u in uses) or VLLM_NON_TORCH_BYTES
        host_compute = 0
        for d in machine.gpus:
            if d.memory_free_bytes is not None and d.memory_total_bytes:
                if d.memory_free_bytes < d.memory_total_bytes * eng.gpu_memory_utilization:
                    notes.append(
                        f"{d.name}: only {d.memory_free_bytes / GIB:.1f} GiB free, below gpu_memory_utilization x total;"
                        " vLLM would refuse to start"
                    )
    else:
        placement, gpu_layers, uses = _estimate_llama(p, context, machine)
        # per-GPU buffers; with no GPU in use, the one buffer the CPU backend runs the graph in
        compute = sum(u.compute_bytes for u in uses if not u.host) or compute_buffer_bytes(model, cells, eng)
        host_compute = host_compute_bytes(model, cells, eng)
        overhead = sum(u.overhead_bytes for u in uses)
        if placement == "gpu+cpu":
            notes.append(f"{gpu_layers - 1 if gpu_layers > model.layers else gpu_layers} of {model.layers} layers on the GPU(s); the rest run from RAM")
    if eng.name == "ollama" and eng.parallel > 1:
        notes.append(f"Ollama allocates num_ctx x OLLAMA_NUM_PARALLEL = {context} x {eng.parallel} cells")
    if eng.name == "llama.cpp" and eng.parallel > 1:
        notes.append(f"llama.cpp shares -c {context} among {eng.parallel} slots: {context // eng.parallel} tokens each")
    k_bytes, v_bytes = p.kv.split_bytes(cells, p.window_extra)
    if eng.name == "vllm":
        kv_total = p.kv.total_bytes(cells)
    else:
        kv_total = k_bytes + v_bytes
    return Estimate(
        model=model.id,
        quant=quant if weights is not None else quants.recipe(quant).name,
        kv_type=kv.label,
        kv_layout=p.kv.label,
        engine=eng.name,
        context=context,
        kv_cells=cells,
        parallel=eng.parallel,
        flash_attn=bool(eng.flash_attn),
        weights_bytes=p.weights.total_bytes,
        token_embd_bytes=p.weights.token_embd_bytes,
        kv_bytes=kv_total,
        kv_k_bytes=k_bytes,
        kv_v_bytes=v_bytes,
        kv_bytes_per_token=p.kv.bytes_per_token,
        compute_bytes=compute,
        host_compute_bytes=host_compute,
        overhead_bytes=overhead,
        headroom_bytes=eng.headroom_bytes if eng.name != "vllm" else 0,
        placement=placement,
        gpu_layers=gpu_layers,
        max_context=max_context(p, machine) if solve_max_context else None,
        model_max_context=limit,
        devices=tuple(uses),
        params=p.weights.params,
        bits_per_weight=p.weights.bits_per_weight,
        active_weights_bytes=p.weights.active_bytes,
        what_if=model.what_if,
        max_sequences=max_seqs,
        notes=tuple(notes),
    )


def fits_on_gpus(model: ModelProfile, quant: str, kv: KVChoice, engine: EngineSettings, context: int,
                 machine: Machine, quants: QuantTable, weights: WeightsLayout | None = None) -> bool:
    """Whether `context` runs entirely on the machine's GPU(s): the yes/no of `estimate`'s placement == "gpu",
    without the partial-offload search and the max-context solve (for searches over many machines)."""
    return _fits_on_gpus(_parts(model, quant, kv, engine, quants, weights), context, machine)


def kv_bytes_per_token(model: ModelProfile, kv: KVChoice, engine: EngineSettings, quants: QuantTable) -> int:
    """The KV cache's growth per token of context (full-attention layers), for quick comparisons."""
    k_type, v_type = _element_types(model, kv, engine, quants)
    return kv_layout(model, k_type, v_type, _mla_layout(engine), engine.swa_full).bytes_per_token


def weights_bytes(model: ModelProfile, quant: str, quants: QuantTable) -> int:
    return weights_layout(model, quants.recipe(quant), quants).total_bytes


