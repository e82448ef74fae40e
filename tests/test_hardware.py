"""Detection against a fake NVML (per function, with NVML's real errors), fake psutil, cgroup files, sysctl."""

from types import SimpleNamespace

import pynvml
import pytest

from advisor.detect import host, nvml
from advisor.errors import UsageError
from advisor.detect import detect_machine
from advisor.detect.apple import detect_apple
from advisor.detect.host import read_cgroup_limit
from advisor.detect.nvml import detect_gpus
from advisor.detect.simulated import simulated_machine
from fake_nvml import FUNCTION_NOT_FOUND, GIB, GPU_IS_LOST, NOT_SUPPORTED, FakeNVML, gpu


def test_no_driver_means_no_gpu_and_a_note():
    devices, notes, ok = detect_gpus(FakeNVML(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))
    assert devices == () and not ok
    assert "NVML Shared Library Not Found" in notes[0]


def test_driver_library_version_mismatch_is_reported_not_raised():
    devices, notes, ok = detect_gpus(FakeNVML(init_error=pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH))
    assert devices == () and "version mismatch" in notes[0]


def test_nvidia_ml_py_not_installed(monkeypatch):
    monkeypatch.setattr(nvml, "_load_nvml", lambda: None)
    devices, notes, ok = detect_gpus()
    assert devices == () and "not installed" in notes[0]


def test_one_gpu_gets_catalog_bandwidth_and_power_limit():
    fake = FakeNVML([gpu("NVIDIA GeForce RTX 4090", 23.99, 23.1, 450_000)])
    (d,), notes, ok = detect_gpus(fake)
    assert ok and fake.shutdown_called
    assert d.name == "NVIDIA GeForce RTX 4090" and d.catalog_id == "rtx4090"
    assert d.bandwidth_gb_s == 1008 and d.power_limit_watts == 450
    assert d.memory_free_bytes == int(23.1 * GIB)


def test_two_mixed_gpus():
    fake = FakeNVML([gpu("NVIDIA GeForce RTX 3090", 24), gpu("NVIDIA GeForce RTX 3060", 12, power_mw=170_000)])
    devices, _, _ = detect_gpus(fake)
    assert [d.catalog_id for d in devices] == ["rtx3090", "rtx3060-12gb"]
    assert [d.index for d in devices] == [0, 1]


def test_eight_gpus_of_two_kinds():
    fake = FakeNVML([gpu("NVIDIA A100-SXM4-80GB", 80)] * 4 + [gpu("NVIDIA H100 80GB HBM3", 80)] * 4)
    devices, _, _ = detect_gpus(fake)
    assert len(devices) == 8 and {d.catalog_id for d in devices} == {"a100-sxm4-80gb", "h100-sxm"}


def test_power_not_supported_degrades_that_field_only():
    # a known card falls back to its catalog TDP, and the report says the limit was not readable
    (d,), notes, _ = detect_gpus(FakeNVML([gpu(power_mw=NOT_SUPPORTED)]))
    assert d.power_limit_watts == 450 and d.memory_total_bytes == 24 * GIB
    assert any("power limit unknown (Not Supported)" in n for n in notes)
    assert any("catalog TDP (450 W)" in n for n in notes)
    # an unknown card has no fallback: the field stays unknown, the rest of the device is reported
    (d,), notes, _ = detect_gpus(FakeNVML([gpu("NVIDIA Prototype X", 32, power_mw=NOT_SUPPORTED)]))
    assert d.power_limit_watts is None and d.memory_total_bytes == 32 * GIB


def test_memory_info_v2_missing_falls_back_to_v1():
    (d,), notes, _ = detect_gpus(FakeNVML([gpu(v2=FUNCTION_NOT_FOUND)]))
    assert d.memory_total_bytes == 24 * GIB and notes == []


def test_name_not_supported_still_reports_the_gpu():
    (d,), notes, _ = detect_gpus(FakeNVML([gpu(name=NOT_SUPPORTED)]))
    assert d.name == "NVIDIA GPU 0" and d.bandwidth_gb_s is None
    assert any("name unknown" in n for n in notes)


