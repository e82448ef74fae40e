"""Ollama: llama.cpp underneath, with its own context knob and flash-attention default.

- num_ctx is per sequence: it allocates num_ctx x OLLAMA_NUM_PARALLEL cells.
- Flash attention is off unless the KV cache is quantized (which requires it).
- What does not fit the GPU goes to RAM as whole layers (num_gpu); no expert offload of its own.
"""

from __future__ import annotations

from advisor.core.cache import Allocation
from advisor.core.memory import EngineSettings
from advisor.core.record import replace  # dataclasses.replace, faster for records
from advisor.engines.base import Job
from advisor.engines.llamacpp import LlamaCpp


class Ollama(LlamaCpp):
    name = "ollama"
    label = "Ollama"
    context_help = "num_ctx: per sequence"
    log_names = ("ollama",)

    def resolve(self, settings: EngineSettings, kv_quantized: bool) -> EngineSettings:
        if settings.offload == "auto":  # Ollama offloads whole layers (num_gpu); it has no --fit
            settings = replace(settings, offload="layers")
        return settings if settings.flash_attn is not None else replace(settings, flash_attn=kv_quantized)

    def allocation(self, settings: EngineSettings) -> Allocation:
        # one cache of num_ctx x OLLAMA_NUM_PARALLEL cells shared by the slots
        return replace(super().allocation(settings), pooled=True)

    def context_value(self, per_sequence: int, settings: EngineSettings) -> int:
        return per_sequence

    def per_sequence(self, context: int, settings: EngineSettings) -> int:
        return context

    def cells(self, job: Job, context: int) -> int:
        return job.alloc.pad(context * job.settings.parallel)

    def context_step(self, job: Job) -> int:
        """num_ctx x slots cells in one pool, padded to 256: with 2 slots, every 128 of num_ctx is a new size (a step
        of 256 skipped num_ctx 1..128, which fits where 256 may not)."""
        return max(1, job.alloc.pad_tokens // job.settings.parallel)

    def _context_of_cells(self, job: Job, cells: int) -> int:
        return cells // job.settings.parallel

    def _parallel_notes(self, context: int, settings: EngineSettings) -> list[str]:
        return [f"Ollama allocates num_ctx x OLLAMA_NUM_PARALLEL = {context} x {settings.parallel} cells"]


ENGINE = Ollama()
