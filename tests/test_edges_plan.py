"""User-facing edges of plan, breakeven, tables and plots, and the README's promises (the issue's six items):

1. plan is fast for --max-gpus 16 (a bisection over the precision ladder; counts of a card that a smaller count
   dominates are skipped) and answers exactly what the full search answers; a slow search shows a spinner;
2. plan --min-quant; the table says which weights each row runs;
3. breakeven prices only the volume the machine can deliver, prices a Mac by its memory configuration, and takes
   the model arguments fit takes;
5. tables take the terminal's width and break at spaces or after hyphens; plot axes read as numbers;
6. the README's example outputs, catalog counts and accuracy figures are what the program prints.
"""

import datetime as dt
import io
import json
import statistics
import time

import pytest
from click.testing import CliRunner

from advisor.apps import plan as P
from advisor.cli import main
from advisor.sources.catalog import find_hardware, load_catalog
from advisor.sources.power import load_power_model
from advisor.sources.prices import load_prices
from advisor.sources.profiles import load_registry

DAY = dt.date(2026, 12, 1)
ECON = P.Economics(kwh_price=0.30, currency="USD", fx=1.0, tokens_per_day=1e6, input_share=0.75, years=3.0)
# consumer, workstation, datacenter, AMD, Apple, unified, CPU-only: a slice of the catalog small enough to search
# at 16 GPUs both ways in a test
SAMPLE = ("rtx3060-12gb", "rtx3090", "rtx4060ti-16gb", "rtx4090", "rtx5090", "rtx-a6000", "a100-sxm4-80gb",
          "h100-pcie", "rx7900xtx", "rx7600xt", "m2-ultra", "m4-pro", "strix-halo-395", "cpu-ddr5-5600-2ch")


def run(*args):
    return CliRunner().invoke(main, list(args))


def options(model="llama-3-70b", context=32768, speed=15.0, engine="llama.cpp", max_gpus=16, concurrency=1,
            budget=None, ids=SAMPLE, min_quant=None):
    registry, tables = load_registry(), load_prices()
    catalog = tuple(s for s in load_catalog() if ids is None or s.id in ids)
    targets = P.Targets(model, context, speed, concurrency, engine, max_gpus, 64.0, budget, min_quant)
    opts, notes = P.purchase_options(catalog, targets, 1.0)
    rent, more = P.rental_options(tables.rentals, find_hardware, targets, 1.0)
    opts += [o for o in rent if ids is None or o.spec.id in ids]
    profile = registry.model(model)
    apis = tables.tier_defaults(profile.tier, DAY) if profile.tier else []
    return opts, P.Model(profile), targets, registry.quants, apis, notes + more


def search(prune, econ=ECON, **kw):
    opts, model, targets, quants, apis, notes = options(**kw)
    return P.search(opts, model, targets, econ, quants, load_power_model(), apis, notes, prune=prune)


# ---------------------------------------------------------------- 1. fast, and the same answer


@pytest.mark.parametrize("kw", [
    dict(model="llama-3-70b", context=32768, speed=15.0),
    dict(model="llama-3-70b", context=4096, speed=5.0, concurrency=8),  # batched: compute-bound rungs tie
    dict(model="llama-3-8b", context=8192, speed=20.0, engine="vllm"),
    dict(model="deepseek-v2-lite", context=65536, speed=10.0),
], ids=["70b-32k", "70b-batch8", "8b-vllm", "v2-lite-64k"])
def test_the_bisection_picks_what_the_walk_from_the_top_picks(kw):
    """Every option's candidate (weights, cache, speed, context, the reason and its 'one step up') is the one the
    rung-by-rung walk from F16 / f16 gives."""
    opts, model, targets, quants, apis, _ = options(max_gpus=4, **kw)
    power = load_power_model()
    for o in opts:
        fast = P.evaluate(o, model, targets, ECON, quants, power, apis)
        walk = P.evaluate(o, model, targets, ECON, quants, power, apis, exhaustive=True)
        assert fast == walk, (o.label, fast.why, walk.why)


