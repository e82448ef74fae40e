"""Rendering: tables for people, JSON for scripts, and --explain. Commands never format numbers."""

from __future__ import annotations


from advisor.core.hardware import Machine
from advisor.core.memory import Estimate
from advisor.core.model import newest_families_first
from advisor.present.output import Document, Table, scalars, to_json  # noqa: F401 (to_json re-exported)
from advisor.core.units import GIB, fmt_gib, fmt_mib, fmt_tokens

PLACEMENT_WORDS = {"gpu": "GPU", "gpu+cpu": "GPU+RAM", "cpu": "RAM", "none": "no fit"}
UNKNOWN_MARK = "?"  # after a placement whose fit is unknown (a memory it needs was not given or not readable)


def placement_word(e: Estimate) -> str:
    word = PLACEMENT_WORDS[e.placement]
    if e.deployment is not None and e.deployment.offload.kind == "experts" and e.placement == "gpu+cpu":
        word += " (experts)"  # the routed experts in RAM, the rest on the GPU
    return word + (UNKNOWN_MARK if e.fits is None else "")


def _fits_word(fits: bool | None) -> str:
    return UNKNOWN_MARK if fits is None else "yes" if fits else "NO"


def machine_lines(machine: Machine) -> list[str]:
    lines = []
    tag = {"nvml": "[NVML]", "simulated": "[simulated]", "apple": "[sysctl]", "none": "[detected]"}.get(machine.source, "")
    if machine.gpus:
        for d in machine.gpus:
            mem = fmt_gib(d.memory_total_bytes)
            if d.memory_free_bytes is not None and d.memory_free_bytes != d.memory_total_bytes:
                mem += f" ({d.memory_free_bytes / GIB:.1f} free)"
            if d.kind == "apple":
                mem += " GPU working set"
            bw = f"{d.bandwidth_gb_s:g} GB/s" if d.bandwidth_gb_s else "bandwidth ?"
            watts = f"  {d.power_limit_watts:g} W" if d.power_limit_watts else ""
            lines.append(f"GPU {d.index}  {d.name}  {mem}  {bw}{watts}")
    else:
        lines.append("GPU    none (CPU-only)")
    ram = fmt_gib(machine.ram_total_bytes, 0) if machine.ram_total_bytes else "?"
    if machine.ram_available_bytes is not None and machine.ram_available_bytes != machine.ram_total_bytes:
        ram += f" ({machine.ram_available_bytes / GIB:.0f} free)"
    lines.append(f"RAM    {ram}   {tag}")
    if machine.cpu is not None:
        lines.append(cpu_line(machine.cpu))
    lines += [f"note   {n}" for n in machine.notes]
    return lines


def cpu_line(cpu) -> str:
    cores = f"{cpu.cores:g} cores" if cpu.cores is not None else "cores ?"
    threads = f"{cpu.threads} threads" if cpu.threads is not None else "threads ?"
    isa = cpu.isa.name if cpu.isa is not None else "ISA ?"
    return f"CPU    {cores}, {threads}, {isa}"


