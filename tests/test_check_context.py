"""advisor check without --context: a model that does not run at its trained maximum on this machine is shown at
the largest power-of-two context that does (what a person would set with -c / num_ctx), said in a note and in the
table; one that runs nowhere stays "no fit"; an asked --context is never changed."""

import json

from click.testing import CliRunner

from advisor.cli import main


def check(*args):
    r = CliRunner().invoke(main, ["check", *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["results"]


def fit(*args):
    r = CliRunner().invoke(main, ["fit", *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


CPU_24 = ("--ram", "24", "--cpu-cores", "8", "--cpu-isa", "avx2")


def test_a_row_that_does_not_run_at_its_trained_maximum_is_shown_where_it_runs():
    (row,) = check("--model", "qwen3.5-27b", "--kv-type", "f16", *CPU_24)
    assert row["placement"] == "cpu" and row["fits"] is True
    assert row["context"] == 131072 < row["model_max_context"] == 262144
    assert any("does not run at its trained 262,144 tokens here; evaluated at 131,072" in n for n in row["notes"])
    assert row["decode_tokens_per_s"] is not None and row["context_reduced_from"] == 262144
    table = CliRunner().invoke(main, ["check", "--model", "qwen3.5-27b", "--kv-type", "f16", *CPU_24]).output
    assert "128K↓" in table and "↓: does not run at the model's trained maximum here" in table
    # independently: fit at the trained maximum does not run, at the chosen context it does
    assert fit("qwen3.5-27b", "--kv-type", "f16", "--context", "262144", *CPU_24)["placement"] == "none"
    assert fit("qwen3.5-27b", "--kv-type", "f16", "--context", "131072", *CPU_24)["fits"] is True


def test_a_model_that_runs_nowhere_stays_no_fit_and_an_asked_context_is_kept():
    (row,) = check("--model", "qwen3.5-397b-a17b", "--kv-type", "q4_0", *CPU_24)
    assert row["placement"] == "none" and row["context"] == row["model_max_context"]
    assert not any("does not run at its trained" in n for n in row["notes"]) and row["context_reduced_from"] is None
    (row,) = check("--model", "qwen3.5-27b", "--kv-type", "f16", "--context", "262144", *CPU_24)
    assert row["placement"] == "none" and row["context"] == 262144
