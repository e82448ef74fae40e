"""One memory estimate: the engine chooses a deployment and a placement, core/memory sums and solves it.

Every use case (check, fit, breakeven, plan, validate) asks through these functions, never an engine module.
"""

from __future__ import annotations

from advisor import engines
from advisor.core.deployment import Offload
from advisor.core.formats import QuantTable
from advisor.core.hardware import Machine
from advisor.core.memory import EngineSettings, Estimate, KVChoice, max_context
from advisor.core.model import ModelProfile
from advisor.core.record import replace  # dataclasses.replace, faster for records
from advisor.core.tensors import WeightsLayout, weights_layout
from advisor.core.units import GIB
from advisor.errors import UsageError


def estimate(
    model: ModelProfile,
    quant: str,
    kv: KVChoice,
    settings: EngineSettings,
    context: int | None,
    machine: Machine,
    quants: QuantTable,
    weights: WeightsLayout | None = None,
    solve_max_context: bool = True,
) -> Estimate:
    """Memory needed for `model` at `context` (the engine's context knob; the model's maximum when None) on
    `machine`. `weights` fixes the weights as a file has them (GGUF); `quant` is then only the file's label.
    `solve_max_context=False` leaves `max_context` None (a search over many machines solves it only for the
    combination it keeps)."""
    engine = engines.get(settings.name)
    job = _prepared(engine, model, quant, kv, settings, quants, weights)
    limit = engine.context_limit(job)
    if context is None:
        context = limit
    if context < 1:
        raise UsageError(f"context must be a positive number of tokens, got {context}")
    notes = []
    if context > limit:
        notes.append(f"context {context} is beyond the model's trained maximum ({limit})")
    deployment = engine.deployment(job, machine, context)
    placement = engine.place(job, deployment, machine, context)
    notes += engine.notes(job, deployment, placement, context, machine)
    notes += _unknown_notes(placement)
    if model.upper_bound:
        notes.append(f"upper bound: {model.upper_bound}")
    terms = engine.memory_terms(job, placement, context)
    overhead = terms.get("overhead_bytes", sum(u.overhead_bytes for u in placement.devices))
    solved = None
    if solve_max_context:
        solved = max_context(lambda c: engine.fits_on_gpus(job, machine, c),
                             lambda c: engine.gpu_totals(job, machine, c),
                             engine.context_step(job), limit, engine.breakpoints(job))
    deployment = replace(deployment, offload=_offload(placement))
    s = job.settings
    return Estimate(
        model=model.id,
        quant=quant if weights is not None else quants.recipe(quant).name,
        kv_type=kv.label,
        kv_layout=job.cache.label,
        engine=engine.name,
        context=context,
        kv_cells=terms["cells"],
        parallel=s.parallel,
        flash_attn=bool(s.flash_attn),
        weights_bytes=terms.get("weights_bytes", job.weights.total_bytes),  # as placed (a tied output held once)
        token_embd_bytes=job.weights.token_embd_bytes,
        kv_bytes=terms["kv_bytes"],
        kv_k_bytes=terms["kv_k_bytes"],
        kv_v_bytes=terms["kv_v_bytes"],
        kv_bytes_per_token=job.cache.bytes_per_token,
        compute_bytes=terms["compute_bytes"],
        host_compute_bytes=terms["host_compute_bytes"],
        overhead_bytes=overhead,
        headroom_bytes=engine.headroom_bytes(s),
        placement=placement.kind,
        gpu_layers=placement.gpu_layers,
        max_context=solved,
        model_max_context=limit,
        devices=placement.devices,
        params=job.weights.params,
        bits_per_weight=job.weights.bits_per_weight,
        active_weights_bytes=job.weights.active_bytes,
        active_params=job.weights.active_params,
        what_if=model.what_if,
        max_sequences=placement.max_sequences,
        notes=tuple(notes),
        deployment=deployment,
        verdict=placement.fits,
        allreduce=placement.allreduce,
        settings=s,
        upper_bound=model.upper_bound,
        offload_min_batch=engine.offload_min_batch,
    )


