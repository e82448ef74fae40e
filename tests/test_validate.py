"""The validation benchmark: targets on the calibration files, unseen files, and the script as a process."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.errors import UsageError
from advisor.apps.validate import summary, validate
from conftest import DATA

ROOT = Path(__file__).parent.parent
CALIBRATION = DATA / "calibration"

# Rows outside a target, each with its physical reason. A new miss, or one of these getting worse than the
# bound given, fails the test: the targets guard against regressions.
KNOWN_MISSES = {
    # the GGUF was made in Dec 2023 with the pre-2024 Q2_K recipe (ffn_gate/ffn_up at Q3_K); today's is smaller
    ("A14", "weights"): 0.13,
    # llama-imatrix, not inference: it evaluates and keeps logits for every token of the batch
    ("A29", "compute"): 0.70,
    # vLLM profiles activations at max_model_len = 29000; the 8 x intermediate per token estimate is low there
    ("A35", "kv_budget"): 0.12,
    # M1 Max 24-core (32 GB) on build 1026 (Aug 2023): slower Metal kernels than the rows the fit comes from
    ("T3-011", "decode"): 0.70,
    ("T3-012", "decode"): 0.40,
    # base M1 (7-core GPU, 8 GB), evaluated since the catalog has the M1: 9.6 tok/s measured, 12.3 predicted from
    # 68.25 GB/s at the Metal fit's efficiency; the base chip reaches a smaller share of its peak than Max/Ultra
    ("A04", "decode"): 0.30,
}


@pytest.fixture(scope="module")
def result():
    return validate([CALIBRATION])


def test_every_target_is_met_apart_from_the_known_misses(result):
    checks, _ = result
    misses = {(c.row_id, c.quantity): abs(c.error) if c.error is not None else None
              for c in checks if c.within is False}
    assert set(misses) <= set(KNOWN_MISSES), f"new misses: {set(misses) - set(KNOWN_MISSES)}"
    for key, err in misses.items():
        assert err is not None and err <= KNOWN_MISSES[key], (key, err)
    by_q = {s["quantity"]: s for s in summary(checks)}
    for q in ("kv", "total", "verdict", "decode"):
        assert by_q[q]["met"], by_q[q]
    assert by_q["kv"]["worst_abs_error"] == 0  # exact where the config is known
    assert by_q["decode"]["share_within_target"] >= 0.80 and by_q["decode"]["median_abs_error"] <= 0.10
    assert by_q["decode"]["rows"] >= 130 and by_q["weights"]["rows"] >= 12 and by_q["verdict"]["rows"] >= 10


def test_rows_that_cannot_be_mapped_are_listed_with_a_reason(result):
    checks, skipped = result
    ids = {c.row_id for c in checks} | {u.row_id for u in skipped}
    with open(CALIBRATION / "memory_logs.csv", encoding="utf-8") as f:
        assert {r["id"] for r in csv.DictReader(f)} <= ids  # nothing silently dropped
    reasons = {(u.row_id, u.what): u.reason for u in skipped}
    assert "context not in the log" in reasons[("A32", "row")]
    assert "no recipe" in reasons[("A27", "weights, total")]


def test_a_file_never_seen_before_with_the_same_columns(tmp_path):
    with open(CALIBRATION / "memory_logs.csv", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    a01 = next(r for r in rows if r["id"] == "A01")
    new = [
        # the same card and model at a quarter of the context: the cache is a quarter, exactly
        {**a01, "id": "N1", "n_ctx": "2048", "kv_total_mib": "256.00", "kv_k_mib": "128.00", "kv_v_mib": "128.00",
         "compute_buffer_mib_per_device": "", "decode_tok_s_in_log": ""},
        {**a01, "id": "N2", "model": "Some-Unknown-Model-13B"},
        {**a01, "id": "N3", "n_ctx": "lots"},
    ]
    path = tmp_path / "new_logs.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(new)
    checks, skipped = validate([path])
    kv = next(c for c in checks if c.row_id == "N1" and c.quantity == "kv")
    assert kv.predicted == 256.0 and kv.within
    assert {u.row_id for u in skipped} >= {"N2", "N3"}


def test_a_file_with_other_columns_is_a_clear_error(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(UsageError, match="neither a memory-log nor a throughput file"):
        validate([path])


def test_the_script_runs_as_a_process_and_prints_the_table():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "validate.py"), str(CALIBRATION)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "median abs error" in out.stdout and "A01" in out.stdout and "Outside their target:" in out.stdout
    js = subprocess.run([sys.executable, str(ROOT / "bench" / "validate.py"), str(CALIBRATION), "--json"],
                        capture_output=True, text=True, timeout=120)
    data = json.loads(js.stdout)
    assert {s["quantity"] for s in data["summary"]} >= {"weights", "kv", "compute", "total", "verdict", "decode"}
    bad = subprocess.run([sys.executable, str(ROOT / "bench" / "validate.py"), "/nonexistent"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no such file" in bad.stderr and "Traceback" not in bad.stderr


def test_readme_shows_the_table_the_benchmark_prints(result):
    from advisor.present.report import summary_table

    checks, _ = result
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert summary_table(summary(checks)) in readme


def test_nvml_smoke_without_a_driver_says_so_and_exits_2():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "nvml_smoke.py")], capture_output=True, text=True,
                         timeout=120, env={"PATH": "/nonexistent", "HOME": "/tmp"})
    # no nvidia-smi on PATH: detection still reports (CPU-only or whatever NVML said), nothing crashes
    assert out.returncode == 2, out.stderr
    assert "nvidia-smi: not available" in out.stdout and "Traceback" not in out.stderr
