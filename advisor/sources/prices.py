"""API prices, electricity presets and GPU rental prices: profiles/prices/*.toml plus an optional user file.

The user file (`--prices FILE`, else `prices.toml` in the platformdirs config dir) has the same tables. An entry
whose name (API) or code (region) matches a shipped one replaces the fields it gives; any other entry is added.
Every entry keeps the date and source it came with, so the output can say how old a price is.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path

from advisor.core.record import record
from advisor.errors import ProfileError, UsageError, suggest
from advisor.sources.config import check_number
from advisor.sources.profiles import parse_toml

TIERS = ("gpt-4", "llama-3-70b", "gpt-3.5")
USER_FILE_NAME = "prices.toml"
RAM_FILE_NAME = "ram.toml"  # system RAM kits: a table of its own (advisor/sources/ram_prices.py)
MAX_PRICE_FIELD = 1e15  # any price, in any currency, or a memory size in GB: finite and far below float's range
MAX_INT_FIELD = 1 << 53  # a GPU count or token limit: beyond it a float loses integers


def _as_dict(self) -> dict:
    return {f.name: getattr(self, f.name) for f in fields(self)}


@record
class ApiPrice:
    name: str
    input_usd_per_1m: float
    date: str
    source: str
    output_usd_per_1m: float | None = None  # None: not published (the seed post found none for Doubao Pro)
    model: str = ""
    provider: str = ""
    cached_input_usd_per_1m: float | None = None
    tier: str = ""
    default: bool = False
    deprecation_date: str = ""
    max_input_tokens: int | None = None
    notes: str = ""
    aliases: tuple[str, ...] = ()  # other exact names for this entry (the seed post's "DeepSeekV2", "gpt-3.5-turbo-0125")
    origin: str = "shipped"  # "shipped" or the user file's path

    def deprecated(self, today: dt.date) -> bool:
        return bool(self.deprecation_date) and self.deprecation_date <= today.isoformat()

    as_dict = _as_dict


@record
class Region:
    code: str
    name: str
    price_per_kwh: float
    currency: str
    usd_per_kwh: float
    period: str
    source: str
    sector: str = ""
    fx_note: str = ""
    status: str = ""
    notes: str = ""
    origin: str = "shipped"

    as_dict = _as_dict


@record
class Rental:
    provider: str
    offer: str
    gpu: str
    gpu_count: int
    date: str
    source: str
    gpu_memory_gb: float | None = None
    instance: str = ""
    usd_per_hour: float | None = None
    spot_usd_per_hour: float | None = None
    usd_per_gpu_hour: float | None = None
    spot_usd_per_gpu_hour: float | None = None
    notes: str = ""
    origin: str = "shipped"

    as_dict = _as_dict


@dataclass(frozen=True, eq=False)
class PriceTables:
    """The API prices and the electricity regions of profiles/prices, as loaded."""

    apis: tuple[ApiPrice, ...]
    regions: tuple[Region, ...]
    rentals: tuple[Rental, ...]
    user_file: str | None = None

    def api(self, name: str) -> ApiPrice:
        """By exact name (case-insensitive), else an exact alias, else a unique prefix of a name: `gpt-4o`,
        `DeepSeekV2`, `groq/llama-3.3`. An ambiguous prefix is an error that lists every entry it matches."""
        wanted = name.strip().lower()
        for a in self.apis:
            if a.name.lower() == wanted:
                return a
        for a in self.apis:
            if any(alias.lower() == wanted for alias in a.aliases):
                return a
        matches = [a for a in self.apis if a.name.lower().startswith(wanted)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise UsageError(f"API '{name}' is ambiguous, {len(matches)} entries start so: "
                             f"{', '.join(a.name for a in matches)}")
        raise suggest(name, [a.name for a in self.apis] + [x for a in self.apis for x in a.aliases], "API")

    def tier_defaults(self, tier: str, today: dt.date) -> list[ApiPrice]:
        return [a for a in self.apis if a.tier == tier and a.default and not a.deprecated(today)]

    def region(self, code: str) -> Region:
        wanted = code.strip().lower()
        for r in self.regions:
            if r.code.lower() == wanted:
                return r
        raise suggest(code, [r.code for r in self.regions], "region")

    @property
    def oldest_api_date(self) -> str:
        return min((a.date for a in self.apis), default="")


# ------------------------------------------------------------------ parsing and validation

_KINDS = {
    "api": (ApiPrice, "name"),
    "region": (Region, "code"),
    "rental": (Rental, None),
}


def _check_value(where: str, f, value):
    want = f.type
    if "float" in want:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            raise ProfileError(f"{where}: {f.name} must be a number, got {value!r}")
        number = check_number(f"{where}: {f.name}", value)
        if number < 0:
            raise ProfileError(f"{where}: {f.name} must not be negative, got {value}")
        if number > MAX_PRICE_FIELD:
            raise ProfileError(f"{where}: {f.name} is implausibly large ({value}; at most {MAX_PRICE_FIELD:g})")
        return number
    if "int" in want:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ProfileError(f"{where}: {f.name} must be a non-negative integer, got {value!r}")
        if value > MAX_INT_FIELD:
            raise ProfileError(f"{where}: {f.name} is implausibly large ({value.bit_length()}-bit integer; at most "
                               f"2^53)")
        return value
    if want == "bool":
        if not isinstance(value, bool):
            raise ProfileError(f"{where}: {f.name} must be true or false, got {value!r}")
        return value
    if want.startswith("tuple"):
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ProfileError(f"{where}: {f.name} must be a list of names, got {value!r}")
        return tuple(v.strip() for v in value)
    if isinstance(value, (dt.date, dt.datetime)):  # TOML dates: keep ISO text
        return value.isoformat()
    if not isinstance(value, str):
        raise ProfileError(f"{where}: {f.name} must be a string, got {value!r}")
    return value


def _entries(data: dict, kind: str, where: str) -> list[dict]:
    rows = data.get(kind, [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ProfileError(f"{where}: [[{kind}]] must be a list of tables")
    return rows


def _build(cls, row: dict, where: str, origin: str, base=None):
    known = {f.name: f for f in fields(cls)}
    values = {}
    for key, value in row.items():
        if key not in known or key == "origin":
            raise ProfileError(f"{where}: {suggest(key, [k for k in known if k != 'origin'], 'field')}")
        values[key] = _check_value(where, known[key], value)
    if base is not None:
        return replace(base, **values, origin=origin)
    if origin != "shipped":
        values.setdefault("source", f"user file {origin}")
        if "date" in known:
            values.setdefault("date", "user")
    missing = [f.name for f in fields(cls) if f.name not in values and f.default is MISSING]
    if missing:
        raise ProfileError(f"{where}: missing field '{missing[0]}'")
    return cls(**values, origin=origin)


def parse_prices(texts: list[tuple[str, str]], user: tuple[str, str] | None = None) -> PriceTables:
    """texts: (file label, TOML text) of the shipped files; user: the same for the user's file, applied last."""
    tables: dict[str, list] = {k: [] for k in _KINDS}
    for label, text in texts + ([user] if user else []):
        origin = "shipped" if user is None or label != user[0] else label
        data = parse_toml(text, label)
        unknown = set(data) - set(_KINDS)
        if unknown:
            raise ProfileError(f"{label}: unknown table '{sorted(unknown)[0]}' (expected api, region or rental)")
        for kind, (cls, key) in _KINDS.items():
            for i, row in enumerate(_entries(data, kind, label)):
                where = f"{label}: {kind}[{i}]" + (f" ({row[key]})" if key and isinstance(row.get(key), str) else "")
                existing = None
                if key and isinstance(row.get(key), str):
                    existing = next((j for j, e in enumerate(tables[kind])
                                     if getattr(e, key).lower() == row[key].lower()), None)
                if existing is not None and origin == "shipped":
                    raise ProfileError(f"{where}: duplicate {key} '{row[key]}'")
                if existing is not None:
                    tables[kind][existing] = _build(cls, row, where, origin, tables[kind][existing])
                else:
                    tables[kind].append(_build(cls, row, where, origin))
    taken = {a.name.lower(): a.name for a in tables["api"]}
    for a in tables["api"]:
        for alias in a.aliases:
            other = taken.setdefault(alias.lower(), a.name)
            if other != a.name:
                raise ProfileError(f"api '{a.name}' ({a.origin}): alias '{alias}' is already the name or an alias "
                                   f"of '{other}'")
    for a in tables["api"]:
        if a.tier and a.tier not in TIERS:
            raise ProfileError(f"api '{a.name}' ({a.origin}): tier must be one of {', '.join(TIERS)}, got '{a.tier}'")
    return PriceTables(tuple(tables["api"]), tuple(tables["region"]), tuple(tables["rental"]),
                       user[0] if user else None)


def default_user_file() -> Path:
    from advisor.sources.dirs import user_dir

    return user_dir("config") / USER_FILE_NAME


def load_prices(user_file: str | os.PathLike | None = None) -> PriceTables:
    """Shipped tables plus the user file: `user_file` when given (must exist), else the config-dir file if present."""
    from advisor.sources.profiles import _profiles_root

    root = _profiles_root().joinpath("prices")
    texts = [(f"profiles/prices/{p.name}", p.read_text(encoding="utf-8"))
             for p in sorted((p for p in root.iterdir() if p.name.endswith(".toml") and p.name != RAM_FILE_NAME),
                             key=lambda p: p.name)]
    from advisor.sources.files import TOML_LIMIT, read_text

    path = Path(user_file) if user_file is not None else default_user_file()
    user = None
    try:
        # only a regular file, at most TOML_LIMIT bytes: a FIFO or /dev/zero given as --prices is refused, not read
        user = (str(path), read_text(path, TOML_LIMIT))
    except FileNotFoundError as exc:
        if user_file is not None:
            raise UsageError(f"cannot read price file {path}: {exc.strerror or exc}") from None
    return parse_prices(texts, user)
