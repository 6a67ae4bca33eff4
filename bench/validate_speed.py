"""`aim-engine validate` on a recipe repository of 1,000 small recipes, next to
check-jsonschema with aimc's own recipe schema on the same files.

    .venv/bin/pip install check-jsonschema    # once; not a dependency of aimc
    .venv/bin/python bench/validate_speed.py [--files 1000] [--runs 3]

aimc does more than the schema check (lint rules, memory-fit estimates for every
configuration), so a ratio below 1.0 means it is faster while checking more. Each run is a
fresh process; the runs are interleaved. Two aimc figures: a fresh check ("cold"), and a
check with ``--cache FILE`` after a first run filled it ("warm": what a CI job with a
restored cache pays when no recipe changed). Prints medians and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "recipes" / "models" / "Qwen" / "Qwen3-8B.yaml"


def _repository(folder: Path, count: int) -> list[Path]:
    """``count`` recipes: the shipped Qwen3-8B under other ids (org/model-N)."""
    text = SOURCE.read_text()
    files = []
    for i in range(count):
        path = folder / "models" / "bench-org" / f"model-{i}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("id: Qwen/Qwen3-8B", f"id: bench-org/model-{i}", 1))
        files.append(path)
    return files


def _time(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({done.returncode}): {(done.stdout + done.stderr)[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if checker is None:
        sys.exit("check-jsonschema is not installed: .venv/bin/pip install check-jsonschema")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        files = _repository(base, args.files)
        rel = [str(f.relative_to(base)) for f in files]
        aimc = [sys.executable, "-m", "aimc", "validate", "models"]
        cached = [*aimc, "--cache", str(base / "verdicts.json")]
        schema = [checker, "--schemafile", str(ROOT / "schemas" / "recipe.schema.json"), *rel]
        _time(cached, base)  # fills the cache
        ours, warm, theirs = [], [], []
        for _ in range(args.runs):
            ours.append(_time(aimc, base))
            warm.append(_time(cached, base))
            theirs.append(_time(schema, base))
    a, w, c = statistics.median(ours), statistics.median(warm), statistics.median(theirs)
    print(f"files: {args.files}, runs: {args.runs}, cpus: {len(os.sched_getaffinity(0))}")
    print(f"aim-engine validate, cold (schema + lint + fit): {a:.2f} s")
    print(f"aim-engine validate --cache, warm:               {w:.2f} s")
    print(f"check-jsonschema (schema only):                  {c:.2f} s")
    print(f"ratio aimc cold / check-jsonschema: {a / c:.2f}")
    print(f"ratio aimc warm / check-jsonschema: {w / c:.2f}")


if __name__ == "__main__":
    main()