def shown(plan):
    """What the table and --json show (present/plan.py): the ranked candidates, or when none meets the closest ones
    (within the budget, and at any price), and the counts of the header."""
    b = plan.targets.budget
    meeting = len(plan.meeting()) + plan.skipped_meeting()
    closest = [] if plan.meeting() else [[c.as_dict() for c in P.closest(plan, P.CLOSEST_SHOWN, budget)]
                                         for budget in (b, None)]
    return [c.as_dict() for c in P.ranked(plan)], closest, plan.options_searched(), meeting


@pytest.mark.parametrize("kw", [
    dict(model="llama-3-70b", context=32768, speed=15.0),
    dict(model="llama-4-scout", context=4096, speed=10.0),  # 10M-token model: more GPUs always hold more
    dict(model="llama-3-70b", context=8192, speed=10.0, engine="vllm"),  # tensor parallel grows with the count
    dict(model="llama-3-70b", context=4096, speed=5.0, concurrency=8),
    dict(model="qwen2.5-32b", context=8192, speed=25.0, budget=3000.0),
    dict(model="llama-3.1-405b", context=131072, speed=40.0),  # nothing meets: the closest are shown
    dict(model="llama-3-70b", context=32768, speed=15.0, econ=P.Economics(0.5, "USD", 1.0, 5e7, 0.75, 3.0)),
], ids=["70b-32k", "scout", "70b-vllm", "batch8", "budget", "nothing", "high-volume"])
def test_a_pruned_search_shows_what_the_full_search_shows(kw):
    pruned, full = search(True, **kw), search(False, **kw)
    assert pruned.skipped  # the control: something was skipped, so the comparison says something
    assert shown(pruned) == shown(full)


def test_every_skipped_option_that_meets_is_dominated_by_another_option():
    """What a skip rests on, checked by evaluating each: a smaller count of its card, or a cheaper option of
    another card, is no worse on anything and better somewhere (the skipped option would be hidden)."""
    opts, model, targets, quants, apis, notes = options()
    power = load_power_model()
    plan = P.search(opts, model, targets, ECON, quants, power, apis, notes, prune=True)
    skipped = [P.evaluate(o, model, targets, ECON, quants, power, apis) for o, meets in plan.skipped if meets]
    assert skipped  # the control: something that meets was skipped
    pool = list(plan.candidates) + skipped
    for c in skipped:
        assert c.meets_targets, c.option.label
        assert any(b is not c and b.option.kind == c.option.kind and P.dominates(b, c) for b in pool), c.option.label


def test_a_pipeline_of_more_of_the_same_gpu_decodes_no_faster_at_the_same_rung():
    """What the skips rest on: at one tensor-parallel degree, a rung (weights + cache) decodes at the same speed on
    n GPUs of a card whatever n (the stages take turns over the same bytes and layers)."""
    from advisor.apps.estimate import estimate
    from advisor.core.memory import EngineSettings, KVChoice
    from advisor.core.speed import estimate_speed
    from advisor.detect.simulated import simulated_machine

    registry = load_registry()
    for model, quant, kv, engine, seqs in [("llama-3-70b", "Q2_K", "q4_0", "llama.cpp", 1),
                                           ("llama-3-70b", "Q4_K_M", "q8_0", "llama.cpp", 8),
                                           ("deepseek-v2-lite", "Q8_0", "f16", "llama.cpp", 4),
                                           ("llama-3-8b", "FP8", "fp8", "vllm", 1)]:
        settings = EngineSettings(name=engine, parallel=seqs)
        for card in ("rtx3090", "rx7600xt", "a100-sxm4-80gb"):
            seen = {}
            for n in range(1, 17):
                machine = simulated_machine((f"{n}x {card}",), ram_gib=64)
                est = estimate(registry.model(model), quant, KVChoice(kv, kv), settings, 4096 * seqs, machine,
                               registry.quants, solve_max_context=False)
                if est.placement != "gpu":
                    continue
                speed = estimate_speed(est, machine, seqs).decode_tokens_per_s
                first = seen.setdefault(est.deployment.tp, speed)
                assert speed <= first * (1 + P.RELATIVE_NOISE), (model, card, n, speed, first)
            assert seen, (model, card)


