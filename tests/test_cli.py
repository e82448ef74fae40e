"""The command line as a user and a script see it: click's runner and real processes."""

import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from advisor.cli import main

MIB = 1024**2


def run(*args, **kw):
    return CliRunner().invoke(main, list(args), **kw)


def test_fit_llama3_8b_contract_and_exact_kv():
    r = run("fit", "llama-3-8b", "--quant", "Q4_K_M", "--context", "8192", "--json", "--gpu", "RTX 4090", "--ram", "64")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    for key in ("model", "quant", "kv_type", "engine", "context", "weights_bytes", "kv_bytes", "kv_bytes_per_token",
                "compute_bytes", "overhead_bytes", "total_bytes", "fits", "placement", "max_context", "devices"):
        assert key in d
    assert d["kv_bytes"] == 1024 * MIB
    assert d["weights_bytes"] / MIB == pytest.approx(4403.49 + 281.81, rel=0.03)
    assert d["fits"] is True and d["placement"] == "gpu" and d["max_context"] == 8192


def test_fit_on_the_detected_machine_without_gpu(no_gpu_machine):
    r = run("fit", "llama-3-8b", "--quant", "Q4_K_M", "--context", "8192", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["kv_bytes"] == 1024 * MIB and d["placement"] in ("cpu", "none") and d["max_context"] is None


def test_check_json_contract():
    r = run("check", "--gpu", "RTX 4090", "--ram", "64", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    m = d["machine"]
    assert m["source"] == "simulated" and m["ram_total_bytes"] == 64 * 1024**3
    for key in ("name", "memory_total_bytes", "memory_free_bytes", "bandwidth_gb_s"):
        assert key in m["gpus"][0]
    rows = d["results"]
    models = {row["model"] for row in rows}
    # today's models by default (issue 14); the 2023-2024 ones and the what-if variants with --all-models
    assert {"gpt-oss-120b", "qwen3-30b-a3b", "qwen3-next-80b-a3b", "llama-4-scout", "gemma-3n-e4b"} <= models
    assert not models & {"llama-2-7b", "llama-3-8b", "llama-3-70b-mla"}
    everything = json.loads(run("check", "--gpu", "RTX 4090", "--ram", "64", "--all-models", "--json").output)
    assert {"llama-3-8b", "llama-3-70b", "deepseek-v2", "yoco-3b", "llama-3-70b-mla", "llama-3-70b-yoco"} <= {
        row["model"] for row in everything["results"]} and models <= {row["model"] for row in everything["results"]}
    assert {row["kv_type"] for row in rows} == {"f16", "q8_0", "q4_0"}
    for row in rows:
        for key in ("model", "quant", "kv_type", "engine", "context", "total_bytes", "placement", "max_context"):
            assert key in row
        assert row["placement"] in ("gpu", "gpu+cpu", "cpu", "none")
        # no --context: the model's maximum, or where that does not run here the largest power of two that does
        if row["context_reduced_from"] is None:
            assert row["context"] == row["model_max_context"]
        else:
            assert row["context_reduced_from"] == row["model_max_context"] > row["context"] and row["fits"] is True


def test_check_grid_options_repeat():
    r = run("check", "--gpu", "2x RTX 3090", "--ram", "64", "--model", "llama-3-70b", "--model", "llama-3-8b",
            "--quant", "Q4_K_M", "--quant", "Q8_0", "--kv-type", "q8_0", "--context", "32768", "--context", "8192", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)["results"]
    assert len(rows) == 2 * 2 * 1 * 2
    row = next(x for x in rows if x["model"] == "llama-3-70b" and x["quant"] == "Q4_K_M" and x["context"] == 8192)
    assert row["placement"] == "gpu"  # 70B Q4_K_M fits on 2x 24 GB at 8K with a q8_0 cache


def test_check_table_is_readable():
    r = run("check", "--gpu", "RTX 4090", "--ram", "64", "--model", "llama-3-8b")
    assert r.exit_code == 0
    assert "GeForce RTX 4090" in r.output and "GPU ctx" in r.output and "llama-3-8b" in r.output


def test_check_fits_an_80_column_terminal():
    r = run("check", "--gpu", "RTX 4090", "--ram", "64")
    assert r.exit_code == 0
    assert max(len(line) for line in r.output.splitlines()) <= 80


def test_fit_explain_shows_the_terms():
    r = run("fit", "llama-3-8b", "--context", "8192", "--gpu", "RTX 4090", "--explain")
    assert r.exit_code == 0
    assert "kv_bytes_per_token x cells = 131072 x 8192" in r.output
    assert "n_ubatch" in r.output


def test_kv_type_k_and_v_separately():
    r = run("fit", "llama-3.1-8b", "--context", "1024", "--kv-type-k", "iq4_nl", "--kv-type-v", "f16",
            "--no-flash-attn", "--gpu", "RTX 3090", "--json")
    d = json.loads(r.output)
    assert (d["kv_k_bytes"], d["kv_v_bytes"]) == (18 * MIB, 64 * MIB)  # A26


def test_ollama_allocates_num_ctx_times_parallel():
    r = run("fit", "llama-3-8b", "--engine", "ollama", "--parallel", "4", "--context", "2048", "--gpu", "RTX 4090", "--json")
    assert json.loads(r.output)["kv_bytes"] == 4 * 256 * MIB


def test_vllm_reports_concurrent_sequences():
    r = run("fit", "llama-3.1-8b", "--engine", "vllm", "--context", "20000", "--gpu", "RTX 3090", "--json")
    d = json.loads(r.output)
    assert d["quant"] == "BF16" and d["placement"] == "gpu" and d["max_sequences"] >= 1


def test_models_lists_the_shipped_profiles():
    r = run("models")
    assert r.exit_code == 0
    for mid in ("llama-2-7b", "llama-3.1-405b", "mistral-7b-v0.2", "mixtral-8x7b", "qwen2.5-72b", "gemma-2-27b",
                "deepseek-llm-67b", "deepseek-v2-lite", "deepseek-v3", "yoco-3b"):
        assert mid in r.output


@pytest.mark.parametrize("args, needle", [
    (["fit", "llama-3-9b"], "did you mean"),
    (["fit", "llama-3-8b", "--quant", "Q4_K_X"], "unknown quant"),
    (["fit", "llama-3-8b", "--kv-type", "q3_0"], "unknown KV type"),
    (["check", "--gpu", "RTX 9090"], "unknown GPU"),
    (["check", "--gpu", "A100"], "ambiguous"),
    (["fit", "llama-3-8b", "--context", "-5"], "between 1 and"),
    (["fit", "llama-3-8b", "--context", "999999999999"], "between 1 and"),
    (["fit", "llama-3-8b", "--kv-type-v", "q4_0", "--no-flash-attn"], "flash attention"),
    (["fit", "llama-3-8b", "--engine", "vllm", "--quant", "Q4_K_M"], "does not load"),
    (["fit", "llama-3-8b", "--kv-bits", "0"], "--kv-bits"),
    (["check", "--ram", "-1"], "positive"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle, no_gpu_machine):
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert needle in r.output
    assert isinstance(r.exception, SystemExit), r.exc_info  # sys.exit, not an escaped exception


def test_malformed_profile_names_file_and_field_exit_1(tmp_path, monkeypatch):
    import shutil

    from advisor.sources import profiles

    root = tmp_path / "profiles"
    shutil.copytree(profiles.profiles_path(), root)
    (root / "models" / "llama-2.toml").write_text((root / "models" / "llama-2.toml").read_text().replace("layers = 32", 'layers = "32"', 1))
    monkeypatch.setattr(profiles, "_profiles_root", lambda: root)
    profiles.load_registry.cache_clear()
    try:
        r = run("models")
    finally:
        profiles.load_registry.cache_clear()
    assert r.exit_code == 1
    assert "profiles/models/llama-2.toml" in r.output and "'layers'" in r.output
    assert isinstance(r.exception, SystemExit), r.exc_info  # sys.exit, not an escaped exception


# ---- real processes, as a user or a script runs them

def _advisor(*args, env=None):
    return subprocess.run([sys.executable, "-m", "advisor", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_python_m_advisor_check_json_parses():
    p = _advisor("check", "--gpu", "RTX 4090", "--ram", "64", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["results"]


def test_real_process_bad_input_is_one_line_on_stderr():
    p = _advisor("fit", "no-such-model")
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "unknown model" in p.stderr and p.stdout == ""


def test_check_all_models_answers_well_under_a_second():
    start = time.perf_counter()
    p = _advisor("check", "--gpu", "RTX 4090", "--ram", "64", "--json")
    assert p.returncode == 0
    assert time.perf_counter() - start < 1.5  # whole process, interpreter start included
