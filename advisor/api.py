"""The estimators as a small Python API: what the CLI calls, usable from a script or notebook.

    from advisor import api
    machine = api.simulated_machine(gpus=("2x RTX 3090",), ram_gib=64)   # or api.detect_machine()
    est = api.fit_one("llama-3-70b", "Q4_K_M", api.KVChoice("q8_0", "q8_0"), api.EngineSettings(), 32768, machine)
    est.placement, est.max_context, est.as_dict()
    rows = api.check_grid(machine, api.EngineSettings(), models=["llama-3-8b"], kv_types=["f16", "q8_0"])
"""

from __future__ import annotations

import os
from pathlib import Path

from advisor.errors import AdvisorError, UsageError
from advisor.sources.imported import Imported
from advisor.core.hardware import Device, Machine
from advisor.apps.estimate import (estimate, kv_bytes_per_token, largest_context_that_runs, offload_problem,
                                   weights_bytes)
from advisor.core.memory import EngineSettings, Estimate, KVChoice
from advisor.core.model import newest_families_first
from advisor.sources.model_files import load_model
from advisor.core.model import ModelProfile
from advisor.sources.profiles import load_registry
from advisor.core.speed import Speed, estimate_speed
from advisor.core.record import replace  # dataclasses.replace, faster for records

__all__ = [
    "AdvisorError", "UsageError", "Device", "Machine", "EngineSettings", "Estimate", "KVChoice", "ModelProfile",
    "detect_machine", "simulated_machine", "load_registry", "fit_one", "check_grid", "estimate",
    "kv_bytes_per_token", "weights_bytes", "model", "Speed", "estimate_speed", "result_dict", "load_model",
    "Imported",
]


def detect_machine(*args, **kwargs) -> Machine:
    """This machine, observed (NVML, psutil, cgroups, sysctl). Imported on use: a simulated machine needs none."""
    from advisor.detect import detect_machine as detect

    return detect(*args, **kwargs)


def simulated_machine(*args, **kwargs) -> Machine:
    """A machine described instead of observed: catalog GPUs, a custom card, a RAM size."""
    from advisor.detect.simulated import simulated_machine as simulate

    return simulate(*args, **kwargs)


def result_dict(est: Estimate, machine: Machine, speed=None) -> dict:
    """One estimate as JSON-ready data: the memory terms plus decode/prefill speed (`speed`: estimate_speed's
    answer for it, when the caller has it)."""
    return {**est.as_dict(), **(speed or estimate_speed(est, machine)).as_dict()}


def model(name: str) -> ModelProfile:
    """A profile by id, name or alias (shipped or the user's), or imported from a config.json / GGUF path."""
    return load_model(name).profile


UNQUANTIZED = ("BF16", "F16", "F32")


def native_quant_for(profile: ModelProfile, engine: str, quants) -> str | None:
    """The format the model's weights ship in, when this engine loads it (gpt-oss's MXFP4 in llama.cpp; not
    DeepSeek's FP8 there)."""
    if not profile.native_quant or profile.native_quant.upper() in UNQUANTIZED:
        return None  # a 16-bit release is no default: people run a quantized file of it
    recipe = next((r for k, r in quants.recipes.items() if k.lower() == profile.native_quant.lower()), None)
    return recipe.name if recipe is not None and engine in recipe.engines else None


def _estimate(src: Imported, quant: str | None, default_quant: str, kv: KVChoice, engine: EngineSettings,
              context: int | None, machine: Machine) -> Estimate:
    quants = load_registry().quants
    if src.weights is not None:
        if quant and quant.lower() != src.quant.lower():
            raise UsageError(f"{src.profile.origin} holds {src.quant} weights; --quant does not apply to a GGUF file")
        return estimate(src.profile, src.quant, kv, engine, context, machine, quants, weights=src.weights)
    if quant is None and (native := native_quant_for(src.profile, engine.name, quants)):
        est = estimate(src.profile, native, kv, engine, context, machine, quants)
        return replace(est, notes=est.notes + (f"{native}: the model's native format (--quant for another)",))
    return estimate(src.profile, quant or default_quant, kv, engine, context, machine, quants)


def _check_offload(src: Imported, quant: str, kv: KVChoice, engine: EngineSettings) -> None:
    """One model with an expert offload named (--cpu-moe, --n-cpu-moe, -ot): a UsageError where it cannot apply
    (a grid of models skips it where it does not: the engine places a dense model as without it)."""
    if engine.offload == "experts":
        problem = offload_problem(src.profile, quant, kv, engine, load_registry().quants, src.weights)
        if problem:
            raise UsageError(problem)