def test_plan_answers_in_under_a_second_for_16_gpus():
    args = ("plan", "--model", "llama-3-70b", "--context", "32768", "--min-tokens-per-s", "15", "--max-gpus", "16",
            "--kwh-price", "0.3")
    assert run(*args).exit_code == 0  # warm the caches a first call fills (profiles, catalog, prices)
    started = time.perf_counter()
    r = run(*args)
    seconds = time.perf_counter() - started
    assert r.exit_code == 0, r.output
    assert "Searched 1416 options" in r.output
    assert seconds < 1.0, f"{seconds:.2f} s"


# the shipped models slowest to plan with --max-gpus 16 before the search pruned across cards (1.0-3.0 s each, the
# search alone; issue 17): MoE, 10M-token and 70B-class models, each with the whole catalog and the rentals
SLOWEST_TO_PLAN = ("llama-4-scout", "qwen3-235b-a22b-2507", "glm-4.5-air", "llama-3.3-70b", "gpt-oss-120b",
                   "deepseek-v2")
SEARCH_SECONDS = 1.0  # the bound for the whole command; here for the search alone, in-process


def full_catalog(model, **kw):
    """Every bought and rented option `advisor plan --max-gpus 16` searches, MoE boxes included."""
    from advisor.sources.ram_prices import load_ram_kits

    opts, model_, targets, quants, apis, notes = options(model=model, context=4096, speed=10.0, ids=None, **kw)
    boxes = P.moe_box_options(load_catalog(), load_ram_kits(), model_.profile, targets, 1.0)
    return opts + boxes, model_, targets, quants, apis, notes


@pytest.mark.parametrize("model", SLOWEST_TO_PLAN)
def test_the_slowest_models_plan_16_gpus_in_under_a_second(model):
    opts, subject, targets, quants, apis, notes = full_catalog(model)
    power = load_power_model()
    P.search(opts[:40], subject, targets, ECON, quants, power, apis, notes, prune=True)  # warm the caches
    # the least of three runs: a shared machine's other work makes any one run slower, never faster
    seconds = []
    for _ in range(3):
        started = time.process_time()
        plan = P.search(opts, subject, targets, ECON, quants, power, apis, notes, prune=True)
        seconds.append(time.process_time() - started)
    assert len(plan.candidates) + len(plan.skipped) == len(opts) > 1400
    assert min(seconds) < SEARCH_SECONDS, f"{model}: {min(seconds):.2f} s of CPU"


def test_plan_16_gpus_answers_in_under_a_second_from_the_shell():
    """The whole command as a person runs it, start-up included, for the model that was the slowest (3 s)."""
    import subprocess
    import sys

    argv = [sys.executable, "-m", "advisor", "plan", "--model", "llama-4-scout", "--max-gpus", "16",
            "--kwh-price", "0.3", "-q"]
    best = None
    for _ in range(3):
        started = time.perf_counter()
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        best = min(best or 1e9, time.perf_counter() - started)
        assert r.returncode == 0, r.stderr
    # wall clock on a shared 2-core machine: the bound is the issue's second plus what others' work adds
    assert best < SEARCH_SECONDS * 2, f"{best:.2f} s"


@pytest.mark.parametrize("model, kw", [
    ("llama-4-scout", {}),
    ("gpt-oss-120b", {}),
    ("llama-3.3-70b", dict(budget=4000.0)),
    ("qwen3-30b-a3b", dict(concurrency=4)),
])
def test_the_pruned_search_shows_what_the_exhaustive_one_shows(model, kw):
    """Against every option evaluated rung by rung from the top (no bisection, no skips): the table, the closest
    list, the counts, in every sort order."""
    opts, subject, targets, quants, apis, notes = full_catalog(model, max_gpus=6, **kw)
    power = load_power_model()
    pruned = P.search(opts, subject, targets, ECON, quants, power, apis, notes, prune=True)
    cands = tuple(P.evaluate(o, subject, targets, ECON, quants, power, apis, exhaustive=True) for o in opts)
    exhaustive = P.Plan(pruned.targets, ECON, cands, pruned.notes)
    assert pruned.skipped  # the control: the pruned search skipped something
    for sort in P.SORTS:
        assert [c.as_dict() for c in P.ranked(pruned, sort)] == [c.as_dict() for c in P.ranked(exhaustive, sort)]
    assert shown(pruned) == shown(exhaustive)


