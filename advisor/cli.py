"""The `advisor` command line. Parses options, calls the core, hands results to report.

Only click is imported at start-up; everything else is imported inside the commands so that
`advisor --help` costs little more than importing click.
"""

from __future__ import annotations

import sys

import click

from advisor import __version__, engines  # engines/__init__ lists modules lazily: cheap to import
from advisor.errors import AdvisorError

FORMATS = ("table", "json", "csv", "markdown")  # advisor.output.FORMATS; repeated so --help needs no import

DEFAULT_ENGINE = engines.PREFERRED_ORDER[0]
MAX_RAM_CHANNELS = 24  # a two-socket server with 12 channels each
DEFAULT_RAM_CHANNELS = 2  # a desktop board
BYTES_PER_TRANSFER = 8  # one 64-bit DDR channel moves 8 bytes per transfer
RAM_TYPE = r"^(DDR[3-5]|LPDDR[45]X?)-(\d{3,5})$"


class EngineChoice(click.Choice):
    """--engine's choices are the registry's (one module per engine under advisor/engines/), looked up only when
    an option is parsed or its help shown: importing every engine would slow `advisor --help`."""

    def __init__(self):
        super().__init__(())

    @property
    def choices(self):
        return engines.names()

    @choices.setter
    def choices(self, value):
        pass


class Number(click.FloatRange):
    """A float option that is finite and in range. click's FloatRange lets "nan" through every bound (each
    comparison with NaN is false) and "inf" past a missing one; every float option, its ADVISOR_* variable and its
    config.toml key go through this instead."""

    name = "number"

    def __init__(self, min=None, max=None, min_open=False, max_open=False, unit=""):
        super().__init__(min=min, max=max, min_open=min_open, max_open=max_open)
        self.unit = unit

    def _describe(self) -> str:
        def num(x):
            return str(int(x)) if float(x).is_integer() and abs(x) < 1e7 else f"{x:g}"

        unit = f" {self.unit}" if self.unit else ""
        if self.min == 0 and self.min_open:
            low = "a positive number"
        elif self.min is not None:
            low = f"a number {'>' if self.min_open else '>='} {num(self.min)}"
        else:
            low = "a number"
        if self.max is None:
            return low + unit
        if self.min is not None and not self.min_open and not self.max_open:
            return f"between {num(self.min)} and {num(self.max)}{unit}"
        return f"{low} {'below' if self.max_open else 'at most'} {num(self.max)}{unit}"

    def convert(self, value, param, ctx):
        import math

        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            self.fail(f"must be {self._describe()}, got {value!r}", param, ctx)
        if not math.isfinite(number):
            self.fail(f"must be a finite number ({self._describe()}), got {value!r}", param, ctx)
        low = self.min is not None and (number <= self.min if self.min_open else number < self.min)
        if self.min == 0 and self.min_open and 0 < number < MIN_POSITIVE:
            self.fail(f"must be {self._describe()}; {value!r} is below the least, {MIN_POSITIVE:g}", param, ctx)
        high = self.max is not None and (number >= self.max if self.max_open else number > self.max)
        if low or high:
            self.fail(f"must be {self._describe()}, got {value!r}", param, ctx)
        return number


class Text(click.ParamType):
    """A string option that cannot be empty: `--quant ""` is a mistake (an unset shell variable), not the default."""

    name = "text"

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        if not value.strip():
            self.fail("must not be empty", param, ctx)
        return value


TEXT = Text()
# The least value a "positive number" option takes (in its own unit: GiB, GB/s, W, years, tokens a day, units of
# currency per USD): nothing real is smaller, and products of a subnormal like 1e-320 underflow to 0 (the fuzz test
# found --bandwidth 1e-320 making decode 0 tok/s and a division by zero in breakeven)
MIN_POSITIVE = 1e-6
MAX_GIB = float(1 << 20)  # GiB of memory (VRAM, RAM, headroom): 1 PiB, far above any machine
MAX_GB_S = 1e6  # memory bandwidth, GB/s: 1 PB/s (an H200 has 4.8 TB/s)
MAX_YEARS = 100.0
MAX_MONEY = 1e15  # a price or budget in any currency
MAX_FX = 1e9  # units of a currency per USD (the weakest currencies are near 1e5..1e6)
MAX_KWH_PRICE = 1e9  # per kWh in --currency (MAX_FX x a few USD)
MAX_TOKENS_PER_DAY = 1e15
MAX_WATTS = 1e6  # a whole rack
MAX_TOKENS_PER_S = 1e7
MAX_PARALLEL = 4096  # slots / sequences, as --concurrency (a larger count made check spin for minutes)
MAX_CONTEXT_TOKENS = 1 << 24  # 16M tokens: anything larger is a typo, not a context
DEFAULT_TOKENS_PER_DAY = 1_000_000
DEFAULT_INPUT_SHARE = 0.75  # 3 input tokens per output token: chat with history or retrieved context (an assumption)


def _positive_context(ctx, param, values):
    values = values if isinstance(values, tuple) else (values,)
    for v in values:
        if v is not None and not 1 <= v <= MAX_CONTEXT_TOKENS:
            raise click.BadParameter(f"must be between 1 and {MAX_CONTEXT_TOKENS} tokens, got {v}")
    return values if param.multiple else values[0]


def machine_options(f):
    options = [
        click.option("--gpu", "gpus", multiple=True, type=TEXT, metavar="SPEC",
                     help='Simulate a GPU from the catalog: "RTX 4090", "2x RTX 3090", "M2 Ultra". Repeatable.'),
        click.option("--vram", type=Number(0, MAX_GIB, min_open=True, unit="GiB"), metavar="GIB",
                     help="Memory of each simulated GPU (a card not in the catalog)."),
        click.option("--bandwidth", type=Number(0, MAX_GB_S, min_open=True, unit="GB/s"), metavar="GB_S",
                     help="Memory bandwidth of a simulated GPU."),
        click.option("--ram", type=Number(0, MAX_GIB, min_open=True, unit="GiB"), metavar="GIB",
                     help="Simulated system RAM (unified memory on a Mac)."),
        click.option("--ram-bandwidth", type=Number(0, MAX_GB_S, min_open=True, unit="GB/s"), metavar="GB_S",
                     expose_value=False, callback=_keep, help="RAM bandwidth (what layers or experts in RAM read at)."),
        click.option("--ram-type", metavar="DDR5-5600", expose_value=False, callback=_keep,
                     help="RAM type and speed: bandwidth = channels x MT/s x 8 bytes (with --ram-channels)."),
        click.option("--ram-channels", type=click.IntRange(min=1, max=MAX_RAM_CHANNELS), default=None,
                     expose_value=False, callback=_keep, help="Populated memory channels (default 2, a desktop)."),
        click.option("--no-probe", is_flag=True, expose_value=False, callback=_keep,
                     help="Do not measure this machine's RAM bandwidth (a 0.1 s copy, cached per machine)."),
    ]
    for option in reversed(options):
        f = option(f)
    return cpu_options(f)


MAX_CPU_CORES = 4096  # advisor.detect.simulated.MAX_CPU_CORES (repeated so --help needs no import)
GGML_MAX_N_THREADS = 512  # llama.cpp's most threads (ggml/include/ggml.h, commit 0c1e5709)