# The jobs made lately: a search (`advisor plan`) asks about one model at a few quants on ~1,700 machines, and a job
# (the weights, the cache layout, the resolved settings) depends on none of the machine. Keyed by identity for the
# objects that are not hashed cheaply; each entry keeps them, so an id is never taken for another object's.
_JOBS: dict = {}
JOBS_KEPT = 256  # a plan needs a few dozen (quants x KV types); a check grid one per row


def _prepared(engine, model, quant, kv, settings, quants, weights):
    key = (engine.name, id(model), quant, kv, settings, id(quants), id(weights))
    hit = _JOBS.get(key)
    if hit is not None and hit[0] is model and hit[1] is quants and hit[2] is weights:
        return hit[3]
    job = engine.prepare(model, quant, kv, settings, quants, weights)
    if len(_JOBS) >= JOBS_KEPT:
        _JOBS.clear()
    _JOBS[key] = (model, quants, weights, job)
    return job


def offload_problem(model: ModelProfile, quant: str, kv: KVChoice, settings: EngineSettings, quants: QuantTable,
                    weights: WeightsLayout | None = None) -> str | None:
    """Why the settings' expert offload cannot apply to this one model (the engine's rule), or None."""
    engine = engines.get(settings.name)
    return engine.offload_problem(_prepared(engine, model, quant, kv, settings, quants, weights))


def placement_of(model: ModelProfile, quant: str, kv: KVChoice, settings: EngineSettings, context: int,
                 machine: Machine, quants: QuantTable, weights: WeightsLayout | None = None):
    """(placement, offload) as `estimate` finds them at `context`, without the rest of the estimate: for searches
    that bisect a context (`advisor plan`'s largest context on a MoE box or a CPU-only one)."""
    engine = engines.get(settings.name)
    job = _prepared(engine, model, quant, kv, settings, quants, weights)
    placement = engine.place(job, engine.deployment(job, machine, context), machine, context)
    return placement, _offload(placement)


def _offload(placement) -> Offload:
    host = next((u for u in placement.devices if u.host), None)
    if host is not None and host.expert_layers:
        return Offload("experts", host.expert_layers)
    if host is None or not host.layers:
        return Offload("none", 0)
    if not any(u.layers for u in placement.devices if not u.host):
        return Offload("all", host.layers)
    return Offload("layers", host.layers)


def _unknown_notes(placement) -> list[str]:
    """Why a verdict is unknown: the memory a part would need and the device whose size is not known."""
    if placement.fits is not None or placement.kind == "none":
        return []
    out = []
    for u in placement.devices:
        if u.fits is None and (u.layers or u.weights_bytes):
            where = "RAM" if u.host else u.name
            given = "RAM not given (--ram)" if u.host else f"{u.name}: memory not readable"
            out.append(f"{given}: {u.total_bytes / GIB:,.1f} GiB would have to be in {where}; fits unknown")
    return out


def fits_on_gpus(model: ModelProfile, quant: str, kv: KVChoice, settings: EngineSettings, context: int,
                 machine: Machine, quants: QuantTable, weights: WeightsLayout | None = None) -> bool:
    """Whether `context` runs entirely on the machine's GPU(s): the yes/no of `estimate`'s placement == "gpu",
    without the partial-offload search and the max-context solve (for searches over many machines)."""
    engine = engines.get(settings.name)
    return engine.fits_on_gpus(_prepared(engine, model, quant, kv, settings, quants, weights), machine, context)


def kv_bytes_per_token(model: ModelProfile, kv: KVChoice, settings: EngineSettings, quants: QuantTable) -> int:
    """The KV cache's growth per token of context (full-attention layers), for quick comparisons."""
    engine = engines.get(settings.name)
    return engine.prepare(model, engine.default_quant, kv, settings, quants).cache.bytes_per_token


