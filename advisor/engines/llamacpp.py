"""llama.cpp: a layer split over the GPUs, the rest of the layers in host RAM, one compute buffer per GPU.

- `-c` is the total KV size over all `--parallel` slots (one pool of cells), padded to 256 cells with flash
  attention, 32 without; a sliding-window layer keeps n_swa x slots + n_ubatch cells.
- Layers split across GPUs in proportion to their memory (n_layer + 1 units, the output layer last); token
  embeddings stay in host RAM; what does not fit the GPUs runs from RAM (-ngl).
- Compute buffer per GPU: the larger of the attention phase and the logits phase; a host buffer for the KQ mask.
- A quantized V cache needs flash attention; there is no fp8 cache.
- MLA: mainline keeps a V latent beside the K latent ("latent+v").
"""

from __future__ import annotations

from bisect import bisect_left
from functools import lru_cache

from advisor.core.cache import Allocation
from advisor.core.deployment import HOST, Deployment, DeviceUse, Offload, Placement, verdict
from advisor.core.hardware import Machine
from advisor.core.memory import (CPU_MOE_ALL_LAYERS, CUDA_RUNTIME_BYTES, EngineSettings, Estimate, gpu_usable_bytes,
                                 host_usable_bytes)
from advisor.core.model import ModelProfile
from advisor.core.record import record, replace  # replace: dataclasses.replace, faster for records
from advisor.core.units import GIB, fmt_gib, fmt_mib
from advisor.engines.base import Engine, Job
from advisor.errors import UsageError

# llama.cpp pads n_ctx (and each slot's n_ctx_seq) to 256 cells, with or without flash attention
# (src/llama-context.cpp:288 `cparams.n_ctx = GGML_PAD(cparams.n_ctx, 256)` at 749f688f; the 2024 builds of the
# calibration logs padded to 256 with flash attention and 32 without, which no logged context tells apart).
PAD_CELLS = 256
# f32 activations in the compute graph; f16 for the K/V views and the flash-attention mask.
F32_BYTES = 4
F16_BYTES = 2
# Live activation rows of n_ubatch x n_embd f32 beside the attention scores (residual, norm, Q, attn out):
# fitted so that Llama-3-8B at 8192 (560.00 MiB) and Mistral-7B at 32000 (2094.50 MiB) are exact
# (calibration/memory_logs.csv A01, A14).
ATTN_PHASE_EMBD_ROWS = 4
# The logits phase keeps the output logits and two n_embd rows per token (A04, A26, A27: 258.5-266.5 MiB).
LOGITS_PHASE_EMBD_ROWS = 2
# The cache types llama.cpp does not have (common/arg.cpp kv_cache_types): fp8 is vLLM's.
NO_KV_TYPES = ("fp8",)


def compute_buffer_bytes(model: ModelProfile, cells: int, settings: EngineSettings) -> int:
    """llama.cpp's per-GPU compute buffer: the larger of the attention phase and the logits phase.

    Without flash attention the attention phase holds the f32 scores n_ctx x n_ubatch x n_head, and an
    f16 copy of V; with it only the f16 mask. Calibrated on calibration/memory_logs.csv (A01, A04, A14,
    A26, A27: all within 4%).
    """
    ub, m = settings.n_ubatch, model
    rows = ATTN_PHASE_EMBD_ROWS * ub * m.hidden * F32_BYTES
    if settings.flash_attn:
        attention = cells * ub * F16_BYTES + rows
    else:
        v_dim = m.kv_lora_rank if m.attention == "mla" else m.kv_heads * m.head_dim
        attention = cells * ub * m.heads * F32_BYTES + cells * v_dim * F16_BYTES + rows
    logits = ub * (m.vocab + LOGITS_PHASE_EMBD_ROWS * m.hidden) * F32_BYTES
    return max(attention, logits)


def output_buffer_bytes(model: ModelProfile, settings: EngineSettings) -> int:
    """llama.cpp's host "output buffer": f32 logits for n_vocab x max(n_outputs, n_seq_max) rows, reserved at context
    creation with n_outputs = n_seq_max (src/llama-context.cpp llama_context::output_reserve@0c1e5709; no embeddings
    buffer unless asked). Measured on this CPU (tests/data/llamacpp_cpu): 0.49 MiB for 128256 x 1, 4.00 MiB for
    262208 x 4 slots."""
    return model.vocab * settings.parallel * F32_BYTES


def host_compute_bytes(model: ModelProfile, cells: int, settings: EngineSettings) -> int:
    """llama.cpp's CUDA_Host/CPU compute buffer: the f32 KQ mask and the input embeddings.
    Reproduces A01 (24.01 MiB), A04 (9.01), A14 (70.51), A26 (10.01) and A27 (12.01) to 0.01 MiB."""
    return cells * settings.n_ubatch * F32_BYTES + settings.n_ubatch * model.hidden * F32_BYTES


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


@lru_cache(maxsize=4096)
def _layer_split(n_layers: int, n_gpu_layers: int, weights_of_gpus: tuple[float, ...]) -> tuple[tuple[int, ...], ...]:
    """`layer_split`, remembered: a placement search asks for the same few splits many times."""
    return tuple(tuple(units) for units in layer_split(n_layers, n_gpu_layers, list(weights_of_gpus)))


EXPERT_TENSORS = ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps")


