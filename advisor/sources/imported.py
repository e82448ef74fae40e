"""What reading a model file gives: a profile, what the reader noticed, and the weights when the file fixes them.
A leaf module: every reader (config.json, GGUF, the Hub, Ollama) builds one without importing the others."""

from __future__ import annotations


from advisor.core.model import ModelProfile
from advisor.core.record import record


@record
class Imported:
    """A profile read from a file, with what the reader noticed along the way."""

    profile: ModelProfile
    warnings: tuple[str, ...]
    weights: object = None  # a WeightsLayout when the file fixes the weights (GGUF), else None
    quant: str = ""  # the file's weight type (GGUF), else ""
