"""Predictions against measurement files: the accuracy table behind `bench/validate.py` and `advisor validate`.

Reads any CSV with the columns of calibration/memory_logs.csv (memory lines from llama.cpp / vLLM logs) or
calibration/throughput.csv (measured tokens/s). Each row is mapped from its own fields (model name, engine,
quant, KV types, context, slots, GPU name and count, bandwidth) to a profile and a simulated machine, so a
file never seen before works the same way. What cannot be mapped is listed with the reason, never dropped.
"""

from __future__ import annotations

import csv
import re
import statistics
from pathlib import Path

from advisor import engines
from advisor.apps.estimate import estimate
from advisor.core.hardware import Device, Machine
from advisor.core.memory import EngineSettings, KVChoice
from advisor.core.record import record
from advisor.core.speed import estimate_speed
from advisor.core.units import GIB, MIB
from advisor.errors import AdvisorError, UsageError
from advisor.sources.catalog import find_by_nvml_name, find_hardware

# Targets (issue 7): relative error allowed per quantity, and for decode the share of rows that must meet it.
TARGETS = {"kv": 0.005, "weights": 0.03, "compute": 0.25, "total": 0.10, "kv_budget": 0.10, "decode": 0.25}
DECODE_SHARE_TARGET = 0.80
QUANTITIES = ("weights", "kv", "kv_budget", "compute", "total", "verdict", "decode", "prefill")
# llama-bench tg128 generates 128 tokens from an empty cache: 64 cached on average. ./main runs are short too.
BENCH_CONTEXT = 64
# A GPU the row does not name: big enough that only the terms are compared, not the verdict.
UNNAMED_GPU_BYTES = 512 * GIB
HOST_RAM_BYTES = 1024 * GIB

MEMORY_COLUMNS = {"id", "engine", "model", "quant", "n_ctx", "kv_type_k", "kv_total_mib", "gpu", "outcome"}
THROUGHPUT_COLUMNS = {"id", "hardware", "backend", "model", "quant", "tg_tok_s"}


@record
class Check:
    row_id: str
    quantity: str
    measured: float | str
    predicted: float | str
    target: float | None  # relative error allowed; None: reported only

    @property
    def error(self) -> float | None:
        if isinstance(self.measured, str) or isinstance(self.predicted, str):
            return None
        return self.predicted / self.measured - 1 if self.measured else None

    @property
    def within(self) -> bool | None:
        if self.quantity == "verdict":
            return self.measured == self.predicted
        if self.target is None or self.error is None:
            return None
        return abs(self.error) <= self.target


@record
class Unmapped:
    row_id: str
    what: str  # the row, or one quantity of it
    reason: str


# ------------------------------------------------------------------ reading rows

def _number(text: str | None) -> float | None:
    m = re.search(r"[\d]+(?:\.\d+)?", text or "")
    return float(m.group(0)) if m else None


def _first_int(text: str | None) -> int | None:
    m = re.match(r"\s*(\d+)", text or "")
    return int(m.group(1)) if m else None


def _mib_values(cell: str) -> list[float]:
    """'CUDA0=2113.28; CUDA1=2290.21' -> [2113.28, 2290.21]."""
    return [float(x) for x in re.findall(r"=\s*([\d.]+)", cell or "")]


def _gib_value(cell: str, key: str) -> float | None:
    """vLLM prints GiB (sometimes labelled GB: the same bytes / 2^30)."""
    m = re.search(key + r"[^\d]*([\d.]+)\s*Gi?B", cell or "")
    return float(m.group(1)) if m else None


def resolve_model(name: str, registry) -> str | None:
    """A log's model name to a shipped profile id: 'meta-llama/Meta-Llama-3-8B' -> llama-3-8b."""
    candidates = re.findall(r"\(([^)]*)\)", name) + [name]
    for text in candidates:
        base = text.strip().split("/")[-1].lower()
        for suffix in ("-instruct", "-chat", "-hf"):
            base = base.replace(suffix, "")
        for form in (base, re.sub(r"^meta-", "", base), base.replace(" ", "-")):
            try:
                return registry.model(form).id
            except AdvisorError:
                continue
    return None


def resolve_hardware(text: str):
    """'2x NVIDIA GeForce RTX 3090' -> (2, spec); unknown -> (count, None)."""
    m = re.match(r"\s*(\d+)\s*x\s+(.*)", text or "")
    count, name = (int(m.group(1)), m.group(2)) if m else (1, text or "")
    spec = find_by_nvml_name(name.strip())
    if spec is None:
        short = re.sub(r"\(.*", "", name).strip()
        try:
            spec = find_hardware(short) if short else None
        except UsageError:
            spec = None
    return count, spec


