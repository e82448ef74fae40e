"""Published claims reproduced from the shipped profiles (papers.md in the project's reference notes)."""

import pytest

from advisor.apps.estimate import kv_bytes_per_token
from advisor.core.memory import EngineSettings, KVChoice

VLLM = EngineSettings(name="vllm")  # caches the MLA latent only, as the paper describes


def per_token(registry, model, kv=KVChoice(), engine=VLLM):
    return kv_bytes_per_token(registry.model(model), kv, engine, registry.quants)


def test_deepseek_v2_mla_cache_is_576_elements_per_layer(registry):
    # (d_c + d_h^R) l = (512 + 64) x 60 = 34,560 elements = 69,120 B at 16 bit ("34.6K", Table 9)
    assert per_token(registry, "deepseek-v2") == 69_120
    # V2-Lite: 27 x 576 = 15,552 elements ("15.6K")
    assert per_token(registry, "deepseek-v2-lite") == 31_104


def test_deepseek_v2_reduces_the_kv_cache_by_93_3_percent_with_its_6_bit_cache(registry):
    baseline = per_token(registry, "deepseek-llm-67b")  # GQA, 95 layers, BF16
    assert baseline == 389_120
    six_bit = per_token(registry, "deepseek-v2", KVChoice(bits=6))
    assert six_bit == 25_920
    assert 1 - six_bit / baseline == pytest.approx(0.933, abs=0.0005)
    # at the same 16-bit precision MLA alone saves 82.2%, not 93.3%
    assert 1 - per_token(registry, "deepseek-v2") / baseline == pytest.approx(0.822, abs=0.0005)


def test_llama_cpp_caches_the_mla_latent_only_and_older_builds_a_v_latent_too(registry):
    """Current llama.cpp: the 512 + 64 latent as K and no V (ggml-org/llama.cpp#19067, 2026-01); builds from
    2025-04 to 2026-01 (--mla-v-cache) also stored the 512-wide V latent."""
    llama = EngineSettings(name="llama.cpp")
    assert per_token(registry, "deepseek-v2", engine=llama) == 60 * 576 * 2
    older = EngineSettings(name="llama.cpp", mla_v_cache=True)
    assert per_token(registry, "deepseek-v2", engine=older) == 60 * (576 + 512) * 2


def test_yoco_cache_per_token_is_l_times_smaller(registry):
    yoco = per_token(registry, "yoco-3b")
    gqa = per_token(registry, "yoco-3b-gqa")
    assert gqa == 106_496  # 26 x 2 x 8 x 128 x 2 B = 104 KiB
    assert yoco == 4_096  # one shared 2 x 8 x 128 x 2 B
    assert gqa / yoco == 26


def test_kv_compression_does_not_bring_70b_to_a_24gb_gpu(registry):
    """The seed post's hope, answered: the cache shrinks, the weights do not."""
    from advisor.detect.simulated import simulated_machine
    from advisor.apps.estimate import estimate

    machine = simulated_machine(("RTX 4090",), ram_gib=64)
    for variant in ("llama-3-70b-mla", "llama-3-70b-yoco"):
        est = estimate(registry.model(variant), "Q4_K_M", KVChoice(), EngineSettings(), 32768, machine, registry.quants)
        # 32K tokens: MLA (llama.cpp keeps 1088 elements/layer) 5.3 GiB, YOCO 0.5 GiB; GQA would be 10 GiB
        assert est.kv_bytes < 6 * 1024**3
        assert est.weights_bytes > 39 * 1024**3
        assert est.placement != "gpu" and est.max_context is None
