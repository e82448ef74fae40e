"""Decode and prefill speed (tokens/s) for a memory estimate on a machine. Pure functions.

Decode (one sequence) is memory-bound, but small models on fast GPUs are launch-bound, so a single
"bandwidth x constant" is not enough. Per device that holds layers:

    seconds per token = bytes read / (efficiency x bandwidth) + layers x per-layer overhead

over a placement: pipeline stages (a llama.cpp layer split, vLLM's pipeline stages, the host's layers) take turns
within a token, so their times add; the tensor-parallel ranks of one stage work at once, so the stage takes as long
as its slowest rank plus its all-reduces over the link between the GPUs:

    stage seconds = max over ranks (rank seconds) + layers x all-reduces per layer x (latency + 2 (tp-1)/tp x bytes / link bandwidth)

(the ring all-reduce's traffic, NCCL's algorithm for small groups).
Bytes read: the active weights (MoE: shared tensors plus the active experts' share) and the KV cache
of one sequence at the requested context. Both constants are fitted per backend on
calibration/throughput.csv (llama.cpp tg128, Llama-2 7B/13B/70B F16/Q8_0/Q4_0; CUDA 36 rows: median
error 6%, all within 25%; Metal 94 rows: median 3.3%, 97% within 25%).

Prefill is compute-bound: tokens/s = efficiency x FP16 peak / (2 x active parameters), with the
efficiency llama.cpp reached in the same file (pp512). Active parameters are counted, not inferred from bytes
(WeightsLayout.active_params: every parameter a token multiplies by, MoE routed experts at experts_per_token /
experts, the embedding lookup none): with mixed precision the share of bytes read is not the share of parameters
(gpt-oss-120b: its MXFP4 experts are 4.25 bits beside BF16 attention; 9.2 B "active" by bytes, 5.1 B counted). A
device does its compute_share of them (the engine's: its share of the layers; of an expert offload's reads).

Batched decode (`concurrency` N sequences, each in its own slot) reads the weights once per step for all N
tokens, plus each sequence's cache, and cannot go faster than compute allows:

    seconds per step = max(bytes read / (efficiency x bandwidth), N x FLOPs per token / FLOPS) + layers x overhead

aggregate tokens/s = N / seconds per step. MoE: N tokens touch 1 - (1 - active share)^N of the weights.

The CPU's part (CPU-only, the layers or experts a GPU offload leaves in RAM) is the slower of its RAM and its cores:

    host seconds = max(bytes read / (efficiency x RAM bandwidth),
                       N x 2 x parameters read / (cores x GFLOPS per core)) + layers x per-layer overhead

(parameters read = the host's compute_share of the active parameters: per token, whatever N)

with cores = min(threads, cores this process may use) and GFLOPS per core that of llama.cpp's kernels for the
CPU's instruction set and the weight format (profiles/hardware/cpu_isa.toml, carried by Machine.cpu). CPU-only
prefill is compute-bound: tokens/s = cores x prefill GFLOPS per core / (2 x active parameters). Where cores, threads
or ISA are unknown the ceiling is not applied, and a note says so.

Prefill with layers or routed experts in RAM beside a GPU (placement "gpu+cpu"), where the engine offloads large
batches (Estimate.offload_min_batch: llama.cpp with CUDA, and Ollama, which runs it): every matmul of a weight held in
RAM runs on the first GPU once a ubatch has at least that many tokens, the scheduler copying the weight over the GPU's
host link first (only the experts some token of the ubatch routes to, for MUL_MAT_ID), then computing; copy and compute
are one after the other on the GPU's stream. Per ubatch of n_ubatch tokens:

    seconds = n_ubatch x 2 x active parameters / GPU FLOPS
              + bytes of the RAM weights the ubatch uses / (efficiency x link)
    tokens/s = n_ubatch / seconds

with bytes used = held x (1 - (1 - share read per token)^n_ubatch) (all of it for dense layers). The link is
Machine.host_link (the first GPU's PCIe slot, profiles/hardware/links.toml); unknown: no prefill, and a note says so.
Not counted: the KV cache of layers in RAM (copied for attention, small for short prompts) and the router's id
read-back per MoE layer. Unified memory (Metal offloads large batches too, within RAM) is not modelled.
"""

