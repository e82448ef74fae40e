"""vLLM: tensor parallel within the box, pipeline stages for the rest; a paged cache in the memory left over.

- Deployment: the largest tensor-parallel degree that divides the GPU count and the attention heads (and the KV
  heads, or KV is replicated: one head per rank), pipeline stages for the rest. A degree that does not divide
  the heads is refused by vLLM ("Total number of attention heads must be divisible by tensor parallel size").
- Per rank: 1/tp of its stage's weights and activation peak; its share of the cache (K/V heads split when
  kv_heads >= tp, replicated below; an MLA latent is one head and every rank holds all of it).
- KV budget = gpu_memory_utilization x total - weights - activation peak - non-torch memory, paged in 16-token
  blocks per sequence; `max_sequences` is what that budget holds at the requested context.
- Caches in f16 / bf16 / fp8 (one type for K and V); loads safetensors (BF16, FP8, AWQ), not GGUF here.
"""

from __future__ import annotations

from advisor.core.cache import Allocation
from advisor.core.deployment import AllReduce, Deployment, DeviceUse, Placement, verdict
from advisor.core.hardware import Machine
from advisor.core.memory import EngineSettings, Estimate
from advisor.core.model import ModelProfile
from advisor.core.units import GIB, MIB, fmt_mib
from advisor.engines.base import Engine, Job, largest_tp
from advisor.errors import UsageError

KV_TYPES = ("f16", "bf16", "fp8")  # --kv-cache-dtype auto (the model's dtype) / fp8
BLOCK_TOKENS = 16  # --block-size default
# Non-torch memory per GPU (CUDA context, NCCL, cuBLAS): 0.35 GiB measured on an RTX 3090
# (calibration/memory_logs.csv A34).
NON_TORCH_BYTES = 350 * MIB
# vLLM profiles one forward pass of max(max_model_len, max_num_batched_tokens) tokens; its activation
# peak per token is about 8 x intermediate bytes (gate+up outputs and the SwiGLU product in bf16):
# 20000 tokens -> 2.14 GiB vs 2.07 measured, 29000 -> 3.10 vs 2.99 for Llama-3.1-8B (A34, A35).
ACTIVATION_BYTES_PER_TOKEN_PER_FF = 8
MIN_PROFILE_TOKENS = 2048
# Tensor parallelism all-reduces the hidden state twice per layer (after the attention output projection and after
# the MLP's down projection: vllm/model_executor/layers/linear.py RowParallelLinear, reduce_results=True), in the
# model's 16-bit activation type.
ALLREDUCES_PER_LAYER = 2
# DeepSeek V3.2's indexer cache: fp8 values plus one fp32 scale per 128 (vllm/model_executor/models/deepseek_v2.py
# DeepseekV32IndexerCache: head_dim + head_dim // quant_block_size * 4 bytes, quant_block_size 128).
INDEXER_QUANT_BLOCK = 128
INDEXER_SCALE_BYTES = 4
ACTIVATION_BYTES = 2


def valid_tp(model: ModelProfile, tp: int) -> bool:
    """vLLM accepts a tensor-parallel degree that divides the attention heads, and either divides the KV heads or
    is a multiple of them (then each rank keeps a copy of one KV head). MLA has one latent "head": any degree that
    divides the attention heads."""
    if model.heads % tp:
        return False
    if model.attention == "mla":
        return True
    return model.kv_heads % tp == 0 or tp % model.kv_heads == 0