def cpu_expert_layers(job: Job, settings: EngineSettings) -> frozenset:
    """The MoE layers whose routed experts stay in RAM: the first --n-cpu-moe N (llama.cpp common/arg.cpp: "keep
    the MoE weights of the first N layers in the CPU") and those an -ot PATTERN=CPU regex matches
    (blk.N.ffn_{gate,up,down}_exps.weight, searched as llama.cpp's std::regex_search does)."""
    import re

    moe = [i for i in range(job.model.layers) if job.weights.expert_layer_bytes[i]]
    chosen = {i for i in moe if i < settings.cpu_moe_first}
    for pattern in settings.cpu_moe_patterns:
        regex = re.compile(pattern)
        chosen |= {i for i in moe if any(regex.search(f"blk.{i}.{t}.weight") for t in EXPERT_TENSORS)}
    return frozenset(chosen)


def offload_problem(job: Job, settings: EngineSettings) -> str | None:
    """Why --cpu-moe / --n-cpu-moe N / -ot PATTERN=CPU cannot apply to this model: it has no routed experts, N is
    more than its layers, or a pattern matches none of its expert tensors (llama.cpp itself would load the model
    as if the option were not given)."""
    if settings.offload != "experts":
        return None
    m = job.model
    moe = [i for i in range(m.layers) if job.weights.expert_layer_bytes[i]]
    if not moe:
        return (f"{m.id} has no routed experts to keep in RAM: --cpu-moe, --n-cpu-moe and --override-tensor apply "
                "to MoE models (--offload layers moves whole layers)")
    if m.layers < settings.cpu_moe_first < CPU_MOE_ALL_LAYERS:
        return f"--n-cpu-moe {settings.cpu_moe_first}: {m.id} has {m.layers} layers"
    import re

    for pattern in settings.cpu_moe_patterns:
        regex = re.compile(pattern)
        if not any(regex.search(f"blk.{i}.{t}.weight") for i in moe for t in EXPERT_TENSORS):
            return (f"--override-tensor {pattern}=CPU: matches no routed-expert tensor of {m.id} (MoE layers "
                    f"{moe[0]}-{moe[-1]})")
    return None


def parse_override(text: str) -> str:
    """An -ot/--override-tensor PATTERN=CPU as llama.cpp takes it; only routed-expert patterns to the CPU are
    modelled (the common use). Raises UsageError otherwise."""
    import re

    pattern, sep, device = text.rpartition("=")
    if not sep or not pattern:
        raise UsageError(f"--override-tensor takes PATTERN=DEVICE, got '{text}'")
    if device.upper() != "CPU":
        raise UsageError(f"--override-tensor {text}: only =CPU is modelled (experts kept in RAM)")
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"--override-tensor {text}: not a regular expression ({exc})") from None
    if not any(regex.search(f"blk.{i}.{t}.weight") for i in range(MAX_PATTERN_LAYERS) for t in EXPERT_TENSORS):
        raise UsageError(f"--override-tensor {text}: matches no routed-expert tensor (blk.N.ffn_*_exps); only "
                         "expert offload is modelled")
    return pattern


# patterns are checked against this many layers' expert tensor names (more than any model has)
MAX_PATTERN_LAYERS = 256


# ---------------------------------------------------------------- CPU_REPACK: the CPU backend's interleaved copy
# On a CPU-only machine llama.cpp loads every weight it can into the CPU backend's extra buffer type CPU_REPACK
# (src/llama-model.cpp make_cpu_buft_list: the extra buffer types come before plain CPU; with a GPU the GPU's host
# buffer type comes first, so this rule is applied to CPU-only machines only). A tensor goes there when the op that
# uses it is a MUL_MAT of a 2-D weight or a MUL_MAT_ID of a 3-D expert tensor
# (ggml/src/ggml-cpu/repack.cpp extra_buffer_type::supports_op@0c1e5709) and its type has a repacked layout for the
# CPU's instruction set with ne[1] a multiple of the interleave (repack.cpp ggml_repack_get_optimal_repack_type). The
# repacked copy is as large as the tensor (get_alloc_size defaults to ggml_nbytes) and sits beside the file's
# memory map, which still spans every tensor (measured: CPU_Mapped = all tensor data, CPU_REPACK = the repacked
# ones; tests/data/llamacpp_cpu). token_embd is read by GET_ROWS, so it is never repacked (nor is a tied output,
# which is the same tensor).
# What that costs in RAM: the copy is written once at load, from the mapped pages of the same tensors, which are
# then never read again. They stay in the page cache (RSS = mapped + repack when memory is plentiful: measured,
# tests/data/llamacpp_cpu/logs/llama8b_rss_samples.log) but are clean file pages the kernel drops under pressure, and
# llama.cpp's own accounting (common_memory_breakdown_print, which its --fit plans with) counts the repacked copy in
# place of them. So the host's memory is the file's weights as before; the copy is reported, not added (counting both
# would refuse a 70B Q4_K_M on 64 GB, which runs).
# type -> the multiple of ne[1] its layout needs; x86 with AVX2 (ggml_cpu_has_avx2):
REPACK_X86_AVX2 = {"Q4_0": 8, "Q4_K": 8, "IQ4_NL": 8, "MXFP4": 8}
REPACK_X86_AVX512 = {"Q2_K": 8}  # with AVX-512F as well (ggml_cpu_has_avx512: q2_K_8x8_q8_K)
# ARM with NEON dot products (ggml_cpu_has_dotprod; i8mm changes the layout, not the set of types)
REPACK_ARM_DOTPROD = {"Q4_0": 4, "Q4_K": 8, "Q5_K": 8, "Q6_K": 8, "IQ4_NL": 4, "MXFP4": 4, "Q8_0": 4, "Q1_0": 4}
X86_AVX2_FLAGS = ("avx2",)
X86_AVX512_FLAGS = ("avx512f",)
ARM_DOTPROD_FLAGS = ("dotprod", "asimddp")  # /proc/cpuinfo spells it asimddp
# A CPU whose instruction set is not known (a simulated machine without --cpu-isa): today's x86-64 desktops and
# servers all have AVX2, so it is assumed, and said.
ASSUMED_CPU_FLAGS = ("avx2",)
# Weight tensors that are not MUL_MAT / MUL_MAT_ID weights: looked up by row (token_embd, and the tied output, which
# is that tensor), or 3-D weights of a plain MUL_MAT (deepseek2's attn_k_b / attn_v_b: repack.cpp supports_op
# takes only 2-D weights for MUL_MAT).
NOT_REPACKED = ("token_embd", "per_layer_token_embd", "output (tied", "attn_k_b", "attn_v_b")


