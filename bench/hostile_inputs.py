"""Time and peak memory of `aim-engine validate` on hostile files, and of `validate --from`
and `import` on hostile foreign collections.

    .venv/bin/python bench/hostile_inputs.py [--timeout 60] [--interop 200,1000] [--only-interop]

Each case is a fresh `python -m aimc validate FILE` process: the hostile files of
tests/corpus/invalid, and files generated in a temporary folder (one byte over the size
limit, 100,000 unclosed `[`, a document just under the node limit, long keys that multiply
into long JSON Pointers) plus /dev/zero. A clean recipe gives the interpreter's floor.
Prints, per case, the exit code, wall time and the child's peak resident memory (from
os.wait4) against the goals (< 2 s, < 200 MB); asserts nothing. A case still running at
--timeout is killed and shows exit "killed".

:func:`interop_ceilings` writes hostile collections of each foreign format (every file
about 76 KB, made to cost the most per byte: :func:`aim_collection`,
:func:`vllm_collection`), runs `validate --from` and `import` on two sizes of each, and
prints wall time, peak memory and output size, with both extrapolated linearly to the
5,000-file maximum (the ceilings the README states).
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
#: Known model ids (the shipped catalog's), so every hostile file is converted and checked.
MODELS = (
    "Qwen/Qwen3-8B",
    "Qwen/Qwen3-32B",
    "Qwen/Qwen3-30B-A3B",
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.1-70B-Instruct",
    "mistralai/Mixtral-8x7B-Instruct-v0.1",
)
_AIM_GPUS = ("mi300x", "mi325x", "mi355x", "mi250x", "h100", "h200")
_AIM_PRECISIONS = ("bf16", "fp16", "fp8")
GOAL_SECONDS = 2.0
GOAL_MB = 200.0


def _generate(folder: Path) -> dict[str, Path]:
    """Hostile files too large or too odd to keep in the corpus."""
    from aimc.core.loader import MAX_FILE_BYTES, MAX_NODES

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


def aim_profile(i: int) -> str:
    """A hostile AMD AIM profile of about 76 KB: 1,900 engine args aimc does not know
    (each a lint error with a "did you mean" look-up over every vLLM flag), 400 env vars
    and 100 unknown fields; its (GPU, precision, GPU count) slot differs per ``i``, so
    every profile is a configuration of its model."""
    gpus = 1 + i % 8
    gpu = _AIM_GPUS[i // 8 % len(_AIM_GPUS)]
    precision = _AIM_PRECISIONS[i // (8 * len(_AIM_GPUS)) % len(_AIM_PRECISIONS)]
    model = MODELS[i % len(MODELS)]
    return (
        f"aim_id: {model}\nmodel_id: {model}\nmetadata:\n  engine: vllm\n  gpu: {gpu}\n"
        f"  gpu_count: {gpus}\n  precision: {precision}\n  metric: latency\n"
        f"  type: optimized\nengine_args:\n  tensor-parallel-size: {gpus}\n"
        + "".join(f"  unknown-engine-flag-{j:05d}: {j}\n" for j in range(1900))
        + "env_vars:\n"
        + "".join(f"  SOME_SETTING_{j:05d}: 'x'\n" for j in range(400))
        + "".join(f"extra_field_{j:03d}: 1\n" for j in range(100))
    )


def aim_collection(folder: Path, files: int) -> Path:
    """An aim-build checkout of ``files`` hostile profiles (:func:`aim_profile`)."""
    profiles = folder / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (profiles / f"vllm-hostile-{i:05d}.yaml").write_text(aim_profile(i))
    return folder


#: Taxonomy GPUs of the hostile vLLM Recipes checkout (each one configuration slot).
_VLLM_GPUS = 100


def vllm_model(i: int) -> str:
    """A hostile vLLM Recipes model file of about 76 KB: listed for 100 GPUs, 940
    variants with an unknown extra arg each, both single-node strategies, and a hardware
    override: the site's variant x GPU x strategy product is 188,000 configurations."""
    model = MODELS[i % len(MODELS)]
    hardware = ", ".join(f"gpu{j:03d}: verified" for j in range(_VLLM_GPUS))
    variants = "".join(
        f"  v{k}:\n    precision: {_AIM_PRECISIONS[k % 3]}\n    tp: {1 + k % 8}\n"
        f"    extra_args: [--unknown-flag-{k}, '1']\n"
        for k in range(940)
    )
    return (
        f"meta:\n  title: hostile {i}\n  hardware: {{{hardware}}}\nmodel:\n"
        f"  model_id: {model}\n  base_args: [--max-num-seqs, '256']\n"
        "compatible_strategies: [single_node_tp, single_node_tep]\n"
        "hardware_overrides:\n  default:\n    extra_args: [--another-unknown-flag, '2']\n"
        f"variants:\n{variants}"
    )


