"""profiles/hardware/cpu_isa.toml: per-core throughput of llama.cpp's CPU kernels by instruction set, validated on
load (one line naming the file and the field when a row is wrong)."""

from __future__ import annotations

import math
from functools import lru_cache

from advisor.core.hardware import CPU_FORMATS, CpuIsa, CpuRate
from advisor.errors import ProfileError, suggest

CPU_ISA_FILE = "cpu_isa.toml"
WHERE = f"profiles/hardware/{CPU_ISA_FILE}"


def _text(row: dict, key: str, at: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(f"{at}: field '{key}' must be a non-empty string")
    return value


def _positive(row: dict, key: str, at: str, required: bool = True) -> float | None:
    value = row.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ProfileError(f"{at}: field '{key}' must be a positive number, got {value!r}")
    return float(value)


def parse_cpu_isas(text: str, where: str = WHERE) -> tuple[CpuIsa, ...]:
    """The ISA rows in file order (best first: a CPU takes the first whose flags it has)."""
    from advisor.sources.profiles import parse_toml, table_rows

    doc = parse_toml(text, where)
    out, seen = [], set()
    for at, row in table_rows(doc.get("isa"), where, "isa"):
        isa_id = _text(row, "id", at)
        at = f"{at} ({isa_id})"
        if isa_id in seen:
            raise ProfileError(f"{at}: id '{isa_id}' appears twice")
        seen.add(isa_id)
        name = _text(row, "name", at)
        requires = row.get("requires")
        if not isinstance(requires, list) or not requires or not all(isinstance(f, str) and f for f in requires):
            raise ProfileError(f"{at}: field 'requires' must be a non-empty list of CPU flag names")
        rates, formats = [], set()
        for rat, rate in table_rows(row.get("rate"), at, "rate", "isa.rate"):
            fmt = _text(rate, "format", rat)
            if fmt not in CPU_FORMATS:
                raise ProfileError(f"{rat}: field 'format' must be one of {', '.join(CPU_FORMATS)}, got {fmt!r}")
            if fmt in formats:
                raise ProfileError(f"{rat}: format '{fmt}' appears twice")
            formats.add(fmt)
            decode = _positive(rate, "decode_gflops_per_core", rat)
            decode_source = _text(rate, "decode_source", rat)
            prefill = _positive(rate, "prefill_gflops_per_core", rat, required=False)
            prefill_source = _text(rate, "prefill_source", rat) if prefill is not None else ""
            rates.append(CpuRate(fmt, decode, decode_source, prefill, prefill_source))
        out.append(CpuIsa(isa_id, name, tuple(f.lower() for f in requires), tuple(rates)))
    return tuple(out)


@lru_cache(maxsize=1)
def load_cpu_isas() -> tuple[CpuIsa, ...]:
    from advisor.sources.parsed_cache import cached
    from advisor.sources.profiles import _profiles_root

    path = _profiles_root().joinpath("hardware", CPU_ISA_FILE)

    def build():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(f"{WHERE}: cannot be read ({exc.strerror or exc})") from None
        return parse_cpu_isas(text)

    return cached("cpu_isa", [path], build)  # start-up parses no TOML (advisor/sources/parsed_cache.py)


def isa_for_flags(flags, isas: tuple[CpuIsa, ...] | None = None) -> CpuIsa | None:
    """The first row (best first) whose required flags the CPU has; None when none matches."""
    have = {f.lower() for f in flags}
    for isa in isas if isas is not None else load_cpu_isas():
        if set(isa.requires) <= have:
            return isa
    return None


def isa_by_id(name: str, isas: tuple[CpuIsa, ...] | None = None) -> CpuIsa:
    """A row by id (`--cpu-isa avx2`), or a UsageError naming the ids there are."""
    isas = isas if isas is not None else load_cpu_isas()
    for isa in isas:
        if isa.id.lower() == name.strip().lower():
            return isa
    raise suggest(name, [i.id for i in isas], "CPU ISA (--cpu-isa; profiles/hardware/cpu_isa.toml)")