def repack_types(flags) -> dict[str, int]:
    """The weight types llama.cpp's CPU backend repacks on a CPU with these ISA flags, each with the multiple of
    ne[1] it needs (repack.cpp ggml_repack_get_optimal_repack_type@0c1e5709)."""
    seen = {f.lower() for f in flags}
    if seen & set(X86_AVX2_FLAGS + X86_AVX512_FLAGS):  # every AVX-512 CPU has AVX2
        out = dict(REPACK_X86_AVX2)
        if seen & set(X86_AVX512_FLAGS):
            out.update(REPACK_X86_AVX512)
        return out
    if seen & set(ARM_DOTPROD_FLAGS):
        return dict(REPACK_ARM_DOTPROD)
    return {}


def machine_cpu_flags(machine: Machine) -> tuple[tuple[str, ...], bool]:
    """(the CPU's ISA flags, whether they are known) from Machine.cpu (detected or given), else ASSUMED_CPU_FLAGS."""
    cpu = getattr(machine, "cpu", None)
    if cpu is not None:
        flags = tuple(getattr(cpu, "flags", ()) or ())
        isa = getattr(cpu, "isa", None)
        if isa is not None:
            flags += tuple(getattr(isa, "requires", ()) or ())
        if flags:
            return flags, True
    return ASSUMED_CPU_FLAGS, False


def _repack_candidate(name: str) -> bool:
    base = name.split(".", 2)[2] if name.startswith("blk.") else name
    return not any(base.startswith(n) for n in NOT_REPACKED)


@lru_cache(maxsize=256)
def _recipe_matmul_bytes(model: ModelProfile, recipe, quants) -> tuple[tuple[str, int, int], ...]:
    """(type, ne[1], bytes) of each weight a MUL_MAT / MUL_MAT_ID reads, of a recipe's tensors
    (core/tensors.tensor_list). A tensor's rows are ne[1] (x experts for an expert tensor)."""
    from advisor.core.tensors import tensor_list

    rows = []
    for t in tensor_list(model, recipe, quants):
        if not _repack_candidate(t.name) or t.rows <= 1:
            continue
        ne1 = t.rows // model.experts if "_exps" in t.name and model.experts else t.rows
        rows.append((t.type.upper(), ne1, t.nbytes))
    return tuple(rows)


@record
class LlamaJob(Job):
    """A Job with what llama.cpp's CPU-side rules need: the recipe the weights came from (None: a GGUF file's)."""

    recipe: object = None
    quants: object = None

    def matmul_weights(self) -> tuple[tuple[str, int, int], ...]:
        """(ggml type, ne[1], bytes) of every MUL_MAT / MUL_MAT_ID weight (a GGUF file's from its header)."""
        own = getattr(self.weights, "matmul_weights", None)
        if own is not None:
            return own
        return _recipe_matmul_bytes(self.model, self.recipe, self.quants) if self.recipe is not None else ()

    def tied_copy_bytes(self) -> int:
        """The output layer a tied embedding becomes, as the layout counts it (llama.cpp copies it only to a GPU)."""
        if not self.model.tied_embeddings:
            return 0
        own = getattr(self.weights, "tied_copy_bytes", None)
        if own is not None:
            return own
        from advisor.core.tensors import tied_output_bytes

        return tied_output_bytes(self.model, self.recipe, self.quants) if self.recipe is not None else 0


def repacked_bytes(matmul_weights, flags) -> int:
    """Bytes of llama.cpp's CPU_REPACK buffer: the (type, ne[1], bytes) weights a CPU with these flags repacks."""
    types = repack_types(flags)
    return sum(n for t, ne1, n in matmul_weights if t in types and ne1 % types[t] == 0)


def repack_bytes(job: Job, flags) -> int:
    """Bytes of llama.cpp's CPU_REPACK buffer for this model on a CPU with these flags (CPU-only machines)."""
    return repacked_bytes(job.matmul_weights(), flags) if isinstance(job, LlamaJob) else 0


# GPU loads remembered per engine (LlamaCpp._gpu_loads): one placement with its max-context solve asks for a few
# dozen; a search moves from machine to machine, so only the latest matter
LOADS_KEPT = 512


class _Remembered:
    """Recent results keyed by the identity of objects that are costly to hash (a job, a machine) and by plain
    values: each entry keeps its objects, so an id is never taken for another object's; LOADS_KEPT entries at most
    (a search moves on: the oldest do not matter)."""

    def __init__(self):
        self._entries: dict = {}

    def get(self, first, second, key: tuple):
        """The value kept for (first, second, key), or None. `second` may be None."""
        hit = self._entries.get((id(first), id(second), key))
        if hit is not None and hit[0] is first and hit[1] is second:
            return hit[2]
        return None

    def put(self, first, second, key: tuple, value):
        if len(self._entries) >= LOADS_KEPT:
            self._entries.clear()
        self._entries[(id(first), id(second), key)] = (first, second, value)
        return value