def _remember_default_layouts(profiles, default_quant: str, engine: str) -> None:
    """The weights of a default check grid, from the parsed-data cache when the profiles, the recipes and the code
    that sums them have not changed (one walk over every tensor of ~45 models is a third of `advisor check`)."""
    import advisor.core.formats
    import advisor.core.model
    import advisor.core.tensors
    from advisor.core.tensors import _computed_layout, remember_layouts
    from advisor.sources.parsed_cache import cached
    from advisor.sources.profiles import _profiles_root

    registry = load_registry()
    quants = registry.quants
    wanted = [(m, native_quant_for(m, engine, quants) or default_quant) for m in profiles]
    root = _profiles_root()
    from advisor.sources.user_models import user_profile_files

    models_dir = root.joinpath("models")
    files = [root / "quants.toml", *(models_dir / f for f in os.listdir(models_dir) if f.endswith(".toml")),
             *user_profile_files(),
             *(Path(mod.__file__) for mod in (advisor.core.tensors, advisor.core.formats, advisor.core.model))]
    key = "layouts-" + "-".join(sorted({q for _, q in wanted})).lower()

    def build():
        return {(m.id, q): _computed_layout(m, quants.recipe(q), quants).with_sums() for m, q in wanted}

    stored = cached(key, files, build)
    remember_layouts({(m, quants.recipe(q).name): stored[(m.id, q)] for m, q in wanted if (m.id, q) in stored})


def fit_one(model_name: str, quant: str | None, kv: KVChoice, engine: EngineSettings, context: int | None,
            machine: Machine, default_quant: str = "Q4_K_M") -> Estimate:
    """One estimate. `model_name` is a profile id or a path to a config.json / GGUF file; `quant` None means the
    file's own weights (GGUF), the model's native format when the engine loads it, or `default_quant`."""
    src = load_model(model_name)
    _check_offload(src, src.quant if src.weights is not None else quant or default_quant, kv, engine)
    return _estimate(src, quant, default_quant, kv, engine, context, machine)


def check_grid(machine: Machine, engine: EngineSettings, models=None, quants=("Q4_K_M",), kv_types=("f16",),
               contexts=(None,), include_what_if: bool = True, quants_given: bool = True,
               all_models: bool = True) -> list[Estimate]:
    """model x quant x KV type x context, in profile order (`all_models=False`: the current models, by family and
    size). Validates every name before computing. A GGUF file
    among `models` is evaluated with its own weights (naming quants for it is an error when `quants_given`)."""
    registry = load_registry()
    if models:
        chosen = [load_model(m) for m in models]
    else:
        pool = [m for m in registry.models.values() if include_what_if or not m.what_if]
        current = [m for m in pool if m.is_current]
        if not all_models and current:  # today's models, newest families first as `advisor models` lists them
            pool = newest_families_first(current)
        chosen = [Imported(m, ()) for m in pool]
    for q in quants:
        registry.quants.recipe(q)
    if not quants_given:
        _remember_default_layouts([src.profile for src in chosen if src.weights is None], quants[0], engine.name)
    out = []
    for src in chosen:
        for q in ((None,) if not quants_given else quants):
            for kv in kv_types:
                for ctx in contexts:
                    est = _estimate(src, q, quants[0], KVChoice(kv, kv), engine, ctx, machine)
                    if ctx is None and est.placement == "none" and est.verdict is False:
                        est = _where_it_runs(src, est, q, quants[0], KVChoice(kv, kv), engine, machine)
                    out.append(est)
    return out


def _where_it_runs(src: Imported, est: Estimate, quant, default_quant: str, kv: KVChoice, engine: EngineSettings,
                   machine: Machine) -> Estimate:
    """A check row that does not run at the model's trained maximum: evaluated instead at the largest power-of-two
    context that runs on this machine (`largest_context_that_runs`), said in a note; `est` when none does."""
    held = [u.usable_bytes for u in est.devices]
    if not machine.unified and held and all(h is not None for h in held) and \
            est.weights_bytes - est.token_embd_bytes > sum(held):
        return est  # the weights alone (less what may stay mapped) exceed every device's memory: no context runs
    quants = load_registry().quants
    context = largest_context_that_runs(src.profile, est.quant, kv, engine, machine, quants, src.weights,
                                        below=est.context)
    if context is None:
        return est
    ran = _estimate(src, quant, default_quant, kv, engine, context, machine)
    note = (f"does not run at its trained {est.context:,} tokens here; evaluated at {context:,}, the largest "
            "power-of-two context that does (give --context for another)")
    return replace(ran, notes=ran.notes + (note,), context_reduced_from=est.context)
