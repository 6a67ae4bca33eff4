"""The everyday commands' cold wall time, in one run, against the same baselines.

    .venv/bin/pip install check-jsonschema    # once; not a dependency of aimc
    .venv/bin/python bench/speed.py [--runs 15] [--files 1000] [--repo-runs 3]

Every figure is the median over fresh processes, the commands interleaved in each round
so machine load hits all of them alike:

- the dependency-import floor: ``python -c "import click, jinja2, jsonschema, ruamel.yaml"``;
- ``compile Qwen/Qwen3-32B 8 --target mi300x -o DIR`` (as a ratio of the floor);
- ``--help``, ``list models``, ``show-config Qwen/Qwen3-32B --target mi300x``;
- ``validate`` of one recipe file (what pre-commit runs on a commit touching one recipe);
- ``validate`` of a repository of ``--files`` recipes, cold and with a warm ``--cache``,
  against check-jsonschema with aimc's recipe schema on the same files (plain
  ``jsonschema`` in one process when check-jsonschema is not installed). The recipes are
  the shipped catalog's, every one under many ids with its context length, GPU counts and
  precisions varied, so the fit rule meets every shape, not 1,000 copies of one.

Goals (issue 26): compile <= 0.6x the floor, ``--help`` <= 80 ms, one-recipe validate
<= 150 ms, the 1,000-recipe cold validate <= 0.25x check-jsonschema. Prints; asserts
nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schemas" / "recipe.schema.json"
FLOOR = "import click, jinja2, jsonschema, ruamel.yaml"
_JSONSCHEMA = """
import json, sys
from pathlib import Path
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML
check = Draft202012Validator(json.loads(Path(sys.argv[1]).read_text()))
yaml = YAML(typ="safe")
for name in sys.argv[2:]:
    for error in check.iter_errors(yaml.load(Path(name).read_text())):
        print(name, error.message)
"""


def _run(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(
            f"{' '.join(cmd[:4])} failed ({done.returncode}): {(done.stdout + done.stderr)[-500:]}"
        )
    return elapsed


def _vary(text: str, i: int) -> str:
    """Recipe ``text`` with a per-copy change that keeps it valid: every other copy asks
    for half its default context length (a different fit for every configuration)."""
    match = re.search(r"^  context_length: (\d+)$", text, re.MULTILINE)
    if i % 2 and match:
        half = int(match.group(1)) // 2
        return text[: match.start(1)] + str(half) + text[match.end(1) :]
    return text


def _repository(folder: Path, count: int) -> list[str]:
    """``count`` recipes cycling through every shipped model recipe under new ids."""
    shipped = sorted((ROOT / "recipes" / "models").glob("*/*.yaml"))
    files = []
    for i in range(count):
        source = shipped[i % len(shipped)]
        old_id = f"{source.parent.name}/{source.stem}"
        text = source.read_text().replace(f"id: {old_id}", f"id: bench-org/{source.stem}-{i}", 1)
        path = folder / "models" / "bench-org" / f"{source.stem}-{i}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_vary(text, i))
        files.append(str(path.relative_to(folder)))
    return files


def _rounds(commands: dict[str, tuple[list[str], Path]], runs: int) -> dict[str, float]:
    """Median seconds per command; one warm-up each, then ``runs`` interleaved rounds."""
    for cmd, cwd in commands.values():
        _run(cmd, cwd)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (cmd, cwd) in commands.items():
            times[name].append(_run(cmd, cwd))
    return {name: statistics.median(values) for name, values in times.items()}


def _startup(runs: int, work: Path) -> dict[str, float]:
    aimc = [sys.executable, "-m", "aimc"]
    one = str(ROOT / "recipes" / "models" / "Qwen" / "Qwen3-8B.yaml")
    commands = {
        "floor": ([sys.executable, "-c", FLOOR], work),
        "compile": (
            [
                *aimc,
                "compile",
                "Qwen/Qwen3-32B",
                "8",
                "--target",
                "mi300x",
                "-o",
                str(work / "out"),
            ],
            work,
        ),
        "--help": ([*aimc, "--help"], work),
        "list models": ([*aimc, "list", "models"], work),
        "show-config": ([*aimc, "show-config", "Qwen/Qwen3-32B", "--target", "mi300x"], work),
        "validate (1 recipe)": ([*aimc, "validate", one], work),
    }
    return _rounds(commands, runs)


def _repo(files: int, runs: int, work: Path) -> tuple[dict[str, float], str]:
    rel = _repository(work, files)
    aimc = [sys.executable, "-m", "aimc", "validate", "models"]
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if checker is not None:
        baseline, label = [checker, "--schemafile", str(SCHEMA), *rel], "check-jsonschema"
    else:
        baseline = [sys.executable, "-c", _JSONSCHEMA, str(SCHEMA), *rel]
        label = "jsonschema (check-jsonschema not installed)"
    commands = {
        "cold": (aimc, work),
        "warm": ([*aimc, "--cache", str(work / "verdicts.json")], work),
        "baseline": (baseline, work),
    }
    return _rounds(commands, runs), label


def _line(name: str, seconds: float, note: str = "") -> None:
    print(f"{name:<34} {seconds * 1000:8.1f} ms  {note}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repo-runs", type=int, default=3)
    args = parser.parse_args()
    # pip compiles bytecode when it installs a package; an editable checkout under
    # PYTHONDONTWRITEBYTECODE=1 would recompile aimc on every run instead.
    import aimc

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(aimc.__file__).parent)], check=True
    )
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["CACHE_DIR"] = str(work / "cache")
        os.environ["AIMC_STATE_DIR"] = str(work / "state")
        start = _startup(args.runs, work)
        repo, label = _repo(args.files, args.repo_runs, work / "repo")
    floor = start["floor"]
    print(
        f"cpus: {len(os.sched_getaffinity(0))}, load: {os.getloadavg()[0]:.1f}, runs: {args.runs}"
    )
    _line("floor: " + FLOOR[7:], floor)
    goals: dict[str, Callable[[float], str]] = {
        "compile": lambda s: f"{s / floor:.2f}x floor (goal <= 0.6x)",
        "--help": lambda s: "(goal <= 80 ms)",
        "list models": lambda s: "",
        "show-config": lambda s: "",
        "validate (1 recipe)": lambda s: "(goal <= 150 ms)",
    }
    for name, note in goals.items():
        _line(name, start[name], note(start[name]))
    base = repo["baseline"]
    print(f"validate of {args.files} recipes (runs: {args.repo_runs}):")
    _line("  " + label, base)
    _line(
        "  aim-engine validate, cold", repo["cold"], f"{repo['cold'] / base:.2f}x (goal <= 0.25x)"
    )
    _line("  aim-engine validate --cache, warm", repo["warm"], f"{repo['warm'] / base:.2f}x")


if __name__ == "__main__":
    main()
