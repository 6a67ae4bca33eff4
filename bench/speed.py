"""The everyday commands' cold wall time, in one run, against the same baselines.

    .venv/bin/pip install check-jsonschema    # once; not a dependency of aimc
    .venv/bin/python bench/speed.py [--runs 15] [--files 1000] [--repo-runs 3]
                                    [--against OTHER_CHECKOUT]

Every figure is the median over fresh processes, the commands interleaved in each round
so machine load hits all of them alike; a ratio is the median over rounds of a command's
time over its baseline's in the same round (this machine's speed drifts within a run):

- the dependency-import floor: ``python -c "import click, jinja2, jsonschema, ruamel.yaml"``;
- ``compile Qwen/Qwen3-32B 8 --target mi300x -o DIR`` (as a ratio of the floor): as on a
  machine that ran it before (what aimc keeps beside its bytecode: the rendered artifacts,
  ``aimc/emit/rendered.py``, and the parsed recipe and profile, ``aimc/core/yaml_cache.py``),
  DIR already holding its output (nothing written); the same whose output changed (two
  ``--port`` values into one folder, each run replacing the other's); and as a first run
  (what is kept removed before each run, in rounds of their own; Jinja's compiled templates
  stay, as Python's bytecode does);
- ``--help``, ``list models``, ``show-config Qwen/Qwen3-32B --target mi300x``;
- ``validate`` of one recipe file (what pre-commit runs on a commit touching one recipe);
- ``validate`` of a repository of ``--files`` recipes, cold and with a warm ``--cache``,
  against check-jsonschema with aimc's recipe schema on the same files (plain
  ``jsonschema`` in one process when check-jsonschema is not installed). The recipes are
  the shipped catalog's model recipes (every configuration, GPU count, precision and
  backend they offer) cycled under new ids, each copy at a context of its own (every
  other recipe at half its own, and 16 tokens fewer each round): aimc keeps estimates for
  equal arguments across files, and a repository of distinct models would not let them
  serve another file, so neither does this one (only the profiles' own layers and small
  memos of a few numbers, such as CUDA-graph capture sizes, serve many files, as they
  would there).

With ``--against DIR`` (another aimc checkout, e.g. a ``git worktree`` of the commit
before a change) every aimc command runs for both in the same rounds, the other through
``PYTHONPATH=DIR``: a "before" column measured under the same load as "now".

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


#: A command: its arguments, folder, extra environment, and the aimc checkout whose kept
#: files (:data:`KEPT`) are removed before each run (None: none).
Command = tuple[list[str], Path, dict[str, str], Path | None]
#: What aimc keeps between runs beside its bytecode: rendered artifacts, parsed YAML.
KEPT = ("aimc/emit/__pycache__/rendered", "aimc/core/__pycache__/yaml")


def _run(cmd: list[str], cwd: Path, env: dict[str, str], forget: Path | None = None) -> float:
    if forget is not None:
        for kept in KEPT:
            shutil.rmtree(forget / kept, ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **env})
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(
            f"{' '.join(cmd[:4])} failed ({done.returncode}): {(done.stdout + done.stderr)[-500:]}"
        )
    return elapsed


def _vary(text: str, i: int, n: int) -> str:
    """Recipe ``text`` as copy ``i`` of ``n`` shipped recipes, kept valid, at a context of
    its own: 16 tokens fewer each round through the shipped recipes, so no two copies ask
    for the same estimate (what aimc keeps for equal arguments, as a repository of
    distinct models would not let it, never serves another copy), and every other recipe
    at half its context. The context is the recipe's ``context_length``, else its model's
    ``max_context``."""
    match = re.search(r"^  context_length: (\d+)\b", text, re.MULTILINE) or re.search(
        r"^    max_context: (\d+)$", text, re.MULTILINE
    )
    if match is None:
        return text
    context = int(match.group(1)) // (2 if i % 2 else 1) - 16 * (i // n)
    return text[: match.start(1)] + str(context) + text[match.end(1) :]


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
        path.write_text(_vary(text, i, len(shipped)))
        files.append(str(path.relative_to(folder)))
    return files


#: Seconds of each command in each round, by command name.
Times = dict[str, list[float]]


def _rounds(commands: dict[str, Command], runs: int) -> Times:
    """Each command's seconds in each round; one warm-up each, then ``runs`` interleaved
    rounds."""
    for command in commands.values():
        _run(*command)
    times: Times = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(_run(*command))
    return times


def _ratio(times: Times, key: str, base: list[float]) -> float:
    """The median over rounds of ``key``'s time over ``base``'s in the same round: the
    machine's speed drifts (a shared VM), the two runs of one round are seconds apart."""
    return statistics.median(t / b for t, b in zip(times[key], base, strict=True))


def _versions(against: Path | None) -> dict[str, tuple[dict[str, str], Path]]:
    """'' -> this checkout; 'before' -> ``against`` (its aimc first on the path); with
    the checkout each one runs."""
    versions: dict[str, tuple[dict[str, str], Path]] = {"": ({}, ROOT)}
    if against is not None:
        versions["before"] = ({"PYTHONPATH": str(against)}, against)
    return versions


