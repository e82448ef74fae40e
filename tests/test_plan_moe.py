"""advisor plan for MoE models: one or two GPUs beside RAM that holds the routed experts (issue 15, item 5), the RAM
priced from profiles/prices/ram.toml (sourced, dated, checked on load)."""

import json

import pytest
from click.testing import CliRunner

from advisor.apps import plan as P
from advisor.apps.estimate import engine_context, estimate
from advisor.cli import main
from advisor.core.memory import EngineSettings, KVChoice
from advisor.core.speed import estimate_speed
from advisor.detect.simulated import simulated_machine
from advisor.errors import ProfileError
from advisor.sources.profiles import load_registry
from advisor.sources.ram_prices import load_ram_kits, parse_ram_kits


def plan_json(*args):
    r = CliRunner().invoke(main, ["plan", *args, "--kwh-price", "0.3", "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_the_ram_table_is_sourced_dated_and_sized_as_the_issue_asks():
    kits = load_ram_kits()
    assert sorted(k.capacity_gb for k in kits) == [64, 128, 256]
    for k in kits:
        assert k.source.startswith("http") or "http" in k.source, k.id
        assert k.as_of[:4].isdigit() and k.status in ("copied", "derived")
        assert k.bandwidth_gb_s == k.channels * k.mt_s * 8 / 1000  # channels x MT/s x 8 bytes
    assert any(k.status == "copied" for k in kits)  # at least one price is a page's own figure


@pytest.mark.parametrize("text, field", [
    ('[[kits]]\nid = "x"\ncapacity_gb = 64\ntype = "DDR5-5600"\nmt_s = 5600\nchannels = 2\nprice_usd = -1.0\n'
     'status = "copied"\nas_of = "2025-11"\nsource = "https://example.org"\n', "price_usd"),
    ('[[kits]]\nid = "x"\ncapacity_gb = 64\ntype = "DDR5-5600"\nmt_s = 5600\nchannels = 2\nprice_usd = nan\n'
     'status = "copied"\nas_of = "2025-11"\nsource = "https://example.org"\n', "price_usd"),
    ('[[kits]]\nid = "x"\ncapacity_gb = 64.5\ntype = "DDR5-5600"\nmt_s = 5600\nchannels = 2\nprice_usd = 1.0\n'
     'status = "copied"\nas_of = "2025-11"\nsource = "https://example.org"\n', "capacity_gb"),
    ('[[kits]]\nid = "x"\ncapacity_gb = 64\ntype = "DDR5-5600"\nmt_s = 5600\nchannels = 0\nprice_usd = 1.0\n'
     'status = "copied"\nas_of = "2025-11"\nsource = "https://example.org"\n', "channels"),
    ('[[kits]]\nid = "x"\ncapacity_gb = 64\ntype = "DDR5-5600"\nmt_s = 5600\nchannels = 2\nprice_usd = 1.0\n'
     'status = "copied"\nas_of = "2025-11"\n', "source"),
    ('[[kits]]\nid = "x"\ncapacity_gb = 64\ntype = "DDR5-5600"\nmt_s = 5600\nchannels = 2\nprice_usd = 1.0\n'
     'status = "guessed"\nas_of = "2025-11"\nsource = "https://example.org"\n', "status"),
])
def test_a_bad_ram_row_names_the_file_and_the_field(text, field):
    with pytest.raises(ProfileError) as err:
        parse_ram_kits(text, "profiles/prices/ram.toml")
    assert "profiles/prices/ram.toml" in str(err.value) and field in str(err.value)


def test_a_moe_model_gets_gpu_plus_ram_rows_saying_which_ram():
    data = plan_json("--model", "gpt-oss-120b", "--context", "16384")
    boxes = [c for c in data["candidates"] if c.get("ram_kit")]
    assert boxes, "no GPU+RAM (experts) row"
    kits = {k.id: k for k in load_ram_kits()}
    for c in boxes:
        kit = kits[c["ram_kit"]["id"]]
        assert "GPU+RAM (experts)" in c["label"] and f"{kit.capacity_gb} GB {kit.type}" in c["label"]
        assert c["count"] <= 2 and c["placement"] == "gpu+cpu"
        assert c["deployment"]["offload"]["kind"] == "experts"
        # the RAM is in the price, and so in the cost of ownership
        assert c["price"] == pytest.approx(c["count"] * c["price"] / c["count"])
        assert c["ram_price"] == kit.price_usd and c["price"] > kit.price_usd
        assert c["tco"] == pytest.approx(c["price"] + c["monthly_energy_cost"] * 36)


def test_the_box_is_priced_gpus_plus_ram_and_decodes_as_the_estimate_does():
    """The row is the estimator's own answer for that machine (no physics of its own): experts in RAM read at
    channels x MT/s x 8 bytes."""
    registry = load_registry()
    model = registry.model("gpt-oss-120b")
    kit = next(k for k in load_ram_kits() if k.capacity_gb == 128)
    targets = P.Targets("gpt-oss-120b", 16384, 10.0, 1, "llama.cpp", 2, 64.0)
    from advisor.sources.catalog import load_catalog

    catalog = tuple(s for s in load_catalog() if s.id == "rtx4090")
    options = P.moe_box_options(catalog, (kit,), model, targets, 1.0)
    assert [o.count for o in options] == [1, 2]
    one = options[0]
    assert one.price == catalog[0].launch_price_usd + kit.price_usd
    c = P.evaluate(one, P.Model(model), targets, P.Economics(0.3, "USD", 1.0, 1e6, 0.75, 3.0), registry.quants,
                   __import__("advisor.sources.power", fromlist=["x"]).load_power_model(), [])
    assert c.quant is not None and c.placement == "gpu+cpu"
    machine = simulated_machine(("1x rtx4090",), ram_gib=128, cpu_bandwidth_gb_s=kit.bandwidth_gb_s)
    settings = EngineSettings(name="llama.cpp")
    est = estimate(model, c.quant, KVChoice(c.kv_type, c.kv_type), settings, engine_context(16384, settings),
                   machine, registry.quants, solve_max_context=False)
    assert est.deployment.offload.kind == "experts"
    assert c.decode_tokens_per_s == estimate_speed(est, machine, 1).decode_tokens_per_s


def test_a_dense_model_gets_no_moe_boxes_and_vllm_none_either():
    dense = plan_json("--model", "llama-3-8b", "--all", "--max-gpus", "1")
    assert not any(c.get("ram_kit") for c in dense["candidates"])
    vllm = plan_json("--model", "qwen3-30b-a3b", "--engine", "vllm", "--all", "--max-gpus", "1")
    assert not any(c.get("ram_kit") for c in vllm["candidates"])
    moe = plan_json("--model", "qwen3-30b-a3b", "--all", "--max-gpus", "1")
    assert any(c.get("ram_kit") for c in moe["candidates"])  # the control


def test_more_ram_never_makes_a_box_hold_less_or_decode_slower():
    data = plan_json("--model", "qwen3-235b-a22b", "--context", "8192", "--min-tokens-per-s", "1", "--all",
                     "--max-gpus", "1")
    by_gpu = {}
    for c in data["candidates"]:
        if c.get("ram_kit") and c["quant"] == "Q2_K" and c["kv_type"] == "q4_0":
            by_gpu.setdefault(c["hardware"], []).append(c)
    assert by_gpu
    for rows in by_gpu.values():
        rows.sort(key=lambda c: c["ram_kit"]["capacity_gb"])
        for small, big in zip(rows, rows[1:]):
            assert (big["max_context"] or 0) >= (small["max_context"] or 0)


def test_cpu_only_boxes_are_priced_by_their_ram_where_the_table_has_that_configuration():
    """Issue 15 item 5: CPU-only boxes by their channels, the RAM priced from the same sourced table as a MoE box's.
    The dual-channel DDR5-5600 box at 64 and 128 GB is the 2x32 / 2x64 GB kit (89.6 GB/s = 2 x 5600 x 8 bytes);
    DDR5-6400 and the server boxes have no kit in the table, so their price stays unknown (never a guess)."""
    kits = {k.capacity_gb: k for k in load_ram_kits() if k.type == "DDR5-5600" and k.channels == 2}
    doc = plan_json("--model", "qwen3-30b-a3b", "--min-tokens-per-s", "5", "--all")
    rows = {r["label"]: r for r in doc["candidates"] if r["kind"] == "buy"}
    for size in (64, 128):
        row = rows[f"Desktop CPU, DDR5-5600 dual channel, {size} GB"]
        assert row["price"] == pytest.approx(kits[size].price_usd)
        assert row["price_basis"].startswith("RAM only") and kits[size].source in row["price_basis"]
        assert row["tco"] is not None and row["tco"] > row["price"]  # the electricity comes on top
    assert rows["Desktop CPU, DDR5-5600 dual channel, 192 GB"]["price"] is None  # no 192 GB kit in the table
    assert rows["Desktop CPU, DDR5-6400 dual channel, 64 GB"]["price"] is None  # no DDR5-6400 kit
    assert rows["Server CPU, DDR5-4800 12 channels, 384 GB"]["price"] is None