def speed_explain_lines(speed) -> list[str]:
    """The CPU's decode ceiling and prefill with this run's numbers (the host terms of core/speed.py)."""
    out = []
    host = speed.terms.get("host RAM")
    if host:
        out.append("Decode, the CPU's part (layers or experts in RAM), seconds per token:")
        out.append(f"  memory  = bytes read / (efficiency x RAM bandwidth) = {host['bytes_read']} / "
                   f"({host['bandwidth_efficiency']:g} x {host['bandwidth_gb_s']:g} GB/s) = {host['memory_seconds']:.4f} s")
        if "compute_seconds" in host:
            out.append(f"  compute = 2 x parameters read / (cores x GFLOPS per core) = 2 x {host['params_read']} / "
                       f"({host['cpu_compute_cores']:g} x {host['gflops_per_core']:g} GFLOPS) = "
                       f"{host['compute_seconds']:.4f} s")
            out.append(f"    parameters read = the CPU's share of the active parameters = "
                       f"{host['compute_share']:.4g} x {host['active_params']}")
            out.append(f"    cores = min({host['cpu_threads']} threads, {host['cpu_cores']:g} cores); "
                       f"{host['cpu_isa']} {host['cpu_format']}: {host['gflops_per_core_source']}")
            out.append(f"  host    = max(memory, compute) + layers x overhead = {host['seconds']:.4f} s "
                       f"({host['bound']}-bound)")
        else:
            out.append(f"  host    = memory + layers x overhead = {host['seconds']:.4f} s (compute ceiling unknown)")
    pre = speed.terms.get("CPU prefill")
    if pre:
        out.append(f"Prefill on the CPU = cores x GFLOPS per core / (2 x active parameters) = "
                   f"{pre['cpu_compute_cores']:g} x {pre['gflops_per_core']:g}e9 / (2 x {pre['active_params']}) = "
                   f"{pre['tokens_per_s']:.1f} tokens/s")
        out.append(f"    {pre['cpu_isa']} {pre['cpu_format']}: {pre['gflops_per_core_source']}")
    off = speed.terms.get("prefill, RAM weights copied to the GPU")
    if off:
        out.append(f"Prefill with weights in RAM: for each ubatch of >= {off['offload_min_batch']} tokens the engine "
                   f"copies them to {off['gpu']} and computes there, per ubatch of {off['n_ubatch']} tokens:")
        out.append(f"  compute = n_ubatch x 2 x active parameters / GPU FLOPS = {off['n_ubatch']} x 2 x "
                   f"{off['active_params']} / {off['gpu_flops_per_s']:.4g} = {off['compute_seconds']:.3f} s")
        out.append(f"  copy    = bytes used / (efficiency x link) = {off['bytes_copied']} / "
                   f"({off['copy_efficiency']:g} x {off['link_bandwidth_gb_s']:g} GB/s, {off['link']}) = "
                   f"{off['copy_seconds']:.3f} s")
        out.append(f"  prefill = n_ubatch / (compute + copy) = {off['n_ubatch']} / {off['seconds_per_ubatch']:.3f} s = "
                   f"{off['tokens_per_s']:.1f} tokens/s")
    return out


def engine_line(est: Estimate) -> str:
    from advisor import engines

    return engines.get(est.engine).summary_line(est)


def _tok_s(value) -> str:
    if value is None:
        return "—"
    return f"~{value:.0f}" if value >= 10 else f"~{value:.1f}"


REDUCED_MARK = "↓"  # a check row shown below the model's trained maximum, where that does not run


def check_table(estimates: list[Estimate], machine: Machine, speeds=None) -> Table:
    """One row per model x quant x KV type (the full KV layout is in fit and `advisor models`). `speeds`: each
    row's estimate_speed, when made already."""
    from advisor.core.speed import estimate_speed

    rows = []
    for n, e in enumerate(estimates):
        decode = (speeds[n] if speeds is not None else estimate_speed(e, machine)).decode_tokens_per_s
        name = e.model + (" *" if e.what_if else "")
        max_ctx = fmt_tokens(e.max_context)
        if e.max_context is not None and e.max_context >= e.model_max_context:
            max_ctx += " max"
        kv = e.kv_type + (f" {e.kv_layout.split()[0]}" if e.kv_layout.startswith(("MLA", "YOCO")) else "")
        size = ("<=" if e.upper_bound else "") + f"{e.total_bytes / GIB:.1f}"
        ctx = fmt_tokens(e.context) + (REDUCED_MARK if e.context_reduced_from else "")
        rows.append((name, e.quant, kv, max_ctx, ctx, size,
                     placement_word(e), _tok_s(decode)))
    headers = ("model", "quant", "KV", "GPU ctx", "ctx", "GiB", "runs on", "tok/s")
    return Table(headers, tuple(rows), status_column=6, wrap=(0,))


