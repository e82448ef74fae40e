"""The hardware catalog (profiles/hardware/*.toml) and name matching for `--gpu`.

A name matches case-insensitively on the id, the marketed name, the NVML name and the short forms
people type ("4090", "RTX 6000 Ada", "A100 SXM 80GB", "H100 PCIe", "M2 Ultra"): every word the
user typed must start a word of the candidate; the candidate with the fewest extra words wins, and
a tie is ambiguous (the candidates are listed).
"""

from __future__ import annotations

import re
from functools import lru_cache

from advisor.core.record import record
from advisor.errors import ProfileError, UsageError, suggest
from advisor.sources.profiles import _profiles_root, parse_toml

# Words that carry no identity ("NVIDIA GeForce RTX 4090" is "4090").
GENERIC_WORDS = frozenset({"nvidia", "geforce", "tesla", "rtx", "gtx", "amd", "radeon", "apple", "generation",
                           "edition", "instinct", "gpu", "core"})
KINDS = ("gpu", "apple", "unified", "cpu")


@record
class HardwareSpec:
    """One row of the hardware catalog (profiles/hardware): a GPU, Apple system, unified-memory box or CPU, with
    its memory, bandwidth, compute, power and price, each from its source."""

    id: str
    name: str
    vendor: str
    kind: str  # gpu | apple | unified | cpu
    segment: str
    memory_gib: float | None
    bandwidth_gb_s: float | None
    fp16_tflops: float | None
    fp16_fp32acc_tflops: float | None
    tdp_watts: float | None
    launch_price_usd: float | None
    status: str
    spec_source: str
    nvml_name: str = ""
    aliases: tuple[str, ...] = ()
    # unified-memory systems and CPU-only boxes are bought with one of several memory sizes (GB); the
    # launch price is for `price_memory_gib` (None: the catalog does not know which configuration it is for)
    memory_options_gib: tuple[float, ...] = ()
    price_memory_gib: float | None = None
    price_source: str = ""
    notes: str = ""

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def price_for_memory(self, memory_gib: float | None) -> float | None:
        """The launch price (USD) of this part in the memory configuration `memory_gib` (GB): a GPU's own; for a
        system sold in several memory sizes (or a single one), only when the catalog says the price is for that
        size (`price_memory_gib`), else None: another configuration's price is never passed off as this one's."""
        if self.launch_price_usd is None:
            return None
        if self.kind == "gpu":
            return self.launch_price_usd
        if memory_gib is None or self.price_memory_gib is None:
            return None
        return self.launch_price_usd if abs(self.price_memory_gib - memory_gib) < 0.5 else None


def fp16_tflops(spec: HardwareSpec | None) -> float | None:
    """The FP16 rate llama.cpp's kernels see: with FP32 accumulation where the catalog has that figure."""
    if spec is None:
        return None
    return spec.fp16_fp32acc_tflops or spec.fp16_tflops


_WORD_BREAK = re.compile(r"[^a-z0-9.+]+")


def _words(text: str) -> list[str]:
    # split letters from digits only where people do: "SXM4" stays, "80GB" stays, "(76-core" splits
    return [w for w in _WORD_BREAK.split(text.lower()) if w]


