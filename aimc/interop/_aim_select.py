"""Which AMD AIM profile AIM's own selector launches (aim-build's
``aim_runtime/profile_selector.py``), so the import keeps that one per GPU, precision and
GPU count and says what AIM does with it.

Takes converted profiles (:class:`aimc.interop.aim_profiles._Profile`: ``path``,
``manual``, ``metric``, ``kind``); hands on their order of preference and a sentence for
the configuration's description.
"""

from __future__ import annotations

from typing import Any

__all__ = ["preference", "selection"]

#: AIM's ProfileSelector._order_profiles: optimized before preview, unoptimized, general.
_TYPES = {"optimized": 1, "preview": 2, "unoptimized": 3, "general": 4}


def preference(p: Any) -> tuple[bool, bool, bool, int, str]:
    """AIM's own selector (aim_runtime/profile_selector.py, AIM_METRIC and the rest at
    their defaults, AIM_PRECISION and the GPU count those of the slot): manual-only
    profiles and other metrics than latency are never picked; then profiles/custom/ before
    the model's folder, then the type."""
    custom = "/profiles/custom/" in "/" + p.path.replace("\\", "/")
    return (p.manual, p.metric != "latency", not custom, _TYPES.get(p.kind, 5), p.path)


def selection(p: Any, general: str | None) -> str:
    """What AIM's selector does with ``p`` on its GPU, precision and GPU count."""
    if not p.manual and p.metric == "latency":
        return "AIM's selector picks it by default"
    how = "only by AIM_PROFILE_ID" if p.manual else f"only with AIM_METRIC={p.metric}"
    fallback = f"{general}" if general else "no profile of this model"
    return f"AIM's selector picks it {how}; by default it launches {fallback} here"