def check_document(machine: Machine, estimates: list[Estimate]) -> Document:
    from advisor.api import result_dict
    from advisor.core.speed import estimate_speed

    speeds = [estimate_speed(e, machine) for e in estimates]
    results = [result_dict(e, machine, speed) for e, speed in zip(estimates, speeds)]
    head = machine_lines(machine)
    if estimates:
        head.append(engine_line(estimates[0]))
    tail = []
    if any(e.what_if for e in estimates):
        tail.append("* what-if: a KV scheme retrofitted onto a model that lacks it (no checkpoint).")
        tail += _what_if_summary(estimates)
        tail.append("")
    tail.append("GPU ctx: largest context entirely on the GPU(s); 'max': the model's own limit.")
    if any(e.context_reduced_from for e in estimates):
        tail.append(f"{REDUCED_MARK}: does not run at the model's trained maximum here; shown at the largest power-of-two "
                    "context that does (--context for another).")
    beyond = {e.model: e for e in estimates if e.context > e.model_max_context}
    if beyond:
        tail.append("ctx beyond the trained maximum (the memory is computed; quality there is not assured): "
                    + ", ".join(f"{m} at {fmt_tokens(e.context)} (trained {fmt_tokens(e.model_max_context)})"
                                for m, e in beyond.items()) + ".")
    tail.append("GiB: weights + KV cache + compute buffers + overhead at ctx (no headroom).")
    if any(e.upper_bound for e in estimates):
        tail.append("<=: an upper bound, layers of a kind advisor does not model counted as full attention.")
    if any(e.fits is None for e in estimates):
        tail.append(f"{UNKNOWN_MARK}: fit unknown, a memory size was not given or not readable (fit --json: notes).")
    tail.append("tok/s: decode, one sequence, full cache of ctx. Prefill, ranges: fit, --json.")
    tail.append("Next: advisor fit MODEL --explain   (one configuration, term by term)")
    return Document(data={"machine": machine.as_dict(), "results": results},
                    records=lambda: tuple(scalars(r) for r in results), head=tuple(head),
                    table=lambda: check_table(estimates, machine, speeds), tail=tuple(tail))


def _what_if_summary(estimates: list[Estimate]) -> list[str]:
    lines = []
    seen = set()
    for e in estimates:
        if e.what_if and e.model not in seen and e.kv_type == "f16":
            seen.add(e.model)
            lines.append(
                f"  {e.model}: KV {fmt_gib(e.kv_bytes)} at {fmt_tokens(e.context)}, weights alone "
                f"{fmt_gib(e.weights_bytes)} at {e.quant}"
            )
    return lines


def fit_document(machine: Machine, e: Estimate, explain: bool) -> Document:
    from advisor.api import result_dict

    head = machine_lines(machine) + [engine_line(e)]
    out = []
    out.append(f"{e.model}  {e.quant}  KV {e.kv_type} ({e.kv_layout})  context {e.context}")
    if e.what_if:
        out.append(f"what-if: {e.what_if}")
    out.append(f"  weights          {fmt_gib(e.weights_bytes, 2):>12}   {e.params / 1e9:.2f} B params, {e.bits_per_weight:.2f} bits/weight")
    out.append(f"  KV cache         {fmt_gib(e.kv_bytes, 2):>12}   {e.kv_bytes_per_token} bytes/token")
    out.append(f"  compute buffers  {fmt_gib(e.compute_bytes + e.host_compute_bytes, 2):>12}")
    out.append(f"  runtime overhead {fmt_gib(e.overhead_bytes, 2):>12}")
    out.append(f"  total            {fmt_gib(e.total_bytes, 2):>12}")
    verdict = placement_word(e)
    experts = e.deployment is not None and e.deployment.offload.kind == "experts"
    split = f" ({e.gpu_layers} of {_units(e)} layers on GPU)" if e.placement == "gpu+cpu" and not experts else ""
    out.append(f"  runs on          {verdict}{split}")
    out.append(f"  max context on GPU: {e.max_context if e.max_context is not None else 'none (does not fit on the GPU at any context)'}")
    from advisor.core.speed import estimate_speed

    speed = estimate_speed(e, machine)
    if speed.decode_range:
        lo, hi = speed.decode_range
        out.append(f"  decode           {_tok_s(speed.decode_tokens_per_s)} tokens/s (likely {lo:.0f}-{hi:.0f}) for one sequence at this context")
    if speed.prefill_range:
        lo, hi = speed.prefill_range
        out.append(f"  prefill          {_tok_s(speed.prefill_tokens_per_s)} tokens/s (likely {lo:.0f}-{hi:.0f})")
    out += [f"  note: {n}" for n in speed.notes]
    if e.max_sequences is not None:
        out.append(f"  concurrent sequences of {e.context} tokens: {e.max_sequences}")
    out += [f"  note: {n}" for n in e.notes]
    data = result_dict(e, machine)
    data["machine"] = machine.as_dict()
    tail = []
    if explain:
        data["explain"] = tail = explain_lines(e) + speed_explain_lines(speed)
    # the term-by-term block is read before the per-device table
    if e.devices:
        out += ["", "Per device, in GiB:"]
    return Document(data=data, records=(scalars(data),), head=tuple(head + [""] + out),
                    table=device_table(e) if e.devices else None, tail=tuple(tail))