def vllm_collection(folder: Path, files: int) -> Path:
    """A vllm-project/recipes checkout of ``files`` hostile model files
    (:func:`vllm_model`), its taxonomy of 100 GPUs and two strategies."""
    (folder / "models" / "hostile").mkdir(parents=True, exist_ok=True)
    (folder / "strategies").mkdir(exist_ok=True)
    (folder / "taxonomy.yaml").write_text(
        "hardware_profiles:\n"
        + "".join(
            f"  gpu{j:03d}: {{brand: NVIDIA, generation: hopper, gpu_count: 8, "
            f"vram_gb: {640 + j}, multi_node: false}}\n"
            for j in range(_VLLM_GPUS)
        )
    )
    for name, args in (("single_node_tp", "[--strategy-unknown, '1']"), ("single_node_tep", "[]")):
        (folder / "strategies" / f"{name}.yaml").write_text(f"name: {name}\nvllm_args: {args}\n")
    for i in range(files):
        (folder / "models" / "hostile" / f"m{i:05d}.yaml").write_text(vllm_model(i))
    return folder


def run_measured(
    argv: list[str], timeout: float, cwd: Path = ROOT
) -> tuple[str, float, float, int]:
    """Exit code ("killed" past ``timeout``), wall seconds, peak MB and bytes of output of
    ``python -m aimc ARGV`` in a fresh process (peak from os.wait4: the child alone)."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "aimc", *argv], cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        killed = not timer.is_alive()
        timer.cancel()
        size = out.seek(0, os.SEEK_END)
    peak = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    code = "killed" if killed else str(os.waitstatus_to_exitcode(status))
    return code, wall, peak, size


def interop_ceilings(sizes: tuple[int, int] = (200, 1000), timeout: float = 1800) -> None:
    """Print time, peak memory and output of `validate --from` and `import` on hostile
    collections of each format at two sizes, and their linear extrapolation to the
    5,000-file maximum (the larger size's figure plus the per-file slope between them)."""
    from aimc.interop._collection import MAX_FILES

    small, large = sizes
    print(f"hostile collections (~76 KB a file), extrapolated to {MAX_FILES} files:")
    for source, make in (("aim-profiles", aim_collection), ("vllm-recipes", vllm_collection)):
        for command in ("validate", "import"):
            rows = []
            for files in sizes:
                with tempfile.TemporaryDirectory() as tmp:
                    src = make(Path(tmp) / "src", files)
                    argv = (
                        ["validate", "--from", source, str(src)]
                        if command == "validate"
                        else ["import", source, str(src), "-o", str(Path(tmp) / "out"), "--partial"]
                    )
                    rows.append(run_measured(argv, timeout))
            (code_s, wall_s, peak_s, out_s), (code_l, wall_l, peak_l, out_l) = rows
            per_file = lambda a, b: max(0.0, (b - a) / (large - small))  # noqa: E731
            wall_max = wall_l + per_file(wall_s, wall_l) * (MAX_FILES - large)
            peak_max = peak_l + per_file(peak_s, peak_l) * (MAX_FILES - large)
            print(
                f"  {command:<8} {source:<12}  {small} files: exit {code_s}, {wall_s:6.1f} s, "
                f"{peak_s:6.1f} MB, {out_s / 1e3:7.1f} KB out;  {large} files: exit {code_l}, "
                f"{wall_l:6.1f} s, {peak_l:6.1f} MB, {out_l / 1e3:7.1f} KB out;  "
                f"{MAX_FILES} files: ~{wall_max:.0f} s, ~{peak_max:.0f} MB"
            )


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
    parser.add_argument(
        "--interop", default="200,1000", help="the two collection sizes of interop_ceilings"
    )
    parser.add_argument("--only-interop", action="store_true", help="skip the single files")
    args = parser.parse_args()
    if args.only_interop:
        small, large = (int(n) for n in args.interop.split(","))
        interop_ceilings((small, large))
        return
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
    small, large = (int(n) for n in args.interop.split(","))
    interop_ceilings((small, large))


if __name__ == "__main__":
    main()
