"""Whole-system power while decoding, prefilling and idling. Pure functions over the figures of profiles/power.toml (advisor/sources/power.py loads them).

Discrete GPUs (a PC):

    wall watts = PC idle + (sum of board watts - one idle board) / PSU efficiency
    board watts = fraction x power limit      (decode ~0.6, prefill and compute-bound batches 1.0)

The power limit is the NVML enforced limit when detected, else the catalog TDP. The PC idle figure was measured
at the wall with one idle GPU installed, hence "- one idle board". CPU layers (partial offload, CPU-only) add a
desktop CPU's package power; a GPU-only run adds one busy core. Apple Silicon and other unified-memory systems: a measured whole-system figure for
the chip when the data has one, else idle + watts per GB/s of memory bandwidth.
"""

from __future__ import annotations

from dataclasses import field

from advisor.core.hardware import Machine
from advisor.core.memory import Estimate
from advisor.core.record import record


@record
class PowerModel:
    decode_fraction: float
    decode_fraction_low: float
    decode_fraction_high: float
    prefill_fraction: float
    idle_board_watts: float
    pc_idle_watts: float
    cpu_decode_watts: float
    host_active_watts: float
    psu_efficiency: float
    unified_watts_per_gb_s: float
    unified_range_fraction: float
    unified_idle_watts: float
    measured: dict[str, tuple[float, str]] = field(default_factory=dict)  # catalog id -> (decode watts, source)


@record
class Power:
    decode_watts: float | None
    decode_range: tuple[float, float] | None
    prefill_watts: float | None
    idle_watts: float | None
    source: str  # "model" | "--watts" | "unknown"
    terms: dict
    notes: tuple[str, ...] = ()


def power_known_whatever_runs(machine: Machine) -> bool:
    """Whether system_power gives watts for this machine whatever estimate runs on it: every GPU's power limit
    known (a GPU with layers and none makes it unknown), and not a unified-memory system (_unified_power's own
    rule, which may lack a figure)."""
    return not machine.is_apple and all(d.power_limit_watts is not None for d in machine.gpus)


def system_power(est: Estimate, machine: Machine, model: PowerModel, compute_share: float = 0.0,
                 busy_share: tuple[float, ...] = ()) -> Power:
    """Watts at the wall while this estimate decodes / prefills on this machine, and when idle.

    compute_share (from the speed model) moves decode draw from the decode fraction toward the prefill fraction:
    a batch that is compute-bound draws like prefill. busy_share (from the speed model, per GPU): in a llama.cpp
    layer split the GPUs take turns, so each draws its decode power only for its share of the step and idles
    otherwise. Without it every GPU with layers is taken as busy all the time (an upper bound).
    """
    if machine.is_apple:
        return _unified_power(machine, model)
    uses = [d for d in est.devices if not d.host]
    host = next((d for d in est.devices if d.host), None)
    cpu_works = not machine.gpus or (host is not None and host.layers > 0)
    terms: dict = {"pc_idle_watts": model.pc_idle_watts, "psu_efficiency": model.psu_efficiency}
    notes: list[str] = []
    boards = {"decode": 0.0, "low": 0.0, "high": 0.0, "prefill": 0.0}
    idle_boards = 0.0
    share = min(1.0, max(0.0, compute_share))
    for i, device in enumerate(machine.gpus):
        active = i < len(uses) and uses[i].layers > 0
        if not active:
            idle_boards += model.idle_board_watts
            continue
        if device.power_limit_watts is None:
            notes.append(f"{device.name}: power limit unknown (not in NVML or the catalog): give --watts")
            return Power(None, None, None, None, "unknown", terms, tuple(notes))
        limit = device.power_limit_watts

        busy = busy_share[i] if i < len(busy_share) else 1.0

        def board(fraction):
            active_watts = limit * (fraction + (model.prefill_fraction - fraction) * share)
            return model.idle_board_watts + (active_watts - model.idle_board_watts) * busy

        boards["decode"] += board(model.decode_fraction)
        boards["low"] += board(model.decode_fraction_low)
        boards["high"] += board(model.decode_fraction_high)
        boards["prefill"] += limit * model.prefill_fraction
        terms[f"GPU {device.index} ({device.name})"] = {"power_limit_watts": limit, "busy_share": round(busy, 3),
                                                        "decode_board_watts": round(board(model.decode_fraction), 1)}
    # CPU layers run the CPU at full load; a GPU-only run still keeps one core busy driving the GPU
    cpu = model.cpu_decode_watts if cpu_works else model.host_active_watts
    terms["cpu_watts"] = cpu
    notes.append(f"CPU power while generating: {cpu:g} W assumed (not measured)")
    # the PC idle figure already contains one idle board
    first_idle = model.idle_board_watts if machine.gpus else 0.0

    def wall(board_watts):
        return model.pc_idle_watts + (board_watts + idle_boards + cpu - first_idle) / model.psu_efficiency

    idle = model.pc_idle_watts + max(0.0, len(machine.gpus) - 1) * model.idle_board_watts / model.psu_efficiency
    terms["idle_boards_watts"] = idle_boards
    return Power(wall(boards["decode"]), (wall(boards["low"]), wall(boards["high"])), wall(boards["prefill"]), idle,
                 "model", terms, tuple(notes))


def _unified_power(machine: Machine, model: PowerModel) -> Power:
    device = machine.gpus[0]
    measured = model.measured.get(device.catalog_id or "")
    idle = model.unified_idle_watts
    if measured:
        watts, source = measured
        terms = {"measured_decode_watts": watts, "source": source}
        notes = (f"{device.name}: measured whole-system peak while decoding ({source.split(',')[0]})",)
    elif device.bandwidth_gb_s:
        watts = idle + model.unified_watts_per_gb_s * device.bandwidth_gb_s
        terms = {"idle_watts": idle, "watts_per_gb_s": model.unified_watts_per_gb_s,
                 "bandwidth_gb_s": device.bandwidth_gb_s}
        notes = (f"{device.name}: no power measurement; scaled from measured Macs by memory bandwidth",)
    else:
        return Power(None, None, None, idle, "unknown", {}, (f"{device.name}: power unknown: give --watts",))
    spread = model.unified_range_fraction
    return Power(watts, (watts * (1 - spread), watts * (1 + spread)), watts, idle, "model", terms,
                 notes + ("prefill assumed to draw the same as decode (no measurement)",))


def fixed_power(watts: float, idle_watts: float | None) -> Power:
    """--watts: the user's figure for decode and prefill alike."""
    return Power(watts, (watts, watts), watts, idle_watts, "--watts", {"watts": watts})