def cpu_options(f):
    """The CPU as the engine's threads use it: on every command that describes a machine (plan: every option)."""
    options = [
        click.option("--cpu-cores", type=click.IntRange(min=1, max=MAX_CPU_CORES), default=None, metavar="N",
                     expose_value=False, callback=_keep,
                     help="CPU cores (physical) the engine may use; with --cpu-isa, sets the CPU's compute ceiling."),
        click.option("--threads", type=click.IntRange(min=1, max=GGML_MAX_N_THREADS), default=None, metavar="N",
                     expose_value=False, callback=_keep,
                     help="llama.cpp -t (default: llama.cpp's own, the physical cores)."),
        click.option("--cpu-isa", type=TEXT, default=None, metavar="ISA", expose_value=False, callback=_keep,
                     help="CPU instruction set for the per-core figures: avx512, avx2, neon "
                          "(profiles/hardware/cpu_isa.toml; default: detected)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _with_cpu(machine):
    """The machine with --cpu-cores / --threads / --cpu-isa applied (advisor.detect.simulated.with_cpu)."""
    meta = click.get_current_context().meta
    cores, threads, isa = meta.get("cpu_cores"), meta.get("threads"), meta.get("cpu_isa")
    if cores is None and threads is None and isa is None:
        return machine
    from advisor.detect.simulated import with_cpu

    return with_cpu(machine, cores, threads, isa)


def _keep(ctx, param, value):
    """Options every machine-taking command has but only _machine reads: kept in the context, not passed on."""
    ctx.meta[param.name] = value
    return value


def engine_options(f):
    options = [
        click.option("--engine", type=EngineChoice(), default=DEFAULT_ENGINE,
                     show_default=True, help="Inference engine whose memory behaviour to model."),
        click.option("--parallel", type=click.IntRange(min=1, max=MAX_PARALLEL), default=1, show_default=True,
                     help="Slots (llama.cpp --parallel, OLLAMA_NUM_PARALLEL) or concurrent sequences (vLLM)."),
        click.option("--flash-attn/--no-flash-attn", default=None,
                     help="Flash attention (default: on for llama.cpp, off for Ollama unless the KV cache is quantized)."),
        click.option("--headroom", type=Number(0, MAX_GIB, unit="GiB"), default=1.0, show_default=True, metavar="GIB",
                     envvar="ADVISOR_HEADROOM", show_envvar=True,
                     help="Memory kept free on each GPU (llama.cpp / Ollama)."),
        click.option("--swa-full", is_flag=True, help="Keep a full cache in sliding-window layers (llama.cpp --swa-full)."),
        click.option("--kv-unified", is_flag=True,
                     help="llama.cpp --kv-unified: one cache shared by the slots (default: one per slot)."),
        click.option("--mla-v-cache", is_flag=True,
                     help="MLA as llama.cpp builds of 2025-04 to 2026-01 cached it: a V latent beside the K latent."),
        click.option("--offload", type=click.Choice(["auto", "layers"]), default="auto", show_default=True,
                     help="What does not fit the GPU goes to RAM: auto = llama.cpp's --fit (a MoE model's routed "
                          "experts first, then whole layers); layers = whole layers only (-ngl)."),
        click.option("--cpu-moe", is_flag=True, help="llama.cpp --cpu-moe: every layer's routed experts in RAM."),
        click.option("--n-cpu-moe", type=click.IntRange(min=0), metavar="N",
                     help="llama.cpp --n-cpu-moe N: the routed experts of the first N layers in RAM."),
        click.option("-ot", "--override-tensor", "override_tensor", multiple=True, metavar="PATTERN=CPU",
                     help=r"llama.cpp -ot: expert tensors matching PATTERN in RAM, e.g. 'exps=CPU' or "
                          r"'blk\.(1[0-9])\.ffn_.*_exps=CPU' (repeatable)."),
        click.option("--gpu-util", type=Number(0.05, 1.0), default=0.9, show_default=True,
                     help="vLLM gpu_memory_utilization."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def output_options(f):
    options = [
        click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                     help="table (default), json, csv (one row per result, raw numbers) or markdown."),
        click.option("--json", "as_json", is_flag=True, help="Same as --format json."),
        click.option("-q", "--quiet", is_flag=True, help="The table alone: no machine lines, legends, notes or spinner."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def source_options(f):
    """--offline on the commands that take a model: Hugging Face and Ollama names from the local caches only."""
    return click.option("--offline", is_flag=True, expose_value=False, callback=_set_offline,
                        help="Remote model names (ORG/NAME, ORG/REPO-GGUF:QUANT, NAME:TAG) from the cache only, "
                             "no network (also HF_HUB_OFFLINE=1).")(f)


def _set_offline(ctx, param, value):
    from advisor.sources.model_files import set_offline

    set_offline(value)
    return value


def money_options(f):
    """Electricity, currency and volume: the same options on breakeven and plan (and the same config keys)."""
    options = [
        click.option("--kwh-price", type=Number(0, MAX_KWH_PRICE), metavar="PRICE", envvar="ADVISOR_KWH_PRICE",
                     show_envvar=True, help="Electricity price per kWh, in --currency."),
        click.option("--region", metavar="CODE", envvar="ADVISOR_REGION", show_envvar=True,
                     help="Electricity price preset instead of --kwh-price: US, US-NY, DE, CN-BJ, ..."),
        click.option("--currency", default="USD", show_default=True, metavar="CODE", envvar="ADVISOR_CURRENCY",
                     show_envvar=True, help="Currency of every money field."),
        click.option("--fx", type=Number(0, MAX_FX, min_open=True), metavar="RATE", envvar="ADVISOR_FX",
                     show_envvar=True,
                     help="Units of --currency per USD (API, catalog and rental prices are in USD), e.g. 7.0 for CNY."),
        click.option("--tokens-per-day", type=Number(0, MAX_TOKENS_PER_DAY, min_open=True),
                     default=DEFAULT_TOKENS_PER_DAY, show_default=True, metavar="N", help="Tokens (input + output) you would send to an API per day."),
        click.option("--input-share", type=Number(0, 1), default=DEFAULT_INPUT_SHARE,
                     show_default=True, metavar="SHARE", help="Share of those tokens that are input (prompt), 0..1."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _format(fmt: str | None, as_json: bool) -> str:
    if as_json and fmt not in (None, "json"):
        raise _usage(f"--json and --format {fmt} disagree; give one")
    return "json" if as_json else fmt or "table"


def _emit(doc, fmt: str, quiet: bool, warnings=()):
    """The document on stdout; warnings (and user-profile shadowing notices) on stderr, unless --quiet."""
    from advisor.present.output import colour_enabled, render
    from advisor.sources.profiles import load_registry

    if not quiet:
        loaded = load_registry.cache_info().currsize
        for line in list(warnings) + list(load_registry().notices if loaded else ()):
            click.echo(f"advisor: warning: {line}", err=True)
    text = render(doc, fmt, quiet, colour=fmt == "table" and colour_enabled())
    if sys.stdout is None:  # started with stdout closed (`advisor check >&-`): the answer has nowhere to go
        _fail_line("cannot write the output: stdout is closed", 1)
    try:
        click.echo(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _reader_left()
    except OSError as exc:  # ENOSPC (a full disk), EIO, EDQUOT: the output is incomplete, and says so on stderr
        _output_lost(exc)


def _output_lost(exc: OSError):
    """Writing stdout failed (`advisor check --json > /mnt/full/out.json`): one line on stderr, exit 1. stdout goes to
    /dev/null first so that the interpreter's final flush does not fail again with a second message."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    _fail_line(_output_lost_words(exc), 1)


def _output_lost_words(exc: OSError) -> str:
    return f"cannot write the output: {exc.strerror or exc}"


def _reader_left():
    """The reader closed the pipe (`advisor check | head`): nothing is wrong, and nothing more can be said on stdout.
    stdout goes to /dev/null so that the interpreter's final flush does not raise again (Python docs, "Note on
    SIGPIPE"); click would exit 1 here."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


def _import_warnings(models) -> list[str]:
    """What importing the files among `models` noticed (read again from the cache of the import)."""
    from advisor.sources.model_files import load_model, looks_like_path

    return [f"{name}: {w}" for name in models if looks_like_path(name) for w in load_model(name).warnings]


def _engine(engine, parallel, flash_attn, headroom, swa_full, gpu_util, kv_unified=False, mla_v_cache=False,
            offload="auto", cpu_moe=False, n_cpu_moe=None, override_tensor=()):
    from advisor.core.memory import CPU_MOE_ALL_LAYERS, EngineSettings
    from advisor.core.units import GIB

    from advisor.engines.llamacpp import parse_override

    patterns = tuple(parse_override(t) for t in override_tensor)
    explicit = cpu_moe or n_cpu_moe is not None or patterns
    if explicit and not engines.get(engine).loads_gguf:
        raise _usage(f"--cpu-moe / --n-cpu-moe / --override-tensor are llama.cpp options; {engine} does not "
                     "offload experts")
    first = CPU_MOE_ALL_LAYERS if cpu_moe else (n_cpu_moe or 0)
    return EngineSettings(name=engine, flash_attn=flash_attn, parallel=parallel, headroom_bytes=int(headroom * GIB),
                          swa_full=swa_full, gpu_memory_utilization=gpu_util, kv_unified=kv_unified,
                          mla_v_cache=mla_v_cache, offload="experts" if explicit else offload,
                          cpu_moe_first=first, cpu_moe_patterns=patterns)


def _ram_bandwidth() -> tuple[float | None, str]:
    """(GB/s, where it came from) from --ram-bandwidth or --ram-type / --ram-channels, else (None, "")."""
    import re

    meta = click.get_current_context().meta
    given, kind, channels = meta.get("ram_bandwidth"), meta.get("ram_type"), meta.get("ram_channels")
    if given is not None and (kind or channels):
        raise _usage("give --ram-bandwidth or --ram-type/--ram-channels, not both")
    if given is not None:
        return given, "given (--ram-bandwidth)"
    if kind is None:
        if channels:
            raise _usage("--ram-channels needs --ram-type (e.g. DDR5-5600)")
        return None, ""
    match = re.match(RAM_TYPE, kind.strip().upper())
    if not match:
        raise _usage(f"--ram-type must look like DDR5-5600 or LPDDR5X-8533, got '{kind}'")
    channels = channels or DEFAULT_RAM_CHANNELS
    rate = int(match.group(2))
    gb_s = channels * rate * BYTES_PER_TRANSFER / 1000
    return gb_s, f"{channels} channels x {match.group(1)}-{rate} x {BYTES_PER_TRANSFER} bytes"


def _machine(gpus, vram, bandwidth, ram, quiet: bool = False):
    from dataclasses import replace

    from advisor.detect import detect_machine
    from advisor.detect.simulated import simulated_machine

    ram_bw, ram_bw_source = _ram_bandwidth()
    if gpus or vram is not None or ram is not None:
        machine = simulated_machine(tuple(gpus), vram, bandwidth, ram)
    else:
        if bandwidth is not None:
            raise _usage("--bandwidth needs --vram or --gpu")
        from advisor.present.progress import spinner

        with spinner("detecting GPUs and memory", enabled=not quiet):
            meta = click.get_current_context().meta
            machine = detect_machine(probe=not (meta.get("no_probe") or ram_bw is not None))
    if ram_bw is not None:
        notes = tuple(n for n in machine.notes if "read the same unified memory" not in n)
        machine = replace(machine, cpu_bandwidth_gb_s=ram_bw, cpu_bandwidth_measured=False,
                          notes=notes + (f"RAM bandwidth {ram_bw:g} GB/s: {ram_bw_source}",))
    return _with_cpu(machine)


def _today():
    """The date that decides which API prices are current (one place, so tests can fix it)."""
    import datetime as dt

    return dt.date.today()


def _fail(error: AdvisorError):
    _fail_line(str(error), error.exit_code)


def _fail_line(message: str, code: int):
    """The one line every error is: `advisor: error: ...` on stderr, then the exit code."""
    message = " ".join(message.split()) or "failed"
    try:
        click.echo(f"advisor: error: {message}", err=True)
    except OSError:
        pass  # stderr itself is gone: the exit code still says it
    sys.exit(code)


def _os_error(exc: OSError) -> str:
    """An OSError as the words after `advisor: error:` (the file it names, then what went wrong)."""
    what = exc.strerror or str(exc) or type(exc).__name__
    return f"{exc.filename}: {what}" if exc.filename else what


def _os_failure(exc: OSError):
    """An OSError no code below handled, as one line and exit 1: a full disk under stdout (a --help written to it)
    says so, anything else names its file and what went wrong."""
    import errno

    if exc.filename is None and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG):
        _output_lost(exc)
    _fail_line(_os_error(exc), 1)


def _option_error(commands: dict, key: str, value) -> str | None:
    """Why the option `key` feeds (of any command) would refuse `value`; None when it takes it or none is named so."""
    param = next((p for c in commands.values() for p in c.params if p.name == key), None)
    if param is None:
        return None
    try:
        param.type.convert(value, param, None)
    except click.BadParameter as exc:
        return exc.message
    return None


def _check_variable(commands: dict, key: str, value: str) -> None:
    """An ADVISOR_* value through the type of the option it feeds, as the commands would take it: a bad one is one
    line naming the variable, exit 2 (`advisor config` shows values, so it must not show one no command accepts)."""
    from advisor.sources.config import env_name, is_currency_code

    if (error := _option_error(commands, key, value)) is not None:
        _fail_line(f"{env_name(key)}: {error}", 2)
    if key == "currency":
        if not is_currency_code(value):
            _fail_line(f"{env_name(key)} must be a 3-letter code such as USD, EUR, CNY; got '{value}'", 2)
    elif key == "region":
        from advisor.sources.prices import load_prices

        try:
            load_prices(None).region(value)
        except AdvisorError as exc:
            _fail_line(f"{env_name(key)}: {exc}", 2)


def _check_config(commands: dict, values: dict) -> None:
    """Each config.toml value through the type of the option it feeds, so that a value out of range is blamed on the
    file and its key (exit 1), never on the option click would name."""
    from advisor.errors import ProfileError
    from advisor.sources.config import config_path

    for key, value in values.items():
        if (error := _option_error(commands, key, value)) is not None:
            raise ProfileError(f"{config_path()}: '{key}' {error}")


def _click_message(exc: click.ClickException) -> str:
    """click's error as one line. A bad value names where it came from: the option, or its ADVISOR_* variable (click
    names both whichever it was)."""
    from click.core import ParameterSource

    message = exc.format_message()
    ctx = getattr(exc, "ctx", None)
    param = getattr(exc, "param", None)
    if (isinstance(exc, click.BadParameter) and not isinstance(exc, click.MissingParameter) and param is not None
            and ctx is not None and exc.param_hint is None):
        source = ctx.get_parameter_source(param.name)
        envvar = getattr(param, "envvar", None)
        if source == ParameterSource.ENVIRONMENT and isinstance(envvar, str):
            where = envvar
        elif isinstance(param, click.Argument):
            where = param.human_readable_name
        else:
            where = "/".join(param.opts or (param.name,))
        message = f"{where}: {exc.message}"
    if isinstance(exc, click.UsageError) and ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return message


_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2


class _ReaderLeft(Exception):
    """A broken pipe while click prints (`advisor check --help | true`). click's main turns EPIPE into exit 1 even
    outside standalone mode (click/core.py, Command.main); this is not an OSError, so it passes click untouched."""


class _Group(click.Group):
    """Turns AdvisorError, click's usage errors and OS errors into one line on stderr and an exit code, never a
    traceback; feeds the config file's defaults to the subcommand (click then lets ADVISOR_* variables and options
    override them)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except _NO_ARGS_IS_HELP as exc:  # `advisor` alone: the help, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:  # click's usage errors (exit 2) and the rest of its own
            _fail_line(_click_message(exc), exc.exit_code)
        except click.exceptions.Abort:
            _fail_line("aborted", 1)
        except (BrokenPipeError, _ReaderLeft):
            _reader_left()
        except OSError as exc:  # the last guard: a name too long, a permission, --help on a full disk: one line
            _os_failure(exc)
        sys.exit(code if isinstance(code, int) else 0)

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except BrokenPipeError as exc:  # `advisor --help | true`
            raise _ReaderLeft() from exc

    def invoke(self, ctx):
        try:
            if not ctx.resilient_parsing:
                from advisor.sources.config import default_map, load_config

                values = load_config()
                _check_config(self.commands, values)
                ctx.default_map = default_map(self.commands, values)
            return super().invoke(ctx)
        except AdvisorError as error:
            _fail(error)
        except BrokenPipeError as exc:  # a subcommand's --help into a closed pipe
            raise _ReaderLeft() from exc


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
@click.option("--model", "models", multiple=True, type=TEXT, metavar="ID|FILE",
              help="Model profile id, or a config.json / .gguf path (repeatable; default: all profiles).")
@click.option("--quant", "quants", multiple=True, type=TEXT, metavar="TYPE", help="Weight type, e.g. Q4_K_M, Q8_0, BF16 (repeatable).")
@click.option("--kv-type", "kv_types", multiple=True, type=TEXT, metavar="TYPE", help="KV cache type: f16, q8_0, q4_0, ... (repeatable).")
@click.option("--context", "contexts", multiple=True, type=int, callback=_positive_context, metavar="TOKENS",
              help="Context to evaluate (repeatable; default: each model's maximum).")
@click.option("--what-if/--no-what-if", default=True, show_default=True,
              help="Include what-if KV variants (with --all-models).")
@click.option("--all-models", is_flag=True,
              help="Every shipped profile, 2023-2024 models and what-if variants too (default: models of 2025-2026).")
@engine_options
@output_options
@source_options
def check(gpus, vram, bandwidth, ram, models, quants, kv_types, contexts, what_if, all_models, engine, parallel,
          flash_attn,
          headroom, swa_full, kv_unified, mla_v_cache, offload, cpu_moe, n_cpu_moe, override_tensor, gpu_util, fmt,
          as_json, quiet):
    """Which models fit on this (or a simulated) machine, at which context, on GPU or spilling to RAM.

    \b
    Examples:
      advisor check
      advisor check --gpu "2x RTX 3090" --model llama-3-70b --context 32768
      advisor check --gpu "M2 Ultra" --ram 192 --kv-type q8_0 --json
      advisor check --format csv --quiet > fits.csv
      advisor check --model ./my-model.gguf --context 8192
    """
    from advisor.api import check_grid
    from advisor.present.report import check_document

    fmt = _format(fmt, as_json)
    machine = _machine(gpus, vram, bandwidth, ram, quiet)
    settings = _engine(engine, parallel, flash_attn, headroom, swa_full, gpu_util, kv_unified, mla_v_cache, offload,
                       cpu_moe, n_cpu_moe, override_tensor)
    estimates = check_grid(
        machine, settings,
        models=models or None,
        quants=quants or (engines.get(engine).default_quant,),
        kv_types=kv_types or engines.get(engine).check_kv_types,
        contexts=contexts or (None,),
        include_what_if=what_if,
        quants_given=bool(quants),
        all_models=all_models,
    )
    _emit(check_document(machine, estimates), fmt, quiet, _import_warnings(models))


@main.command()
@click.argument("model", type=TEXT, metavar="MODEL|FILE")
@machine_options
@click.option("--quant", type=TEXT, metavar="TYPE", help="Weight type (default: Q4_K_M; BF16 for vLLM; a GGUF file's own).")
@click.option("--context", type=int, callback=_positive_context, metavar="TOKENS",
              help="Context (llama.cpp -c: total over slots; default: the model's maximum).")
@click.option("--kv-type", type=TEXT, metavar="TYPE", default="f16", show_default=True, help="KV cache type for K and V.")
@click.option("--kv-type-k", type=TEXT, metavar="TYPE", help="K cache type (llama.cpp -ctk).")
@click.option("--kv-type-v", type=TEXT, metavar="TYPE", help="V cache type (llama.cpp -ctv; quantized V needs flash attention).")
@click.option("--kv-bits", type=int, metavar="N", help="What-if: an N-bit KV cache (e.g. 6, as DeepSeek-V2 serves).")
@click.option("--explain", is_flag=True, help="Show the formula and every term.")
@engine_options
@output_options
@source_options
def fit(model, gpus, vram, bandwidth, ram, quant, context, kv_type, kv_type_k, kv_type_v, kv_bits, explain, engine,
        parallel, flash_attn, headroom, swa_full, kv_unified, mla_v_cache, offload, cpu_moe, n_cpu_moe,
        override_tensor, gpu_util, fmt, as_json, quiet):
    """One configuration in detail: weights, KV cache, compute buffer, overhead, per device.

    \b
    Examples:
      advisor fit llama-3-8b --quant Q4_K_M --context 8192 --kv-type q8_0
      advisor fit llama-3-70b --gpu "2x RTX 3090" --context 32768 --explain
      advisor fit deepseek-v2 --engine vllm --kv-bits 6 --gpu "8x H100 SXM" --json
      advisor fit ./Qwen3-8B/config.json --quant Q4_K_M --context 32768
      advisor fit ~/models/Meta-Llama-3-8B-Instruct.Q4_K_M.gguf --context 8192 --kv-type q8_0
    """
    from advisor.api import fit_one
    from advisor.core.memory import KVChoice
    from advisor.present.report import fit_document

    fmt = _format(fmt, as_json)
    machine = _machine(gpus, vram, bandwidth, ram, quiet)
    settings = _engine(engine, parallel, flash_attn, headroom, swa_full, gpu_util, kv_unified, mla_v_cache, offload,
                       cpu_moe, n_cpu_moe, override_tensor)
    kv = KVChoice(k=kv_type_k or kv_type, v=kv_type_v or kv_type, bits=kv_bits)
    est = fit_one(model, quant, kv, settings, context, machine, default_quant=engines.get(engine).default_quant)
    _emit(fit_document(machine, est, explain), fmt, quiet, _import_warnings([model]))


@main.command()
@click.option("--user", "user_only", is_flag=True, help="Only your profiles (advisor import), and where they live.")
@click.option("--remote", is_flag=True, help="The Hugging Face / Ollama models read so far (kept for --offline).")
@output_options
def models(user_only, remote, fmt, as_json, quiet):
    """The model profiles: shipped ones, and yours from `advisor import` (what-if variants marked *).

    \b
    Examples:
      advisor models
      advisor models --user
      advisor models --format markdown
    """
    from advisor.sources.model_files import user_models_dir
    from advisor.sources.profiles import load_registry
    from advisor.present.report import models_document

    fmt = _format(fmt, as_json)
    if remote:
        from advisor.present.report import remote_document

        return _emit(remote_document(), fmt, quiet)
    chosen = [m for m in load_registry().models.values() if not user_only or not m.origin.startswith("profiles/")]
    _emit(models_document(chosen, str(user_models_dir()), user_only), fmt, quiet)


@main.command("import")
@click.argument("path", type=click.Path(), metavar="FILE")
@click.option("--name", "model_id", metavar="ID", help="Profile id to save it under (default: from the file).")
@click.option("--force", is_flag=True, help="Replace a user profile of the same id.")
@output_options
@source_options
def import_command(path, model_id, force, fmt, as_json, quiet):
    """Save a config.json or GGUF header as your own profile, usable by id in every command.

    \b
    The profile holds the architecture (layers, heads, KV layout, experts, context), not the file's
    weights: `advisor fit FILE.gguf` still uses a GGUF's exact tensor sizes.
    \b
    Examples:
      advisor import ./Qwen3-8B/config.json --name qwen3-8b
      advisor import ~/models/model.Q4_K_M.gguf --name my-model
      advisor fit my-model --context 32768
    """
    from advisor.sources.model_files import import_source, save_user_profile
    from advisor.present.output import Document, Table
    from advisor.sources.profiles import load_registry

    fmt = _format(fmt, as_json)
    if model_id is not None and not _valid_id(model_id):
        raise _usage(f"--name must be letters, digits, '-', '_' or '.', got '{model_id}'")
    imported = import_source(path, model_id.lower() if model_id else None)
    saved = save_user_profile(imported, str(path), force)
    load_registry.cache_clear()
    p = imported.profile
    shipped = p.id in _shipped_ids()
    rows = ((p.id, p.attention_label, p.layers, f"{p.heads}/{p.kv_heads}", p.max_context,
             "MoE" if p.experts else "dense"),)
    head = [f"Saved {p.id} to {saved}"] + ([f"It shadows the shipped profile '{p.id}'."] if shipped else [])
    _emit(Document(data={"id": p.id, "path": str(saved), "shadows_shipped": shipped, "warnings": list(imported.warnings),
                         "profile": p.as_dict()},
                   records=({"id": p.id, "path": str(saved), "shadows_shipped": shipped},),
                   head=tuple(head), table=Table(("id", "attention", "layers", "heads/kv", "max ctx", "ffn"), rows),
                   tail=(f"Use it by id: advisor fit {p.id} --context 8192",)),
          fmt, quiet, imported.warnings)


def _valid_id(name: str) -> bool:
    return bool(name) and len(name) <= 100 and all(c.isalnum() or c in "-_." for c in name) and name[0].isalnum()


def _shipped_ids() -> set[str]:
    from advisor.sources.profiles import _profiles_root, _read_models

    return set(_read_models(_profiles_root()))




DEFAULT_BREAKEVEN_CONTEXT = 4096  # a typical chat turn with history; the speed model reads a full cache of this size
DEFAULT_YEARS = 3.0


def _usage(message: str):
    from advisor.errors import UsageError

    return UsageError(message)


def _source_rank(ctx, name: str) -> int:
    """Higher wins: an option on the command line, then its ADVISOR_* variable, then the config file."""
    from click.core import ParameterSource

    order = [ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, ParameterSource.ENVIRONMENT,
             ParameterSource.COMMANDLINE]
    source = ctx.get_parameter_source(name)
    return order.index(source) if source in order else 0


def _electricity_source(ctx, kwh_price, region):
    """--kwh-price and --region exclude each other only when given at the same level; otherwise the one given
    closer to this run wins (a --region on the command line beats kwh_price in the config file)."""
    if kwh_price is not None and region:
        k, r = _source_rank(ctx, "kwh_price"), _source_rank(ctx, "region")
        if k > r:
            region = None
        elif r > k:
            kwh_price = None
    return kwh_price, region


def _from_file(ctx, name: str) -> bool:
    from click.core import ParameterSource

    return ctx is not None and ctx.get_parameter_source(name) == ParameterSource.DEFAULT_MAP


def _blame(ctx, name: str, text: str) -> AdvisorError:
    """The error for a bad value of option `name`, naming where it came from: the config file and key (exit 1), the
    ADVISOR_* variable or the option (exit 2). `text` follows the name: "is ...", "CNY needs ..."."""
    from click.core import ParameterSource

    if _from_file(ctx, name):
        from advisor.errors import ProfileError
        from advisor.sources.config import config_path

        return ProfileError(f"{config_path()}: '{name}' {text}")
    param = next((p for p in ctx.command.params if p.name == name), None) if ctx is not None else None
    if param is not None and ctx.get_parameter_source(name) == ParameterSource.ENVIRONMENT and param.envvar:
        return _usage(f"{param.envvar} {text}")
    return _usage(f"--{name.replace('_', '-')} {text}")


def _currency(currency: str, fx: float | None, ctx=None) -> tuple[str, float]:
    from advisor.sources.config import is_currency_code

    code = currency.strip().upper()
    if not is_currency_code(code):
        raise _blame(ctx, "currency", f"must be a 3-letter code such as USD, EUR, CNY; got '{currency}'")
    if code == "USD":
        if ctx is not None and _source_rank(ctx, "fx") < _source_rank(ctx, "currency"):
            fx = None  # an --fx from the config file or environment belongs to the currency set there
        if fx is not None and fx != 1:
            raise _blame(ctx, "fx", "is how many units of the currency one USD buys; with USD leave it out")
        return code, 1.0
    if fx is None:
        raise _blame(ctx, "currency", f"{code} needs --fx: how many {code} one USD buys (e.g. --fx 7.0)")
    return code, fx


def _kwh_price(kwh_price, region, tables, currency, fx) -> tuple[float, list[str]]:
    ctx = click.get_current_context(silent=True)
    if kwh_price is not None and region:
        if _from_file(ctx, "kwh_price") and _from_file(ctx, "region"):
            raise _blame(ctx, "kwh_price", "and 'region' are both set; give one")
        raise _usage("give --kwh-price or --region, not both")
    if kwh_price is not None:
        return kwh_price, []
    if not region:
        raise _usage("give the electricity price: --kwh-price PRICE (in --currency per kWh) or --region CODE "
                     "(`advisor prices --electricity` lists them)")
    try:
        r = tables.region(region)
    except AdvisorError as exc:
        if _from_file(ctx, "region"):
            raise _blame(ctx, "region", f"is not a known preset: {exc}") from None
        raise
    where = f"{r.name}, {r.sector}, {r.period}"
    if r.currency == currency:
        return r.price_per_kwh, [f"electricity {r.price_per_kwh:g} {currency}/kWh: {where} ({r.source})"]
    price = r.usd_per_kwh * fx
    via = f" ({r.fx_note})" if r.fx_note else ""
    return price, [f"electricity {price:.4g} {currency}/kWh from {r.usd_per_kwh:g} USD/kWh{via}: {where} ({r.source})"]


@main.command()
@machine_options
@click.option("--model", type=TEXT, metavar="ID|FILE",
              help="Model profile id, or a config.json / GGUF file, as fit takes (default: Llama-3-70B if it fits on "
                   "the GPU, else 8B).")
@click.option("--quant", type=TEXT, metavar="TYPE", help="Weight type (default: Q4_K_M; BF16 for vLLM).")
@click.option("--kv-type", type=TEXT, metavar="TYPE", default="f16", show_default=True, help="KV cache type.")
@click.option("--context", type=int, callback=_positive_context, default=DEFAULT_BREAKEVEN_CONTEXT, show_default=True,
              metavar="TOKENS", help="Context per sequence; decode speed is taken with a full cache of this size.")
@click.option("--engine", type=EngineChoice(), default=DEFAULT_ENGINE, show_default=True)
@click.option("--concurrency", type=click.IntRange(min=1, max=4096), default=1, show_default=True, metavar="N",
              help="Sequences decoded together (batched): more tokens/s for the same weights read.")
@money_options
@click.option("--watts", type=Number(0, MAX_WATTS, min_open=True, unit="W"), metavar="W",
              help="Whole-system power while generating (decode and prefill), instead of the estimate.")
@click.option("--always-on", is_flag=True, help="The machine stays on: count its idle power all month.")
@click.option("--hardware-price", type=Number(0, MAX_MONEY), metavar="PRICE",
              help="What the hardware cost, in --currency (default: catalog launch price of the GPUs).")
@click.option("--years", type=Number(0, MAX_YEARS, min_open=True, unit="years"), default=DEFAULT_YEARS, show_default=True,
              help="Years the hardware is used (its price is spread over them).")
@click.option("--api", "api_names", multiple=True, type=TEXT, metavar="NAME",
              help="API to compare against (repeatable; replaces the default: the model's tier).")
@click.option("--prices", "prices_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Your price file (TOML, same tables as profiles/prices) overriding or adding entries.")
@click.option("--plot", is_flag=True, help="Plot monthly cost against monthly tokens (text).")
@click.option("--explain", is_flag=True, help="Show the formulas with this run's numbers.")
@output_options
@source_options
def breakeven(gpus, vram, bandwidth, ram, model, quant, kv_type, context, engine, concurrency, kwh_price, region,
              currency, fx, watts, always_on, tokens_per_day, input_share, hardware_price, years, api_names,
              prices_file, plot, explain, fmt, as_json, quiet):
    """Is running a model here cheaper than an API? Electricity per 1M tokens, break-even volume, payback.

    \b
    Examples:
      advisor breakeven --kwh-price 0.30
      advisor breakeven --kwh-price 0.4883 --currency CNY --fx 7.0 --model llama-3-8b
      advisor breakeven --kwh-price 0.17 --gpu "2x RTX 3090" --ram 64 --model llama-3-70b \\
                        --tokens-per-day 2000000 --hardware-price 1800 --years 3 --api gpt-4o --api deepseek-chat
      advisor breakeven --kwh-price 0.30 --gpu "RTX 4090" --model ./Qwen3-8B/config.json --api gpt-4o-mini
      advisor breakeven --region DE --currency EUR --fx 0.92 --gpu "M2 Ultra" --always-on --plot
    """

    from advisor.apps.breakeven import breakeven as compute, default_hardware_price, default_model
    from advisor.sources.catalog import load_catalog
    from advisor.core.cost import Usage
    from advisor.apps.estimate import engine_context, estimate
    from advisor.core.memory import EngineSettings, KVChoice
    from advisor.core.power import fixed_power, system_power
    from advisor.sources.power import load_power_model
    from advisor.sources.prices import load_prices
    from advisor.sources.profiles import load_registry
    from advisor.core.speed import estimate_speed

    fmt = _format(fmt, as_json)
    ctx = click.get_current_context()
    code, rate = _currency(currency, fx, ctx)
    tables = load_prices(prices_file)
    price, price_notes = _kwh_price(*_electricity_source(ctx, kwh_price, region), tables, code, rate)
    machine = _machine(gpus, vram, bandwidth, ram, quiet)
    registry = load_registry()
    asked_quant = quant
    quant = quant or engines.get(engine).default_quant
    settings = EngineSettings(name=engine, parallel=concurrency)
    kv = KVChoice(kv_type, kv_type)
    registry.quants.recipe(quant)

    def run(model_id):
        from advisor.sources.model_files import load_model

        src = load_model(model_id)  # a profile id, a file, a Hugging Face or Ollama name (a GGUF: its own weights)
        if src.weights is not None and asked_quant and asked_quant.lower() != src.quant.lower():
            raise _usage(f"{src.profile.origin or model_id} holds {src.quant} weights; --quant does not apply to a "
                         "GGUF file")
        return estimate(src.profile, src.quant if src.weights is not None else quant, kv, settings,
                        engine_context(context, settings), machine, registry.quants, weights=src.weights)

    notes = list(price_notes)
    if model is None:
        model, why = default_model(lambda m: run(m).placement == "gpu", lambda m: run(m).fits)
        notes.insert(0, f"model {model}: {why}")
    est = run(model)
    if est.fits is None:
        raise AdvisorError(f"whether {est.model} {est.quant} fits is unknown: " + "; ".join(
            n for n in est.notes if "unknown" in n) + " (give --ram)")
    if not est.fits:
        raise AdvisorError(f"{est.model} {est.quant} does not fit on this machine at {context} tokens"
                           + (f" x {concurrency} sequences" if concurrency > 1 else "")
                           + ": try a smaller --quant or --context (advisor check lists what fits)")
    speed = estimate_speed(est, machine, concurrency)
    if speed.decode_tokens_per_s is None:
        raise AdvisorError(f"decode speed unknown: {'; '.join(speed.notes)}")
    if watts is not None:
        power = fixed_power(watts, system_power(est, machine, load_power_model()).idle_watts)
    else:
        power = system_power(est, machine, load_power_model(), speed.compute_share, speed.gpu_busy_share)
        if power.decode_watts is None:
            raise AdvisorError(f"power draw unknown: {'; '.join(power.notes)}")
    if hardware_price is not None:
        from advisor.apps.breakeven import HardwarePrice

        hardware = HardwarePrice(hardware_price, "--hardware-price")
    else:
        hardware = default_hardware_price(machine, rate, load_catalog())
    today = _today()
    if api_names:
        apis = [tables.api(n) for n in api_names]
    else:
        from advisor.sources.model_files import load_model

        tier = load_model(model).profile.tier
        if not tier:
            raise _usage(f"{est.model} has no quality tier to compare with; name APIs with --api "
                         "(`advisor prices` lists them)")
        apis = tables.tier_defaults(tier, today)
        notes.append(f"compared with the {tier}-class APIs by default (the seed post's tiers); --api NAME for others")
    usage = Usage(tokens_per_day, input_share, hardware.amount, years)
    result = compute(est, speed, power, machine, apis, usage, price, code, rate, hardware, always_on, notes)
    from advisor.present.cost import breakeven_document

    _emit(breakeven_document(result, today, plot=plot, explain=explain), fmt, quiet, _import_warnings([model]))


DEFAULT_MIN_TOKENS_PER_S = 10.0  # an assumption: faster than most people read, so a reply streams without waiting
DEFAULT_MAX_GPUS = 4  # the most GPUs a desktop or workstation board commonly takes
DEFAULT_PLAN_RAM_GIB = 64.0  # system RAM assumed in a GPU box (it holds llama.cpp's input embeddings)
DEFAULT_PLAN_REGION = "US"  # electricity when none is given and the currency is USD: the US average preset


@main.command()
@click.option("--model", required=True, type=TEXT, metavar="ID|FILE", help="Model profile id, or a config.json / GGUF file.")
@click.option("--context", type=int, callback=_positive_context, default=DEFAULT_BREAKEVEN_CONTEXT, show_default=True,
              metavar="TOKENS", help="Context each sequence must hold (entirely in GPU / unified memory).")
@click.option("--min-tokens-per-s", type=Number(0, MAX_TOKENS_PER_S), default=DEFAULT_MIN_TOKENS_PER_S, show_default=True,
              metavar="N", help="Decode speed each sequence must reach with a full cache.")
@click.option("--concurrency", type=click.IntRange(min=1, max=4096), default=1, show_default=True, metavar="N",
              help="Sequences served at once (each with --context tokens).")
@click.option("--engine", type=EngineChoice(), default=DEFAULT_ENGINE, show_default=True)
@click.option("--max-gpus", type=click.IntRange(min=1, max=16), default=DEFAULT_MAX_GPUS, show_default=True,
              metavar="N", help="Most GPUs of one kind in a box (Apple and CPU-only: always one).")
@click.option("--budget", type=Number(0, MAX_MONEY), metavar="PRICE",
              help="Most you would pay for the hardware, in --currency (renting: rent over --years).")
@click.option("--ram", type=Number(1, MAX_GIB, unit="GiB"), default=DEFAULT_PLAN_RAM_GIB, show_default=True, metavar="GIB",
              help="System RAM assumed beside the GPUs.")
@money_options
@click.option("--years", type=Number(0, MAX_YEARS, min_open=True, unit="years"), default=DEFAULT_YEARS, show_default=True,
              help="Years the hardware is used: the span of the total cost of ownership.")
@click.option("--min-quant", metavar="TYPE",
              help="Lowest weight type acceptable, e.g. Q4_K_M (llama.cpp, Ollama) or FP8 (vLLM): nothing below it is "
                   "tried.")
@click.option("--sort", type=click.Choice(["tco", "price", "speed", "context", "watts"]), default="tco",
              show_default=True, help="Order of the table.")
@click.option("--all", "show_all", is_flag=True, help="Every option evaluated, dominated and failing ones too.")
@click.option("--prices", "prices_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Your price file (TOML): API and rental prices overriding or adding entries.")
@click.option("--plot", is_flag=True, help="Plot price against decode tokens/s (text).")
@cpu_options
@output_options
@source_options
def plan(model, context, min_tokens_per_s, concurrency, engine, max_gpus, budget, ram, kwh_price, region, currency, fx,
         tokens_per_day, input_share, years, min_quant, sort, show_all, prices_file, plot, fmt, as_json, quiet):
    """Before buying: which hardware runs a model at a context and speed, and what it costs to own.

    Searches the whole catalog (GPUs in counts 1..--max-gpus, Apple and unified-memory systems in each memory
    size, CPU-only boxes) and the rental table, picks the highest-precision weights and KV cache that meet the
    targets on each, and ranks them by total cost of ownership. Without --kwh-price or --region (and with USD),
    electricity is priced at the US average preset.

    \b
    Examples:
      advisor plan --model llama-3-70b --context 32768 --min-tokens-per-s 15
      advisor plan --model llama-3-70b --context 32768 --min-tokens-per-s 15 --min-quant Q4_K_M
      advisor plan --model deepseek-v2-lite --context 65536 --budget 3000 --kwh-price 0.38 --tokens-per-day 1000000
      advisor plan --model llama-3-8b --concurrency 8 --engine vllm --max-gpus 2 --json
    """
    import time

    from advisor.apps import plan as planner
    from advisor.sources.catalog import load_catalog, lookup_hardware
    from advisor.sources.model_files import load_model
    from advisor.sources.power import load_power_model
    from advisor.sources.prices import load_prices
    from advisor.sources.profiles import load_registry
    from advisor.present.plan import plan_document

    fmt = _format(fmt, as_json)
    ctx = click.get_current_context()
    code, rate = _currency(currency, fx, ctx)
    tables = load_prices(prices_file)
    kwh_price, region = _electricity_source(ctx, kwh_price, region)
    notes = []
    if kwh_price is None and not region:
        if code != "USD":
            raise _usage(f"with --currency {code} give the electricity price: --kwh-price PRICE or --region CODE")
        region = DEFAULT_PLAN_REGION
        notes.append("no --kwh-price or --region: electricity at the US average preset")
    price, price_notes = _kwh_price(kwh_price, region, tables, code, rate)
    notes += price_notes
    started = time.perf_counter()
    src = load_model(model)
    registry = load_registry()
    targets = planner.Targets(src.profile.id, context, min_tokens_per_s, concurrency, engine, max_gpus, ram, budget,
                              min_quant)
    econ = planner.Economics(price, code, rate, tokens_per_day, input_share, years)
    if src.weights is not None and not engines.get(engine).loads_gguf:
        from advisor.engines.base import gguf_engines

        raise _usage(f"a GGUF file runs on {' or '.join(gguf_engines())}, not {engine}")
    subject = planner.Model(src.profile, src.weights, src.quant if src.weights is not None else "")
    from advisor.sources.ram_prices import load_ram_kits

    # CPU-only boxes priced by their RAM, and (a MoE model) one or two GPUs with the routed experts in RAM, the RAM
    # priced: profiles/prices/ram.toml
    buy, buy_notes = planner.purchase_options(load_catalog(), targets, rate, load_ram_kits())
    if src.profile.is_moe:
        buy += planner.moe_box_options(load_catalog(), load_ram_kits(), src.profile, targets, rate)
    rent, rent_notes = planner.rental_options(tables.rentals, lookup_hardware, targets, rate)
    if any(ctx.meta.get(k) is not None for k in ("cpu_cores", "threads", "cpu_isa")):  # the same CPU in every box
        from dataclasses import replace

        buy = [replace(o, machine=_with_cpu(o.machine)) for o in buy]
        rent = [replace(o, machine=_with_cpu(o.machine)) for o in rent]
    tier = src.profile.tier
    apis = tables.tier_defaults(tier, _today()) if tier else []
    if not tier:
        notes.append(f"{src.profile.id} has no quality tier: no API break-even")
    from advisor.present.plan import PROGRESS_AFTER_S
    from advisor.present.progress import spinner

    with spinner(f"searching {len(buy) + len(rent)} options", enabled=not quiet, show_after_s=PROGRESS_AFTER_S):
        result = planner.search(buy + rent, subject, targets, econ, registry.quants, load_power_model(), apis,
                                notes + buy_notes + rent_notes, prune=not show_all)
    seconds = time.perf_counter() - started
    _emit(plan_document(result, sort, show_all, seconds, plot=plot), fmt, quiet, _import_warnings([model]))


@main.command()
@click.option("--kind", type=click.Choice(["gpu", "apple", "unified", "cpu"]), help="Only this kind of hardware.")
@click.option("--vendor", metavar="NAME", help="Only this vendor (NVIDIA, AMD, Apple, ...).")
@output_options
def gpus(kind, vendor, fmt, as_json, quiet):
    """The hardware catalog: memory, bandwidth, FP16 FLOPS, TDP, launch price and the source of each row.

    \b
    Examples:
      advisor gpus
      advisor gpus --kind apple
      advisor gpus --vendor AMD --json
    """
    from advisor.sources.catalog import load_catalog
    from advisor.present.plan import gpus_document

    fmt = _format(fmt, as_json)
    specs = tuple(s for s in load_catalog() if (kind is None or s.kind == kind)
                  and (vendor is None or s.vendor.lower() == vendor.strip().lower()))
    if not specs:
        raise _usage(f"no catalog entry matches{' --kind ' + kind if kind else ''}"
                     f"{' --vendor ' + vendor if vendor else ''}")
    _emit(gpus_document(specs), fmt, quiet)


@main.command()
@click.option("--electricity", "show", flag_value="electricity", help="Electricity presets for --region.")
@click.option("--rental", "show", flag_value="rental", help="Cloud GPU rental prices per hour.")
@click.option("--tier", type=click.Choice(["gpt-4", "llama-3-70b", "gpt-3.5"]), help="Only APIs of this quality tier.")
@click.option("--prices", "prices_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Your price file (TOML) overriding or adding entries.")
@output_options
def prices(show, tier, prices_file, fmt, as_json, quiet):
    """API prices per 1M tokens (with date and source), electricity presets, GPU rental.

    \b
    Your own prices: a TOML file with the same tables, e.g.
      [[api]]
      name = "gpt-4o"                 # overrides the shipped entry's fields
      input_usd_per_1m = 2.0
      output_usd_per_1m = 8.0
      date = "2026-12-01"
      source = "my invoice"
    passed with --prices FILE, or saved as prices.toml in the config directory (see `advisor prices --json`).

    \b
    Examples:
      advisor prices --tier gpt-4
      advisor prices --electricity
      advisor prices --rental --format csv > rental.csv
    """

    from advisor.sources.prices import default_user_file, load_prices

    from advisor.present.cost import prices_document

    fmt = _format(fmt, as_json)
    tables = load_prices(prices_file)
    doc = prices_document(tables, _today(), show or "api", tier, str(default_user_file()))
    _emit(doc, fmt, quiet)


@main.command("config")
@output_options
def config_command(fmt, as_json, quiet):
    """Where the config file is and which defaults are in force (file, then ADVISOR_* variables).

    \b
    The file is TOML with any of these keys; options given on the command line still win:
      kwh_price = 0.30      # breakeven, plan
      region = "DE"         # instead of kwh_price
      currency = "EUR"
      fx = 0.92             # units of currency per USD
      headroom = 1.5        # GiB kept free per GPU: check, fit
    \b
    Examples:
      advisor config
      ADVISOR_KWH_PRICE=0.4 advisor config --json
    """
    import os

    from advisor.sources.config import KEYS, config_path, env_name, load_config
    from advisor.present.output import Document, Table

    fmt = _format(fmt, as_json)
    path = config_path()
    values = load_config(path)
    rows = []
    for key, (_, what) in KEYS.items():
        env = os.environ.get(env_name(key))
        if env:
            _check_variable(click.get_current_context().parent.command.commands, key, env)
        value, source = (env, env_name(key)) if env else (values.get(key), "config file" if key in values else "")
        rows.append({"key": key, "value": value, "source": source, "meaning": what})
    table = Table(("key", "value", "source", "meaning"),
                  tuple((r["key"], "" if r["value"] is None else r["value"], r["source"], r["meaning"]) for r in rows),
                  wrap=(3,))
    state = "exists" if path.is_file() else "does not exist (optional)"
    _emit(Document(data={"config_file": str(path), "exists": path.is_file(), "settings": rows}, records=tuple(rows),
                   head=(f"Config file ({state}):", f"  {path}"), table=table,
                   tail=("Precedence: command-line option > ADVISOR_* variable > config file > built-in default.",)),
          fmt, quiet)



def run(prog_name: str = "advisor") -> None:
    """The console entry point: `main`, quiet when whoever reads the output stops early; the process then ends at
    once (`_leave`).

    The cyclic garbage collector is off for the command's life (the library, advisor.api, leaves it alone): a
    command runs for well under a second and makes no cycles worth collecting (peak RSS the same with and without:
    28 MB for a 16-GPU plan, 37 MB for check --all-models), while the collector's passes over the loaded profiles
    and layouts were 3 % of `advisor check`'s instructions (660 M -> 638 M, callgrind). Reference counting still
    frees everything else as it goes."""
    import gc

    gc.disable()
    try:
        try:
            main(prog_name=prog_name)
        except BrokenPipeError:
            _reader_left()
    except SystemExit as done:
        _leave(done.code)
    _leave(0)


def _leave(code) -> None:
    """End the process with `code` (SystemExit's: None, an int, or words for stderr and 1) once stdout and stderr
    are flushed, without the interpreter's teardown: freeing every module and object one by one was 6 % of
    `advisor check`'s instructions (642 M -> 605 M, callgrind), for memory the OS takes back anyway. Nothing of
    advisor's waits for exit: files are written whole and closed (sources/model_files.py, parsed_cache), no atexit
    hook, only daemon threads. A flush that fails says so as _emit would: a closed pipe quietly, anything else in
    one line and exit 1."""
    import os

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        if sys.stderr is not None:
            print(code, file=sys.stderr)
        status = 1
    try:
        if sys.stdout is not None:  # None: started with stdout closed
            sys.stdout.flush()
    except BrokenPipeError:
        pass  # the reader left (see _reader_left): what it did not read is no error
    except OSError as exc:  # as _output_lost: the output is incomplete, and says so
        status = 1
        try:
            sys.stderr.write(f"advisor: error: {_output_lost_words(exc)}\n")
        except OSError:
            pass
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
    except OSError:
        pass  # stderr itself is gone: the exit status still says it
    os._exit(status)
