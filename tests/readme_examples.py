"""The README's example runs: each command it shows with the output block beside it, run again and compared
(tests/test_edges_plan.py). After an intended change to the output, rewrite the blocks with

    python tests/readme_examples.py --write

(only the blocks listed here; the text around them is the author's). The runs are on simulated machines at a fixed
date, so the same code gives the same text: API prices past their deprecation date show as such from that day.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
README_DATE = dt.date(2026, 12, 1)  # the day the README's runs were made
# paths the README shows that stand for files in this repository
PATHS = {"./Qwen3-8B/config.json": str(ROOT / "tests" / "data" / "configs" / "qwen3-8b.json")}
ELLIPSIS = "..."
TIMING = re.compile(r" in \d+\.\d\d s")  # how long a search took: the one part of an output that varies


@dataclass(frozen=True)
class Example:
    command: str  # as the README shows it, `advisor ...`
    abridged: bool = False  # the block leaves lines out ("..."): what it shows must appear, in order
    inline: bool = False  # the block starts with "$ command" and holds the output below it


EXAMPLES = (
    Example('advisor check --gpu "2x RTX 3090" --ram 64 --model llama-3.1-8b --model llama-3.1-70b --model '
            'deepseek-v2-lite --model llama-3-70b-mla --model llama-3-70b-yoco --kv-type f16 --kv-type q8_0 '
            '--context 32768'),
    Example('advisor fit llama-3-8b --quant Q4_K_M --context 8192 --gpu "RTX 4090" --ram 64'),
    Example('advisor fit ./Qwen3-8B/config.json --quant Q4_K_M --context 32768 --gpu "RTX 4090"', abridged=True,
            inline=True),
    Example('advisor breakeven --kwh-price 0.30 --gpu "RTX 4090" --ram 64 --model llama-3-8b --api gpt-3.5-turbo '
            '--api gpt-4o-mini --api groq/llama-3.1-8b'),
    Example('advisor breakeven --kwh-price 0.30 --gpu "2x RTX 3090" --ram 64 --model llama-3-70b --api gpt-4o '
            '--api gpt-4o@2024-05-17 --api groq/llama-3.3-70b --tokens-per-day 2000000'),
    Example('advisor plan --model llama-3-70b --context 32768 --min-tokens-per-s 15 --kwh-price 0.17',
            abridged=True, inline=True),
)


def argv(example: Example) -> list[str]:
    words = shlex.split(example.command)
    assert words[0] == "advisor", example.command
    return [PATHS.get(w, w) for w in words[1:]]


def _block_after(text: str, start: int) -> tuple[int, int]:
    """(start, end) of the body of the first fenced block at or after `start`."""
    fence = text.index("```", start)
    body = text.index("\n", fence) + 1
    return body, text.index("```", body)


def locate(text: str, example: Example) -> tuple[int, int]:
    """(start, end) in the README of the output shown for `example`."""
    if example.inline:
        at = text.index(f"$ {example.command}\n")
        start = at + len(f"$ {example.command}\n")
        stop = text.find("\n$ ", start)
        end = text.index("```", start)
        return start, (stop + 1 if 0 <= stop < end else end)
    # the sentence may break the command over lines
    pattern = r"\s+".join(re.escape(w) for w in f"`{example.command}`".split(" "))
    match = re.search(pattern, text)
    if match is None:
        raise ValueError(f"README does not show `{example.command}`")
    return _block_after(text, match.end())


def shown(text: str, example: Example) -> str:
    start, end = locate(text, example)
    return text[start:end]


def output(example: Example) -> str:
    """What the program prints for the example today (on the README's date)."""
    import advisor.cli
    from click.testing import CliRunner

    saved = advisor.cli._today
    advisor.cli._today = lambda: README_DATE
    try:
        result = CliRunner().invoke(advisor.cli.main, argv(example), catch_exceptions=False)
    finally:
        advisor.cli._today = saved
    assert result.exit_code == 0, (example.command, result.output)
    return result.stdout


def agrees(block: str, printed: str, abridged: bool) -> bool:
    """The block is the output (timings aside); abridged: its lines appear in the output in order, "..." for any
    run of lines left out."""
    block_lines = [TIMING.sub(" in _ s", line) for line in block.rstrip("\n").split("\n")]
    out_lines = [TIMING.sub(" in _ s", line) for line in printed.rstrip("\n").split("\n")]
    if not abridged:
        return block_lines == out_lines
    at = 0
    for line in block_lines:
        if line.strip() == ELLIPSIS:
            continue
        try:
            at = out_lines.index(line, at) + 1
        except ValueError:
            return False
    return True


def abridge(block: str, printed: str) -> str:
    """The output cut as the block cuts it: each run of the block's lines between "..." is replaced by as many
    lines of the output from the line that starts as the run's first line does (its first column, up to two
    spaces); a run whose start the output no longer has is kept as it was (the test then says so)."""
    lines = block.rstrip("\n").split("\n")
    out = printed.rstrip("\n").split("\n")
    result, i, run = [], 0, []

    def flush():
        nonlocal i
        if not run:
            return
        key = run[0].split("  ")[0]
        j = next((j for j in range(i, len(out)) if out[j].split("  ")[0] == key), None)
        if j is None:
            result.extend(run)
        else:
            result.extend(out[j:j + len(run)])
            i = j + len(run)
        run.clear()

    for line in lines:
        if line.strip() == ELLIPSIS:
            flush()
            result.append(line)
        else:
            run.append(line)
    flush()
    return "\n".join(result) + "\n"


def write() -> None:
    text = README.read_text(encoding="utf-8")
    for example in EXAMPLES:
        start, end = locate(text, example)
        printed = output(example)
        new = abridge(text[start:end], printed) if example.abridged else printed
        text = text[:start] + new + text[end:]
    README.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/readme_examples.py --write")
    write()
    print("rewrote", len(EXAMPLES), "example outputs in", README.name)
