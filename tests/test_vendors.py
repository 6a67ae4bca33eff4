"""The vendor registry (aimc.vendors): one entry per kind of accelerator, no silent
defaults for one it does not know."""

from __future__ import annotations

import json

import pytest

from aimc.check.hardware import generic_profile
from aimc.core.errors import ConfigError
from aimc.vendors import VENDORS, gpu_vendors, vendor
from tests.conftest import ROOT


def test_the_schema_names_exactly_the_registered_vendors() -> None:
    schema = json.loads((ROOT / "schemas" / "hardware.schema.json").read_text())
    assert set(schema["properties"]["vendor"]["enum"]) == set(VENDORS)


def test_gpu_vendors_request_their_device_plugin_resource() -> None:
    assert gpu_vendors() == ("amd", "nvidia")
    assert vendor("amd").device_resource == "amd.com/gpu"
    assert vendor("nvidia").device_resource == "nvidia.com/gpu"
    assert vendor("cpu").device_resource is None


def test_an_unknown_vendor_is_an_error_not_nvidia() -> None:
    """Before issue 23 a derived profile of any non-AMD GPU got NVIDIA's container and
    image, and a pod of an unknown vendor requested no device at all."""
    from aimc.detect import GPU

    gaudi = GPU(
        index=0, vendor="intel", model="Gaudi 3", architecture="hl-325", device_id="0x1060",
        memory_total_mib=131072, memory_free_mib=131072, uuid=None, source="test",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="unknown GPU vendor 'intel'"):
        generic_profile([gaudi])
