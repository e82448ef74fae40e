"""System RAM kits (profiles/prices/ram.toml): size, type, channels, price and source, for `advisor plan`'s MoE boxes.

Checked on load: a malformed row is one ProfileError naming the file and the field (exit 1).
"""

from __future__ import annotations


from advisor.core.record import record
from advisor.errors import ProfileError
from advisor.sources.config import check_number

RAM_FILE = "profiles/prices/ram.toml"
BYTES_PER_TRANSFER = 8  # one 64-bit DDR channel moves 8 bytes per transfer (JEDEC DDR4/DDR5 DIMM data width)
MT_S_PER_GB_S = 1000  # MT/s x bytes = MB/s; / 1000 = GB/s
MAX_KIT_GB = 1 << 20  # far beyond any kit (a TiB of RAM is 1024 GB): a guard against typos, not a limit
MAX_CHANNELS = 64  # more memory channels than any socket has (EPYC: 12)
MAX_MT_S = 100_000  # transfers per second far beyond DDR5's 8800 MT/s and LPDDR6's 14400
MAX_PRICE_USD = 1e9
STATUSES = ("copied", "derived")
REQUIRED = ("id", "capacity_gb", "type", "mt_s", "channels", "price_usd", "status", "as_of", "source")


@record
class RamKit:
    id: str
    capacity_gb: int
    type: str  # "DDR5-5600"
    mt_s: int
    channels: int
    price_usd: float
    status: str
    as_of: str
    source: str
    modules: int = 0
    notes: str = ""

    @property
    def bandwidth_gb_s(self) -> float:
        """Peak read bandwidth: channels x MT/s x 8 bytes."""
        return self.channels * self.mt_s * BYTES_PER_TRANSFER / MT_S_PER_GB_S

    @property
    def label(self) -> str:
        """"128 GB DDR5-5600 2ch" """
        return f"{self.capacity_gb} GB {self.type} {self.channels}ch"

    def as_dict(self) -> dict:
        return {"id": self.id, "capacity_gb": self.capacity_gb, "type": self.type, "mt_s": self.mt_s,
                "channels": self.channels, "bandwidth_gb_s": self.bandwidth_gb_s, "price_usd": self.price_usd,
                "status": self.status, "as_of": self.as_of, "source": self.source}


def _int(where: str, value, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(f"{where} must be a whole number, got {value!r}")
    if not 1 <= value <= most:
        raise ProfileError(f"{where} must be between 1 and {most}, got {value}")
    return value


def parse_ram_kits(text: str, label: str = RAM_FILE) -> tuple[RamKit, ...]:
    from advisor.sources.profiles import parse_toml, table_rows

    data = parse_toml(text, label)
    unknown = set(data) - {"kits"}
    if unknown:
        raise ProfileError(f"{label}: unknown table '{sorted(unknown)[0]}' (expected kits)")
    out, seen = [], set()
    for where, row in table_rows(data.get("kits"), label, "kits"):
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            raise ProfileError(f"{where}: missing field '{missing[0]}'")
        extra = set(row) - set(REQUIRED) - {"modules", "notes"}
        if extra:
            raise ProfileError(f"{where}: unknown field '{sorted(extra)[0]}'")
        for key in ("id", "type", "status", "as_of", "source") + (("notes",) if "notes" in row else ()):
            if not isinstance(row[key], str) or (key != "notes" and not row[key].strip()):
                raise ProfileError(f"{where}.{key} must be a non-empty string, got {row[key]!r}")
        where = f"{where} ({row['id']})"
        if row["id"] in seen:
            raise ProfileError(f"{where}: duplicate id")
        seen.add(row["id"])
        if row["status"] not in STATUSES:
            raise ProfileError(f"{where}.status must be one of {', '.join(STATUSES)}, got '{row['status']}'")
        price = check_number(f"{where}.price_usd", row["price_usd"])
        if not 0 < price <= MAX_PRICE_USD:
            raise ProfileError(f"{where}.price_usd must be positive, got {row['price_usd']!r}")
        out.append(RamKit(id=row["id"], capacity_gb=_int(f"{where}.capacity_gb", row["capacity_gb"], MAX_KIT_GB),
                          type=row["type"], mt_s=_int(f"{where}.mt_s", row["mt_s"], MAX_MT_S),
                          channels=_int(f"{where}.channels", row["channels"], MAX_CHANNELS), price_usd=price,
                          status=row["status"], as_of=row["as_of"], source=row["source"],
                          modules=_int(f"{where}.modules", row["modules"], MAX_CHANNELS * 4) if "modules" in row
                          else 0, notes=row.get("notes", "")))
    return tuple(out)


def load_ram_kits() -> tuple[RamKit, ...]:
    from advisor.sources.profiles import _profiles_root

    path = _profiles_root().joinpath("prices").joinpath("ram.toml")
    return parse_ram_kits(path.read_text(encoding="utf-8"))