def test_a_search_shows_a_spinner_on_stderr_unless_quiet(monkeypatch):
    import contextlib

    import advisor.present.progress

    calls = []

    @contextlib.contextmanager
    def recorder(label, stream=None, enabled=True, show_after_s=0.5):
        calls.append((label, enabled, show_after_s))
        yield

    monkeypatch.setattr(advisor.present.progress, "spinner", recorder)
    assert run("plan", "--model", "llama-3-8b", "--kwh-price", "0.3").exit_code == 0
    assert run("plan", "--model", "llama-3-8b", "--kwh-price", "0.3", "-q").exit_code == 0
    assert [(label.split()[0], enabled, after) for label, enabled, after in calls] == \
        [("searching", True, 0.5), ("searching", False, 0.5)]
    assert "options" in calls[0][0]


def test_the_spinner_draws_only_when_slow_and_on_a_terminal():
    from advisor.present.progress import spinner

    class Tty(io.StringIO):
        def isatty(self):
            return True

    slow, fast = Tty(), Tty()
    with spinner("searching 9 options", stream=slow, show_after_s=0.01):
        time.sleep(0.15)
    with spinner("searching 9 options", stream=fast, show_after_s=0.5):
        pass
    assert "searching 9 options" in slow.getvalue() and fast.getvalue() == ""


# ---------------------------------------------------------------- 2. --min-quant; which weights


