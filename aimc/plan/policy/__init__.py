"""Selection policy: which configuration a request gets, and why.

Takes a recipe, a hardware profile, a :class:`~aimc.plan.request.Request` whose GPU count,
precision or backend may be open and the :class:`Pool` of GPUs a plan may use; hands on
the :class:`~aimc.plan.model.Plan` with every automatic choice in its ``decisions``, or a
refusal with the numbers. :mod:`aimc.plan.policy.select` writes the policy down and
:func:`resolve` follows it step by step; the steps' parts are modules of their own:

- :mod:`aimc.plan.policy.fit`: whether each candidate configuration fits (:func:`assess`,
  :func:`shortfall`), and the :class:`Pool`;
- :mod:`aimc.plan.policy.measures`: what ``--optimize`` prefers by measured figures
  (:func:`measurement_for`);
- :mod:`aimc.plan.policy.sizing`: the GPU count and data-parallel replicas;
- :mod:`aimc.plan.policy.refusals`: every refusal (:func:`refuse_precision`).
"""

from __future__ import annotations

from aimc.plan.policy.fit import Assessment, Pool, assess, estimated, shortfall
from aimc.plan.policy.measures import measurement_for
from aimc.plan.policy.refusals import refuse_precision
from aimc.plan.policy.select import resolve

__all__ = [
    "Assessment",
    "Pool",
    "assess",
    "estimated",
    "measurement_for",
    "refuse_precision",
    "resolve",
    "shortfall",
]
