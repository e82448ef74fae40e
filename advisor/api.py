"""The estimators as a small Python API: what the CLI calls, usable from a script or notebook.

    from advisor import api
    machine = api.simulated_machine(gpus=("2x RTX 3090",), ram_gib=64)   # or api.detect_machine()
    est = api.fit_one("llama-3-70b", "Q4_K_M", api.KVChoice("q8_0", "q8_0"), api.EngineSettings(), 32768, machine)
    est.placement, est.max_context, est.as_dict()
    rows = api.check_grid(machine, api.EngineSettings(), models=["llama-3-8b"], kv_types=["f16", "q8_0"])
"""

from __future__ import annotations

from .errors import AdvisorError, UsageError
from .hardware import detect_machine, simulated_machine
from .machine import Device, Machine
from .memory import EngineSettings, Estimate, KVChoice, estimate, kv_bytes_per_token, weights_bytes
from .profiles import ModelProfile, load_registry
from .speed import Speed, estimate_speed

__all__ = [
    "AdvisorError", "UsageError", "Device", "Machine", "EngineSettings", "Estimate", "KVChoice", "ModelProfile",
    "detect_machine", "simulated_machine", "load_registry", "fit_one", "check_grid", "estimate",
    "kv_bytes_per_token", "weights_bytes", "model", "Speed", "estimate_speed", "result_dict",
]


def result_dict(est: Estimate, machine: Machine) -> dict:
    """One estimate as JSON-ready data: the memory terms plus decode/prefill speed."""
    return {**est.as_dict(), **estimate_speed(est, machine).as_dict()}


def model(name: str) -> ModelProfile:
    """A shipped profile by id, name or alias (raises UsageError with suggestions)."""
    return load_registry().model(name)


def fit_one(model_name: str, quant: str, kv: KVChoice, engine: EngineSettings, context: int | None,
            machine: Machine) -> Estimate:
    registry = load_registry()
    return estimate(registry.model(model_name), quant, kv, engine, context, machine, registry.quants)


def check_grid(machine: Machine, engine: EngineSettings, models=None, quants=("Q4_K_M",), kv_types=("f16",),
               contexts=(None,), include_what_if: bool = True) -> list[Estimate]:
    """model x quant x KV type x context, in profile order. Validates every name before computing."""
    registry = load_registry()
    if models:
        chosen = [registry.model(m) for m in models]
    else:
        chosen = [m for m in registry.models.values() if include_what_if or not m.what_if]
    for q in quants:
        registry.quants.recipe(q)
    out = []
    for m in chosen:
        for q in quants:
            for kv in kv_types:
                for ctx in contexts:
                    out.append(estimate(m, q, KVChoice(kv, kv), engine, ctx, machine, registry.quants))
    return out
