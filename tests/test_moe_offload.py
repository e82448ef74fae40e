"""MoE expert offload (issue 15): the routed experts in RAM, the rest on the GPU, and the speed of that placement.

Real measurements: tests/data/moe/moe_offload.csv (copied from shared/calibration, sources per row).
"""

import csv
import json
import statistics

import pytest
from click.testing import CliRunner

from advisor.cli import main
from conftest import DATA

GIB = 1024**3
MOE_ROWS = {r["id"]: r for r in csv.DictReader(open(DATA / "moe" / "moe_offload.csv", encoding="utf-8"))}


def fit(*args):
    r = CliRunner().invoke(main, ["fit", *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


GPT_OSS_4090 = ("gpt-oss-120b", "--gpu", "RTX 4090", "--ram", "64", "--ram-type", "DDR5-5600", "--context", "8192")


def test_cpu_moe_puts_every_routed_expert_in_ram_and_the_rest_on_the_gpu():
    d = fit(*GPT_OSS_4090, "--cpu-moe")
    gpu, host = d["devices"]
    assert d["placement"] == "gpu+cpu" and d["deployment"]["offload"] == {"kind": "experts", "host_layers": 36}
    assert gpu["layers"] == 37 and gpu["kv_bytes"] == d["kv_bytes"]  # every layer's attention and cache on the GPU
    assert host["kv_bytes"] == 0
    # the two sides add up to the MXFP4 checkpoint; the GPU keeps attention, router, norms and output (~3 GiB)
    assert gpu["weights_bytes"] + host["weights_bytes"] == d["weights_bytes"]
    assert 2 * GIB < gpu["weights_bytes"] < 4 * GIB
    # people report 18-30 tok/s on a 24 GB card with dual-channel DDR5 (issue 15)
    assert 18 <= d["decode_tokens_per_s"] <= 30
    assert "RAM bandwidth 89.6 GB/s" in " ".join(d["machine"]["notes"])


def test_n_cpu_moe_moves_exactly_n_layers_and_more_never_needs_more_gpu_memory_nor_decodes_faster():
    full = fit(*GPT_OSS_4090, "--cpu-moe")
    per_layer_experts = (full["devices"][1]["weights_bytes"] - full["token_embd_bytes"]) // 36
    last_gpu, last_speed = None, None
    for n in (24, 28, 32, 36):
        d = fit(*GPT_OSS_4090, "--n-cpu-moe", str(n))
        gpu, host = d["devices"]
        assert d["deployment"]["offload"]["host_layers"] == n
        assert host["weights_bytes"] == d["token_embd_bytes"] + n * per_layer_experts  # gpt-oss: equal layers
        if last_gpu is not None:
            assert gpu["total_bytes"] <= last_gpu and d["decode_tokens_per_s"] <= last_speed
        last_gpu, last_speed = gpu["total_bytes"], d["decode_tokens_per_s"]


def test_override_tensor_patterns_choose_the_layers():
    everything = fit(*GPT_OSS_4090, "-ot", "exps=CPU")
    assert everything["deployment"]["offload"]["host_layers"] == 36
    assert everything["devices"][1]["weights_bytes"] == fit(*GPT_OSS_4090, "--cpu-moe")["devices"][1]["weights_bytes"]
    d = fit("qwen3-30b-a3b", "--gpu", "RTX 4090", "--ram", "64", "--context", "4096", "-ot",
            r"blk\.(1[0-9])\.ffn_.*_exps=CPU")
    assert d["deployment"]["offload"] == {"kind": "experts", "host_layers": 10}  # layers 10-19
    r = CliRunner().invoke(main, ["fit", "qwen3-30b-a3b", "-ot", "attn_q=CUDA0"])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "only =CPU" in r.output


def test_auto_offload_moves_experts_before_layers_and_is_faster():
    auto = fit(*GPT_OSS_4090)
    layers = fit(*GPT_OSS_4090, "--offload", "layers")
    assert auto["deployment"]["offload"]["kind"] == "experts"
    assert layers["deployment"]["offload"]["kind"] == "layers"
    assert auto["decode_tokens_per_s"] > 1.3 * layers["decode_tokens_per_s"]
    # the fewest layers whose experts must leave: one fewer does not fit the GPU
    n = auto["deployment"]["offload"]["host_layers"]
    fewer = fit(*GPT_OSS_4090, "--n-cpu-moe", str(n - 1))
    assert fewer["placement"] == "none"
    # a dense model has no experts to move: auto is the layer split
    dense = fit("llama-3.3-70b", "--gpu", "RTX 4090", "--ram", "64", "--context", "8192")
    assert dense["deployment"]["offload"]["kind"] == "layers"


def test_ollama_keeps_its_layer_offload_and_vllm_refuses_expert_flags():
    d = fit(*GPT_OSS_4090, "--engine", "ollama")
    assert d["deployment"]["offload"]["kind"] == "layers"
    r = CliRunner().invoke(main, ["fit", "gpt-oss-120b", "--engine", "vllm", "--cpu-moe"])
    assert r.exit_code != 0 and r.output.count("\n") == 1 and "llama.cpp options" in r.output


def test_check_says_experts_in_ram():
    r = CliRunner().invoke(main, ["check", "--model", "gpt-oss-120b", "--gpu", "RTX 4090", "--ram", "64",
                                  "--context", "8192", "--kv-type", "f16"])
    assert r.exit_code == 0 and "GPU+RAM (experts)" in r.output


def test_ram_bandwidth_from_type_and_channels():
    d = fit(*GPT_OSS_4090[:-2], "--context", "8192", "--ram-channels", "4")
    assert "RAM bandwidth 179.2 GB/s: 4 channels x DDR5-5600 x 8 bytes" in " ".join(d["machine"]["notes"])
    for bad, words in ((["--ram-type", "DDR9-1"], "must look like DDR5-5600"),
                       (["--ram-bandwidth", "50", "--ram-type", "DDR5-5600"], "not both"),
                       (["--ram-channels", "4"], "needs --ram-type")):
        r = CliRunner().invoke(main, ["fit", "gpt-oss-20b", "--gpu", "RTX 4090", "--ram", "64", *bad])
        assert r.exit_code != 0 and r.output.count("\n") == 1 and words in r.output, r.output


# rows of moe_offload.csv that name the GPU, the RAM bandwidth (or a standard platform) and the placement, as the
# command that reproduces them; M01 (an unnamed 8 GB GPU) and M04 (CPU-only, RAM unknown) do not
REPRODUCIBLE = {
    "M02": ["qwen3-30b-a3b", "--quant", "Q4_K_M", "--vram", "8", "--bandwidth", "448", "--ram", "64",
            "--ram-bandwidth", "102", "--n-cpu-moe", "36", "--context", "4096"],  # RTX 2080: 448 GB/s
    "M03": ["gpt-oss-120b", "--gpu", "2x RTX 5090", "--ram", "128", "--ram-type", "DDR5-5600", "--n-cpu-moe", "3",
            "--context", "4096"],  # RAM not stated: a desktop's dual-channel DDR5-5600
    "M05": ["deepseek-r1", "--quant", "IQ1_S", "--gpu", "RTX 3090", "--ram", "512", "--ram-bandwidth", "460.8",
            "--offload", "layers", "--context", "4096"],  # EPYC 9654, 12 x DDR5-4800
}
MEDIAN_DECODE_ERROR = 0.25


def _measured(row):
    low, _, high = row["decode_tok_s"].partition("-")
    return (float(low) + float(high)) / 2 if high else float(low)


def test_median_decode_error_over_the_reproducible_offload_rows():
    """M02 +10%, M03 -17%; M05 (a whole-layer split with a 1.58-bit model on a 12-channel EPYC) is predicted ~10x too
    fast: the CPU side is not bandwidth-bound there (IQ1_S dequantization and NUMA), which the model does not
    capture; the median is within 25 %."""
    errors = {}
    for rid, args in REPRODUCIBLE.items():
        d = fit(*args)
        errors[rid] = d["decode_tokens_per_s"] / _measured(MOE_ROWS[rid]) - 1
    assert abs(errors["M02"]) < MEDIAN_DECODE_ERROR and abs(errors["M03"]) < MEDIAN_DECODE_ERROR
    assert statistics.median(abs(e) for e in errors.values()) <= MEDIAN_DECODE_ERROR, errors


def test_readme_answers_the_blog_question_for_2026_with_the_tools_own_numbers():
    """The README table of MoE models on a 16 / 24 GB card with DDR5-5600 is what fit computes."""
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    rows = {"gpt-oss-120b": None, "glm-4.5-air": "Q4_K_M", "qwen3-next-80b-a3b": "Q4_K_M",
            "qwen3-235b-a22b": "Q4_K_M", "llama-3.3-70b": "Q4_K_M"}
    machines = [("RTX 4080", "64"), ("RTX 4080", "128"), ("RTX 4090", "64"), ("RTX 4090", "128")]
    for model, quant in list(rows.items()) + [("qwen3-235b-a22b", "Q2_K")]:
        cells = []
        for gpu, ram in machines:
            args = [model, "--gpu", gpu, "--ram", ram, "--ram-type", "DDR5-5600", "--context", "16384"]
            d = fit(*args, *(["--quant", quant] if quant else []))
            if d["placement"] == "none":
                cells.append("no fit")
                continue
            on_gpu = sum(x["weights_bytes"] for x in d["devices"] if not x["host"]) / GIB
            in_ram = sum(x["weights_bytes"] for x in d["devices"] if x["host"]) / GIB
            tok = d["decode_tokens_per_s"]
            cells.append(f"{on_gpu:.1f} / {in_ram:.1f}, ~{tok:.0f}" if tok >= 10 else
                         f"{on_gpu:.1f} / {in_ram:.1f}, ~{tok:.1f}")
        label = f"| `{model}` ({d['quant']}" + (", dense" if model == "llama-3.3-70b" else "") + ")"
        row = next(line for line in readme.splitlines() if line.startswith(label))
        assert [c.strip() for c in row.split("|")[2:-1]] == cells, (row, cells)


# ---------------------------------------------------------------- the automatic expert offload is the least that fits

from hypothesis import HealthCheck, given, settings as hsettings  # noqa: E402
from hypothesis import strategies as hst  # noqa: E402


def _auto_fit(model, vram, count, *extra):
    from click.testing import CliRunner

    from advisor.cli import main

    gpus = ["--vram", str(vram), "--bandwidth", "900"] if count == 1 else ["--gpu", f"{count}x RTX 3060"]
    args = ["fit", model, *gpus, "--ram", "256", "--context", "8192", "--json", *extra]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


REACHED: list = []  # the k of each example that offloaded experts (the next test checks there were some)


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=hst.sampled_from(["qwen3-30b-a3b", "gpt-oss-20b", "glm-4.5-air", "gpt-oss-120b"]),
       vram=hst.integers(6, 80), count=hst.sampled_from([1, 2]))
def test_auto_moves_the_fewest_layers_experts_that_make_the_gpus_fit(model, vram, count):
    """llama.cpp's --fit moves the experts of as few first layers as make every GPU fit: k layers fit, k - 1 do not
    (checked through --n-cpu-moe, which moves exactly the first N layers' experts)."""
    d = _auto_fit(model, vram, count)
    offload = d["deployment"]["offload"]
    if offload["kind"] != "experts":
        return  # it fits whole, or not even with every expert in RAM (then it falls back to whole layers)
    k = offload["host_layers"]
    REACHED.append(k)
    assert all(x["fits"] for x in d["devices"] if not x["host"])
    fewer = _auto_fit(model, vram, count, "--n-cpu-moe", str(k - 1)) if k > 1 else None
    if fewer is not None:
        assert not all(x["fits"] for x in fewer["devices"] if not x["host"]), (model, vram, count, k)


def test_the_expert_offload_examples_reached_the_check():
    """The property above returns early where nothing is offloaded: run a case known to offload, so that a change
    making every example return early would still be noticed."""
    d = _auto_fit("qwen3-30b-a3b", 14, 1)  # 17 layers: the routers (read whole) stay on the GPU with attention
    assert d["deployment"]["offload"] == {"kind": "experts", "host_layers": 17}
    assert not all(x["fits"] for x in _auto_fit("qwen3-30b-a3b", 14, 1, "--n-cpu-moe", "16")["devices"]
                   if not x["host"])


@pytest.mark.parametrize("args, words", [
    (["llama-3.1-8b", "--n-cpu-moe", "3"], "llama-3.1-8b has no routed experts"),  # a dense model
    (["llama-3.1-8b", "--cpu-moe"], "llama-3.1-8b has no routed experts"),
    (["gpt-oss-120b", "--n-cpu-moe", "37"], "--n-cpu-moe 37: gpt-oss-120b has 36 layers"),  # more layers than it has
    (["gpt-oss-120b", "-ot", r"blk\.(9[0-9])\.ffn_.*_exps=CPU"], "matches no routed-expert tensor of gpt-oss-120b"),
])
def test_an_expert_offload_that_cannot_apply_to_the_model_is_one_line_and_exit_2(args, words):
    """Issue 15's acceptance: --n-cpu-moe on a dense model, more layers than the model has, a pattern that matches
    none of its tensors (this one names layers 90-99 of a 36-layer model) - through the real process."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "advisor", "fit", *args, "--gpu", "RTX 4090", "--ram", "64"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("advisor: error: ") and words in r.stderr
    ok = CliRunner().invoke(main, ["fit", "gpt-oss-120b", "--n-cpu-moe", "36", "--gpu", "RTX 4090", "--ram", "64"])
    assert ok.exit_code == 0  # as many layers as it has is every layer


def test_check_with_cpu_moe_places_a_dense_model_as_without_it():
    """check runs one --cpu-moe over every model: a dense one is placed as llama.cpp places it with the option
    (which matches no tensor there), the layer split. Before, qwen3-32b read 'none' (no fit) with --cpu-moe and
    gpu+cpu with 13 layers in RAM without it."""
    def rows(*extra):
        r = CliRunner().invoke(main, ["check", "--gpu", "RTX 4090", "--ram", "64", "--kv-type", "f16", *extra,
                                      "--json"])
        assert r.exit_code == 0, r.output
        return {x["model"]: x for x in json.loads(r.stdout)["results"]}

    plain, moe = rows(), rows("--cpu-moe")
    dense = moe["qwen3-32b"]
    assert dense["placement"] == plain["qwen3-32b"]["placement"] == "gpu+cpu"
    assert dense["deployment"]["offload"] == plain["qwen3-32b"]["deployment"]["offload"] == \
        {"kind": "layers", "host_layers": 13}
    assert moe["gpt-oss-120b"]["deployment"]["offload"] == {"kind": "experts", "host_layers": 36}