def test_a_lost_gpu_is_skipped_and_the_rest_reported():
    fake = FakeNVML([gpu("NVIDIA GeForce RTX 3090", 24, lost=True), gpu("NVIDIA GeForce RTX 4090", 24)])
    devices, notes, _ = detect_gpus(fake)
    assert [d.catalog_id for d in devices] == ["rtx4090"]
    assert any("GPU 0 skipped: GPU is lost" in n for n in notes)


def test_gpu_whose_memory_cannot_be_read_is_left_out():
    devices, notes, _ = detect_gpus(FakeNVML([gpu(memory=GPU_IS_LOST, v2=GPU_IS_LOST)]))
    assert devices == () and any("left out" in n for n in notes)


def test_mig_reports_the_slices_not_the_parent():
    slices = [{"name": "1g.10gb", "total": 10 * GIB, "free": 10 * GIB, "power": NOT_SUPPORTED},
              {"name": "3g.40gb", "total": 40 * GIB, "free": 39 * GIB, "power": NOT_SUPPORTED}]
    fake = FakeNVML([gpu("NVIDIA A100-SXM4-80GB", 80, mig=slices)])
    devices, notes, _ = detect_gpus(fake)
    # a process sees one MIG instance: the largest is the device, both are listed (tests/test_hard_edges.py)
    assert [d.memory_total_bytes for d in devices] == [40 * GIB]
    assert all("MIG" in d.name for d in devices)
    assert any("MIG mode" in n and "1g.10gb" in n and "3g.40gb" in n for n in notes)


def test_mig_capable_but_disabled_reports_the_whole_gpu():
    devices, _, _ = detect_gpus(FakeNVML([gpu("NVIDIA A100-SXM4-80GB", 80, mig=[])]))
    assert len(devices) == 1 and devices[0].memory_total_bytes == 80 * GIB


def test_busy_gpu_verdict_uses_free_memory_and_says_so(monkeypatch, registry):
    from advisor.apps.estimate import estimate
    from advisor.core.memory import EngineSettings, KVChoice

    fake = FakeNVML([gpu("NVIDIA GeForce RTX 4090", 24, free_gib=6)])
    monkeypatch.setattr(nvml, "_load_nvml", lambda: fake)
    machine = detect_machine(cgroup_root=_no_cgroup())
    assert any("held by other processes; verdicts use free memory" in n for n in machine.notes)
    est = estimate(registry.model("llama-3-8b"), "Q4_K_M", KVChoice(), EngineSettings(), 8192, machine, registry.quants)
    assert est.placement == "gpu+cpu"  # 6 GiB free cannot hold 6.2 GiB + headroom


def test_unknown_card_keeps_memory_and_asks_for_bandwidth():
    (d,), notes, _ = detect_gpus(FakeNVML([gpu("NVIDIA Quantum Card 9000", 48)]))
    assert d.bandwidth_gb_s is None and d.memory_total_bytes == 48 * GIB
    assert any("not in the catalog" in n for n in notes)


# ---- RAM and containers


def _no_cgroup(tmp=None):
    from pathlib import Path

    return Path("/nonexistent-cgroup")


def _fake_psutil(monkeypatch, total_gib, available_gib):
    import psutil

    monkeypatch.setattr(psutil, "virtual_memory",
                        lambda: SimpleNamespace(total=int(total_gib * GIB), available=int(available_gib * GIB)))


def test_cgroup_v2_limit_below_host_ram(tmp_path, monkeypatch):
    (tmp_path / "memory.max").write_text(f"{8 * GIB}\n")
    (tmp_path / "memory.current").write_text(f"{2 * GIB}\n")
    _fake_psutil(monkeypatch, 128, 100)
    total, available, notes = host.detect_ram(tmp_path)
    assert total == 8 * GIB and available == 6 * GIB
    assert "container memory limit 8.0 GiB" in notes[0]


def test_cgroup_v2_without_limit(tmp_path, monkeypatch):
    (tmp_path / "memory.max").write_text("max\n")
    _fake_psutil(monkeypatch, 64, 50)
    assert host.detect_ram(tmp_path)[:2] == (64 * GIB, 50 * GIB)