def _engine(row) -> str:
    """The engine a log row names (its own words, e.g. "vLLM (V0 worker)"); the first engine when none matches.
    The most specific name wins ("ollama" over the "llama.cpp" it runs)."""
    text = row["engine"].lower()
    hits = [(len(n), e.name) for e in engines.all_engines() for n in e.log_names if n in text]
    return max(hits)[1] if hits else engines.names()[0]


def _device(name: str, kind: str, memory: int, bandwidth: float | None, spec, index: int = 0) -> Device:
    from advisor.sources.catalog import fp16_tflops

    return Device(name=name, kind=kind, memory_total_bytes=memory, bandwidth_gb_s=bandwidth,
                  fp16_tflops=fp16_tflops(spec) if spec else None, catalog_id=spec.id if spec else None, index=index,
                  segment=spec.segment if spec else "")


# ------------------------------------------------------------------ memory rows

# llama-bench's backend column for a CPU-only build
CPU_BACKEND = "cpu"
# llama.cpp prints "kv_unified = true" when one cache is shared by the slots (-kvu); a row says so in other_reported
KV_UNIFIED_WORD = "kv_unified = true"
# A CPU-only row: its gpu cell starts with "none" ("none (CPU only: AMD EPYC, 2 cores, AVX-512, 24 GB RAM)")
CPU_ONLY_PREFIX = "none"
CPU_ISA_WORDS = {"avx-512": "avx512", "avx512": "avx512", "avx2": "avx2", "neon": "neon"}


def _cpu_only_machine(row):
    """(machine, named, None) for a CPU-only row: no GPU, the RAM and instruction set the cell names."""
    from advisor.detect.simulated import with_cpu

    text = row["gpu"].lower()
    ram = re.search(r"(\d+(?:\.\d+)?)\s*gb ram", text)
    ram_bytes = int(float(ram.group(1)) * GIB) if ram else HOST_RAM_BYTES
    isa = next((v for k, v in CPU_ISA_WORDS.items() if k in text), None)
    cores = re.search(r"(\d+)\s*cores?", text)
    machine = Machine("simulated", (), ram_bytes, ram_bytes)
    machine = with_cpu(machine, cores=int(cores.group(1)) if cores else None, isa=isa)
    return machine, ram is not None, None


def _memory_machine(row, engine: str):
    """(machine, named): a machine with the row's GPUs; named=False when the log does not say which GPU."""
    if row["gpu"].strip().lower().startswith(CPU_ONLY_PREFIX):
        return _cpu_only_machine(row)
    count, spec = resolve_hardware(row["gpu"])
    count = _first_int(row.get("n_gpus")) or count
    total_gib = _gib_value(row.get("other_reported", ""), "total_gpu_memory")
    apple = "apple" in row["gpu"].lower() or "metal" in row["engine"].lower()
    if apple:
        size = re.search(r"(\d+)\s*GB\)", row["gpu"])  # "Apple M1 (7-core GPU, 8 GB)"
        ram = float(size.group(1)) if size else None
        from advisor.core.hardware import apple_working_set_bytes

        memory = apple_working_set_bytes(int(ram * GIB)) if ram else UNNAMED_GPU_BYTES
        named = ram is not None
        devices = (_device(row["gpu"], "apple", memory, spec.bandwidth_gb_s if spec else None, spec),)
    else:
        if total_gib:
            memory, named = int(total_gib * GIB), True
        elif spec and spec.memory_gib:
            memory, named = int(spec.memory_gib * GIB), True
        else:
            memory, named = UNNAMED_GPU_BYTES, False
        devices = tuple(_device(row["gpu"], "gpu", memory, spec.bandwidth_gb_s if spec else None, spec, i)
                        for i in range(count))
    return Machine("simulated", devices, HOST_RAM_BYTES, HOST_RAM_BYTES), named, spec