def weights_bytes(model: ModelProfile, quant: str, quants: QuantTable) -> int:
    return weights_layout(model, quants.recipe(quant), quants).total_bytes


def engine_context(per_sequence: int, settings: EngineSettings) -> int:
    """The context to give `estimate` so that each of `settings.parallel` sequences holds `per_sequence` tokens:
    llama.cpp's -c is shared by its slots; Ollama's num_ctx and vLLM's max_model_len are per sequence."""
    return engines.get(settings.name).context_value(per_sequence, settings)


def per_sequence_context(context: int, settings: EngineSettings) -> int:
    """The inverse of `engine_context`: tokens one sequence gets from a context given to `estimate`."""
    return engines.get(settings.name).per_sequence(context, settings)


def context_step(settings: EngineSettings, kv: KVChoice, quants: QuantTable) -> int:
    """The granularity of a context the engine allocates for these cache types (one step more is the next size)."""
    engine = engines.get(settings.name)
    k, v = engine.element_types(kv, quants)
    resolved = engine.resolve(settings, kv_quantized=k.block_elements > 1 or v.block_elements > 1)
    return engine.allocation(resolved).pad_tokens


def search_terms(model: ModelProfile, quant: str, kv: KVChoice, settings: EngineSettings, context: int,
                 machine: Machine, quants: QuantTable, weights: WeightsLayout | None = None,
                 solve_max_context: bool = False, fits_at: int | None = None):
    """(deployment, max context) as `estimate` finds them for `context` on `machine`, without the placement: for
    searches over many machines (`advisor plan`). The max context (None unless `solve_max_context`) is the same
    solve `estimate` runs; `fits_at`, a context known to fit entirely on the GPU(s), and each answer the solve gets
    bound the others (memory never shrinks as the context grows), so no context is asked twice or needlessly."""
    engine = engines.get(settings.name)
    job = _prepared(engine, model, quant, kv, settings, quants, weights)
    deployment = engine.deployment(job, machine, context)
    if not solve_max_context:
        return deployment, None
    known = [fits_at or 0, None]  # the largest context known to fit, the smallest known not to

    def fits(c: int) -> bool:
        if c <= known[0]:
            return True
        if known[1] is not None and c >= known[1]:
            return False
        ok = engine.fits_on_gpus(job, machine, c)
        if ok:
            known[0] = c
        else:
            known[1] = c
        return ok

    solved = max_context(fits, lambda c: engine.gpu_totals(job, machine, c), engine.context_step(job),
                         engine.context_limit(job), engine.breakpoints(job))
    return deployment, solved


# The contexts `advisor check` falls back to when a model does not run at its trained maximum on a machine: the
# powers of two people set (llama.cpp -c, Ollama num_ctx), 4K up to 16M tokens
RUN_CONTEXTS = tuple(2**k for k in range(12, 25))


def largest_context_that_runs(model: ModelProfile, quant: str, kv: KVChoice, settings: EngineSettings,
                              machine: Machine, quants: QuantTable, weights: WeightsLayout | None = None,
                              below: int | None = None) -> int | None:
    """The largest of RUN_CONTEXTS under `below` at which the engine's placement runs on `machine` (its verdict
    true, wherever the engine puts the weights and the cache), or None when not even the smallest does. Memory never
    shrinks as the context grows, so bisect: a model that cannot run at all costs one placement."""
    candidates = [c for c in RUN_CONTEXTS if below is None or c < below]

    def runs(c: int) -> bool:
        return placement_of(model, quant, kv, settings, c, machine, quants, weights)[0].fits is True

    if not candidates or not runs(candidates[0]):
        return None
    lo, hi = 0, len(candidates)  # candidates[lo] runs; candidates[hi] does not (or is `below`, which did not)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if runs(candidates[mid]):
            lo = mid
        else:
            hi = mid
    return candidates[lo]
