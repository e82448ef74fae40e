import pytest

from advisor.catalog import find_by_nvml_name, find_hardware, load_catalog
from advisor.errors import UsageError


@pytest.mark.parametrize("typed, expected", [
    ("4090", "rtx4090"), ("RTX 4090", "rtx4090"), ("NVIDIA GeForce RTX 4090", "rtx4090"), ("rtx4090", "rtx4090"),
    ("RTX 6000 Ada", "rtx6000ada"), ("A100 SXM 80GB", "a100-sxm4-80gb"), ("H100 PCIe", "h100-pcie"),
    ("3090", "rtx3090"), ("3090 Ti", "rtx3090ti"), ("M2 Ultra", "m2-ultra"), ("h200", "h200-sxm"),
])
def test_short_names_people_type(typed, expected):
    assert find_hardware(typed).id == expected


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