from __future__ import annotations


from advisor.core.hardware import CpuRate, Device, Link, Machine, cpu_weight_format
from advisor.core.memory import DEFAULT_N_UBATCH, Estimate
from advisor.core.record import record

# (bandwidth efficiency, seconds of per-layer overhead), least-squares fit on relative error of
# throughput.csv decode rows, by backend.
DECODE_FIT = {
    "gpu": (0.954, 137.8e-6),  # CUDA: A100, H100 PCIe, RTX 3090/4080/4090, RTX A6000, RTX 4000-6000 Ada
    "apple": (0.910, 187.5e-6),  # Metal: M1 to M4, 7- to 80-core GPUs
}
# CPU decode is not in the calibration data: a typical share of DDR bandwidth that llama.cpp's CPU
# backend reaches, and a small per-layer cost. Shown with a wide range.
CPU_DECODE_FIT = (0.6, 20e-6)
# A bandwidth this machine achieved in a probe (advisor/detect/membw.py) is already a real rate, not a platform
# figure to take a share of.
MEASURED_CPU_EFFICIENCY = 1.0
# Relative half-width of the printed range: about the 90th percentile of |error| of each fit.
DECODE_SPREAD = {"gpu": 0.20, "apple": 0.15, "cpu": 0.5}
# A desktop with DDR5-5600 in two channels (catalog row cpu-ddr5-5600-2ch), when RAM bandwidth is unknown.
DEFAULT_CPU_BANDWIDTH_GB_S = 89.6
# Prefill: share of the FP16 (FP32-accumulate) tensor peak llama.cpp reached in throughput.csv pp512 rows:
# GeForce 0.45-0.72 of the FP32-acc figure, pro/datacenter cards 0.14-0.33 of theirs, Apple 0.62-0.76.
PREFILL_EFFICIENCY = {"consumer": 0.55, "workstation": 0.25, "datacenter": 0.25, "apple": 0.70}
PREFILL_SPREAD = 0.5
# Share of a host link's line rate (Link.bandwidth_gb_s) that the copies of an offloaded ubatch reach. llama.cpp keeps
# the weights it leaves in RAM in pageable memory by default (src/llama-model-loader.cpp@00347649 "avoid using a host
# buffer when using mmap"; --n-cpu-moe / -ot =CPU name the plain CPU buffer type), which the CUDA driver copies through
# a staging buffer: a copy from pinned memory reaches ~0.83 of the line rate (profiles/hardware/links.toml: ~26 of 31.5
# GB/s on PCIe 4.0 x16, 53-55 of 63 on PCIe 5.0), one from pageable memory ~0.55 of that: ggml-org/llama.cpp PR #20978
# (gpt-oss-20b, host experts, pp2048 at n_ubatch 128, where the copy dominates): 298.3 t/s mapped vs 543.7 pinned
# (PR #28223 saw 166 -> 330 t/s pinning the host experts). 0.83 x 0.55 = 0.46.
HOST_COPY_EFFICIENCY = 0.46
FLOPS_PER_PARAM_PER_TOKEN = 2  # one multiply-add per weight
GIGA = 1e9
# A ring all-reduce moves 2 (n-1)/n of the message through each GPU's link (NCCL's ring algorithm).
RING_TRAFFIC_FACTOR = 2
US_PER_S = 1e6
# When the machine does not say which link joins its GPUs: a PCIe 4.0 x16 slot (profiles/hardware/links.toml
# pcie4-x16: 31.5 GB/s per direction; 15.9 us per small all-reduce, NVIDIA/nccl #757), said in a note.
FALLBACK_LINK = Link("pcie4-x16", "PCIe 4.0 x16 (assumed)", 31.5, 15.9, "profiles/hardware/links.toml pcie4-x16")


@record
class Speed:
    """Decode and prefill tokens/s over a placement (None: unknown), with their ranges and the terms behind
    them."""

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


