"""A fake of the pynvml module (nvidia-ml-py), one function at a time, raising NVML's real errors.

Each fake GPU is a dict; a field set to an NVML error code makes that query raise it, the way a real
driver answers NVML_ERROR_NOT_SUPPORTED for power on some boards or GPU_IS_LOST for a card that fell off
the bus. Modelled on how gpustat and nvitop mock NVML per function in their tests.
"""

from __future__ import annotations

from types import SimpleNamespace

import pynvml

GIB = 1024**3
NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED
GPU_IS_LOST = pynvml.NVML_ERROR_GPU_IS_LOST
FUNCTION_NOT_FOUND = pynvml.NVML_ERROR_FUNCTION_NOT_FOUND


def gpu(name="NVIDIA GeForce RTX 4090", total_gib=24.0, free_gib=None, power_mw=450_000, **extra):
    total = int(total_gib * GIB)
    free = total if free_gib is None else int(free_gib * GIB)
    return {"name": name, "total": total, "free": free, "power": power_mw, **extra}


class FakeNVML:
    """Quacks like the pynvml module for the calls advisor.hardware makes."""

    NVMLError = pynvml.NVMLError
    nvmlMemory_v2 = pynvml.nvmlMemory_v2

    def __init__(self, gpus=(), init_error=None, count_error=None):
        self.gpus = list(gpus)
        self.init_error = init_error
        self.count_error = count_error
        self.shutdown_called = False

    @staticmethod
    def _maybe_raise(value):
        if isinstance(value, int) and value in (NOT_SUPPORTED, GPU_IS_LOST, FUNCTION_NOT_FOUND):
            raise pynvml.NVMLError(value)
        return value

    def nvmlInit(self):
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)

    def nvmlShutdown(self):
        self.shutdown_called = True

    def nvmlDeviceGetCount(self):
        if self.count_error is not None:
            raise pynvml.NVMLError(self.count_error)
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i):
        g = self.gpus[i]
        if g.get("lost"):
            raise pynvml.NVMLError(GPU_IS_LOST)
        return g

    def nvmlDeviceGetName(self, h):
        return self._maybe_raise(h["name"])

    def nvmlDeviceGetMemoryInfo(self, h, version=None):
        if version is not None and h.get("v2") is not None:
            self._maybe_raise(h["v2"])
        if h.get("memory") is not None:
            self._maybe_raise(h["memory"])
        return SimpleNamespace(total=h["total"], free=h["free"], used=h["total"] - h["free"])

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        return self._maybe_raise(h["power"])

    def nvmlDeviceGetMigMode(self, h):
        if "mig" not in h:
            raise pynvml.NVMLError(NOT_SUPPORTED)
        return (1, 1) if h["mig"] else (0, 0)

    def nvmlDeviceGetMaxMigDeviceCount(self, h):
        return len(h.get("mig") or []) + 1  # one empty slot as on real cards

    def nvmlDeviceGetUUID(self, h):
        # a real driver always has one ("GPU-..." or "MIG-..."); a fake device without "uuid" answers NOT_SUPPORTED
        return self._maybe_raise(h.get("uuid", NOT_SUPPORTED))

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h, j):
        slices = h.get("mig") or []
        if j >= len(slices):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return slices[j]
