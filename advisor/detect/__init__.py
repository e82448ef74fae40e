"""Observed facts about this machine: NVIDIA GPUs (nvml), RAM (host), Apple Silicon (apple); and machines
described instead of observed (simulated). Each field that could not be read is None with a note saying why."""

from __future__ import annotations

from pathlib import Path

from advisor.core.hardware import Machine


def detect_machine(nvml=None, cgroup_root: Path = Path("/sys/fs/cgroup"), sysctl=None, system=None, arch=None,
                   probe: bool = True, cpu=None) -> Machine:
    """`cpu`: a function returning the Cpu (tests); by default advisor.detect.host.detect_cpu on `cgroup_root`."""
    # imported here: a simulated machine (advisor.detect.simulated) needs none of them
    from advisor.detect.apple import _sysctl, detect_apple
    from advisor.detect.host import detect_cpu, detect_ram
    from advisor.detect.nvml import detect_gpus

    sysctl = sysctl if sysctl is not None else _sysctl
    gpus, notes, _ = detect_gpus(nvml)
    total, available, ram_notes = detect_ram(cgroup_root)
    notes += ram_notes
    source = "nvml" if gpus else "none"
    cpu_bandwidth = link = None
    measured = False
    if len(gpus) > 1:
        from advisor.sources.links import link_for

        link = link_for(gpus[0].catalog_id)
        notes.append(f"link between the GPUs: {link.name}, from the catalog (NVLink is not probed)")
    if not gpus:
        apple, apple_notes = detect_apple(sysctl, system, arch)
        notes += apple_notes
        if apple is not None:
            gpus, source = (apple,), "apple"
            cpu_bandwidth = apple.bandwidth_gb_s  # one pool: the CPU's layers read the same memory
            notes = [n for n in notes if not n.startswith(("no NVIDIA", "NVML"))]
        else:
            notes.append("no GPU found: evaluating CPU-only")
    if cpu_bandwidth is None and probe:
        from advisor.detect.membw import ram_bandwidth

        cpu_bandwidth, where = ram_bandwidth(total)
        measured = cpu_bandwidth is not None
        notes.append(f"RAM bandwidth {cpu_bandwidth:.1f} GB/s, {where}" if cpu_bandwidth else f"RAM bandwidth {where}")
    found_cpu = cpu() if cpu is not None else detect_cpu(cgroup_root=cgroup_root, system=system)
    host_link = None
    if gpus and gpus[0].kind == "gpu":  # the catalog's PCIe slot for this card (the slot in use is not probed)
        from advisor.sources.links import host_link_for

        host_link = host_link_for(gpus[0].catalog_id)
    return Machine(source=source, gpus=tuple(gpus), ram_total_bytes=total, ram_available_bytes=available,
                   cpu_bandwidth_gb_s=cpu_bandwidth, notes=tuple(notes), link=link, cpu_bandwidth_measured=measured,
                   host_link=host_link,
                   cpu=found_cpu)
