"""The `advisor` command line. Parses options, calls the core, hands results to report.

Only click is imported at start-up; everything else is imported inside the commands so that
`advisor --help` costs little more than importing click.
"""

from __future__ import annotations

import sys

import click

from . import __version__
from .errors import AdvisorError

DEFAULT_QUANT = {"llama.cpp": "Q4_K_M", "ollama": "Q4_K_M", "vllm": "BF16"}
DEFAULT_KV_TYPES = {"llama.cpp": ("f16", "q8_0", "q4_0"), "ollama": ("f16", "q8_0", "q4_0"), "vllm": ("f16", "fp8")}
MAX_CONTEXT_TOKENS = 1 << 24  # 16M tokens: anything larger is a typo, not a context


def _positive_context(ctx, param, values):
    values = values if isinstance(values, tuple) else (values,)
    for v in values:
        if v is not None and not 1 <= v <= MAX_CONTEXT_TOKENS:
            raise click.BadParameter(f"must be between 1 and {MAX_CONTEXT_TOKENS} tokens, got {v}")
    return values if param.multiple else values[0]


def machine_options(f):
    options = [
        click.option("--gpu", "gpus", multiple=True, metavar="SPEC",
                     help='Simulate a GPU from the catalog: "RTX 4090", "2x RTX 3090", "M2 Ultra". Repeatable.'),
        click.option("--vram", type=float, metavar="GIB", help="Memory of each simulated GPU (a card not in the catalog)."),
        click.option("--bandwidth", type=float, metavar="GB_S", help="Memory bandwidth of a simulated GPU."),
        click.option("--ram", type=float, metavar="GIB", help="Simulated system RAM (unified memory on a Mac)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def engine_options(f):
    options = [
        click.option("--engine", type=click.Choice(["llama.cpp", "ollama", "vllm"]), default="llama.cpp",
                     show_default=True, help="Inference engine whose memory behaviour to model."),
        click.option("--parallel", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Slots (llama.cpp --parallel, OLLAMA_NUM_PARALLEL) or concurrent sequences (vLLM)."),
        click.option("--flash-attn/--no-flash-attn", default=None,
                     help="Flash attention (default: on for llama.cpp, off for Ollama unless the KV cache is quantized)."),
        click.option("--headroom", type=click.FloatRange(min=0), default=1.0, show_default=True, metavar="GIB",
                     help="Memory kept free on each GPU (llama.cpp / Ollama)."),
        click.option("--swa-full", is_flag=True, help="Keep a full cache in sliding-window layers (llama.cpp --swa-full)."),
        click.option("--gpu-util", type=click.FloatRange(min=0.05, max=1.0), default=0.9, show_default=True,
                     help="vLLM gpu_memory_utilization."),
        click.option("--json", "as_json", is_flag=True, help="Machine-readable output."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _engine(engine, parallel, flash_attn, headroom, swa_full, gpu_util):
    from .memory import EngineSettings
    from .units import GIB

    return EngineSettings(name=engine, flash_attn=flash_attn, parallel=parallel, headroom_bytes=int(headroom * GIB),
                          swa_full=swa_full, gpu_memory_utilization=gpu_util)


def _machine(gpus, vram, bandwidth, ram):
    from .hardware import detect_machine, simulated_machine

    if gpus or vram is not None or ram is not None:
        return simulated_machine(tuple(gpus), vram, bandwidth, ram)
    if bandwidth is not None:
        raise AdvisorError("--bandwidth needs --vram or --gpu")
    return detect_machine()


def _fail(error: AdvisorError):
    click.echo(f"advisor: error: {error}", err=True)
    sys.exit(error.exit_code)


class _Group(click.Group):
    """Turns AdvisorError into one line on stderr and its exit code, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AdvisorError as error:
            _fail(error)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="advisor")
def main():
    """Will open LLMs run on your hardware, how well, and is it cheaper than a cloud API?

    \b
    Examples:
      advisor check                                  # this machine, every shipped model
      advisor check --gpu "RTX 4090" --ram 64        # a simulated machine
      advisor fit llama-3-8b --quant Q4_K_M --context 8192 --explain
      advisor models
    """


@main.command()
@machine_options
@click.option("--model", "models", multiple=True, metavar="ID", help="Model profile id (repeatable; default: all).")
@click.option("--quant", "quants", multiple=True, metavar="TYPE", help="Weight type, e.g. Q4_K_M, Q8_0, BF16 (repeatable).")
@click.option("--kv-type", "kv_types", multiple=True, metavar="TYPE", help="KV cache type: f16, q8_0, q4_0, ... (repeatable).")
@click.option("--context", "contexts", multiple=True, type=int, callback=_positive_context, metavar="TOKENS",
              help="Context to evaluate (repeatable; default: each model's maximum).")
@click.option("--what-if/--no-what-if", default=True, show_default=True, help="Include what-if KV variants.")
@engine_options
def check(gpus, vram, bandwidth, ram, models, quants, kv_types, contexts, what_if, engine, parallel, flash_attn,
          headroom, swa_full, gpu_util, as_json):
    """Which models fit on this (or a simulated) machine, at which context, on GPU or spilling to RAM.

    \b
    Examples:
      advisor check
      advisor check --gpu "2x RTX 3090" --model llama-3-70b --context 32768
      advisor check --gpu "M2 Ultra" --ram 192 --kv-type q8_0 --json
    """
    from .api import check_grid
    from .report import check_text, to_json

    machine = _machine(gpus, vram, bandwidth, ram)
    settings = _engine(engine, parallel, flash_attn, headroom, swa_full, gpu_util)
    estimates = check_grid(
        machine, settings,
        models=models or None,
        quants=quants or (DEFAULT_QUANT[engine],),
        kv_types=kv_types or DEFAULT_KV_TYPES[engine],
        contexts=contexts or (None,),
        include_what_if=what_if,
    )
    if as_json:
        from .api import result_dict

        click.echo(to_json({"machine": machine.as_dict(), "results": [result_dict(e, machine) for e in estimates]}))
    else:
        click.echo(check_text(machine, estimates))


@main.command()
@click.argument("model")
@machine_options
@click.option("--quant", metavar="TYPE", help="Weight type (default: Q4_K_M; BF16 for vLLM).")
@click.option("--context", type=int, callback=_positive_context, metavar="TOKENS",
              help="Context (llama.cpp -c: total over slots; default: the model's maximum).")
@click.option("--kv-type", metavar="TYPE", default="f16", show_default=True, help="KV cache type for K and V.")
@click.option("--kv-type-k", metavar="TYPE", help="K cache type (llama.cpp -ctk).")
@click.option("--kv-type-v", metavar="TYPE", help="V cache type (llama.cpp -ctv; quantized V needs flash attention).")
@click.option("--kv-bits", type=int, metavar="N", help="What-if: an N-bit KV cache (e.g. 6, as DeepSeek-V2 serves).")
@click.option("--explain", is_flag=True, help="Show the formula and every term.")
@engine_options
def fit(model, gpus, vram, bandwidth, ram, quant, context, kv_type, kv_type_k, kv_type_v, kv_bits, explain, engine,
        parallel, flash_attn, headroom, swa_full, gpu_util, as_json):
    """One configuration in detail: weights, KV cache, compute buffer, overhead, per device.

    \b
    Examples:
      advisor fit llama-3-8b --quant Q4_K_M --context 8192 --kv-type q8_0
      advisor fit llama-3-70b --gpu "2x RTX 3090" --context 32768 --explain
      advisor fit deepseek-v2 --engine vllm --kv-bits 6 --gpu "8x H100 SXM" --json
    """
    from .api import fit_one
    from .memory import KVChoice
    from .report import fit_text, to_json

    machine = _machine(gpus, vram, bandwidth, ram)
    settings = _engine(engine, parallel, flash_attn, headroom, swa_full, gpu_util)
    kv = KVChoice(k=kv_type_k or kv_type, v=kv_type_v or kv_type, bits=kv_bits)
    est = fit_one(model, quant or DEFAULT_QUANT[engine], kv, settings, context, machine)
    if as_json:
        from .api import result_dict

        data = result_dict(est, machine)
        data["machine"] = machine.as_dict()
        if explain:
            from .report import explain_lines

            data["explain"] = explain_lines(est)
        click.echo(to_json(data))
    else:
        click.echo(fit_text(machine, est, explain))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models(as_json):
    """The shipped model profiles (what-if variants marked *)."""
    from .profiles import load_registry
    from .report import models_table, to_json

    registry = load_registry()
    if as_json:
        click.echo(to_json([m.as_dict() for m in registry.models.values()]))
    else:
        click.echo(models_table(registry.models.values()))