def memory_checks(row, registry) -> tuple[list[Check], list[Unmapped]]:
    rid = row["id"]
    profile = resolve_model(row["model"], registry)
    if profile is None:
        return [], [Unmapped(rid, "row", f"model '{row['model']}' matches no profile")]
    engine = _engine(row)
    context = _first_int(row["n_ctx"])
    if context is None:
        return [], [Unmapped(rid, "row", f"context not in the log ('{row['n_ctx']}')")]
    quant = row["quant"].split()[0] if row["quant"].strip() else ""
    skipped, checks = [], []
    known_quant = quant.upper() in {q.upper() for q in registry.quants.recipes}
    if not known_quant:
        skipped.append(Unmapped(rid, "weights, total", f"quant '{quant}' has no recipe (custom / ik_llama type)"))
    kv_k = row.get("kv_type_k") or "f16"
    kv_v = row.get("kv_type_v") or kv_k
    budget_log = engines.get(engine).log_reports == "kv_budget"
    parallel = _first_int(row.get("n_seq_or_parallel")) if not budget_log else 1
    settings = EngineSettings(name=engine, parallel=parallel or 1,
                              flash_attn=(row.get("flash_attn", "").strip() == "1") if row.get("flash_attn") else None,
                              kv_unified=KV_UNIFIED_WORD in (row.get("other_reported") or ""))
    machine, named, spec = _memory_machine(row, engine)
    try:
        est = estimate(registry.model(profile), quant if known_quant else "Q4_K_M", KVChoice(kv_k, kv_v),
                       settings, context, machine, registry.quants)
    except AdvisorError as exc:
        return [], [Unmapped(rid, "row", str(exc))]
    if budget_log:
        weights_gib = _gib_value(row["model_buffer_mib_per_device"], r"(?:take|took)")
        if weights_gib is not None and known_quant:
            per_gpu = "per GPU" in row["model_buffer_mib_per_device"]
            predicted = est.weights_bytes / (len(machine.gpus) if per_gpu else 1)
            checks.append(Check(rid, "weights", weights_gib, predicted / GIB, TARGETS["weights"]))
        budget = _gib_value(row["kv_total_mib"], r"(?:kv_cache_size|available_kv_cache_memory)")
        if budget is not None and named:
            d = est.devices[0]
            free = d.usable_bytes - d.weights_bytes - d.compute_bytes - d.overhead_bytes
            checks.append(Check(rid, "kv_budget", budget, free / GIB, TARGETS["kv_budget"]))
    else:
        logged_kv = _number(row["kv_total_mib"])
        if logged_kv is not None:
            checks.append(Check(rid, "kv", logged_kv, est.kv_bytes / MIB, TARGETS["kv"]))
        weights = _mib_values(row["model_buffer_mib_per_device"]) + _mib_values(row["cpu_or_host_model_buffer_mib"])
        # CPU-only, the engine's host overhead gives back the tied output copy the weights list (llama.cpp's output
        # layer is token_embd itself there); with a GPU the overhead is the CUDA runtime, which logs do not show
        cpu_only = not machine.gpus
        placed = est.weights_bytes + (est.overhead_bytes if cpu_only else 0)
        if weights and known_quant:
            checks.append(Check(rid, "weights", sum(weights), placed / MIB, TARGETS["weights"]))
        compute = _mib_values(row["compute_buffer_mib_per_device"])
        if compute:
            per_gpu = est.compute_bytes / max(1, len([d for d in est.devices if not d.host and d.layers]))
            checks.append(Check(rid, "compute", compute[0], per_gpu / MIB, TARGETS["compute"]))
        host = _mib_values(row["host_compute_buffer_mib"])
        if weights and compute and logged_kv is not None and known_quant:
            measured = sum(weights) + logged_kv + sum(compute) + sum(host)
            predicted = (placed + est.kv_bytes + est.compute_bytes + est.host_compute_bytes) / MIB
            checks.append(Check(rid, "total", measured, predicted, TARGETS["total"]))
    outcome = row["outcome"].strip().lower()
    if named and (outcome.startswith("ran") or outcome.startswith("refused")):
        checks.append(Check(rid, "verdict", "fits" if outcome.startswith("ran") else "refused",
                            "fits" if est.fits else "refused", None))
    elif not named:
        skipped.append(Unmapped(rid, "verdict", f"GPU not named in the log ('{row['gpu']}')"))
    decode = _number(row.get("decode_tok_s_in_log"))
    if decode:
        # the logged speed is a short generation: the cache holds a few hundred tokens, not n_ctx
        short = estimate(registry.model(profile), quant if known_quant else "Q4_K_M", KVChoice(kv_k, kv_v),
                         settings, min(context, BENCH_CONTEXT), machine, registry.quants)
        speed = estimate_speed(short, machine)
        if speed.decode_tokens_per_s:
            checks.append(Check(rid, "decode", decode, speed.decode_tokens_per_s, TARGETS["decode"]))
        else:
            skipped.append(Unmapped(rid, "decode", "; ".join(speed.notes) or "no bandwidth for this GPU"))
    return checks, skipped


# ------------------------------------------------------------------ throughput rows

