"""Invariants of the memory model, for any model, quant, KV type, engine and machine (hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.core.hardware import Device, Machine
from advisor.apps.estimate import context_step, estimate
from advisor.core.memory import EngineSettings, KVChoice
from advisor.sources.profiles import load_registry
from advisor.core.units import GIB

REG = load_registry()
MODELS = sorted(REG.models)
LLAMA_QUANTS = ["Q4_K_M", "Q8_0", "Q2_K", "IQ4_XS", "F16"]
KV = ["f16", "q8_0", "q4_0", "q5_1", "iq4_nl"]

engines = st.one_of(
    st.builds(EngineSettings, name=st.just("llama.cpp"), flash_attn=st.booleans(), parallel=st.integers(1, 4),
              swa_full=st.booleans()),
    st.builds(EngineSettings, name=st.just("ollama"), parallel=st.integers(1, 4)),
)


def _kv_for(engine, kv):
    if engine.name == "ollama" or engine.flash_attn is not False:
        return KVChoice(kv, kv)
    return KVChoice(kv, "f16")  # quantized V needs flash attention


def _machine(gib_each, n):
    return Machine("simulated", tuple(Device(f"gpu{i}", memory_total_bytes=int(gib_each * GIB), index=i) for i in range(n)),
                   512 * GIB, 512 * GIB)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(MODELS), st.sampled_from(LLAMA_QUANTS), st.sampled_from(KV), engines,
       st.integers(1, 300_000), st.integers(1, 300_000))
def test_more_context_never_needs_less_memory(model, quant, kv, engine, a, b):
    lo, hi = sorted((a, b))
    machine = _machine(24, 1)
    m = REG.model(model)
    small = estimate(m, quant, _kv_for(engine, kv), engine, lo, machine, REG.quants)
    large = estimate(m, quant, _kv_for(engine, kv), engine, hi, machine, REG.quants)
    assert large.total_bytes >= small.total_bytes
    assert large.kv_bytes >= small.kv_bytes


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(MODELS), st.sampled_from(["Q4_K_M", "Q8_0", "Q2_K"]), st.sampled_from(KV), engines,
       st.floats(4, 200), st.integers(1, 4))
def test_max_context_fits_and_one_step_more_does_not(model, quant, kv, engine, gib_each, n):
    machine = _machine(gib_each, n)
    m = REG.model(model)
    kvc = _kv_for(engine, kv)
    est = estimate(m, quant, kvc, engine, 1, machine, REG.quants)
    if est.max_context is None:
        assert estimate(m, quant, kvc, engine, 1, machine, REG.quants).placement != "gpu"
        return
    at_max = estimate(m, quant, kvc, engine, est.max_context, machine, REG.quants)
    assert at_max.placement == "gpu"
    assert est.max_context <= est.model_max_context
    if est.max_context < est.model_max_context:
        step = context_step(engine, kvc, REG.quants)
        beyond = estimate(m, quant, kvc, engine, est.max_context + step, machine, REG.quants)
        assert beyond.placement != "gpu"


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(MODELS), st.floats(8, 160), st.integers(1, 65536))
def test_vllm_max_context_fits_and_one_block_more_does_not(model, gib_each, context):
    vllm = EngineSettings(name="vllm")
    machine = _machine(gib_each, 1)
    m = REG.model(model)
    est = estimate(m, "BF16", KVChoice(), vllm, context, machine, REG.quants)
    if est.max_context is None:
        return
    assert estimate(m, "BF16", KVChoice(), vllm, est.max_context, machine, REG.quants).placement == "gpu"
    if est.max_context < est.model_max_context:
        assert estimate(m, "BF16", KVChoice(), vllm, est.max_context + 16, machine, REG.quants).placement == "none"


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(MODELS), st.integers(1, 131072), st.floats(4, 100), st.floats(4, 100))
def test_more_gpu_memory_never_shortens_the_max_context(model, context, a, b):
    small, big = sorted((a, b))
    m = REG.model(model)
    e1 = estimate(m, "Q4_K_M", KVChoice(), EngineSettings(), context, _machine(small, 1), REG.quants)
    e2 = estimate(m, "Q4_K_M", KVChoice(), EngineSettings(), context, _machine(big, 1), REG.quants)
    assert (e2.max_context or 0) >= (e1.max_context or 0)
    order = ["none", "cpu", "gpu+cpu", "gpu"]
    if e1.placement == "gpu":
        assert e2.placement == "gpu"
    assert order.index(e2.placement) >= order.index(e1.placement) or e1.placement == "cpu"
