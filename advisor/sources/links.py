"""profiles/hardware/links.toml: the interconnect between the GPUs of one box, per catalog GPU, validated on load."""

from __future__ import annotations

from functools import lru_cache

from advisor.core.hardware import Link
from advisor.errors import ProfileError
from advisor.sources.profiles import _profiles_root, parse_toml

LINKS_FILE = "links.toml"  # beside the catalog files in profiles/hardware/, and not one of them
WHERE = f"profiles/hardware/{LINKS_FILE}"


def parse_links(text: str, where: str = WHERE) -> tuple[dict[str, Link], dict[str, str]]:
    """(links by id, GPU catalog id -> link id, with 'default' for any other GPU)."""
    doc = parse_toml(text, where)
    links: dict[str, Link] = {}
    for i, row in enumerate(doc.get("links", [])):
        at = f"{where}: links[{i}]"
        if not isinstance(row, dict):
            raise ProfileError(f"{at} must be a table")
        for key in ("id", "name", "source", "latency_source"):
            if not isinstance(row.get(key), str) or not row[key]:
                raise ProfileError(f"{at}: field '{key}' must be a non-empty string")
        for key in ("bandwidth_gb_s", "latency_us"):
            value = row.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ProfileError(f"{at} ({row['id']}): field '{key}' must be a positive number, got {value!r}")
        links[row["id"]] = Link(row["id"], row["name"], float(row["bandwidth_gb_s"]), float(row["latency_us"]),
                                f"{row['source']}; latency: {row['latency_source']}")
    gpus = doc.get("gpus")
    if not isinstance(gpus, dict) or "default" not in gpus:
        raise ProfileError(f"{where}: missing table [gpus] with a 'default' link")
    for gpu, link in gpus.items():
        if link not in links:
            raise ProfileError(f"{where}: gpus.{gpu} names unknown link '{link}'")
    return links, dict(gpus)


@lru_cache(maxsize=1)
def load_links() -> tuple[dict[str, Link], dict[str, str]]:
    """The table, from the parsed-data cache when the file is unchanged: every machine with a GPU reads it (its host
    link), so a start-up would otherwise import and run the TOML parser for it."""
    from advisor.sources.parsed_cache import cached

    path = _profiles_root().joinpath("hardware", LINKS_FILE)
    return cached("links", [path], lambda: parse_links(path.read_text(encoding="utf-8")))


def link_for(catalog_id: str | None) -> Link:
    """The link a box of several of this GPU uses (the catalog default, PCIe, for a GPU not listed)."""
    links, gpus = load_links()
    return links[gpus.get(catalog_id or "", gpus["default"])]


PCIE_PREFIX = "pcie"  # the ids of the PCIe slot rows (pcie3-x16, pcie4-x16, pcie5-x16)


def host_link_for(catalog_id: str | None) -> Link | None:
    """The PCIe slot between the host and one GPU of this catalog id: the GPU's [gpus] link when that is a PCIe row (a
    PCIe card's all-reduce crosses that same slot), else None: a GPU the table does not list (its 'default' is an
    assumption made for the all-reduce, not a fact about the card) or one whose peers are joined by NVLink / Infinity
    Fabric (the host side of those boards is not in the table). Lanes are taken as x16, as the table takes them."""
    links, gpus = load_links()
    link_id = gpus.get(catalog_id or "")
    if link_id is None or not link_id.startswith(PCIE_PREFIX):
        return None
    return links[link_id]
