"""Output for people and for scripts: --format on every command, --quiet, 80 columns, colour rules, the spinner."""

import csv
import io
import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from advisor.cli import main
from advisor.present.output import Document, Table, colour_enabled, fit_table, render

WIDTH = 80
# Every command, with arguments that need no GPU and no network: (name, args).
COMMANDS = [
    ("check", ["check", "--gpu", "RTX 4090", "--ram", "64"]),
    ("fit", ["fit", "llama-3-70b", "--gpu", "2x RTX 3090", "--context", "8192"]),
    ("models", ["models"]),
    ("breakeven", ["breakeven", "--gpu", "RTX 4090", "--kwh-price", "0.3"]),
    ("prices", ["prices"]),
    ("prices-electricity", ["prices", "--electricity"]),
    ("prices-rental", ["prices", "--rental"]),
    ("config", ["config"]),
    ("plan", ["plan", "--model", "llama-3-8b", "--context", "8192", "--kwh-price", "0.3"]),
    ("gpus", ["gpus"]),
]


def run(*args, **kw):
    return CliRunner().invoke(main, list(args), **kw)


@pytest.mark.parametrize("name,args", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_speaks_every_format(name, args):
    table = run(*args)
    assert table.exit_code == 0, table.output
    as_json = run(*args, "--format", "json")
    assert as_json.exit_code == 0 and json.loads(as_json.output) == json.loads(run(*args, "--json").output)
    rows = list(csv.DictReader(io.StringIO(run(*args, "--format", "csv").output)))
    assert rows and all(None not in r for r in rows)  # every row has exactly the header's columns
    md = run(*args, "--format", "markdown").output
    table_lines = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table_lines) >= 3 and set(table_lines[1]) <= set("|-: ")
    quiet = run(*args, "--quiet").output
    assert quiet.splitlines()[0].split()[0] in ("model", "device", "id", "", "API", "--region", "provider", "key",
                                                "hardware") \
        or quiet.startswith(" ")
    assert len(quiet) < len(table.output)


@pytest.mark.parametrize("name,args", COMMANDS + [
    ("fit-explain", ["fit", "llama-3-70b", "--gpu", "2x RTX 3090", "--context", "8192", "--explain"]),
    ("breakeven-plot", ["breakeven", "--gpu", "2x RTX 3090", "--kwh-price", "0.3", "--plot", "--explain",
                        "--api", "claude-3.5-sonnet-20240620", "--api", "gpt-3.5-turbo-instruct@2024-05-17"]),
    ("check-mac", ["check", "--gpu", "M2 Ultra", "--context", "32768"]),
    ("plan-plot", ["plan", "--model", "llama-3-70b", "--context", "32768", "--min-tokens-per-s", "15", "--plot"]),
    ("plan-nothing", ["plan", "--model", "llama-3.1-405b", "--context", "131072", "--min-tokens-per-s", "40",
                      "--max-gpus", "2"]),
    ("plan-all", ["plan", "--model", "qwen2.5-7b", "--all", "--sort", "speed"]),
], ids=lambda x: x if isinstance(x, str) else None)
def test_default_output_fits_80_columns(name, args):
    r = run(*args)
    assert r.exit_code == 0, r.output
    # a path alone on its line cannot be wrapped (it is there to be copied)
    wide = [line for line in r.output.splitlines() if len(line) > WIDTH and " " in line.strip()]
    assert not wide, wide


