"""Interop reads in bounded memory: a hostile foreign collection costs no more memory than a
clean one, by a margin, and its problems are capped per file and in all with a count of what
was left out.

The hostile files are the benchmark's (``bench/hostile_inputs.py``: 76 KB files made to
cost the most per byte); the benchmark measures the full 5,000-file ceilings.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent

#: Most memory a hostile collection of 20 files may add to the peak of a run on an empty
#: folder. Before the bounds, 20 hostile AIM profiles took 91 MB against a floor of 40 MB
#: (+51 MB; 3 vLLM Recipes files alone took 619 MB); bounded, about +5 MB.
MARGIN_MB = 25


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "hostile_inputs", ROOT / "bench/hostile_inputs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _peak(argv: list[str], cwd: Path) -> tuple[int, float, str]:
    """Exit code, peak resident MB (the child's own, from wait4) and output of
    ``python -m aimc ARGV``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIMC_", "AIM_"))}
    env.update(CACHE_DIR=str(cwd / "cache"), AIMC_STATE_DIR=str(cwd / "state"))
    with open(cwd / "out.txt", "w+b") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aimc", *argv],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
    return proc.returncode, usage.ru_maxrss / 1024, text


@pytest.mark.parametrize("source", ["aim-profiles", "vllm-recipes"])
def test_a_hostile_collection_is_read_in_bounded_memory(tmp_path: Path, source: str) -> None:
    bench = _bench()
    make = bench.aim_collection if source == "aim-profiles" else bench.vllm_collection
    src = make(tmp_path / "src", 20)
    hostile = list(src.glob("profiles/*.yaml")) + list(src.glob("models/*/*.yaml"))
    assert len(hostile) == 20 and all(70_000 < p.stat().st_size < 80_000 for p in hostile)
    (tmp_path / "empty").mkdir()
    code, floor, out = _peak(["validate", "--from", source, "empty"], tmp_path)
    assert code in (0, 2) and "no " in out  # no files (vLLM Recipes: no taxonomy.yaml)
    code, peak, out = _peak(["validate", "--from", source, "src"], tmp_path)
    assert code == 2 and "Traceback" not in out
    assert peak < floor + MARGIN_MB, f"{peak:.0f} MB against a floor of {floor:.0f} MB"
    assert len(out) < 400_000  # at most 1000 problems (old: 2.8 MB and more per file)
    if source == "aim-profiles":
        # 1,900 unknown engine args a file: 100 read, 100 reported per file, 1000 in all.
        assert "1901 engine args: more than aimc reads (100)" in out
        assert re.search(
            r"src/profiles/vllm-hostile-00000\.yaml: (error|warning): \.\.\. and \d+ more p", out
        )
        assert re.search(r"\nsrc: error: \.\.\. and \d+ more problems \(\d+ errors, \d+ warn", out)
    else:
        # 940 variants on 100 GPUs with two strategies: 1024 combinations tried a file.
        assert "more variant x GPU x strategy combinations than aimc reads" in out
    code, peak, out = _peak(["import", source, "src", "-o", "out", "--partial"], tmp_path)
    # Every configuration sets an unknown engine arg: with --partial each is left out
    # (what is written must compile), so nothing is left to write.
    assert code == 2 and "converts to an aimc recipe; nothing written" in out, out[-2000:]
    assert peak < floor + MARGIN_MB, (code, peak, floor, out[-2000:])
    assert len(out) < 600_000 and "... and" in out and not (tmp_path / "out").exists()


AIM_PROFILE = """\
aim_id: Qwen/Qwen3-8B
model_id: Qwen/Qwen3-8B
metadata:
  engine: vllm
  gpu: MI300X
  gpu_count: 1
  metric: latency
  precision: bf16
engine_args:
{args}{fields}"""


def test_problems_past_the_cap_of_a_file_are_counted_in_one_line(tmp_path: Path) -> None:
    """60 unknown engine args (errors) and 60 unknown fields after them (warnings): the
    first 100 by position are shown, the other 20 counted."""
    args = "".join(f"  unknown-flag-{i:02d}: 1\n" for i in range(60))
    fields = "".join(f"field_{i:02d}: 1\n" for i in range(60))
    folder = tmp_path / "aim-build" / "profiles"
    folder.mkdir(parents=True)
    (folder / "p.yaml").write_text(AIM_PROFILE.format(args=args, fields=fields))
    result = run_cli("validate", "--from", "aim-profiles", "aim-build", cwd=tmp_path)
    assert result.code == 2
    lines = [ln for ln in result.out.splitlines() if ln.startswith("aim-build/")]
    assert len(lines) == 101
    assert lines[-1] == (
        "aim-build/profiles/p.yaml: warning: ... and 20 more problems in this file (0 errors, "
        "20 warnings) not shown; aimc reports at most 100 per file"
    )
    assert sum("unknown vllm 0.32.0 engine arg" in ln for ln in lines) == 60
    assert sum("has no aimc equivalent" in ln for ln in lines) == 40
    assert "field 'field_39'" in result.out and "field_40" not in result.out
    # The same in JSON: one line for the 20.
    result = run_cli(
        "validate", "--from", "aim-profiles", "aim-build", "--format", "json", cwd=tmp_path
    )
    data = json.loads(result.out)["data"]
    assert [d["rule"] for d in data["diagnostics"]].count("interop/limit") == 1


def test_problems_past_the_total_cap_are_counted_in_one_last_line() -> None:
    from aimc.core.diagnostics import Diagnostic, sort_diagnostics
    from aimc.interop._collection import Collected

    found = [
        Diagnostic(f"f{f:02d}.yaml", i + 1, 1, f"m{i}", severity="warning" if i % 2 else "error")
        for f in range(30)
        for i in range(50)
    ]
    collected = Collected()
    collected += found + found[:10]  # a repeat is counted once
    shown = collected.sorted("collection")
    assert shown[:-1] == sort_diagnostics(found)[:1000]
    assert shown[-1] == Diagnostic(
        "collection",
        0,
        0,
        "... and 500 more problems (250 errors, 250 warnings) not shown; aimc reports at most "
        "1000 in all",
        rule="interop/limit",
    )
    few = Collected()
    few += found[:700] + found[:700]
    assert few.sorted("collection") == sort_diagnostics(found[:700])  # below the caps: all


def test_the_file_cap_keeps_the_shared_files_of_a_vllm_recipes_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut at the most files read, a checkout keeps its taxonomy and strategies (they sort
    after models/, and were cut first before)."""
    from aimc.interop import _collection, load

    bench = _bench()
    src = bench.vllm_collection(tmp_path / "recipes", 5)
    monkeypatch.setattr(_collection, "MAX_FILES", 4)
    tree = load("vllm-recipes", src)
    names = [display.rsplit("/", 2)[-2:] for _file, display in tree.files]
    assert names == [
        ["hostile", "m00000.yaml"],
        ["strategies", "single_node_tep.yaml"],
        ["strategies", "single_node_tp.yaml"],
        ["recipes", "taxonomy.yaml"],
    ]
    assert [d.message for d in tree.problems] == ["more than 4 files; read the first 4"]
