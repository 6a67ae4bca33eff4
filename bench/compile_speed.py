"""Cold wall time of `aim-engine compile` next to importing its four libraries.

    .venv/bin/python bench/compile_speed.py [--runs 15]

Each run is a fresh process. The baseline is `python -c "import click, jinja2,
jsonschema, ruamel.yaml"` measured in the same loop (interleaved), so machine load hits
both alike. Goal: ratio <= 1.0 (no huggingface_hub, vllm or docker import on this path).
Prints medians and the ratio; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    # pip compiles bytecode when it installs a package; an editable checkout under
    # PYTHONDONTWRITEBYTECODE=1 would recompile aimc on every run instead. Compile it once,
    # as an installed copy would be, so both sides of the ratio load bytecode.
    import aimc

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(aimc.__file__).parent)], check=True
    )
    out = Path(tempfile.mkdtemp()) / "build"
    compile_cmd = [
        sys.executable,
        "-m",
        "aimc",
        "compile",
        "Qwen/Qwen3-32B",
        "8",
        "--target",
        "mi300x",
        "-o",
        str(out),
    ]
    import_cmd = [sys.executable, "-c", "import click, jinja2, jsonschema, ruamel.yaml"]
    _time(compile_cmd), _time(import_cmd)  # warm the OS file cache, not Python
    compiles, imports = [], []
    for _ in range(args.runs):
        compiles.append(_time(compile_cmd))
        imports.append(_time(import_cmd))
    c, i = statistics.median(compiles), statistics.median(imports)
    print(f"aim-engine compile (cold): median {c * 1000:.1f} ms, min {min(compiles) * 1000:.1f}")
    print(
        f"import click, jinja2, jsonschema, ruamel.yaml: median {i * 1000:.1f} ms, "
        f"min {min(imports) * 1000:.1f}"
    )
    print(f"ratio compile/imports: {c / i:.2f}  (goal <= 1.0)")
    heavy = subprocess.run(
        [sys.executable, "-X", "importtime", *compile_cmd[1:]], capture_output=True, text=True
    ).stderr
    loaded = [
        m
        for m in ("huggingface_hub", "vllm", "docker", "torch")
        if f" {m}\n" in heavy or f" {m}." in heavy
    ]
    print(f"heavy modules imported by compile: {', '.join(loaded) or 'none'}")


if __name__ == "__main__":
    main()