def _startup(runs: int, work: Path, against: Path | None) -> Times:
    aimc = [sys.executable, "-m", "aimc"]
    one = str(ROOT / "recipes" / "models" / "Qwen" / "Qwen3-8B.yaml")
    out = str(work / "out")
    compile_ = [*aimc, "compile", "Qwen/Qwen3-32B", "8", "--target", "mi300x", "-o", out]
    cases = {
        "compile": compile_,
        "--help": [*aimc, "--help"],
        "list models": [*aimc, "list", "models"],
        "show-config": [*aimc, "show-config", "Qwen/Qwen3-32B", "--target", "mi300x"],
        "validate (1 recipe)": [*aimc, "validate", one],
    }
    floor: Command = ([sys.executable, "-c", FLOOR], work, {}, None)
    commands: dict[str, Command] = {"floor": floor}
    first: dict[str, Command] = {"floor": floor}
    for version, (env, tree) in _versions(against).items():
        for name, cmd in cases.items():
            commands[f"{name}|{version}"] = (cmd, work, env, None)
        # in rounds of its own: removing what is kept would make the others first runs too
        first[f"compile, first run|{version}"] = (compile_, work, env, tree)
        # Two plans into one folder, one after the other: each run replaces the folder the
        # other wrote (a compile whose output changed), where a repeated compile finds its
        # folder up to date and writes nothing.
        for port in ("8001", "8002"):
            cmd = [*compile_[:-1], str(work / "replaced"), "--port", port]
            commands[f"compile, replacing {port}|{version}"] = (cmd, work, env, None)
    times = _rounds(commands, runs)
    for version in _versions(against):
        both = [times.pop(f"compile, replacing {port}|{version}") for port in ("8001", "8002")]
        times[f"compile, replacing|{version}"] = [
            statistics.mean(pair) for pair in zip(*both, strict=True)
        ]
    first_times = _rounds(first, runs)
    first_times["floor, first-run rounds"] = first_times.pop("floor")
    return {**times, **first_times}


def _repo(files: int, runs: int, work: Path, against: Path | None) -> tuple[Times, str]:
    rel = _repository(work, files)
    aimc = [sys.executable, "-m", "aimc", "validate", "models"]
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if checker is not None:
        baseline, label = [checker, "--schemafile", str(SCHEMA), *rel], "check-jsonschema"
    else:
        baseline = [sys.executable, "-c", _JSONSCHEMA, str(SCHEMA), *rel]
        label = "jsonschema (check-jsonschema not installed)"
    commands: dict[str, Command] = {"baseline": (baseline, work, {}, None)}
    for version, (env, _tree) in _versions(against).items():
        cache = str(work / f"verdicts{version}.json")
        commands[f"cold|{version}"] = (aimc, work, env, None)
        commands[f"warm|{version}"] = ([*aimc, "--cache", cache], work, env, None)
    return _rounds(commands, runs), label


def _line(name: str, times: Times, key: str, note: Callable[[str], str]) -> None:
    """One command's median, before and now, and ``note(version key)``."""
    now = statistics.median(times[f"{key}|"])
    before = times.get(f"{key}|before")
    then = f"{statistics.median(before) * 1000:8.1f} ms  " if before is not None else ""
    print(f"{name:<36} {then}{now * 1000:8.1f} ms  {note(f'{key}|')}")


def _ratios(times: Times, key: str, base: list[float], goal: str) -> str:
    """``0.52x floor (before 1.21x)``: the median per-round ratios of now and before."""
    before = f"{key[:-1]}|before"
    then = f", before {_ratio(times, before, base):.2f}x" if before in times else ""
    return f"{_ratio(times, key, base):.3f}x{goal}{then}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repo-runs", type=int, default=3)
    parser.add_argument(
        "--against", type=Path, help="another aimc checkout to time in the same rounds (before)"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    # pip compiles bytecode when it installs a package; an editable checkout under
    # PYTHONDONTWRITEBYTECODE=1 would recompile aimc on every run instead.
    for tree in (ROOT, args.against):
        if tree is not None:
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(tree / "aimc")], check=True
            )
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["CACHE_DIR"] = str(work / "cache")
        os.environ["AIMC_STATE_DIR"] = str(work / "state")
        start = _startup(args.runs, work, args.against)
        repo, label = _repo(args.files, args.repo_runs, work / "repo", args.against)
    floor, base = start["floor"], repo["baseline"]
    first_floor = start["floor, first-run rounds"]
    print(
        f"cpus: {len(os.sched_getaffinity(0))}, load: {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end, runs: {args.runs}"
    )
    print(f"{'':<36} {'before':>11}  {'now':>11}" if args.against else "")
    print(f"floor: {FLOOR[7:]}\n{'':<36} {statistics.median(floor) * 1000:8.1f} ms")
    print("(a ratio: the median over rounds of the command's time over the floor's in its round)")
    goals: dict[str, Callable[[str], str]] = {
        "compile": lambda k: _ratios(start, k, floor, " floor (goal <= 0.6x)"),
        "compile, replacing": lambda k: _ratios(start, k, floor, " floor (a changed plan)"),
        "compile, first run": lambda k: _ratios(start, k, first_floor, " its rounds' floor"),
        "--help": lambda k: "(goal <= 80 ms)",
        "list models": lambda k: "",
        "show-config": lambda k: "",
        "validate (1 recipe)": lambda k: "(goal <= 150 ms)",
    }
    for name, note in goals.items():
        _line(name, start, name, note)
    print(f"validate of {args.files} recipes (runs: {args.repo_runs}):")
    print(f"{'  ' + label:<36} {statistics.median(base) * 1000:8.1f} ms")
    _line(
        "  aim-engine validate, cold",
        repo,
        "cold",
        lambda k: _ratios(repo, k, base, " (goal <= 0.25x)"),
    )
    _line("  aim-engine validate --cache, warm", repo, "warm", lambda k: _ratios(repo, k, base, ""))


if __name__ == "__main__":
    main()
