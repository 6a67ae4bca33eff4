"""Which detected GPUs the runtimes will show a process: the visible-devices variables.

Reads ``ROCR_VISIBLE_DEVICES``, ``HIP_VISIBLE_DEVICES`` and ``CUDA_VISIBLE_DEVICES`` from
the environment :func:`~aimc.detect.detect` was given, with the runtimes' rules:

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

__all__ = ["VARIABLES", "apply_list", "variables_set", "visible"]

#: The variables, in the order they are reported.
VARIABLES = ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")


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


def visible(gpus: list[GPU], vendor: str, environ: Mapping[str, str]) -> list[GPU]:
    """The GPUs of ``vendor`` that the runtimes show, in the order they number them."""
    if vendor == "nvidia":
        if "CUDA_VISIBLE_DEVICES" in environ:
            return apply_list(gpus, environ["CUDA_VISIBLE_DEVICES"])
        return gpus
    if "ROCR_VISIBLE_DEVICES" in environ:
        gpus = apply_list(gpus, environ["ROCR_VISIBLE_DEVICES"])
    hip = environ.get("HIP_VISIBLE_DEVICES", "")
    if hip:
        return apply_list(gpus, hip)
    if "CUDA_VISIBLE_DEVICES" in environ and environ["CUDA_VISIBLE_DEVICES"] != "":
        return apply_list(gpus, environ["CUDA_VISIBLE_DEVICES"])
    return gpus


def variables_set(environ: Mapping[str, str]) -> dict[str, str]:
    """The visibility variables present in ``environ`` (empty ones too)."""
    return {k: environ[k] for k in VARIABLES if k in environ}