def _flops_per_s(device: Device) -> float | None:
    """FLOPS llama.cpp reaches on this device in compute-bound work (prefill, large batches)."""
    if not device.fp16_tflops:
        return None
    kind = "apple" if device.kind == "apple" else device.segment or "datacenter"
    return PREFILL_EFFICIENCY.get(kind, PREFILL_EFFICIENCY["datacenter"]) * device.fp16_tflops * 1e12


def allreduce_seconds(est: Estimate, machine: Machine, layers: int, tokens: int, notes: list) -> tuple[float, dict]:
    """Seconds of the tensor-parallel all-reduces of one stage of `layers` layers, for `tokens` tokens at once."""
    ar = est.allreduce
    if ar is None or ar.ranks <= 1 or not layers:
        return 0.0, {}
    link = machine.link
    if link is None:
        link = FALLBACK_LINK
        notes.append(f"link between the GPUs unknown: assumed {link.name}")
    calls = layers * ar.per_layer
    traffic = RING_TRAFFIC_FACTOR * (ar.ranks - 1) / ar.ranks * ar.bytes_each * tokens
    seconds = calls * (link.latency_us / US_PER_S + traffic / (link.bandwidth_gb_s * 1e9))
    return seconds, {"link": link.name, "all_reduces": calls, "bytes_each": ar.bytes_each * tokens,
                     "latency_us": link.latency_us, "bandwidth_gb_s": link.bandwidth_gb_s, "seconds": seconds}


def _stages(est: Estimate) -> list[list]:
    """The devices that hold layers, grouped by stage, in stage order."""
    by_stage: dict[int, list] = {}
    for use in est.devices:
        if use.layers or use.expert_layers:
            by_stage.setdefault(use.stage, []).append(use)
    return [by_stage[k] for k in sorted(by_stage)]


def estimate_speed(est: Estimate, machine: Machine, concurrency: int = 1) -> Speed:
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    notes = []
    if est.placement == "none":
        return Speed(None, None, None, None, {}, ("does not fit: no speed",), concurrency)
    # token_embd is a row lookup, not a full read; MoE layers read only the active experts. A share of bytes: what
    # memory reads, never what the FLOPs count (those are parameters: est.active_params)
    read_weights = est.weights_bytes - est.token_embd_bytes
    active_share = min(1.0, est.active_weights_bytes / read_weights) if read_weights else 1.0
    batch_share = 1 - (1 - active_share) ** concurrency  # weights N tokens touch (MoE); 1.0 for dense
    # each sequence reads its own slot of the cache
    kv_share = min(concurrency, est.parallel) / est.parallel
    flops_per_token = FLOPS_PER_PARAM_PER_TOKEN * est.active_params
    seconds = compute_seconds = 0.0
    terms, spread = {}, 0.0
    gpu_seconds = [0.0] * len(machine.gpus)
    for stage in _stages(est):
        stage_t = stage_compute = 0.0
        for use in stage:
            if use.host:
                t = _host_seconds(est, machine, use, batch_share, kv_share, concurrency, notes, terms)
                spread = max(spread, DECODE_SPREAD["cpu"])
                stage_t = max(stage_t, t)
                continue
            device = machine.gpus[use.device_index]
            if device.bandwidth_gb_s is None:
                notes.append(f"{device.name}: bandwidth unknown, decode speed unknown")
                return Speed(None, None, None, None, {}, tuple(notes), concurrency)
            read = _weights_read(use, use.weights_bytes, batch_share, concurrency) + use.kv_bytes * kv_share
            flops = _flops_per_s(device)
            compute_t = concurrency * flops_per_token * use.compute_share / flops if flops else 0.0
            t, mem_t = _step_seconds(read, use.layers, device.bandwidth_gb_s, _device_fit(device), compute_t)
            gpu_seconds[use.device_index] = t
            stage_t = max(stage_t, t)
            stage_compute = max(stage_compute, max(0.0, compute_t - mem_t))
            spread = max(spread, DECODE_SPREAD["apple" if device.kind == "apple" else "gpu"])
            terms[f"GPU {device.index} ({device.name})"] = {"bytes_read": int(read), "layers": use.layers,
                                                           "bandwidth_gb_s": device.bandwidth_gb_s,
                                                           "active_params": est.active_params,
                                                           "compute_share": use.compute_share,
                                                           "compute_seconds": compute_t, "seconds": t}
        comm_t, comm_terms = allreduce_seconds(est, machine, stage[0].layers, concurrency, notes)
        if comm_terms:
            terms[f"all-reduce, stage {stage[0].stage}"] = comm_terms
        for use in stage:
            if not use.host:
                gpu_seconds[use.device_index] = stage_t + comm_t  # a rank waits for the slowest and the reduce
        seconds += stage_t + comm_t
        compute_seconds += stage_compute
    decode = concurrency / seconds if seconds else None
    prefill, prefill_range = _prefill(est, machine, active_share, notes, terms)
    busy = tuple(t / seconds if seconds else 0.0 for t in gpu_seconds)
    return Speed(decode, _range(decode, spread) if decode else None, prefill, prefill_range, terms,
                 tuple(dict.fromkeys(notes)), concurrency, compute_seconds / seconds if seconds else 0.0, busy)