class LlamaCpp(Engine):
    name = "llama.cpp"
    label = "llama.cpp"

    def __init__(self):
        self._loads = _Remembered()  # (job, machine, (cells, n_gpu_layers)) -> _compute_loads
        self._facts = _Remembered()  # (machine, None, (headroom,)) -> _gpu_facts
        self._repacks = _Remembered()  # (job, None, (CPU flags,)) -> repack_bytes

    loads_gguf = True
    default_quant = "Q4_K_M"
    check_kv_types = ("f16", "q8_0", "q4_0")
    # llama-quantize's common file types from F16 down to Q2_K (profiles/quants.toml); --cache-type-k/-v
    weight_ladder = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K")
    kv_ladder = ("f16", "q8_0", "q4_0")
    mla_layout = "latent"
    # recurrent states (r and s tensors) are f32 whatever the KV cache type (src/llama-memory-recurrent.cpp)
    state_element_bytes = 4
    context_help = "-c: total over the slots"
    log_names = ("llama.cpp", "ik_llama.cpp")
    # Engine.offload_min_batch: the scheduler runs an op whose weight is in a host buffer on the first GPU that wants it
    # (ggml/src/ggml-backend.cpp@0054c013 ggml_backend_sched_backend_id_from_cur; on unless --no-op-offload, common/
    # common.h no_op_offload = false; Ollama's llm/llama_server.go@fb307609 does not pass it); CUDA/ROCm wants it when
    # the op's batch, ne[1] of a MUL_MAT and ne[2] (the ubatch's tokens) of a MoE MUL_MAT_ID, is at least
    # GGML_OP_OFFLOAD_MIN_BATCH, 32 unless that variable is set (ggml/src/ggml-cuda/ggml-cuda.cu@00108827
    # get_op_batch_size, ggml_backend_cuda_device_offload_op, ggml_backend_cuda_reg). Each split then copies its inputs,
    # only the experts the ubatch routes to, and computes (ggml-backend.cpp ggml_backend_sched_compute_splits).
    offload_min_batch = 32

    # ---------------------------------------------------------------- settings

    def check_kv_pair(self, k, v) -> None:
        if k.name in NO_KV_TYPES or v.name in NO_KV_TYPES:
            raise UsageError("llama.cpp has no fp8 KV cache; use q8_0 (or --engine vllm)")

    def check_settings(self, settings, k, v) -> None:
        if v.block_elements > 1 and not settings.flash_attn:
            raise UsageError(
                f"llama.cpp needs flash attention for a quantized V cache ({v.name}); drop --no-flash-attn")
        super().check_settings(settings, k, v)

    def allocation(self, settings: EngineSettings) -> Allocation:
        # one cache stream per slot (n_ctx_seq cells each) unless --kv-unified; a sliding-window cache keeps
        # n_swa (x slots when unified) + n_ubatch cells (src/llama-kv-cache-iswa.cpp:73)
        return Allocation(PAD_CELLS, pooled=settings.kv_unified or settings.parallel == 1,
                          window_extra_tokens=settings.n_ubatch)

    def prepare(self, model, quant, kv, settings, quants, weights=None) -> LlamaJob:
        job = super().prepare(model, quant, kv, settings, quants, weights)
        recipe = quants.recipe(quant) if weights is None else None
        return LlamaJob(job.model, job.weights, job.cache, job.settings, job.alloc, recipe, quants)

    def mla_layout_for(self, settings: EngineSettings) -> str:
        # V-less MLA cache since ggml-org/llama.cpp#19067 (2026-01-25, src/llama-kv-cache.cpp `has_v = !is_mla`);
        # builds from #12801 (2025-04) until then also stored a 512-wide V latent
        return "latent+v" if settings.mla_v_cache else "latent"

    # ---------------------------------------------------------------- contexts: -c is shared by the slots

    def context_value(self, per_sequence: int, settings: EngineSettings) -> int:
        return per_sequence * settings.parallel

    def per_sequence(self, context: int, settings: EngineSettings) -> int:
        return context // settings.parallel

    def cells(self, job: Job, context: int) -> int:
        if job.alloc.pooled:
            return job.alloc.pad(context)
        n = job.settings.parallel  # n_ctx_seq = pad256(n_ctx / n_seq) cells in each slot's stream
        return job.alloc.pad(context // n) * n

    def _context_of_cells(self, job: Job, cells: int) -> int:
        return cells

    def breakpoints(self, job: Job) -> set[int]:
        """Windows filling up, and where the compute buffer's attention phase overtakes its logits phase."""
        points = super().breakpoints(job)
        m, s = job.model, job.settings
        at_zero = compute_buffer_bytes(m, 0, s)  # the logits phase, or the attention phase's constant
        per_cell = compute_buffer_bytes(m, 1, s) - at_zero
        logits = s.n_ubatch * (m.vocab + LOGITS_PHASE_EMBD_ROWS * m.hidden) * F32_BYTES
        rows = ATTN_PHASE_EMBD_ROWS * s.n_ubatch * m.hidden * F32_BYTES
        if not per_cell:
            # while the logits phase dominates the slope is 0: find where attention overtakes it
            per_cell = compute_buffer_bytes(m, 10**9, s) // 10**9 or 1
        points.add(max(1, (logits - rows) // per_cell))
        return points

    # ---------------------------------------------------------------- placement

    def deployment(self, job: Job, machine: Machine, context: int) -> Deployment:
        """A layer split: every GPU that holds layers is a pipeline stage of its own (they take turns)."""
        s = job.settings
        return Deployment(self.name, tp=1, pp=max(1, len(machine.gpus)), sequences=s.parallel,
                          context_per_sequence=self.per_sequence(context, s))

    def _gpu_loads(self, job: Job, cells: int, machine: Machine, n_gpu_layers: int) -> tuple[tuple, ...]:
        """Per GPU, (units, weights, KV, compute, overhead, usable bytes) with the last `n_gpu_layers` units on the
        GPUs: the numbers `_gpu_uses` makes DeviceUses of, without making them. A placement asks for the same ones
        several times (the placement, the expert offload, the max-context solve): the last few are remembered, by
        the identity of the job and the machine (each entry keeps both, so an id is never another object's)."""
        loads = self._loads.get(job, machine, (cells, n_gpu_layers))
        if loads is None:
            loads = self._loads.put(job, machine, (cells, n_gpu_layers),
                                    self._compute_loads(job, cells, machine, n_gpu_layers))
        return loads

    def _compute_loads(self, job: Job, cells: int, machine: Machine, n_gpu_layers: int) -> tuple[tuple, ...]:
        m, s, w = job.model, job.settings, job.weights
        known, split_weights, usable, cuda = self._gpu_facts(machine, s.headroom_bytes)
        split_known = (_layer_split(m.layers, n_gpu_layers, split_weights) if known and n_gpu_layers
                       else [() for _ in known])
        units_of = dict(zip(known, split_known))
        compute = compute_buffer_bytes(m, cells, s)
        kv_span = job.cache.spans_at(cells, s.parallel, job.alloc)
        loads = []
        for i in range(len(usable)):
            units = units_of.get(i)
            if not units:
                loads.append((0, 0, 0, 0, 0, usable[i]))
                continue
            # a device's units are contiguous: layers start..stop-1, and the output layer when unit n_layer is its
            start, last = units[0], units[-1]
            stop = min(last + 1, m.layers)
            wb = w.span_bytes(start, stop) + (w.output_bytes if last == m.layers else 0)
            loads.append((len(units), wb, kv_span(start, stop), compute, CUDA_RUNTIME_BYTES if cuda[i] else 0,
                          usable[i]))
        return tuple(loads)

    def _gpu_facts(self, machine: Machine, headroom_bytes: int) -> tuple:
        """What the layer split reads of the GPUs, once per machine: the indices whose memory is known (unknown
        memory holds nothing), their split weights, each GPU's usable bytes, whether each runs CUDA."""
        facts = self._facts.get(machine, None, (headroom_bytes,))
        if facts is not None:
            return facts
        gpus = machine.gpus
        known = tuple(i for i, d in enumerate(gpus) if d.usable_bytes is not None)
        return self._facts.put(machine, None, (headroom_bytes,), (
            known, tuple(float(gpus[i].usable_bytes or 1) for i in known),
            tuple(gpu_usable_bytes(d, headroom_bytes) for d in gpus), tuple(d.kind == "gpu" for d in gpus)))

    def _gpu_uses(self, job: Job, cells: int, machine: Machine, n_gpu_layers: int) -> list[DeviceUse]:
        return [DeviceUse(dev.name, units, wb, kvb, compute, overhead, usable, device_index=i, stage=i)
                for i, (dev, (units, wb, kvb, compute, overhead, usable))
                in enumerate(zip(machine.gpus, self._gpu_loads(job, cells, machine, n_gpu_layers)))]

    def _host_use(self, job: Job, cells: int, n_gpu_layers: int, machine: Machine, gpu_uses) -> DeviceUse:
        m, s, w = job.model, job.settings, job.weights
        n_cpu = min(m.layers, m.layers + 1 - n_gpu_layers) if n_gpu_layers <= m.layers else 0  # layers 0..n_cpu-1
        wb = w.token_embd_bytes + w.span_bytes(0, n_cpu)
        read = None  # its share of the model's reads (speed works it out)
        if n_gpu_layers == 0:
            wb += w.output_bytes
            shared = self._tied_copy(job)
            if shared:
                # the output layer in RAM: a tied embedding is token_embd itself there (TENSOR_DUPLICATED makes a copy
                # only in another buffer; measured: CPU_Mapped = the file's tensor data, tests/data/llamacpp_cpu), so
                # it is held once; decode still reads it whole for the logits, beside the layers' reads
                wb -= shared
                read = w.active_span_bytes(0, n_cpu) + w.output_active_bytes
        kvb = job.cache.span_bytes(0, n_cpu, cells, s.parallel, job.alloc)
        compute = self._host_buffers(job, cells, bool(gpu_uses))
        if not machine.gpus or n_gpu_layers == 0:
            compute += compute_buffer_bytes(m, cells, s)  # the CPU backend runs the whole graph
        return DeviceUse("host RAM", n_cpu, wb, kvb, compute, 0, host_usable_bytes(machine, gpu_uses),
                         host=True, device_index=HOST, stage=len(machine.gpus), read_bytes=read)

    @staticmethod
    def _tied_copy(job: Job) -> int:
        return job.tied_copy_bytes() if isinstance(job, LlamaJob) else 0

    @staticmethod
    def _host_buffers(job: Job, cells: int, with_gpus: bool) -> int:
        """Host buffers beside the weights and the cache. Beside GPUs: the CUDA_Host compute buffer (KQ mask, inputs;
        its output buffer, n_vocab x slots x 4 bytes, is left out: under 1 MiB at one slot, and the GPU calibration
        logs do not show it). CPU-only: the output buffer; the mask and inputs are in the one CPU compute buffer."""
        if with_gpus:
            return host_compute_bytes(job.model, cells, job.settings)
        return output_buffer_bytes(job.model, job.settings)

    def offload_problem(self, job: Job) -> str | None:
        return offload_problem(job, job.settings)

    def _cpu_repack(self, job: Job, machine: Machine) -> int:
        """The CPU_REPACK copy on a CPU-only machine (see REPACK_X86_AVX2); 0 with a GPU. Not added to the host's
        memory: it takes the place of the file's pages of those tensors (see the notes above REPACK_X86_AVX2).
        Remembered per job and CPU (a search bisects CPU-only contexts; the sum runs over every matrix)."""
        if machine.gpus:
            return 0
        flags = machine_cpu_flags(machine)[0]
        value = self._repacks.get(job, None, (flags,))
        return value if value is not None else self._repacks.put(job, None, (flags,), repack_bytes(job, flags))

    @staticmethod
    def _gpus_fit(uses) -> bool:
        return all(u.fits for u in uses if u.layers)

    def _expert_uses(self, job: Job, cells: int, machine: Machine, cpu_experts: frozenset,
                     all_layers: list[DeviceUse] | None = None) -> list[DeviceUse]:
        """Every layer on the GPUs but the routed experts of `cpu_experts` layers, which stay in RAM (llama.cpp
        --n-cpu-moe / -ot exps=CPU): the GPU keeps attention, norms, router, shared experts and the whole cache.
        `all_layers`: `_gpu_uses` with every layer on the GPUs at these cells, when the caller has it already."""
        uses = all_layers if all_layers is not None else self._gpu_uses(job, cells, machine, job.model.layers + 1)
        w, m = job.weights, job.model
        held, read_of = w.expert_layer_bytes, w.expert_layer_active_bytes
        out = []
        start = 0  # the first unit of this GPU: the units of the GPUs before it
        for u in uses:
            if not u.layers:
                out.append(u)
                continue
            stop = min(start + u.layers, m.layers)
            mine = [i for i in cpu_experts if start <= i < stop]
            moved = sum(held[i] for i in mine)
            read = w.active_span_bytes(start, stop) - sum(read_of[i] for i in mine)
            if stop < start + u.layers:  # holds the output layer
                read += w.output_active_bytes
            out.append(u.but(weights_bytes=u.weights_bytes - moved, read_bytes=read))
            start += u.layers
        return out

    def _expert_host(self, job: Job, cells: int, machine: Machine, cpu_experts: frozenset, gpu_uses) -> DeviceUse:
        w, m, s = job.weights, job.model, job.settings
        experts = sum(w.expert_layer_bytes[i] for i in cpu_experts)
        read = sum(w.expert_layer_active_bytes[i] for i in cpu_experts)
        compute = self._host_buffers(job, cells, True)
        return DeviceUse("host RAM", 0, w.token_embd_bytes + experts, 0, compute, 0,
                         host_usable_bytes(machine, gpu_uses), host=True, device_index=HOST, stage=len(machine.gpus),
                         read_bytes=read, expert_layers=len(cpu_experts))

    @staticmethod
    def _expert_params(job: Job, gpu_uses, cpu_experts: frozenset) -> list[int]:
        """Parameters each GPU, then the host, multiplies by per token in an expert offload: their shares of the
        FLOPs (not of the bytes: the experts are often in fewer bits than attention, MXFP4 beside BF16)."""
        w, m = job.weights, job.model
        out, start = [], 0
        for u in gpu_uses:
            stop = min(start + u.layers, m.layers)
            p = w.active_span_params(start, stop) - sum(w.expert_layer_active_params[i] for i in cpu_experts
                                                        if start <= i < stop)
            if u.layers and stop < start + u.layers:  # holds the output layer
                p += w.output_active_params
            out.append(p if u.layers else 0)
            start += u.layers
        return out + [sum(w.expert_layer_active_params[i] for i in cpu_experts)]

    def _expert_placement(self, job: Job, cells: int, machine: Machine, cpu_experts: frozenset,
                          all_layers: list[DeviceUse] | None = None) -> Placement | None:
        gpu_uses = self._expert_uses(job, cells, machine, cpu_experts, all_layers)
        if not self._gpus_fit(gpu_uses):
            return None
        host = self._expert_host(job, cells, machine, cpu_experts, gpu_uses)
        kind = "gpu+cpu" if host.fits is not False else "none"
        placed = self._placement(kind, gpu_uses, host, job.model.layers + 1,
                                 self._expert_params(job, gpu_uses, cpu_experts))
        return replace(placed, notes=(f"routed experts of {len(cpu_experts)} of {job.model.layers} layers in RAM; "
                                      "attention, shared experts and the cache on the GPU(s)",))

    def _auto_experts(self, job: Job, cells: int, machine: Machine) -> Placement | None:
        """llama.cpp's --fit for a MoE model that does not fit: the experts of the first layers go to RAM, as few
        layers as make the rest fit (more layers' experts in RAM never need more GPU memory: bisect)."""
        m = job.model
        moe = [i for i in range(m.layers) if job.weights.expert_layer_bytes[i]]
        if not moe:
            return None
        all_layers = self._gpu_uses(job, cells, machine, m.layers + 1)  # every layer on the GPUs
        # The first k MoE layers' experts go to RAM; prefix[k] is their bytes. A GPU holding layers start..stop-1
        # (MoE layers a..b-1 of `moe`) sheds prefix[min(k, b)] - prefix[a] of them, which only grows with k, so the
        # least k that makes every GPU fit is the largest of each GPU's least k: solved, not searched.
        prefix = [0]
        for i in moe:
            prefix.append(prefix[-1] + job.weights.expert_layer_bytes[i])
        need, start = 1, 0  # at least one layer's experts: the whole model did not fit
        for u in all_layers:
            if not u.layers:
                continue
            stop = min(start + u.layers, m.layers)
            a, b = bisect_left(moe, start), bisect_left(moe, stop)
            start += u.layers
            if u.usable_bytes is None:
                return None  # a GPU whose memory is unknown fits nothing for sure
            excess = u.total_bytes - u.usable_bytes
            if excess <= 0:
                continue
            if prefix[b] - prefix[a] < excess:
                return None  # even all of its layers' experts in RAM leave it too full
            need = max(need, bisect_left(prefix, prefix[a] + excess))
        return self._expert_placement(job, cells, machine, frozenset(moe[:need]), all_layers)

    def place(self, job: Job, deployment: Deployment, machine: Machine, context: int) -> Placement:
        m = job.model
        cells = self.cells(job, context)
        full = m.layers + 1
        s = job.settings
        if any(d.usable_bytes is not None for d in machine.gpus):  # a GPU whose memory is unknown holds nothing
            if s.offload == "experts" and any(job.weights.expert_layer_bytes):  # a dense model: as auto
                chosen = cpu_expert_layers(job, s)
                placed = self._expert_placement(job, cells, machine, chosen)
                if placed is not None:
                    return placed
                # the GPU share does not fit even so: report it as it is
                gpu_uses = self._expert_uses(job, cells, machine, chosen)
                host = self._expert_host(job, cells, machine, chosen, gpu_uses)
                return replace(self._placement("none", gpu_uses, host, full),
                               notes=("the GPU share does not fit even with these experts in RAM",))
            gpu_uses = self._gpu_uses(job, cells, machine, full)
            host = self._host_use(job, cells, full, machine, gpu_uses)
            if self._gpus_fit(gpu_uses) and any(u.layers for u in gpu_uses) and host.fits is not False:
                return self._placement("gpu", gpu_uses, host, full)
            if s.offload == "auto" and (placed := self._auto_experts(job, cells, machine)) is not None:
                return placed
            # partial offload: the most layers whose GPU share still fits (fewer layers never need more
            # GPU memory, so bisect)
            lo, hi = 0, m.layers  # fits(lo) holds trivially (nothing offloaded), fits(full) does not
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self._gpus_fit(self._gpu_uses(job, cells, machine, mid)):
                    lo = mid
                else:
                    hi = mid - 1
            if lo:
                gpu_uses = self._gpu_uses(job, cells, machine, lo)
                host = self._host_use(job, cells, lo, machine, gpu_uses)
                return self._placement("gpu+cpu" if host.fits is not False else "none", gpu_uses, host, lo)
        gpu_uses = []
        host = self._host_use(job, cells, 0, machine, gpu_uses)
        repack = self._cpu_repack(job, machine)
        if repack:  # the mapped pages of the repacked weights stay beside the copy (see REPACK_X86_AVX2)
            host = host.but(page_cache_bytes=repack)
        return self._placement("cpu" if host.fits is not False else "none", gpu_uses, host, 0)

    def _placement(self, kind: str, gpu_uses, host: DeviceUse, gpu_layers: int,
                   params_read: list[int] | None = None) -> Placement:
        uses = list(gpu_uses) + [host]
        units = sum(u.layers for u in uses) or 1
        uses = [u.but(compute_share=u.layers / units) for u in uses]
        if host.expert_layers:  # expert offload: the host does the active experts' share of the FLOPs
            reads = params_read or [u.read_bytes or 0 for u in uses]
            total = sum(reads) or 1
            uses = [u.but(compute_share=r / total) for u, r in zip(uses, reads)]
        if kind == "gpu":
            # every layer on the GPUs: RAM holds only the token embeddings (mmap-ed, read a row per token) and small
            # buffers, so an unknown RAM size does not make the verdict unknown
            fits = verdict(u for u in uses if not u.host) if host.fits is None else verdict(uses)
        elif kind == "none":
            fits = False
        else:
            fits = verdict(u for u in uses if u.layers or u.host)
        return Placement(kind, tuple(uses), gpu_layers, fits)

    def gpu_totals(self, job: Job, machine: Machine, context: int) -> list[tuple[int, int | None]]:
        if not machine.gpus:
            return []
        loads = self._gpu_loads(job, self.cells(job, context), machine, job.model.layers + 1)
        return [(wb + kvb + compute + overhead, usable) for units, wb, kvb, compute, overhead, usable in loads if units]

    # ---------------------------------------------------------------- words

    def notes(self, job: Job, deployment: Deployment, placement: Placement, context: int, machine: Machine) -> list[str]:
        m, s = job.model, job.settings
        notes = []
        notes += placement.notes
        if placement.kind == "gpu+cpu" and not any(u.expert_layers for u in placement.devices):
            # the output layer is unit n_layer, the first to be offloaded: n of n_layer + 1 units is n - 1 blocks
            blocks = max(0, placement.gpu_layers - 1)
            notes.append(f"{blocks} of {m.layers} layers and the output layer on the GPU(s) (llama.cpp: offloaded "
                         f"{placement.gpu_layers}/{m.layers + 1} layers); the rest run from RAM")
        if s.parallel > 1:
            notes += self._parallel_notes(context, s)
        host = next((u for u in placement.devices if u.host), None)
        shared = self._tied_copy(job)
        if host is not None and shared and placement.gpu_layers == 0:
            notes.append(f"tied embedding: on the CPU the output layer is token_embd itself, held once (the "
                         f"{fmt_gib(shared, 2)} copy a GPU would hold is not made)")
        repack = self._cpu_repack(job, machine) if placement.kind in ("cpu", "none") else 0
        if repack:
            flags, known = machine_cpu_flags(machine)
            rules = repack_types(flags)
            types = "/".join(sorted({t for t, _, n in job.matmul_weights() if t in rules and n}))
            notes.append(f"CPU_REPACK: llama.cpp copies the {types} weights ({fmt_gib(repack, 2)}) into its repacked "
                         "layout; the file's pages of them are read once at load and are page cache the kernel can "
                         f"drop (the process's RSS can show both: {fmt_gib(repack, 2)} more than the total here, "
                         "'resident_bytes' in --json)"
                         + ("" if known else "; CPU assumed to have AVX2 (--cpu-isa names another)"))
        return notes

    def _parallel_notes(self, context: int, settings: EngineSettings) -> list[str]:
        return [f"llama.cpp shares -c {context} among {settings.parallel} slots: {context // settings.parallel} tokens each"]

    def summary_line(self, est: Estimate) -> str:
        fa = "on" if est.flash_attn else "off"
        slots = f", {est.parallel} slots" if est.parallel > 1 else ""
        on_gpu = any(not d.host for d in est.devices)
        headroom = f", {est.headroom_bytes / GIB:.1f} GiB headroom per GPU" if on_gpu else ", CPU only"
        return f"Engine {est.engine}, flash attention {fa}{slots}{headroom}"

    def explain_lines(self, e: Estimate) -> list[str]:
        lines = [f"  token_embd ({fmt_mib(e.token_embd_bytes)}) stays in host RAM; the layers split over the GPUs",
                 f"  KV       = kv_bytes_per_token x cells = {e.kv_bytes_per_token} x {e.kv_cells}"
                 f" (sliding-window layers keep at most window + n_ubatch) = {e.kv_bytes} ({fmt_mib(e.kv_bytes)});"
                 f" K {fmt_mib(e.kv_k_bytes)}, V {fmt_mib(e.kv_v_bytes)}"]
        if e.flash_attn:
            attn = "n_ctx x n_ubatch x 2 (f16 mask) + 4 x n_ubatch x n_embd x 4"
        else:
            attn = "n_ctx x n_ubatch x n_head x 4 (f32 scores) + n_ctx x n_embd_v x 2 + 4 x n_ubatch x n_embd x 4"
        lines.append(f"  compute  = max(attention: {attn}, logits: n_ubatch x (n_vocab + 2 x n_embd) x 4) per GPU"
                     f" = {e.compute_bytes} ({fmt_mib(e.compute_bytes)} in all)")
        gpu = any(not d.host for d in e.devices)
        host = ("n_ctx x n_ubatch x 4 + n_ubatch x n_embd x 4 (CUDA_Host compute)" if gpu else
                "n_vocab x slots x 4 (the output buffer)")
        lines.append(f"  host compute = {host} = {e.host_compute_bytes} ({fmt_mib(e.host_compute_bytes)})")
        lines.append(f"  overhead = CUDA runtime {fmt_mib(CUDA_RUNTIME_BYTES)} per GPU used = {e.overhead_bytes}"
                     f" ({fmt_mib(e.overhead_bytes)})")
        lines.append(f"  total    = weights + KV + compute + host compute + overhead = {e.total_bytes}"
                     f" ({fmt_mib(e.total_bytes)})")
        lines.append(f"  fits on a GPU when its share (layers split by memory, output layer last) <= free memory -"
                     f" headroom ({fmt_gib(e.headroom_bytes, 2)}); max context solved per GPU from these affine terms")
        return lines

    def memory_terms(self, job: Job, placement: Placement, context: int) -> dict:
        """The estimate's machine-wide terms: cells, K/V split, compute buffers (per GPU, and the host's)."""
        cells = self.cells(job, context)
        k, v = job.cache.split_bytes(cells, job.settings.parallel, job.alloc)
        gpu_compute = sum(u.compute_bytes for u in placement.devices if not u.host)
        compute = gpu_compute or compute_buffer_bytes(job.model, cells, job.settings)
        host_buffers = self._host_buffers(job, cells, any(not u.host for u in placement.devices))
        # the weights as placed: every tensor once where it is held (a tied output is token_embd itself on the CPU)
        placed = sum(u.weights_bytes for u in placement.devices)
        return {"cells": cells, "kv_bytes": k + v, "kv_k_bytes": k, "kv_v_bytes": v, "compute_bytes": compute,
                "host_compute_bytes": host_buffers, "weights_bytes": placed}


ENGINE = LlamaCpp()


# llama.cpp's -t default when the CPU's count cannot be read: std::thread::hardware_concurrency() n, used whole up
# to 4 and halved above (common/common.cpp common_cpu_get_num_physical_cores, last lines; commit 0c1e5709).
FALLBACK_WHOLE_UP_TO = 4


def default_threads(physical_cores: int | None, logical_cpus: int | None = None,
                    performance_cores: int | None = None) -> int | None:
    """Threads llama.cpp runs without -t (llama-cli, llama-server, llama-bench alike): common_cpu_get_num_math()
    in common/common.cpp (commit 0c1e5709), which is the physical core count (Linux: distinct
    /sys/devices/system/cpu/cpuN/topology/thread_siblings, over all CPUs, ignoring affinity and cgroup quotas;
    macOS: hw.perflevel0.physicalcpu, the performance cores), the P-cores on a hybrid x86 Linux CPU, and
    hardware_concurrency (halved above 4) when neither can be read."""
    if performance_cores:
        return performance_cores
    if physical_cores:
        return physical_cores
    if logical_cpus:
        return logical_cpus if logical_cpus <= FALLBACK_WHOLE_UP_TO else logical_cpus // 2
    return None