def _units(e: Estimate) -> int:
    return sum(d.layers for d in e.devices)


def device_table(e: Estimate) -> Table:
    rows = []
    for d in e.devices:
        usable = f"{d.usable_bytes / GIB:.2f}" if d.usable_bytes is not None else "?"
        rows.append((d.name, d.layers, f"{d.weights_bytes / GIB:.2f}", f"{d.kv_bytes / GIB:.2f}",
                     f"{d.compute_bytes / GIB:.2f}", f"{d.total_bytes / GIB:.2f}", usable, _fits_word(d.fits)))
    # sizes in GiB, said once above the table: keeps the device names on one line of 80 columns
    return Table(("device", "layers", "weights", "KV", "compute", "total", "usable", "fits"),
                 tuple(rows), status_column=7, wrap=(0,))


def explain_lines(e: Estimate) -> list[str]:
    from advisor import engines

    lines = ["How this was computed (all sizes in bytes, MiB = 2^20):"]
    lines.append(f"  weights  = sum over tensors of elements x bits of their {e.quant} type / 8 = {e.weights_bytes}"
                 f" ({fmt_mib(e.weights_bytes)})")
    return lines + engines.get(e.engine).explain_lines(e)


def _params(m) -> float:
    if m.params_reference:
        return m.params_reference
    from advisor.core.tensors import weights_layout
    from advisor.sources.profiles import load_registry

    quants = load_registry().quants
    return weights_layout(m, quants.recipe("BF16"), quants).params


def models_document(models, user_dir: str, user_only: bool = False) -> Document:
    """By family (newest family first), then by size; each with its cache layout, trained context, the format its
    weights ship in and its release date."""
    models = list(models)

    def mark(m):
        return " *" if m.what_if else " +" if not m.origin.startswith("profiles/") else ""

    sizes = {m.id: _params(m) for m in models}
    order = newest_families_first(models, size=lambda m: sizes[m.id])
    rows, last = [], None
    for m in order:
        fam = m.family or m.architecture
        if fam != last:  # a family heads its models
            rows.append((fam, "", "", "", "", ""))
            last = fam
        size = sizes[m.id] / 1e9
        rows.append(("  " + m.id + mark(m), (f"{size:.0f}B" if size >= 10 else f"{size:.1f}B")
                     + (" MoE" if m.experts else ""), m.attention_label, fmt_tokens(m.max_context),
                     m.native_quant or "—", m.release_date[:7] or "—"))
    data = [{**m.as_dict(), "params": int(sizes[m.id])} for m in order]
    tail = ["* what-if variant (no such checkpoint exists)   + your profile (advisor import)",
            "native: the format the weights ship in.  advisor check evaluates models of 2025-2026 unless"
            " --all-models.", "Your profiles live in:", f"  {user_dir}"]
    if user_only and not models:
        tail.insert(0, "No user profiles yet: advisor import CONFIG_JSON_OR_GGUF --name ID")
    return Document(data={"user_dir": user_dir, "models": data} if user_only else data,
                    records=tuple(scalars(d) for d in data),
                    table=Table(("model", "params", "cache", "ctx", "native", "released"), tuple(rows),
                                wrap=(0, 2)) if models else None, tail=tuple(tail))


# ------------------------------------------------------------------ validation (bench/validate.py)