def quants_of(*args):
    r = run("plan", *args, "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    return data, {c["quant"] for c in data["candidates"]}


def test_min_quant_tries_nothing_below_it():
    base = ("--model", "llama-3-70b", "--context", "32768", "--min-tokens-per-s", "15", "--kwh-price", "0.3")
    _, anything = quants_of(*base)
    assert anything & {"Q2_K", "Q3_K_M"}  # the control: without it the plan picks 2-3 bit weights
    data, floor = quants_of(*base, "--min-quant", "q4_k_m")
    assert floor and floor <= {"F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M"}
    assert data["targets"]["min_quant"] == "Q4_K_M"  # named as the engine spells it
    vllm = ("--model", "llama-3-70b", "--context", "8192", "--engine", "vllm", "--kwh-price", "0.3")
    assert "AWQ" in quants_of(*vllm)[1]
    assert quants_of(*vllm, "--min-quant", "FP8")[1] <= {"BF16", "FP8"}


def test_min_quant_names_the_choices_when_wrong(tmp_path):
    r = run("plan", "--model", "llama-3-70b", "--min-quant", "Q9_X")
    assert r.exit_code == 2 and "Q4_K_M" in r.output and "Q2_K" in r.output and "Traceback" not in r.output
    r = run("plan", "--model", "llama-3-70b", "--engine", "vllm", "--min-quant", "Q4_K_M")
    assert r.exit_code == 2 and "FP8" in r.output
    from test_import import tiny_tensors, write_gguf

    gguf = write_gguf(tmp_path / "tiny.Q4_K_M.gguf", tiny_tensors())
    r = run("plan", "--model", str(gguf), "--min-quant", "Q4_K_M", "--kwh-price", "0.3")
    assert r.exit_code == 2 and "GGUF" in r.output


def test_the_table_says_which_weights_each_row_runs():
    base = ("plan", "--model", "llama-3-70b", "--context", "32768", "--min-tokens-per-s", "15", "--kwh-price", "0.3")
    text = run(*base).output
    words = " ".join(text.split())
    assert "weights/KV" in text.splitlines()[text.splitlines().index("") + 1]  # the column, in the header row
    assert "weights/KV: the weight type and KV cache type each row runs" in words
    assert "Q2_K/Q3_K_M weights give up quality for memory: --min-quant Q4_K_M" in words
    floored = " ".join(run(*base, "--min-quant", "Q4_K_M").output.split())
    assert "weights Q4_K_M or better" in floored and "give up quality" not in floored


# ---------------------------------------------------------------- 3. breakeven


def breakeven_json(*args):
    r = run("breakeven", "--kwh-price", "0.3", *args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_breakeven_prices_only_the_volume_the_machine_can_deliver():
    args = ("--gpu", "RTX 4090", "--ram", "64", "--model", "llama-3-70b", "--hardware-price", "1800", "--api",
            "gpt-4o")
    over = breakeven_json(*args, "--tokens-per-day", "2000000")
    capacity = over["capacity_tokens_per_day"]
    assert over["busy_hours_per_day"] > 24 and over["over_capacity"] is True
    assert capacity == pytest.approx(2e6 * 24 / over["busy_hours_per_day"])
    assert over["delivered_tokens_per_day"] == pytest.approx(capacity)
    gpt4o = over["apis"][0]
    blended = 0.75 * 2.5 + 0.25 * 10.0
    assert gpt4o["api_per_month"] == pytest.approx(capacity * 365.25 / 12 / 1e6 * blended)  # not the 2M asked
    assert "it can deliver" in gpt4o["verdict"]
    text = " ".join(run("breakeven", "--kwh-price", "0.3", *args, "--tokens-per-day", "2000000").output.split())
    assert "Capacity " in text and "the money below is for what it delivers" in text
    within = breakeven_json(*args, "--tokens-per-day", "100000")  # the control: a volume it delivers
    assert within["over_capacity"] is False and within["delivered_tokens_per_day"] == 100000
    assert within["capacity_tokens_per_day"] == pytest.approx(capacity)
    assert "it can deliver" not in within["apis"][0]["verdict"]


def test_capacity_grows_with_concurrency():
    one = breakeven_json("--gpu", "RTX 4090", "--model", "llama-3-8b", "--api", "gpt-4o")
    eight = breakeven_json("--gpu", "RTX 4090", "--model", "llama-3-8b", "--api", "gpt-4o", "--concurrency", "8")
    assert eight["capacity_tokens_per_day"] > 2 * one["capacity_tokens_per_day"]


def test_a_mac_is_priced_by_its_memory_configuration_or_not_at_all():
    spec = find_hardware("M3 Ultra")
    assert spec.price_memory_gib == 96 and spec.price_for_memory(96) == spec.launch_price_usd
    assert spec.price_for_memory(512) is None and spec.price_for_memory(None) is None
    assert find_hardware("RTX 4090").price_for_memory(None) == 1599  # a GPU: its own price
    base = ("--gpu", "M3 Ultra", "--model", "llama-3-70b", "--api", "gpt-4o")
    big = breakeven_json(*base, "--ram", "512")
    assert big["hardware_price"] is None and "512 GB" in big["hardware_price_basis"]
    assert big["apis"][0]["payback_months"] is None
    small = breakeven_json(*base, "--ram", "96")
    assert small["hardware_price"] == spec.launch_price_usd and "96 GB" in small["hardware_price_basis"]


def test_breakeven_takes_the_model_arguments_fit_takes(tmp_path):
    from conftest import DATA
    from test_import import tiny_tensors, write_gguf

    config = DATA / "configs" / "qwen3-8b.json"
    data = breakeven_json("--gpu", "RTX 4090", "--ram", "64", "--model", str(config), "--api", "gpt-4o-mini")
    assert data["model"] == "qwen3-8b" and data["quant"] == "Q4_K_M"
    gguf = write_gguf(tmp_path / "tiny.Q4_K_M.gguf", tiny_tensors())
    data = breakeven_json("--gpu", "RTX 4090", "--ram", "64", "--model", str(gguf), "--api", "gpt-4o-mini")
    assert data["quant"] == "Q4_K_M" and data["model"].startswith("tiny")
    r = run("breakeven", "--kwh-price", "0.3", "--gpu", "RTX 4090", "--model", str(gguf), "--quant", "Q8_0",
            "--api", "gpt-4o-mini")
    assert r.exit_code == 2 and "GGUF" in r.output


# ---------------------------------------------------------------- 5. width, breaks, plot axes


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_tables_take_the_terminals_width_and_80_columns_elsewhere(monkeypatch):
    from advisor.present.output import Document, Table, render, terminal_width

    monkeypatch.setenv("COLUMNS", "160")
    assert terminal_width(Tty()) == 160
    assert terminal_width(io.StringIO()) == 80  # a pipe or a file: always 80
    row = ("a description long enough to need more than eighty columns when it is laid out",) * 2
    doc = Document(data={}, table=Table(("one", "two"), (row,), wrap=(0, 1)))
    monkeypatch.setattr("sys.stdout", Tty())
    wide = render(doc, "table")
    monkeypatch.setattr("sys.stdout", io.StringIO())
    narrow = render(doc, "table")
    assert max(map(len, wide.splitlines())) > 80 and len(wide.splitlines()) == 3  # one line per row
    assert max(map(len, narrow.splitlines())) <= 80


def test_cells_break_at_spaces_or_after_hyphens_not_inside_words():
    from advisor.present.output import Table, fit_table

    rows = (("DeepSeek-LLM-67B", "Q4_K_M", "a note"), ("llama-3-70b-yoco *", "Q2_K", "b"))
    out = fit_table(Table(("model", "quant", "note"), rows, wrap=(0,)), width=28)
    cells = [line.split("  ")[0].strip() for line in out.splitlines()[2:]]
    assert "DeepSeek-" in cells and "LLM-67B" in cells
    assert not any(c in cells for c in ("DeepS", "DeepSe", "DeepSee", "DeepSeek-L"))
    assert max(map(len, out.splitlines())) <= 28
    # two columns to narrow: each down to its longest piece between hyphens before either breaks inside one
    out = fit_table(Table(("model", "note"), (("DeepSeek-LLM-67B", "unbreakable-wordpiece"),), wrap=(0, 1)), width=23)
    cells = [c.strip() for line in out.splitlines()[2:] for c in line.split("  ") if c.strip()]
    assert cells == ["DeepSeek-", "unbreakable-", "LLM-67B", "wordpiece"], out


def test_a_hyphen_after_a_digit_is_a_break_too():
    """textwrap breaks a hyphen only between letters: "qwen3.5-122b-a10b" came out as "qwen3.5-122" / "b-a10b"."""
    from advisor.present.output import Table, fit_table, wrap_cell

    assert wrap_cell("qwen3.5-122b-a10b", 11) == "qwen3.5-\n122b-a10b"
    assert wrap_cell("GPU+RAM (experts)", 9) == "GPU+RAM\n(experts)"
    assert wrap_cell("abcdefghij", 4) == "abcd\nefgh\nij"  # a piece wider than the line: cut, nothing lost
    rows = tuple((f"qwen3.5-{n}b-a10b", "x" * 20) for n in (122, 397))
    out = fit_table(Table(("model", "note"), rows, wrap=(0,)), width=33)
    cells = [line.split("  ")[0].strip() for line in out.splitlines()[2:]]
    assert cells == ["qwen3.5-", "122b-a10b", "qwen3.5-", "397b-a10b"], out


def test_plot_axes_read_as_numbers():
    from advisor.present.plot import Line, line_plot, readable

    assert [readable(v) for v in (91.3e6, 1.2e9, 15000, 266.4, 0.5, 0)] == ["91.3M", "1.2B", "15K", "266", "0.5",
                                                                             "0"]
    lines = line_plot([Line("a", 0, 1e-6), Line("b", 100, 0)], 91.3e6)
    assert "91.3M" in lines[-2] and not any("e+" in line for line in lines)
    r = run("breakeven", "--gpu", "2x RTX 3090", "--model", "llama-3-70b", "--kwh-price", "0.3", "--plot")
    assert r.exit_code == 0 and "e+" not in r.output


# ---------------------------------------------------------------- 6. the README's promises


def test_readme_examples_are_what_the_program_prints():
    import readme_examples as R

    text = R.README.read_text(encoding="utf-8")
    for example in R.EXAMPLES:
        block = R.shown(text, example)
        assert R.agrees(block, R.output(example), example.abridged), \
            f"README output of `{example.command}` differs: python tests/readme_examples.py --write"


def test_readme_counts_the_catalog_as_advisor_gpus_does():
    import readme_examples as R

    specs = load_catalog()
    kinds = {k: sum(1 for s in specs if s.kind == k) for k in ("gpu", "apple", "unified", "cpu")}
    phrase = (f"{len(specs)} entries, {kinds['gpu']} GPUs, {kinds['apple']} Apple chips, {kinds['unified']} other "
              f"unified-memory systems and {kinds['cpu']} CPU-only memory configurations")
    assert phrase in " ".join(R.README.read_text(encoding="utf-8").split())
    said = " ".join(run("gpus").output.split())
    assert f"{len(specs)} entries in the hardware catalog (profiles/hardware/): {kinds['gpu']} GPUs" in said


def test_readme_decode_accuracy_figures_are_the_ones_measured():
    """The per-backend figures against throughput.csv (as tests/test_speed.py computes them) and the summary table's
    decode row (bench/validate.py) as the README gives them."""
    import readme_examples as R
    from test_speed import ROWS, _errors

    from advisor.apps.validate import summary, validate
    from conftest import DATA

    registry = load_registry()
    text = " ".join(R.README.read_text(encoding="utf-8").split())

    def pct(x):
        return f"{100 * x:.1f}%"

    every, cuda, metal = _errors(registry), _errors(registry, "CUDA"), _errors(registry, "Metal")
    worst = max(every, key=abs)
    worst_cuda = max(cuda, key=abs)
    phrase = (f"the {len(ROWS)} llama.cpp measurements in `tests/data/calibration/throughput.csv` (Llama-2 "
              f"7B/13B/70B, F16/Q8_0/Q4_0): median error {pct(statistics.median(map(abs, every)))}, "
              f"{pct(sum(abs(e) <= 0.25 for e in every) / len(every))} of rows within 25% (CUDA, {len(cuda)} rows: "
              f"median {pct(statistics.median(map(abs, cuda)))}, worst {100 * worst_cuda:+.1f}%; Metal, "
              f"{len(metal)} rows: median {pct(statistics.median(map(abs, metal)))}; the worst row, "
              f"{100 * worst:+.0f}%,")
    assert phrase in text, phrase
    checks, _ = validate([DATA / "calibration"])
    decode = next(s for s in summary(checks) if s["quantity"] == "decode")
    memory_rows = decode["rows"] - len(ROWS)
    assert (f"counts {decode['rows']} decode rows, these {len(ROWS)} and the {memory_rows} memory-log runs that "
            f"report tokens/s, hence its {pct(decode['median_abs_error'])}") in text


# ---------------------------------------------------------------- 4. --api: the seed table's names, every match


# the seed table's names are aliases of their entries (profiles/prices/api.toml `aliases`, advisor/sources/prices.py)


@pytest.mark.parametrize("name, entry", [
    ("gpt-3.5-turbo-0125", "gpt-3.5-turbo@2024-05-17"), ("DeepSeekV2", "deepseek-v2@2024-05-17"),
    ("豆包 Pro 32k", "doubao-pro-32k@2024-05-17"),
])
def test_the_seed_tables_names_are_aliases_of_their_entries(name, entry):
    assert load_prices().api(name).name == entry
    data = breakeven_json("--gpu", "RTX 4090", "--model", "llama-3-8b", "--api", name)
    assert [a["name"] for a in data["apis"]] == [entry]


def test_a_name_the_seed_table_shares_with_todays_entry_is_todays():
    """gpt-4o is today's price; the seed post's is gpt-4o@2024-05-17 (an alias never shadows a name)."""
    tables = load_prices()
    assert tables.api("gpt-4o").name == "gpt-4o" and tables.api("gpt-4o@2024-05-17").input_usd_per_1m == 5


def test_an_ambiguous_prefix_lists_every_match():
    tables = load_prices()
    for prefix in ("deepseek", "claude"):
        every = [a.name for a in tables.apis if a.name.lower().startswith(prefix)]
        assert len(every) > 8  # more than the eight the message used to name
        r = run("breakeven", "--kwh-price", "0.3", "--gpu", "RTX 4090", "--model", "llama-3-8b", "--api", prefix)
        assert r.exit_code == 2 and "ambiguous" in r.output
        assert all(n in r.output for n in every), r.output


def test_an_alias_may_not_name_another_entry():
    from advisor.errors import ProfileError
    from advisor.sources.prices import parse_prices

    shipped = [("a.toml", '[[api]]\nname = "x"\ninput_usd_per_1m = 1\ndate = "2024-01-01"\nsource = "s"\n'
                           'aliases = ["y"]\n[[api]]\nname = "y"\ninput_usd_per_1m = 1\ndate = "2024-01-01"\n'
                           'source = "s"\n')]
    with pytest.raises(ProfileError, match="alias 'y'"):
        parse_prices(shipped)
