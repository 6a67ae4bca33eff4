"""Time and peak memory of `aim-engine validate` on hostile files.

    .venv/bin/python bench/hostile_inputs.py [--timeout 60]

Each case is a fresh `python -m aimc validate FILE` process: the hostile files of
tests/corpus/invalid, and files generated in a temporary folder (one byte over the size
limit, 100,000 unclosed `[`, a document just under the node limit, long keys that multiply
into long JSON Pointers) plus /dev/zero. A clean recipe gives the interpreter's floor.
Prints, per case, the exit code, wall time and the child's peak resident memory (from
os.wait4) against the goals (< 2 s, < 200 MB); asserts nothing. A case still running at
--timeout is killed and shows exit "killed".
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_SECONDS = 2.0
GOAL_MB = 200.0


def _generate(folder: Path) -> dict[str, Path]:
    """Hostile files too large or too odd to keep in the corpus."""
    from aimc.loader import MAX_FILE_BYTES, MAX_NODES

    files = {
        "over-size (1 MiB + 1 byte)": b"#" * MAX_FILE_BYTES + b"\n",
        "unclosed [ x 100000": b"a: " + b"[" * 100_000,
        f"flat list of {MAX_NODES - 10} (accepted)": (
            b"a: [" + b",".join([b"1"] * (MAX_NODES - 10)) + b"]\n"
        ),
        "40 keys of 10 KB over 50000 values": "".join(
            f"{'  ' * i}? {chr(97 + i) * 10_000}\n{'  ' * i}:\n" for i in range(40)
        ).encode()
        + b"  " * 40
        + b"["
        + b",".join([b"x"] * 50_000)
        + b"]\n",
    }
    paths = {}
    for i, (name, data) in enumerate(files.items()):
        path = folder / f"case-{i}.yaml"
        path.write_bytes(data)
        paths[name] = path
    return paths


def _run(file: Path | str, timeout: float) -> tuple[str, float, float, str]:
    """Exit code, wall seconds, peak MB and first output line of one validate run."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "aimc", "validate", str(file)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the max of all).
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        killed = not timer.is_alive()
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        first = out.read(400).decode("utf-8", "replace").splitlines()
    peak = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    code = "killed" if killed else str(proc.returncode)
    return code, wall, peak, first[0] if first else ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=60, help="seconds before a kill")
    args = parser.parse_args()
    corpus = ROOT / "tests/corpus"
    cases: dict[str, Path | str] = {
        "clean recipe (floor)": corpus / "valid/recipe-full.yaml",
        "alias-bomb.yaml": corpus / "invalid/alias-bomb.yaml",
        "deep-nesting.yaml": corpus / "invalid/deep-nesting.yaml",
        "huge-value.yaml": corpus / "invalid/huge-value.yaml",
    }
    with tempfile.TemporaryDirectory() as tmp:
        cases.update(_generate(Path(tmp)))
        if Path("/dev/zero").exists():
            cases["/dev/zero"] = "/dev/zero"
        print(f"goals: < {GOAL_SECONDS:.0f} s, < {GOAL_MB:.0f} MB peak per run")
        width = max(map(len, cases))
        for name, file in cases.items():
            code, wall, peak, first = _run(file, args.timeout)
            verdict = "ok" if wall < GOAL_SECONDS and peak < GOAL_MB else "OVER GOAL"
            message = first.split(": error: ", 1)[-1][:70]
            print(
                f"{name:<{width}}  exit {code:>6}  {wall:6.2f} s  {peak:7.1f} MB  "
                f"{verdict:<9}  {message}"
            )


if __name__ == "__main__":
    main()