def _numeric(where, key, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError(f"{where}: field '{key}' must be a number, got {value!r}")
    if value < 0:
        raise ProfileError(f"{where}: field '{key}' must not be negative, got {value}")
    return float(value)


def _options(where, value) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise ProfileError(f"{where}: field 'memory_options_gib' must be a list of numbers, got {value!r}")
    out = tuple(_numeric(where, "memory_options_gib", v) for v in value)
    if any(v is None or v <= 0 for v in out):
        raise ProfileError(f"{where}: field 'memory_options_gib' must hold positive numbers")
    return out


def parse_catalog(text: str, where: str) -> list[HardwareSpec]:
    doc = parse_toml(text, where)
    out = []
    for i, row in enumerate(doc.get("devices", [])):
        at = f"{where} devices[{i}] ({row.get('id', '?')})"
        for key in ("id", "name", "vendor", "kind", "status", "spec_source"):
            if not isinstance(row.get(key), str) or not row.get(key):
                raise ProfileError(f"{at}: missing field '{key}'")
        if row["kind"] not in KINDS:
            raise ProfileError(f"{at}: field 'kind' must be one of {', '.join(KINDS)}")
        out.append(
            HardwareSpec(
                id=row["id"], name=row["name"], vendor=row["vendor"], kind=row["kind"],
                segment=row.get("segment", ""),
                memory_gib=_numeric(at, "memory_gib", row.get("memory_gib")),
                bandwidth_gb_s=_numeric(at, "bandwidth_gb_s", row.get("bandwidth_gb_s")),
                fp16_tflops=_numeric(at, "fp16_tflops", row.get("fp16_tflops")),
                fp16_fp32acc_tflops=_numeric(at, "fp16_fp32acc_tflops", row.get("fp16_fp32acc_tflops")),
                tdp_watts=_numeric(at, "tdp_watts", row.get("tdp_watts")),
                launch_price_usd=_numeric(at, "launch_price_usd", row.get("launch_price_usd")),
                status=row["status"], spec_source=row["spec_source"],
                nvml_name=row.get("nvml_name", ""), aliases=tuple(row.get("aliases", ())),
                memory_options_gib=_options(at, row.get("memory_options_gib", [])),
                price_memory_gib=_numeric(at, "price_memory_gib", row.get("price_memory_gib")),
                price_source=row.get("price_source", ""), notes=row.get("notes", ""),
            )
        )
    return out


@lru_cache(maxsize=1)
def load_catalog() -> tuple[HardwareSpec, ...]:
    from advisor.sources.links import LINKS_FILE
    from advisor.sources.parsed_cache import cached

    root = _profiles_root().joinpath("hardware")
    files = sorted((p for p in root.iterdir() if p.name.endswith(".toml") and p.name != LINKS_FILE),
                   key=lambda p: p.name)

    def build():
        specs: list[HardwareSpec] = []
        for path in files:
            specs += parse_catalog(path.read_text(encoding="utf-8"), f"profiles/hardware/{path.name}")
        return tuple(specs)

    return cached("catalog", files, build)


def _forms(spec: HardwareSpec) -> list[list[str]]:
    names = [spec.id, spec.name.split("(")[0], spec.nvml_name, *spec.aliases]
    return [_words(n) for n in names if n]


@lru_cache(maxsize=4)
def _catalog_forms(catalog: tuple[HardwareSpec, ...]) -> tuple[tuple[HardwareSpec, list[list[str]], tuple[str, ...]], ...]:
    """Per entry, (spec, its name forms as words, its exact names lowercased): what every lookup compares, once per
    catalog (`advisor plan` looks up ~1,700 machine names)."""
    return tuple((s, _forms(s), (s.id.lower(), s.name.lower(), s.nvml_name.lower())) for s in catalog)


def _extra_words(query: list[str], form: list[str]) -> tuple[int, int] | None:
    """(query words that matched only as a prefix, words of `form` the query did not name), or None when a query
    word matches nothing. Whole words count first: "A100" is an A100 (ambiguous among them), not the RTX A1000,
    and "7900 XT" is the XT, not the XTX; then the fewest extra words: "4090" is the 4090, not the 4090 D."""
    left = list(form)
    prefixed = 0
    for q in query:
        hit = next((w for w in left if w == q), None)
        if hit is None:
            hit = next((w for w in left if w.startswith(q)), None)
            prefixed += 1
        if hit is None:
            return None
        left.remove(hit)
    return prefixed, sum(1 for w in left if w not in GENERIC_WORDS)


def find_hardware(name: str, catalog: tuple[HardwareSpec, ...] | None = None) -> HardwareSpec:
    """The catalog entry a name means (exact id or name first, then the fewest extra words)."""
    if catalog is None:
        catalog = load_catalog()
        found = _FOUND.get(name)
        if found is None or found[0] is not catalog:  # remembered only for this very catalog object
            try:
                found = (catalog, _find(name, catalog))
            except UsageError as exc:  # a name the catalog does not know, remembered too (its hint costs difflib)
                found = (catalog, exc)
            _FOUND[name] = found
        if isinstance(found[1], UsageError):
            raise UsageError(str(found[1]))  # a fresh one: re-raising the stored one would grow its traceback
        return found[1]
    return _find(name, catalog)


# name -> (the loaded catalog, its entry): `advisor plan` names ~1,700 machines, most of them many times
_FOUND: dict[str, tuple] = {}


def _find(name: str, catalog: tuple[HardwareSpec, ...]) -> HardwareSpec:
    found = _match(name, catalog)
    if isinstance(found, HardwareSpec):
        return found
    if found:
        raise UsageError(f"'{name}' is ambiguous: " + ", ".join(f"{s.name} ({s.id})" for s in found))
    raise suggest(name, [s.id for s in catalog] + [s.name for s in catalog], "GPU")


def _match(name: str, catalog: tuple[HardwareSpec, ...]) -> HardwareSpec | list[HardwareSpec]:
    """The one entry `name` means, else the entries it could mean equally (empty: none)."""
    query = [w for w in _words(name) if w not in GENERIC_WORDS] or _words(name)
    if not query:
        raise UsageError("empty hardware name")
    entries = _catalog_forms(catalog)
    key = name.strip().lower()
    exact = [s for s, _, names in entries if key in names]
    if len(exact) == 1:
        return exact[0]
    scored = []
    for spec, forms, _ in entries:
        extras = [e for e in (_extra_words(query, f) for f in forms) if e is not None]
        if extras:
            scored.append((min(extras), spec))
    if not scored:
        return []
    best = min(score for score, _ in scored)
    winners = [s for score, s in scored if score == best]
    return winners[0] if len(winners) == 1 else winners


def lookup_hardware(name: str, catalog: tuple[HardwareSpec, ...] | None = None) -> HardwareSpec | None:
    """The catalog entry a name means, or None when it names none or several (no hint is built: a caller that only
    skips unknown names, as the rental list does, pays no difflib)."""
    try:
        found = _match(name, catalog if catalog is not None else load_catalog())
    except UsageError:
        return None
    return found if isinstance(found, HardwareSpec) else None


def find_by_nvml_name(nvml_name: str, catalog: tuple[HardwareSpec, ...] | None = None) -> HardwareSpec | None:
    """The catalog entry of a detected card, or None (an unknown card degrades only its specs)."""
    catalog = catalog if catalog is not None else load_catalog()
    for spec in catalog:
        if spec.nvml_name and spec.nvml_name.lower() == nvml_name.strip().lower():
            return spec
    try:
        return find_hardware(nvml_name, catalog)
    except UsageError:
        return None
