"""The engine protocol: what every engine module provides, and the pieces they share.

An engine turns (model, weight format, cache types, settings, context, machine) into a Deployment and a Placement:

    prepare(...)            -> Job: validated settings, the per-layer cache layout, the weights' tensor groups
    deployment(job, m, ctx) -> Deployment: tp / pp / dp / ep, sequences, context per sequence, offload
    place(job, d, m, ctx)   -> Placement: per device its layers, weights, cache, buffers, usable memory
    gpu_totals(job, m, ctx) -> per GPU (bytes needed, bytes usable) with everything on the GPUs (max-context solve)

plus its conversions between its own context knob and tokens per sequence, its cache granularity, its choices for
check and plan, and the lines that explain its terms. Engine names are compared only inside advisor/engines/.
"""

from __future__ import annotations

from advisor.core.cache import Allocation, CacheLayout, bits_type, cache_layout
from advisor.core.deployment import Deployment, Placement
from advisor.core.formats import ElementType, QuantTable
from advisor.core.hardware import Machine
from advisor.core.memory import EngineSettings, Estimate, KVChoice
from advisor.core.model import ModelProfile
from advisor.core.record import record, replace  # replace: dataclasses.replace, faster for records
from advisor.core.tensors import WeightsLayout, weights_layout
from advisor.errors import UsageError

MIN_KV_BITS, MAX_KV_BITS = 1, 32  # --kv-bits: a what-if element of 1 to 32 bits


@record
class Job:
    """Everything about one question that does not depend on the context."""

    model: ModelProfile
    weights: WeightsLayout
    cache: CacheLayout
    settings: EngineSettings
    alloc: Allocation