def test_cgroup_v1_limit(tmp_path, monkeypatch):
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text(str(16 * GIB))
    (tmp_path / "memory" / "memory.usage_in_bytes").write_text(str(1 * GIB))
    _fake_psutil(monkeypatch, 64, 60)
    assert host.detect_ram(tmp_path)[:2] == (16 * GIB, 15 * GIB)


def test_cgroup_v1_unlimited_is_a_huge_number(tmp_path):
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712")
    assert read_cgroup_limit(tmp_path) == (None, None)


def test_psutil_failure_degrades_ram_only(monkeypatch):
    import psutil

    def boom():
        raise OSError("no /proc/meminfo")

    monkeypatch.setattr(psutil, "virtual_memory", boom)
    total, available, notes = host.detect_ram(_no_cgroup())
    assert total is None and "RAM unknown" in notes[0]


# ---- Apple Silicon


def _sysctl(values):
    return lambda name: values.get(name)


def test_apple_silicon_working_set_is_three_quarters_of_192gb():
    d, notes = detect_apple(_sysctl({"machdep.cpu.brand_string": "Apple M2 Ultra", "hw.memsize": str(192 * GIB)}),
                            "Darwin", "arm64")
    assert d.kind == "apple" and d.catalog_id == "m2-ultra"
    assert d.memory_total_bytes == 144 * GIB  # recommendedMaxWorkingSetSize 154618.82 MB (A05)
    assert d.bandwidth_gb_s == 800


def test_apple_8gb_working_set_is_two_thirds():
    d, _ = detect_apple(_sysctl({"machdep.cpu.brand_string": "Apple M1", "hw.memsize": str(8 * GIB)}), "Darwin", "arm64")
    assert d.memory_total_bytes / 1e6 == pytest.approx(5726.63, rel=0.001)  # A04


def test_not_a_mac():
    assert detect_apple(_sysctl({}), "Linux", "x86_64") == (None, [])


def test_machine_on_a_mac_without_nvml(monkeypatch):
    monkeypatch.setattr(nvml, "_load_nvml", lambda: None)
    _fake_psutil(monkeypatch, 64, 40)
    m = detect_machine(cgroup_root=_no_cgroup(),
                       sysctl=_sysctl({"machdep.cpu.brand_string": "Apple M3 Max", "hw.memsize": str(64 * GIB)}),
                       system="Darwin", arch="arm64")
    assert m.source == "apple" and m.gpus[0].memory_total_bytes == 48 * GIB


def test_cpu_only_machine(monkeypatch, no_gpu_machine):
    _fake_psutil(monkeypatch, 32, 20)
    m = detect_machine(cgroup_root=_no_cgroup(), system="Linux", arch="x86_64")
    assert m.source == "none" and m.gpus == () and m.ram_available_bytes == 20 * GIB
    assert any("CPU-only" in n for n in m.notes)


# ---- simulated machines


def test_simulated_multi_gpu_and_apple():
    m = simulated_machine(("2x RTX 3090",), ram_gib=64)
    assert len(m.gpus) == 2 and m.gpus[1].index == 1 and m.source == "simulated"
    mac = simulated_machine(("M2 Ultra",), ram_gib=192)
    assert mac.gpus[0].kind == "apple" and mac.ram_total_bytes == 192 * GIB


def test_simulated_custom_card_and_bad_values():
    m = simulated_machine((), vram_gib=20, bandwidth_gb_s=500)
    assert m.gpus[0].memory_total_bytes == 20 * GIB and m.gpus[0].bandwidth_gb_s == 500
    with pytest.raises(UsageError, match=r"--ram must be a positive number, got -4"):
        simulated_machine((), ram_gib=-4)
    # the count is refused, not the name: "RTX 4090" is a known GPU (an unknown name would raise too)
    with pytest.raises(UsageError, match=r"GPU count must be between 1 and \d+, got 0 in '0x RTX 4090'"):
        simulated_machine(("0x RTX 4090",))
    with pytest.raises(UsageError, match="ambiguous"):
        simulated_machine(("A100",))