def cpu_compute(est: Estimate, machine: Machine, notes: list) -> tuple[CpuRate | None, float | None]:
    """(llama.cpp's per-core figure for these weights on this CPU, cores doing the work), or (None, None) with a
    note saying which fact is missing: then no compute ceiling is applied (nothing is invented)."""
    cpu = machine.cpu
    if cpu is None or cpu.cores is None:
        notes.append("CPU cores unknown: the CPU's compute ceiling is not applied (give --cpu-cores)")
        return None, None
    if cpu.threads is None:
        notes.append("CPU threads unknown: the CPU's compute ceiling is not applied (give --threads)")
        return None, None
    if cpu.isa is None:
        seen = f" (flags seen: {', '.join(cpu.flags)})" if cpu.flags else ""
        notes.append(f"CPU instruction set unknown or without a per-core figure{seen}: the CPU's compute ceiling is "
                     "not applied (--cpu-isa names one of profiles/hardware/cpu_isa.toml)")
        return None, None
    fmt = cpu_weight_format(est.quant)
    rate = cpu.isa.rate(fmt)
    if rate is None:
        notes.append(f"no per-core {cpu.isa.name} figure for {est.quant} weights: the CPU's compute ceiling is not "
                     "applied")
        return None, None
    if cpu.threads > cpu.cores:
        notes.append(f"{cpu.threads} threads on {cpu.cores:g} cores: the extra threads wait for a core (modelled at "
                     f"{cpu.cores:g} cores; llama.cpp often runs slower oversubscribed: -t {max(1, int(cpu.cores))})")
    return rate, cpu.compute_cores


def _host_seconds(est, machine, host, batch_share, kv_share, concurrency, notes, terms) -> float:
    bw = machine.cpu_bandwidth_gb_s
    if bw is None:
        bw = DEFAULT_CPU_BANDWIDTH_GB_S
        notes.append(f"RAM bandwidth unknown: assumed {bw:g} GB/s (dual-channel DDR5-5600)")
    held = host.weights_bytes - est.token_embd_bytes
    weights_read = _weights_read(host, held, batch_share, concurrency)
    read = weights_read + host.kv_bytes * kv_share
    layers = host.layers or host.expert_layers  # an expert offload: one expert pass per layer it holds
    fit = (MEASURED_CPU_EFFICIENCY, CPU_DECODE_FIT[1]) if machine.cpu_bandwidth_measured else CPU_DECODE_FIT
    rate, cores = cpu_compute(est, machine, notes)
    # the parameters each token multiplies by here (one multiply-add each): the host's share of the active ones,
    # counted, not the bytes read over an average bits per weight (mixed precision makes those differ)
    params_read = est.active_params * host.compute_share
    compute_t = 0.0
    if rate is not None:
        compute_t = (concurrency * FLOPS_PER_PARAM_PER_TOKEN * params_read
                     / (cores * rate.decode_gflops_per_core * GIGA))
    t, mem_t = _step_seconds(read, layers, bw, fit, compute_t)
    terms["host RAM"] = {"bytes_read": int(read), "layers": host.layers, "bandwidth_gb_s": bw,
                         "bandwidth_efficiency": fit[0], "memory_seconds": mem_t, "seconds": t}
    if host.expert_layers:
        terms["host RAM"]["expert_layers"] = host.expert_layers
    if rate is not None:
        cpu = machine.cpu
        terms["host RAM"].update({
            "bound": "compute" if compute_t > mem_t else "bandwidth", "compute_seconds": compute_t,
            "params_read": int(params_read), "active_params": est.active_params,
            "compute_share": host.compute_share, "cpu_threads": cpu.threads, "cpu_cores": cpu.cores,
            "cpu_compute_cores": cores, "cpu_isa": cpu.isa.id, "cpu_format": rate.format,
            "gflops_per_core": rate.decode_gflops_per_core, "gflops_per_core_source": rate.decode_source})
    else:
        terms["host RAM"]["bound"] = "bandwidth (compute ceiling unknown)"
    if concurrency > 1:
        notes.append("CPU layers: batched decode at the one-token kernel rate (a lower bound for the CPU's compute)"
                     if rate is not None else "CPU layers: batched decode modelled as memory-bound only (CPU FLOPS "
                     "unknown)")
    return t


