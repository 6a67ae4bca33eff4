"""Plans made for a test: a compiled plan with one env setting under any name."""

from __future__ import annotations

import dataclasses

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.plan.model import Plan, Setting
from aimc.plan.request import Request


def plan_with_env(launcher: str, name: str) -> Plan:
    plan = make_plan(
        Catalog.default(), Request(model="Qwen/Qwen3-8B", launcher=launcher, sets=("env.A=1",)),
        "h100",
    )  # fmt: skip
    setting: Setting = plan.env["A"]
    return dataclasses.replace(plan, env={name: setting})
