"""Which detected GPUs the runtimes will show a process: the visible-devices variables.

Reads each vendor's visibility variables (:attr:`aimc.vendors.Vendor.visibility`) from the
environment :func:`~aimc.detect.detect` was given, step by step, with the runtimes' rules:

- AMD: ``ROCR_VISIBLE_DEVICES`` first, then ``HIP_VISIBLE_DEVICES`` (else
  ``CUDA_VISIBLE_DEVICES``) applied to what ROCR left, numbered anew.
- NVIDIA: ``CUDA_VISIBLE_DEVICES``.

Each is a comma-separated list of indices or ``GPU-`` UUID prefixes, in the order to show
them. An empty ROCR/CUDA value hides every GPU; an empty HIP value is ignored (as is an
empty CUDA value for AMD); the first invalid entry ends the list.
"""

from __future__ import annotations

from collections.abc import Mapping

from aimc.detect.base import GPU
from aimc.vendors import vendor, visibility_variables

__all__ = ["apply_list", "variables_set", "visible"]


def apply_list(gpus: list[GPU], value: str) -> list[GPU]:
    """Apply one visibility list (indices into ``gpus`` or GPU- UUID prefixes)."""
    chosen: list[GPU] = []
    for token in (t.strip() for t in value.split(",")):
        match: GPU | None = None
        if token.isdigit() and int(token) < len(gpus):
            match = gpus[int(token)]
        elif token.upper().startswith("GPU-"):
            hits = [g for g in gpus if g.uuid and g.uuid.upper().startswith(token.upper())]
            match = hits[0] if len(hits) == 1 else None
        if match is None:
            break  # the runtimes stop at the first invalid entry
        if match not in chosen:
            chosen.append(match)
    return chosen


def visible(gpus: list[GPU], vendor_name: str, environ: Mapping[str, str]) -> list[GPU]:
    """The GPUs of the vendor that the runtimes show, in the order they number them."""
    for step in vendor(vendor_name).visibility:
        for name in step.variables:
            value = environ.get(name)
            if value is None or (value == "" and not step.empty_hides):
                continue
            gpus = apply_list(gpus, value)
            break
    return gpus


def variables_set(environ: Mapping[str, str]) -> dict[str, str]:
    """The registered vendors' visibility variables present in ``environ`` (empty ones
    too)."""
    return {k: environ[k] for k in visibility_variables() if k in environ}