def _weights_read(use, held: int, batch_share: float, concurrency: int) -> float:
    """Weight bytes a decode step reads on this device: its share of the model's, or (an expert offload) the
    device's own active bytes, of which N tokens touch 1 - (1 - share)^N."""
    if use.read_bytes is None:
        return held * batch_share
    if use.read_bytes >= held:  # it reads all it holds and more (a tied output: token_embd read whole for logits)
        return float(use.read_bytes)
    if not held:
        return 0.0
    share = min(1.0, use.read_bytes / held)
    return held * (1 - (1 - share) ** concurrency)


def _step_seconds(bytes_read: float, layers: int, bandwidth_gb_s: float, fit: tuple[float, float],
                  compute_seconds: float) -> tuple[float, float]:
    """(seconds per decode step, of which the memory part): the slower of memory and compute, plus launches."""
    efficiency, per_layer_s = fit
    memory_seconds = bytes_read / (efficiency * bandwidth_gb_s * 1e9)
    return max(memory_seconds, compute_seconds) + layers * per_layer_s, memory_seconds


def _cpu_prefill(est: Estimate, machine: Machine, notes: list, terms: dict):
    """CPU-only prefill, compute-bound: cores x prefill GFLOPS per core / (2 x active parameters)."""
    rate, cores = cpu_compute(est, machine, notes)
    if rate is None or rate.prefill_gflops_per_core is None:
        return None, None
    flops_per_token = FLOPS_PER_PARAM_PER_TOKEN * est.active_params
    if not flops_per_token:
        return None, None
    value = cores * rate.prefill_gflops_per_core * GIGA / flops_per_token
    terms["CPU prefill"] = {"active_params": est.active_params, "flops_per_token": flops_per_token,
                            "cpu_compute_cores": cores, "cpu_isa": machine.cpu.isa.id, "cpu_format": rate.format,
                            "gflops_per_core": rate.prefill_gflops_per_core,
                            "gflops_per_core_source": rate.prefill_source, "tokens_per_s": value}
    return value, _range(value, PREFILL_SPREAD)


def _prefill(est: Estimate, machine: Machine, active_share: float, notes: list, terms: dict | None = None):
    terms = terms if terms is not None else {}
    if est.placement == "cpu":
        return _cpu_prefill(est, machine, notes, terms)
    if est.placement not in ("gpu", "gpu+cpu") or not machine.gpus:
        return None, None
    # stages run one after another; the ranks of a stage at once (each does its share of the FLOPs)
    seconds_per_token = 0.0
    for stage in _stages(est):
        stage_t = 0.0
        for use in stage:
            if use.host:
                continue
            device = machine.gpus[use.device_index]
            flops_per_s = _flops_per_s(device)
            if flops_per_s is None:
                notes.append(f"{device.name}: FP16 throughput unknown, prefill speed unknown")
                return None, None
            flops = FLOPS_PER_PARAM_PER_TOKEN * est.active_params * use.compute_share
            stage_t = max(stage_t, flops / flops_per_s)
        seconds_per_token += stage_t
    if est.placement == "gpu+cpu":
        host = next((u for u in est.devices if u.host and (u.layers or u.expert_layers)), None)
        if host is not None:
            return _offloaded_prefill(est, machine, host, active_share, seconds_per_token, notes, terms)
    if not seconds_per_token:
        return None, None
    value = 1 / seconds_per_token
    return value, _range(value, PREFILL_SPREAD)


