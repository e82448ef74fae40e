"""Golden outputs: the CLI's JSON for a fixed set of questions, stored so that a refactor that changes an answer
shows up as a diff. Each case is (file name, argv). Regenerate after an intended change with

    python tests/golden/cases.py --write

and say in the commit which numbers changed and why (tests/test_golden.py compares them on every run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent

# check over every shipped model on four machines of different shapes (discrete, two GPUs, unified, CPU-only)
CHECK_MACHINES = {
    "check-rtx4090-64g": ["--gpu", "RTX 4090", "--ram", "64"],
    "check-2x3090-64g": ["--gpu", "2x RTX 3090", "--ram", "64"],
    "check-m2ultra-192g": ["--gpu", "M2 Ultra", "--ram", "192"],
    "check-cpu-64g": ["--ram", "64"],
}

# fit for every row of tests/data/calibration/memory_logs.csv: the logged model, weights, context, cache types,
# flash attention and the closest catalog GPU (rows whose GPU the log does not name get a 24 GB card; custom
# ik_llama.cpp quants become Q4_K_M, as in tests/test_calibration.py)
CALIBRATION_FITS = {
    "A01": ["llama-3-8b", "--quant", "Q4_K_M", "--context", "8192", "--no-flash-attn", "--gpu", "RTX 4090"],
    "A02": ["llama-3-8b", "--quant", "Q4_K_M", "--context", "8192", "--no-flash-attn", "--gpu", "2x RTX 3090"],
    "A03": ["llama-3-8b", "--quant", "Q4_K_M", "--context", "8192", "--no-flash-attn", "--gpu", "4x RTX 3090"],
    "A04": ["llama-3-8b", "--quant", "Q4_K_M", "--context", "512", "--no-flash-attn", "--gpu", "M1", "--ram", "8"],
    "A05": ["llama-3-8b", "--quant", "Q4_K_M", "--context", "8192", "--no-flash-attn", "--gpu", "M2 Ultra",
            "--ram", "192"],
    "A06": ["llama-2-7b", "--quant", "Q4_0", "--context", "512", "--no-flash-attn", "--gpu", "A100 PCIe 80GB"],
    "A07": ["llama-2-7b", "--quant", "F16", "--context", "512", "--no-flash-attn", "--gpu", "A100 PCIe 80GB"],
    "A08": ["llama-2-13b", "--quant", "Q4_0", "--context", "512", "--no-flash-attn", "--gpu", "A100 PCIe 80GB"],
    "A09": ["llama-2-13b", "--quant", "F16", "--context", "512", "--no-flash-attn", "--gpu", "A100 PCIe 80GB"],
    "A10": ["llama-2-70b", "--quant", "Q4_0", "--context", "512", "--no-flash-attn", "--gpu", "A100 PCIe 80GB"],
    "A14": ["mistral-7b-v0.2", "--quant", "Q2_K", "--context", "32000", "--no-flash-attn", "--gpu", "RTX 4090"],
    "A26": ["llama-3.1-8b", "--quant", "Q4_K_M", "--context", "1024", "--no-flash-attn", "--kv-type-k", "iq4_nl",
            "--kv-type-v", "f16", "--gpu", "RTX 3090"],
    "A27": ["llama-3.1-8b", "--quant", "Q4_K_M", "--context", "2048", "--parallel", "4", "--flash-attn",
            "--kv-type-k", "q8_0", "--kv-type-v", "iq4_nl", "--gpu", "RTX 4090"],
    "A28": ["llama-3.1-8b", "--quant", "Q4_K_M", "--context", "2048", "--parallel", "4", "--flash-attn",
            "--kv-type-k", "q5_1", "--kv-type-v", "q5_0", "--gpu", "RTX 4090"],
    "A29": ["llama-2-13b", "--quant", "Q8_0", "--context", "512", "--no-flash-attn", "--gpu", "RTX 3090 Ti"],
    "A32": ["llama-3-8b", "--engine", "vllm", "--quant", "BF16", "--gpu", "A100 SXM4 80GB"],
    "A33": ["llama-3-8b", "--engine", "vllm", "--quant", "BF16", "--gpu", "2x A100 SXM4 80GB"],
    "A34": ["llama-3.1-8b", "--engine", "vllm", "--quant", "BF16", "--context", "20000", "--gpu", "RTX 3090"],
    "A35": ["llama-3.1-8b", "--engine", "vllm", "--quant", "BF16", "--context", "29000", "--gpu", "RTX 3090"],
}

# the questions tests/test_plan.py asks of the whole catalog
PLANS = {
    "plan-llama-3-70b-32k-15": ["--model", "llama-3-70b", "--context", "32768", "--min-tokens-per-s", "15",
                                "--max-gpus", "4"],
    "plan-llama-3-8b-64k-30": ["--model", "llama-3-8b", "--context", "65536", "--min-tokens-per-s", "30",
                               "--max-gpus", "4"],
    "plan-deepseek-v2-lite-64k-10": ["--model", "deepseek-v2-lite", "--context", "65536", "--min-tokens-per-s", "10",
                                     "--max-gpus", "4"],
    "plan-llama-3-8b-8k-20-vllm": ["--model", "llama-3-8b", "--context", "8192", "--min-tokens-per-s", "20",
                                   "--engine", "vllm", "--max-gpus", "4"],
    "plan-llama-3-70b-vllm": ["--model", "llama-3-70b", "--context", "8192", "--min-tokens-per-s", "10",
                              "--engine", "vllm", "--max-gpus", "4"],
}
# plan's money figures depend on the electricity price: fix it so the files do not follow the preset table
PLAN_MONEY = ["--kwh-price", "0.30", "--tokens-per-day", "1000000"]


# the profiles shipped when the files were written (issue 13): later profiles have tests of their own, and adding
# one must not rewrite these files
GOLDEN_MODELS = ("deepseek-llm-67b", "deepseek-v2-lite", "deepseek-v2", "deepseek-v3", "gemma-2-9b", "gemma-2-27b",
                 "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b", "llama-3.1-8b",
                 "llama-3.1-70b", "llama-3.1-405b", "llama-3-70b-mla", "llama-3-70b-yoco", "mistral-7b-v0.2",
                 "mixtral-8x7b", "qwen2.5-7b", "qwen2.5-32b", "qwen2.5-72b", "yoco-3b", "yoco-3b-gqa")


def cases() -> dict[str, list[str]]:
    models = [arg for m in GOLDEN_MODELS for arg in ("--model", m)]
    out = {name: ["check", *args, *models, "--json"] for name, args in CHECK_MACHINES.items()}
    out.update({f"fit-{row}": ["fit", *args, "--json"] for row, args in CALIBRATION_FITS.items()})
    out.update({name: ["plan", *args, *PLAN_MONEY, "--json"] for name, args in PLANS.items()})
    return out


def run(argv: list[str]) -> dict:
    from click.testing import CliRunner

    from advisor.cli import main

    result = CliRunner().invoke(main, argv, catch_exceptions=False)
    assert result.exit_code == 0, (argv, result.output)
    return json.loads(result.stdout)


def path_of(name: str) -> Path:
    return HERE / f"{name}.json"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/golden/cases.py --write")
    import datetime as dt

    import advisor.cli

    advisor.cli._today = lambda: dt.date(2026, 12, 1)  # as tests/test_golden.py fixes it
    for name, argv in cases().items():
        path_of(name).write_text(json.dumps(run(argv), indent=1, sort_keys=True) + "\n")
        print("wrote", path_of(name).name)