class Engine:
    """Base class of the engine modules. Subclasses set the class attributes and implement the placement."""

    name: str = ""
    label: str = ""  # as printed ("vLLM")
    loads_gguf: bool = False  # runs a GGUF file as it is
    gpu_only: bool = False  # needs a discrete CUDA/ROCm GPU: no Apple, unified or CPU-only machines
    default_quant: str = ""
    check_kv_types: tuple[str, ...] = ("f16",)  # the cache types `advisor check` compares by default
    # plan's precision ladders, best first: weights are given up before cache precision
    weight_ladder: tuple[str, ...] = ()
    kv_ladder: tuple[str, ...] = ()
    mla_layout: str = "latent"
    # bytes per element of a recurrent layer's state (conv + SSM / delta-rule state)
    state_element_bytes: int = 4
    context_help: str = ""  # what --context means for this engine
    # how its logs name it and what they report (advisor validate reads memory logs): "buffers" (per-device
    # model / KV / compute buffers, as llama.cpp prints them) or "kv_budget" (the memory left for the cache)
    log_names: tuple[str, ...] = ()
    log_reports: str = "buffers"
    # Large-batch offload: batches (ubatches) of at least this many tokens run the matrix multiplications of weights
    # held in host RAM on the first GPU, the engine copying those weights (from pageable memory) over the GPU's host
    # link for each batch; core/speed.py models prefill of a "gpu+cpu" placement with it. None: the engine computes
    # weights in RAM on the CPU at any batch size (that prefill is not modelled beside a GPU).
    offload_min_batch: int | None = None

    # ---------------------------------------------------------------- settings and validation

    def resolve(self, settings: EngineSettings, kv_quantized: bool) -> EngineSettings:
        """Fill the engine's defaults (flash attention)."""
        return settings if settings.flash_attn is not None else replace(settings, flash_attn=True)

    def check_kv_pair(self, k: ElementType, v: ElementType) -> None:
        """Raise UsageError when the engine cannot cache K and V in these types."""

    def check_settings(self, settings: EngineSettings, k: ElementType, v: ElementType) -> None:
        if settings.parallel < 1:
            raise UsageError(f"--parallel must be at least 1, got {settings.parallel}")

    def allocation(self, settings: EngineSettings) -> Allocation:
        raise NotImplementedError

    def mla_layout_for(self, settings: EngineSettings) -> str:
        return self.mla_layout

    def element_types(self, kv: KVChoice, quants: QuantTable) -> tuple[ElementType, ElementType]:
        if kv.bits is not None:
            if not MIN_KV_BITS <= kv.bits <= MAX_KV_BITS:
                raise UsageError(f"--kv-bits must be between {MIN_KV_BITS} and {MAX_KV_BITS}, got {kv.bits}")
            t = bits_type(kv.bits)
            return t, t
        k, v = quants.kv_type(kv.k), quants.kv_type(kv.v)
        self.check_kv_pair(k, v)
        return k, v

    def prepare(self, model: ModelProfile, quant: str, kv: KVChoice, settings: EngineSettings, quants: QuantTable,
                weights: WeightsLayout | None = None) -> Job:
        if weights is not None:
            if not self.loads_gguf:
                raise UsageError(f"a GGUF file runs on {' or '.join(gguf_engines())}, not {self.name}")
            recipe = None
        else:
            recipe = quants.recipe(quant)
            if self.name not in recipe.engines:
                raise UsageError(
                    f"{self.name} does not load {recipe.name} weights; it loads "
                    + ", ".join(n for n, r in quants.recipes.items() if self.name in r.engines)
                )
        k, v = self.element_types(kv, quants)
        settings = self.resolve(settings, kv_quantized=k.block_elements > 1 or v.block_elements > 1)
        self.check_settings(settings, k, v)
        layout = cache_layout(model, k, v, self.mla_layout_for(settings), settings.swa_full, self.state_element_bytes,
                              self.index_row_bytes)
        weights = weights if weights is not None else weights_layout(model, recipe, quants)
        return Job(model, weights, layout, settings, self.allocation(settings))

    # the sparse-attention indexer's key per token and layer (None: in the K cache's type)
    index_row_bytes = None

    # ---------------------------------------------------------------- contexts

    def context_value(self, per_sequence: int, settings: EngineSettings) -> int:
        """The engine's context knob for `settings.parallel` sequences of `per_sequence` tokens each."""
        return per_sequence

    def per_sequence(self, context: int, settings: EngineSettings) -> int:
        """Tokens one sequence gets from the engine's context knob."""
        return context

    def context_limit(self, job: Job) -> int:
        """The model's trained maximum, as a value of the engine's context knob."""
        return self.context_value(job.model.max_context, job.settings)

    def cells(self, job: Job, context: int) -> int:
        """Cache cells the engine allocates for its context knob at `context`."""
        return job.alloc.cells(self.per_sequence(context, job.settings), job.settings.parallel)

    def context_step(self, job: Job) -> int:
        """The granularity of a context the engine allocates (one step more is the next size up)."""
        return job.alloc.pad_tokens

    def breakpoints(self, job: Job) -> set[int]:
        """Contexts (the engine's knob) where memory changes slope."""
        seqs = job.settings.parallel
        return {self._context_of_cells(job, c) for c in job.cache.breakpoints(seqs, job.alloc)}

    def _context_of_cells(self, job: Job, cells: int) -> int:
        return cells // job.settings.parallel

    # ---------------------------------------------------------------- deployment and placement

    def deployment(self, job: Job, machine: Machine, context: int) -> Deployment:
        raise NotImplementedError

    def place(self, job: Job, deployment: Deployment, machine: Machine, context: int) -> Placement:
        raise NotImplementedError

    def offload_problem(self, job: Job) -> str | None:
        """Why the expert offload the settings name cannot apply to this model (one line), or None. Asked of a
        single model (`fit`); a grid of models (`check`) skips the offload where it does not apply."""
        return None

    def gpu_totals(self, job: Job, machine: Machine, context: int) -> list[tuple[int, int | None]]:
        """(bytes needed, bytes usable) per GPU with every layer on the GPUs."""
        raise NotImplementedError

    def fits_on_gpus(self, job: Job, machine: Machine, context: int) -> bool:
        totals = self.gpu_totals(job, machine, context)
        return bool(totals) and all(usable is not None and total <= usable for total, usable in totals)

    # ---------------------------------------------------------------- the words

    def notes(self, job: Job, deployment: Deployment, placement: Placement, context: int, machine: Machine) -> list[str]:
        return []

    def summary_line(self, est: Estimate) -> str:
        raise NotImplementedError

    def explain_lines(self, est: Estimate) -> list[str]:
        raise NotImplementedError

    def headroom_bytes(self, settings: EngineSettings) -> int:
        """Memory kept free per GPU, as the estimate reports it."""
        return settings.headroom_bytes


def gguf_engines() -> tuple[str, ...]:
    from advisor.engines import all_engines

    return tuple(e.name for e in all_engines() if e.loads_gguf)


def largest_tp(n_gpus: int, valid) -> int:
    """The largest tensor-parallel degree that divides the GPU count and that `valid(tp)` accepts."""
    return max(d for d in range(1, n_gpus + 1) if n_gpus % d == 0 and valid(d))