def test_csv_carries_raw_numbers_one_row_per_result():
    r = run("check", "--gpu", "RTX 4090", "--model", "llama-3-8b", "--kv-type", "f16", "--kv-type", "q8_0",
            "--context", "8192", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert [row["kv_type"] for row in rows] == ["f16", "q8_0"]
    assert int(rows[0]["kv_bytes"]) == 1024 * 2**20  # bytes, not "1.0 GiB"
    assert rows[0]["fits"] == "true" and rows[0]["placement"] == "gpu"
    assert float(rows[0]["decode_tokens_per_s_low"]) < float(rows[0]["decode_tokens_per_s"]) \
        < float(rows[0]["decode_tokens_per_s_high"])


def test_breakeven_csv_has_a_row_per_api():
    r = run("breakeven", "--gpu", "RTX 4090", "--kwh-price", "0.3", "--model", "llama-3-8b", "--api", "gpt-4o",
            "--api", "deepseek-chat", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert [row["api"] for row in rows] == ["gpt-4o", "deepseek-chat"]
    assert all(row["model"] == "llama-3-8b" and float(row["kwh_price"]) == 0.3 for row in rows)


def test_json_and_another_format_conflict_is_a_usage_error():
    r = run("models", "--json", "--format", "csv")
    assert r.exit_code == 2 and "--json" in r.output
    assert isinstance(r.exception, SystemExit), r.exc_info  # sys.exit, not an escaped exception


def test_quiet_drops_machine_lines_and_notes():
    r = run("check", "--gpu", "RTX 4090", "--model", "llama-3-8b", "--quiet")
    assert "GPU 0" not in r.output and "note" not in r.output and "GPU ctx:" not in r.output
    assert r.output.splitlines()[0].split()[:2] == ["model", "quant"]


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert colour_enabled(Tty()) and not colour_enabled(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_enabled(Tty())
    monkeypatch.setenv("NO_COLOR", "")  # no-color.org: an empty value does not disable colour
    assert colour_enabled(Tty())
    monkeypatch.setenv("TERM", "dumb")
    assert not colour_enabled(Tty())


def test_colour_marks_verdicts_without_breaking_the_layout():
    table = Table(("model", "runs on"), (("a", "GPU"), ("b", "no fit")), status_column=1)
    plain, coloured = fit_table(table), fit_table(table, colour=True)
    assert "\x1b[" not in plain and "\x1b[32m" in coloured and "\x1b[31m" in coloured
    strip = __import__("re").compile(r"\x1b\[[0-9;]*m")
    assert strip.sub("", coloured) == plain
    doc = Document(data={}, table=table, records=({"model": "a", "runs on": "GPU"},))
    assert "\x1b[32m" in render(doc, "table", colour=True)  # the control: asked for colour, the table gets it
    md, as_csv = render(doc, "markdown", colour=True), render(doc, "csv", colour=True)
    assert "GPU" in md and "GPU" in as_csv  # not empty: the verdict is there, uncoloured
    assert "\x1b[" not in md and "\x1b[" not in as_csv


def test_wide_tables_wrap_the_preferred_column_first():
    rows = (("RTX 4090", "a long description that would push the table past the edge of the terminal", "1"),)
    out = fit_table(Table(("gpu", "offer", "n"), rows, wrap=(1,)), width=40)
    assert max(len(line) for line in out.splitlines()) <= 40
    assert "RTX 4090" in out  # the unwrapped column keeps its words


def test_spinner_appears_only_when_slow_and_on_a_terminal():
    from advisor.present.progress import spinner

    class Tty(io.StringIO):
        def isatty(self):
            return True

    fast, slow, pipe = Tty(), Tty(), io.StringIO()
    with spinner("detecting", stream=fast, show_after_s=0.5):
        pass
    with spinner("detecting", stream=slow, show_after_s=0.01):
        time.sleep(0.15)
    with spinner("detecting", stream=pipe, show_after_s=0.0):
        time.sleep(0.05)
    assert fast.getvalue() == "" and pipe.getvalue() == ""
    assert "detecting..." in slow.getvalue() and slow.getvalue().endswith("\r")  # the line is erased at the end


def test_slow_detection_shows_no_spinner_in_a_pipe(monkeypatch, no_gpu_machine):
    import advisor.detect as hw

    real = hw.detect_machine

    def slow(**kwargs):
        time.sleep(0.6)
        return real(**kwargs)

    monkeypatch.setattr(hw, "detect_machine", slow)
    r = run("check", "--model", "llama-3-8b", "--format", "csv")
    assert r.exit_code == 0 and "detecting" not in r.output
    assert r.output.startswith("model,")


# ---------------------------------------------------------------- real processes, as a shell script runs them

def _sh(command: str, **env_extra):
    """`command` through bash with pipefail, `advisor` run as this interpreter's module (no PATH needed)."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(env_extra)
    command = command.replace("advisor ", f"{sys.executable} -m advisor ", 1)
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, env=env,
                          timeout=120)


def test_process_reader_that_stops_early_is_not_an_error():
    """`| true` closes the pipe before advisor writes: no error line, and exit 0 under pipefail (click alone exits
    1 on EPIPE)."""
    for fmt in ("csv", "json", "table"):
        p = _sh(f'advisor check --gpu "RTX 4090" --ram 64 --format {fmt} | true')
        assert p.returncode == 0 and p.stderr == "", (fmt, p.returncode, p.stderr)


def test_process_help_into_a_closed_pipe_is_not_an_error():
    """click prints --help itself and exits 1 on EPIPE (click/core.py, Command.main); advisor exits 0, silent."""
    for command in ("advisor --help", "advisor check --help", "advisor plan --help"):
        p = _sh(f"{command} | true")
        assert p.returncode == 0 and p.stderr == "", (command, p.returncode, p.stderr)


def test_process_csv_into_head():
    p = _sh('advisor check --gpu "RTX 4090" --format csv | head -3')
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("model,quant,kv_type")
    assert "Traceback" not in p.stderr and "Error" not in p.stderr


def test_process_json_through_json_tool():
    p = _sh(f'advisor check --gpu "RTX 4090" --model llama-3-8b --json | {sys.executable} -m json.tool')
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["results"][0]["model"] == "llama-3-8b"


def _on_a_terminal(args, **env_extra) -> str:
    """Run advisor with its stdout on a pseudo-terminal (where colour is on unless NO_COLOR says otherwise)."""
    import pty

    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(TERM="xterm-256color", COLUMNS="120", **env_extra)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "advisor", *args], stdout=follower, stderr=subprocess.PIPE,
                            env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    return b"".join(chunks).decode()


def test_process_no_color_has_no_escape_codes():
    args = ["check", "--gpu", "RTX 4090", "--ram", "64", "--model", "llama-3-8b"]
    coloured = _on_a_terminal(args)
    assert "\x1b[" in coloured and "llama-3-8b" in coloured  # the control: a terminal gets colour
    plain = _on_a_terminal(args, NO_COLOR="1")
    assert "\x1b[" not in plain and "llama-3-8b" in plain