def throughput_checks(row, registry) -> tuple[list[Check], list[Unmapped]]:
    rid = row["id"]
    profile = resolve_model(row["model"], registry)
    if profile is None:
        return [], [Unmapped(rid, "row", f"model '{row['model']}' matches no profile")]
    quant = row["quant"].split()[0]
    if quant.upper() not in {q.upper() for q in registry.quants.recipes}:
        return [], [Unmapped(rid, "row", f"quant '{quant}' has no recipe")]
    _, spec = resolve_hardware(row["hardware"])
    bandwidth = _number(row.get("mem_bw_gbs_given")) or _number(row.get("mem_bw_gbs_spec_inferred"))
    bandwidth = bandwidth or (spec.bandwidth_gb_s if spec else None)
    if bandwidth is None:
        return [], [Unmapped(rid, "row", f"no bandwidth for '{row['hardware']}' (not in the row or the catalog)")]
    backend = row["backend"].strip().lower()
    if backend == CPU_BACKEND:  # a CPU-only run: the measured RAM bandwidth, the cores and ISA the hardware names
        from dataclasses import replace

        machine, _, _ = _cpu_only_machine({"gpu": row["hardware"]})
        machine = replace(machine, cpu_bandwidth_gb_s=bandwidth, cpu_bandwidth_measured=True)
    else:
        kind = "apple" if backend == "metal" else "gpu"
        devices = tuple(_device(row["hardware"], kind, UNNAMED_GPU_BYTES, bandwidth, spec, i)
                        for i in range(_first_int(row.get("n_devices")) or 1))
        machine = Machine("simulated", devices, HOST_RAM_BYTES, HOST_RAM_BYTES)
    est = estimate(registry.model(profile), quant, KVChoice(), EngineSettings(flash_attn=False), BENCH_CONTEXT,
                   machine, registry.quants)
    speed = estimate_speed(est, machine)
    checks, skipped = [], []
    tg = _number(row.get("tg_tok_s"))
    if tg and speed.decode_tokens_per_s:
        checks.append(Check(rid, "decode", tg, speed.decode_tokens_per_s, TARGETS["decode"]))
    pp = _number(row.get("pp_tok_s"))
    if pp and speed.prefill_tokens_per_s:
        checks.append(Check(rid, "prefill", pp, speed.prefill_tokens_per_s, None))
    elif pp:
        skipped.append(Unmapped(rid, "prefill", f"no FP16 figure for '{row['hardware']}' in the catalog"))
    return checks, skipped


# ------------------------------------------------------------------ files and summary

def read_rows(path: Path) -> tuple[str, list[dict]]:
    """('memory' | 'throughput', rows) by the file's columns."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            columns = set(reader.fieldnames or ())
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if MEMORY_COLUMNS <= columns:
        return "memory", rows
    if THROUGHPUT_COLUMNS <= columns:
        return "throughput", rows
    raise UsageError(f"{path}: neither a memory-log nor a throughput file (columns: {', '.join(sorted(columns)[:8])})")


def validate(paths: list[Path]) -> tuple[list[Check], list[Unmapped]]:
    from advisor.sources.profiles import load_registry

    registry = load_registry()
    files = []
    for p in paths:
        if p.is_dir():
            files += sorted(p.glob("*.csv"))
        elif p.exists():
            files.append(p)
        else:
            raise UsageError(f"no such file or directory: {p}")
    if not files:
        raise UsageError(f"no CSV files in {', '.join(map(str, paths))}")
    checks, skipped = [], []
    for f in files:
        kind, rows = read_rows(f)
        for row in rows:
            c, s = (memory_checks if kind == "memory" else throughput_checks)(row, registry)
            checks += c
            skipped += s
    return checks, skipped


def summary(checks: list[Check]) -> list[dict]:
    out = []
    for q in QUANTITIES:
        rows = [c for c in checks if c.quantity == q]
        if not rows:
            continue
        if q == "verdict":
            right = sum(c.within for c in rows)
            out.append({"quantity": q, "rows": len(rows), "median_abs_error": None, "worst_abs_error": None,
                        "share_within_target": right / len(rows), "target": "always right",
                        "met": right == len(rows)})
            continue
        errors = [abs(c.error) for c in rows if c.error is not None]
        target = TARGETS.get(q)
        share = sum(e <= target for e in errors) / len(errors) if target is not None else None
        needed = DECODE_SHARE_TARGET if q == "decode" else 1.0
        out.append({
            "quantity": q, "rows": len(rows), "median_abs_error": statistics.median(errors),
            "worst_abs_error": max(errors), "share_within_target": share,
            "target": None if target is None else (f"±{target:.1%}" + (f" for {needed:.0%} of rows" if needed < 1 else "")),
            "met": None if target is None else share >= needed,
        })
    return out