def stage_layers(n_layers: int, pp: int) -> list[list[int]]:
    """vLLM's pipeline split (distributed/utils.py get_pp_indices): equal partitions, the remainder one layer each
    to the partitions before the last (which also holds the LM head)."""
    sizes = [n_layers // pp] * pp
    for i in range(2, n_layers % pp + 2):
        sizes[-i] += 1
    out, start = [], 0
    for n in sizes:
        out.append(list(range(start, start + n)))
        start += n
    return out


def activation_bytes(model: ModelProfile, context: int) -> int:
    ff = model.expert_intermediate * model.experts_active if model.experts else model.intermediate
    return max(context, MIN_PROFILE_TOKENS) * ACTIVATION_BYTES_PER_TOKEN_PER_FF * ff


class Vllm(Engine):
    name = "vllm"
    label = "vLLM"
    gpu_only = True
    default_quant = "BF16"
    check_kv_types = ("f16", "fp8")
    weight_ladder = ("BF16", "FP8", "AWQ")  # safetensors BF16, FP8, AWQ 4-bit
    kv_ladder = ("f16", "fp8")
    mla_layout = "latent"
    # Mamba / linear-attention states in the model's dtype (mamba_cache_dtype / mamba_ssm_cache_dtype "auto")
    state_element_bytes = 2
    context_help = "max_model_len: per sequence"
    log_names = ("vllm",)
    log_reports = "kv_budget"

    @staticmethod
    def index_row_bytes(dim: int) -> int:
        return dim + dim // INDEXER_QUANT_BLOCK * INDEXER_SCALE_BYTES

    def check_kv_pair(self, k, v) -> None:
        for t in (k, v):
            if t.name not in KV_TYPES:
                raise UsageError(f"vLLM caches KV as {', '.join(KV_TYPES)} (got '{t.name}'); use --engine llama.cpp")
        if k.name != v.name:
            raise UsageError("vLLM uses one KV type for K and V (--kv-type)")

    def allocation(self, settings: EngineSettings) -> Allocation:
        return Allocation(BLOCK_TOKENS, pooled=False)

    def breakpoints(self, job: Job) -> set[int]:
        return super().breakpoints(job) | {MIN_PROFILE_TOKENS}

    def headroom_bytes(self, settings: EngineSettings) -> int:
        return 0  # the budget is gpu_memory_utilization x total instead

    # ---------------------------------------------------------------- deployment and placement

    def deployment(self, job: Job, machine: Machine, context: int) -> Deployment:
        m, s = job.model, job.settings
        n = len(machine.gpus)
        if n <= 1:
            return Deployment(self.name, sequences=s.parallel, context_per_sequence=context)
        tp = largest_tp(n, lambda d: valid_tp(m, d) and n // d <= m.layers)
        why = ""
        if tp < n:
            heads = f"{m.heads} attention heads" + (f" / {m.kv_heads} KV heads" if m.attention != "mla" else "")
            why = (f"vLLM: {n} GPUs as tensor parallel {tp} x {n // tp} pipeline stages "
                   f"(tensor parallel {n} does not divide {heads})")
        return Deployment(self.name, tp=tp, pp=n // tp, sequences=s.parallel, context_per_sequence=context, why=why)

    def _uses(self, job: Job, d: Deployment, machine: Machine, context: int):
        m, s, w = job.model, job.settings, job.weights
        cells = job.alloc.cells(context, s.parallel)
        per_seq_cells = job.alloc.cells(context, 1)
        stages = stage_layers(m.layers, d.pp)
        act = activation_bytes(m, context) // d.tp
        uses, max_seqs = [], None
        for si, layers in enumerate(stages):
            wb = sum(w.layer_bytes[i] for i in layers)
            if si == 0:
                wb += w.token_embd_bytes  # vocab-parallel embedding on the first stage
            if si == len(stages) - 1:
                wb += w.output_bytes  # the LM head on the last
            wb //= d.tp
            kvb = job.cache.total_for(layers, cells, s.parallel, job.alloc, d.tp)
            per_seq = max(1, job.cache.total_for(layers, per_seq_cells, 1, job.alloc, d.tp))
            for r in range(d.tp):
                index = si * d.tp + r
                dev = machine.gpus[index]
                total = dev.memory_total_bytes
                budget = None if total is None else int(total * s.gpu_memory_utilization)
                uses.append(DeviceUse(dev.name, len(layers), wb, kvb, act, NON_TORCH_BYTES, budget, device_index=index,
                                      stage=si, compute_share=len(layers) / m.layers / d.tp))
                if budget is not None:
                    seqs = max(0, (budget - wb - act - NON_TORCH_BYTES) // per_seq)
                    max_seqs = seqs if max_seqs is None else min(max_seqs, seqs)
        return uses, max_seqs

    def place(self, job: Job, deployment: Deployment, machine: Machine, context: int) -> Placement:
        gpus = machine.gpus
        if not gpus or any(g.kind != "gpu" for g in gpus):
            return Placement("none", (), 0, False)
        uses, max_seqs = self._uses(job, deployment, machine, context)
        notes = []
        fits = verdict(uses)
        if fits is None:  # a GPU whose memory cannot be read holds nothing, so its share has nowhere to go
            fits = False
            notes.append("a GPU's memory could not be read: it holds nothing, so its share does not fit")
        allreduce = None
        if deployment.tp > 1:
            allreduce = AllReduce(deployment.tp, ALLREDUCES_PER_LAYER, job.model.hidden * ACTIVATION_BYTES)
        return Placement("gpu" if fits else "none", tuple(uses), job.model.layers + 1, fits, allreduce, max_seqs,
                         tuple(notes))

    def gpu_totals(self, job: Job, machine: Machine, context: int) -> list[tuple[int, int | None]]:
        if not machine.gpus or any(g.kind != "gpu" for g in machine.gpus):
            return []
        uses, _ = self._uses(job, self.deployment(job, machine, context), machine, context)
        return [(u.total_bytes, u.usable_bytes) for u in uses]

    def memory_terms(self, job: Job, placement: Placement, context: int) -> dict:
        cells = job.alloc.cells(context, job.settings.parallel)
        k, v = job.cache.split_bytes(cells, job.settings.parallel, job.alloc)
        compute = sum(u.compute_bytes for u in placement.devices) or activation_bytes(job.model, context)
        return {"cells": cells, "kv_bytes": k + v, "kv_k_bytes": k, "kv_v_bytes": v, "compute_bytes": compute,
                "host_compute_bytes": 0, "overhead_bytes": sum(u.overhead_bytes for u in placement.devices)
                or NON_TORCH_BYTES}

    # ---------------------------------------------------------------- words

    def notes(self, job: Job, deployment: Deployment, placement: Placement, context: int, machine: Machine) -> list[str]:
        notes = []
        if not machine.gpus:
            notes.append("vLLM needs a GPU")
        if deployment.why:
            notes.append(deployment.why)
        notes += placement.notes
        util = job.settings.gpu_memory_utilization
        for dev in machine.gpus:
            if dev.memory_free_bytes is not None and dev.memory_total_bytes:
                if dev.memory_free_bytes < dev.memory_total_bytes * util:
                    notes.append(f"{dev.name}: only {dev.memory_free_bytes / GIB:.1f} GiB free, below "
                                 "gpu_memory_utilization x total; vLLM would refuse to start")
        return notes

    def summary_line(self, est: Estimate) -> str:
        d = est.deployment
        layout = f", {d.label}" if d is not None and d.label else ""
        return (f"Engine vLLM{layout}, gpu_memory_utilization {est.settings.gpu_memory_utilization:g},"
                f" {est.parallel} sequence(s) per request set")

    def explain_lines(self, e: Estimate) -> list[str]:
        d = e.deployment
        tp = d.tp if d else 1
        return [
            f"  KV       = kv_bytes_per_token x cells = {e.kv_bytes_per_token} x {e.kv_cells}"
            f" (context x sequences, 16-token blocks) = {e.kv_bytes} ({fmt_mib(e.kv_bytes)})",
            f"  per GPU  = tensor parallel {tp}: weights / {tp}, K/V heads / {tp} (replicated when fewer heads than"
            " ranks; an MLA latent is on every rank)" + (f", {d.pp} pipeline stages" if d and d.pp > 1 else ""),
            f"  activation peak = max(context, 2048) tokens x 8 x intermediate = {e.compute_bytes}"
            f" ({fmt_mib(e.compute_bytes)})",
            f"  non-torch memory (CUDA context, NCCL) = {e.overhead_bytes} ({fmt_mib(e.overhead_bytes)})",
            f"  fits when weights + activation + non-torch + KV <= {e.settings.gpu_memory_utilization:g} x total memory on"
            " every GPU",
        ]


ENGINE = Vllm()
