"""profiles/power.toml: the power model's fractions and measured whole-system figures, validated on load."""

from __future__ import annotations

from advisor.core.power import PowerModel
from advisor.errors import ProfileError
from advisor.sources.profiles import _profiles_root, parse_toml

_FIELDS = {
    "discrete": ("decode_fraction", "decode_fraction_low", "decode_fraction_high", "prefill_fraction",
                 "idle_board_watts"),
    "pc": ("idle_watts", "cpu_decode_watts", "host_active_watts", "psu_efficiency"),
    "unified": ("watts_per_gb_s", "range_fraction", "idle_watts"),
}


def parse_power_model(text: str, where: str) -> PowerModel:
    data = parse_toml(text, where)
    values = {}
    for table, keys in _FIELDS.items():
        section = data.get(table)
        if not isinstance(section, dict):
            raise ProfileError(f"{where}: missing table [{table}]")
        for key in keys:
            value = section.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ProfileError(f"{where}: [{table}] {key} must be a non-negative number, got {value!r}")
            values[f"{table}.{key}"] = float(value)
    if not 0 < values["pc.psu_efficiency"] <= 1:
        raise ProfileError(f"{where}: [pc] psu_efficiency must be in (0, 1], got {values['pc.psu_efficiency']}")
    measured = {}
    for i, row in enumerate(data["unified"].get("measured", [])):
        watts = row.get("decode_watts") if isinstance(row, dict) else None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str) or isinstance(watts, bool) \
                or not isinstance(watts, (int, float)) or watts <= 0 or not row.get("source"):
            raise ProfileError(f"{where}: unified.measured[{i}] needs id, a positive decode_watts and a source")
        measured[row["id"]] = (float(watts), row["source"])
    return PowerModel(
        decode_fraction=values["discrete.decode_fraction"],
        decode_fraction_low=values["discrete.decode_fraction_low"],
        decode_fraction_high=values["discrete.decode_fraction_high"],
        prefill_fraction=values["discrete.prefill_fraction"],
        idle_board_watts=values["discrete.idle_board_watts"],
        pc_idle_watts=values["pc.idle_watts"],
        cpu_decode_watts=values["pc.cpu_decode_watts"],
        host_active_watts=values["pc.host_active_watts"],
        psu_efficiency=values["pc.psu_efficiency"],
        unified_watts_per_gb_s=values["unified.watts_per_gb_s"],
        unified_range_fraction=values["unified.range_fraction"],
        unified_idle_watts=values["unified.idle_watts"],
        measured=measured,
    )


def load_power_model() -> PowerModel:
    text = _profiles_root().joinpath("power.toml").read_text(encoding="utf-8")
    return parse_power_model(text, "profiles/power.toml")