def _offloaded_prefill(est: Estimate, machine: Machine, host, active_share: float, gpu_seconds_per_token: float,
                       notes: list, terms: dict):
    """Prefill with weights in RAM that the engine runs on the first GPU for large batches, per ubatch: the GPUs'
    compute for every layer, then the copy of the RAM weights the ubatch uses over the first GPU's host link."""
    what = "experts" if host.expert_layers else "layers"
    min_batch = est.offload_min_batch
    if min_batch is None:
        notes.append(f"prefill unknown: the engine computes the {what} in RAM on the CPU, which is not modelled "
                     "beside a GPU")
        return None, None
    ubatch = est.settings.n_ubatch if est.settings is not None else DEFAULT_N_UBATCH
    if ubatch < min_batch:
        notes.append(f"prefill unknown: a ubatch of {ubatch} tokens is below the {min_batch} at which the engine "
                     f"computes the {what} in RAM on the GPU; the CPU computes them, which is not modelled")
        return None, None
    gpu = machine.gpus[0]  # the scheduler offers an op to the backends in order: the first GPU takes it
    if machine.unified or gpu.kind != "gpu":
        notes.append(f"prefill unknown: {gpu.name} shares the host's memory; its copies of the {what} in RAM for "
                     "large batches stay within RAM, which is not modelled")
        return None, None
    link = machine.host_link
    if link is None:
        notes.append(f"prefill unknown: the engine copies the {what} in RAM to {gpu.name} for each ubatch of "
                     f">= {min_batch} tokens, and that GPU's link to the host is not known "
                     "(profiles/hardware/links.toml lists none for it)")
        return None, None
    flops_per_s = _flops_per_s(gpu)
    if flops_per_s is None:
        notes.append(f"{gpu.name}: FP16 throughput unknown, prefill speed unknown")
        return None, None
    flops_per_token = FLOPS_PER_PARAM_PER_TOKEN * est.active_params
    host_flops = flops_per_token * host.compute_share  # the RAM weights' share of the FLOPs, done by the first GPU
    compute_s = ubatch * (gpu_seconds_per_token + host_flops / flops_per_s)
    held = host.weights_bytes - est.token_embd_bytes  # token_embd is a row lookup (GET_ROWS): never offloaded
    ubatch_share = 1 - (1 - active_share) ** ubatch
    copied = _weights_read(host, held, ubatch_share, ubatch)
    copy_s = copied / (HOST_COPY_EFFICIENCY * link.bandwidth_gb_s * GIGA)
    seconds = compute_s + copy_s
    if not seconds:
        return None, None
    value = ubatch / seconds
    terms["prefill, RAM weights copied to the GPU"] = {
        "n_ubatch": ubatch, "offload_min_batch": min_batch, "gpu": gpu.name, "active_params": est.active_params,
        "flops_per_token": flops_per_token, "host_compute_share": host.compute_share, "gpu_flops_per_s": flops_per_s,
        "compute_seconds": compute_s,
        "bytes_held": int(held), "bytes_copied": int(copied), "link": link.name,
        "link_bandwidth_gb_s": link.bandwidth_gb_s, "copy_efficiency": HOST_COPY_EFFICIENCY, "copy_seconds": copy_s,
        "seconds_per_ubatch": seconds, "tokens_per_s": value}
    notes.append(f"prefill: each ubatch of {ubatch} tokens copies the {what} it uses from RAM to {gpu.name} "
                 f"({copied / GIGA:.1f} GB over {link.name}) and computes there; prompts shorter than {ubatch} tokens "
                 "copy as much for fewer tokens")
    return value, _range(value, PREFILL_SPREAD)