def _measure(value, quantity: str) -> str:
    if isinstance(value, str):
        return value
    unit = {"weights": " MiB", "kv": " MiB", "compute": " MiB", "total": " MiB", "kv_budget": " GiB"}.get(quantity, "")
    if quantity == "weights" and value < 100:  # vLLM prints GiB
        unit = " GiB"
    return f"{value:,.2f}{unit}" if quantity not in ("decode", "prefill") else f"{value:,.1f} tok/s"


def validation_text(checks, skipped, summary: list[dict]) -> str:
    from tabulate import tabulate

    rows = []
    for c in checks:
        err = "" if c.error is None else f"{c.error:+.1%}"
        mark = {True: "", False: "MISS", None: ""}[c.within]
        rows.append([c.row_id, c.quantity, _measure(c.measured, c.quantity), _measure(c.predicted, c.quantity), err,
                     mark])
    out = [tabulate(rows, headers=["row", "quantity", "measured", "predicted", "error", ""], tablefmt="simple",
                    disable_numparse=True), ""]
    if skipped:
        out.append("Not compared (the row, or one quantity of it, cannot be mapped):")
        out += [f"  {u.row_id} {u.what}: {u.reason}" for u in skipped]
        out.append("")
    out.append(summary_table(summary))
    misses = [c for c in checks if c.within is False]
    if misses:
        out.append("")
        out.append("Outside their target:")
        out += [f"  {c.row_id} {c.quantity}: measured {_measure(c.measured, c.quantity)}, predicted "
                f"{_measure(c.predicted, c.quantity)}" + (f" ({c.error:+.1%})" if c.error is not None else "")
                for c in misses]
    return "\n".join(out)


def summary_table(summary: list[dict]) -> str:
    from tabulate import tabulate

    def pct(x):
        return "—" if x is None else f"{x:.1%}"

    rows = [[s["quantity"], s["rows"], pct(s["median_abs_error"]), pct(s["worst_abs_error"]),
             pct(s["share_within_target"]), s["target"] or "reported only",
             {True: "yes", False: "NO", None: ""}[s["met"]]] for s in summary]
    return tabulate(rows, headers=["quantity", "rows", "median abs error", "worst abs error", "within target",
                                   "target", "met"], tablefmt="github", disable_numparse=True)


# ------------------------------------------------------------------ advisor models --remote

def remote_document():
    """What `advisor models --remote` prints: each recorded name, what was read for it, when, and from where."""
    from advisor.sources.hub import _size, cached_records, records_dir

    rows, data = [], []
    for r in cached_records():
        kind = r.get("kind")
        if kind == "gguf":
            tensors = r.get("tensors") or []
            weights = sum(int(t[3]) for t in tensors if isinstance(t, list) and len(t) == 4)
            parts = len(r.get("files") or [])
            what = f"GGUF{f' ({parts} parts)' if parts > 1 else ''}, {_size(weights)} of tensors"
        else:
            st = r.get("safetensors") or {}
            params = sum((st.get("parameters") or {}).values())
            what = "config.json" + (f", {params / 1e9:.2f}B params ({'/'.join(sorted(st['parameters']))})"
                                    if params else "")
            weights = None
        entry = {"name": r.get("name"), "key": r.get("key"), "kind": kind, "fetched": r.get("fetched"),
                 "source": r.get("source"), "where": r.get("where"), "commit": r.get("commit") or None,
                 "weights_bytes": weights, "header_bytes": r.get("header_bytes"), "cache_file": r.get("path")}
        data.append(entry)
        rows.append((r.get("name") or r.get("key"), what, str(r.get("fetched") or "")[:10], r.get("source") or ""))
    tail = [f"Kept in {records_dir()}: these names also work with --offline (or without a network)."]
    if not data:
        tail.insert(0, "Nothing fetched yet: e.g. advisor fit Qwen/Qwen3-8B, advisor fit unsloth/Qwen3-8B-GGUF:Q4_K_M")
    return Document(data={"cache_dir": str(records_dir()), "models": data}, records=tuple(data),
                    table=Table(("name", "read", "fetched", "from"), tuple(rows), wrap=(3, 1)) if rows else None,
                    tail=tuple(tail))
