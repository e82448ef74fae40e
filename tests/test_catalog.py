import pytest

from advisor.sources.catalog import find_by_nvml_name, find_hardware, load_catalog
from advisor.errors import UsageError


@pytest.mark.parametrize("typed, expected", [
    ("4090", "rtx4090"), ("RTX 4090", "rtx4090"), ("NVIDIA GeForce RTX 4090", "rtx4090"), ("rtx4090", "rtx4090"),
    ("RTX 6000 Ada", "rtx6000ada"), ("A100 SXM 80GB", "a100-sxm4-80gb"), ("H100 PCIe", "h100-pcie"),
    ("3090", "rtx3090"), ("3090 Ti", "rtx3090ti"), ("M2 Ultra", "m2-ultra"), ("h200", "h200-sxm"),
    # the extended catalog: a card and its bigger sibling stay apart
    ("7900 XT", "rx7900xt"), ("7900 XTX", "rx7900xtx"), ("4070", "rtx4070"), ("4070 Ti", "rtx4070ti"),
    ("4070 Ti Super", "rtx4070tisuper"), ("3080", "rtx3080-10gb"), ("3080 12GB", "rtx3080-12gb"), ("M1", "m1"),
    ("M1 Pro", "m1-pro"), ("M1 Max", "m1-max"), ("4090 D", "rtx4090d"), ("L40", "l40"), ("L40S", "l40s"),
    ("MI250", "mi250"), ("MI250X", "mi250x"), ("RTX 4000 Ada", "rtx4000ada"), ("A4000", "rtx-a4000"),
    ("A1000", "rtx-a1000"), ("A10", "a10"), ("L4", "l4"), ("M4", "m4"),
])
def test_short_names_people_type(typed, expected):
    assert find_hardware(typed).id == expected


def test_a_whole_word_beats_a_longer_name_it_starts():
    with pytest.raises(UsageError) as err:  # an A100, which one; never the RTX A1000 that "A100" also starts
        find_hardware("A100")
    assert "a100-pcie-40gb" in str(err.value) and "a1000" not in str(err.value)


def test_ambiguous_name_lists_the_candidates():
    with pytest.raises(UsageError) as err:
        find_hardware("H100")
    assert "h100-pcie" in str(err.value) and "h100-sxm" in str(err.value)


def test_nvml_names_from_the_catalog_resolve_to_themselves():
    for spec in load_catalog():
        if spec.nvml_name:
            assert find_by_nvml_name(spec.nvml_name).id == spec.id


def test_every_row_has_a_source_and_status():
    for spec in load_catalog():
        assert spec.spec_source and spec.status in ("copied", "derived", "mixed", "recalled")


def test_catalog_covers_the_lines_people_buy_from():
    ids = {s.id for s in load_catalog()}
    for family in (["rtx3050-8gb", "rtx3060-12gb", "rtx3070", "rtx3080-10gb", "rtx3090"],  # GeForce 30
                   ["rtx4060", "rtx4070", "rtx4080", "rtx4090"],  # GeForce 40
                   ["rtx5060", "rtx5070", "rtx5080", "rtx5090"],  # GeForce 50
                   ["rtx-a4000", "rtx4000ada", "rtxpro6000-bw"],  # workstation
                   ["rx7600", "rx7900xtx", "mi300x"],  # AMD
                   ["m1", "m1-pro", "m2", "m3-max", "m4", "m4-max"],  # Apple
                   ["dgx-spark-gb10", "strix-halo-395", "cpu-ddr5-5600-2ch"]):
        assert set(family) <= ids, set(family) - ids


def test_unified_memory_systems_list_the_configurations_sold():
    for spec in load_catalog():
        if spec.kind in ("apple", "unified"):
            assert spec.memory_options_gib and max(spec.memory_options_gib) == spec.memory_gib, spec.id
            assert spec.price_memory_gib is None or spec.price_memory_gib in spec.memory_options_gib, spec.id


def test_a_bad_memory_option_names_the_file_and_field():
    from advisor.sources.catalog import parse_catalog
    from advisor.errors import ProfileError

    text = ('[[devices]]\nid = "x"\nname = "X"\nvendor = "V"\nkind = "apple"\nstatus = "recalled"\n'
            'spec_source = "s"\nmemory_options_gib = [16, "lots"]\n')
    with pytest.raises(ProfileError, match=r"extra.toml.*memory_options_gib"):
        parse_catalog(text, "extra.toml")
