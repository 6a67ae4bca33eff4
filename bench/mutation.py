"""Mutation testing of aimc's trust-critical code with cosmic-ray (not part of the suite).

    .venv/bin/python bench/mutation.py [--only safety,write] [--limit N] [--json FILE]
    .venv/bin/python bench/mutation.py --survivors FILE --json FILE2   # after adding tests

For each target below, cosmic-ray's operators (``cosmic_ray.commands.init``) list every
mutation of the target's modules; only those inside the named functions are kept (``f``,
or ``f/if NAME`` for the ``if NAME:`` block of ``f``). Each kept mutant is applied to a
copy of the working tree (never to this checkout) and the target's tests run against it
(``cosmic_ray.mutating.mutate_and_test``, under ``nice -n 10``): a failing run kills the
mutant, a passing one lets it survive. Prints the score per target (killed / (killed +
survived)) and every survivor's diff; ``--json`` writes them too. Survivors and the
reasons they are left are in ``bench/mutation_survivors.md``; the scores go into the
security model (docs/security.md). Each target takes 4-8 minutes on two busy cores (about 550
mutants in all, 2-15 s of tests each); a rerun of the survivors, a few minutes.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Target:
    """Functions (per module) to mutate, and the tests that must catch each mutant."""

    functions: dict[str, tuple[str, ...]]
    tests: tuple[str, ...]


TARGETS = {
    "safety": Target(
        {
            "aimc/core/masking.py": ("mask",),
            "aimc/domain/engine_args.py": ("shown_set",),
            "aimc/core/safety.py": (
                "check_env",
                "shorten",
                "holds_secret",
                "parse_devices",
                "format_devices",
            ),
        },
        (
            "tests/test_safety.py",
            "tests/test_env_names.py::test_a_name_with_anything_after_a_valid_prefix_is_refused",
            "tests/test_env_names.py::test_name_length_bound",
            "tests/test_devices.py::test_device_ids_are_parsed_or_refused",
            "tests/test_devices.py::test_accepted_devices_stay_one_shell_word_and_yaml_strings",
            "tests/test_masking.py::test_a_token_is_masked_whatever_surrounds_it",
            "tests/test_masking.py::test_a_secret_smuggled_in_a_name_is_refused_and_not_echoed",
        ),
    ),
    "write": Target(
        {
            "aimc/core/ownership.py": (
                "read_manifest",
                "folder_manifest",
                "is_aimc_folder",
                "artifact_name_ok",
                "owned",
                "_owned_entries",
            ),
            "aimc/core/write.py": ("_ours", "_remove_ours", "_refuse_unowned"),
        },
        ("tests/test_write_ownership.py",),
    ),
    "runner": Target(
        {
            "aimc/core/records.py": ("validate_name",),
            "aimc/run/process.py": ("_proc_stat", "alive", "verify", "_works_in"),
            "aimc/run/runplan.py": ("_plan_problem",),
        },
        ("tests/test_runner_verify.py",),
    ),
    "reporters": Target(
        {
            "aimc/cli/report.py": ("print_error", "print_diagnostics"),
            "aimc/core/log.py": ("line",),
            "aimc/core/diagnostics.py": ("Diagnostic.__post_init__",),
        },
        (
            "tests/test_report.py",
            "tests/test_compile_check.py::test_the_check_diff_masks_a_token_in_an_edited_artifact",
        ),
    ),
    "k8s": Target(
        {
            "aimc/emit/k8s_pod.py": ("k8s_escape", "k8s_name", "server_env"),
            "aimc/emit/k8s_lws.py": ("lws_name", "leader_service_name"),
            "aimc/emit/k8s_download.py": ("download_container",),
            "aimc/emit/k8s.py": ("render_k8s",),
        },
        (
            "tests/test_env_names.py",
            "tests/test_lws_names.py",
            "tests/test_k8s.py",
            "-k",
            "k8s_name or lws_name or renderer or hostile or names or secret or args_and_env",
        ),
    ),
    "check": Target(
        {
            "aimc/core/write.py": ("stale_artifacts", "diff_artifacts"),
            "aimc/cli/compile.py": ("compile_/if check", "_annotate_drift"),
        },
        (
            "tests/test_compile_check.py",
            "tests/test_compile.py",
            "tests/test_json_output.py",
            "-k",
            "check or stale",
        ),
    ),
}


def _spans(source: str, names: tuple[str, ...]) -> list[tuple[int, int]]:
    """Line ranges (first, last) of the named functions (``Class.method`` too) of a
    module, or of the ``if NAME:`` block of one (``function/if NAME``), docstrings left
    out."""
    tree = ast.parse(source)
    defs: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defs[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    defs[f"{node.name}.{item.name}"] = item
    spans = []
    for name in names:
        function, _, block = name.partition("/if ")
        node = defs[function]
        if block:
            node = next(
                n for n in ast.walk(node) if isinstance(n, ast.If) and ast.unparse(n.test) == block
            )
        body = node.body  # type: ignore[attr-defined]
        first = body[0]
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
            and len(body) > 1
        ):
            first = body[1]
        spans.append((first.lineno, node.end_lineno))  # type: ignore[attr-defined]
    return spans


def _copy_tree(dest: Path) -> None:
    """The working tree's files (tracked and new, not ignored) copied to ``dest``."""
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in names:
        if not raw:
            continue
        name = raw.decode()
        src = ROOT / name
        if not src.is_file():
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / name)


def _test_command(target: Target) -> str:
    return shlex.join(
        ["nice", "-n", "10", sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly",
         "-p", "no:cacheprovider", *(t for t in target.tests if Path(t.split("::")[0]).exists()
                                     or not t.startswith("tests/"))]
    )  # fmt: skip


def _diff(mutation: Any) -> str:
    """The diff ``mutation`` makes (as ``mutate_and_test`` reports it), without applying it."""
    from cosmic_ray.mutating import _make_diff, mutate_code
    from cosmic_ray.plugins import get_operator

    source = Path(mutation.module_path).read_text()
    operator = get_operator(mutation.operator_name)(**mutation.operator_args)
    mutated = mutate_code(source, operator, mutation.occurrence)
    return "" if mutated is None else "\n".join(_make_diff(source, mutated, mutation.module_path))


def run_target(
    name: str,
    target: Target,
    limit: int | None,
    all_variants: bool,
    previous: dict[str, Any] | None = None,
) -> dict[str, object]:
    """Every kept mutant of ``target`` tested in the current folder (the copy); with
    ``previous`` (this target's result of an earlier run of the same code), only the
    mutants that survived it, added to what it killed."""
    from cosmic_ray.commands import init
    from cosmic_ray.mutating import mutate_and_test
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    command = _test_command(target)
    started = time.monotonic()
    baseline = subprocess.run(shlex.split(command), capture_output=True, text=True)
    took = time.monotonic() - started
    if baseline.returncode != 0:
        raise SystemExit(f"{name}: the tests fail without a mutation:\n{baseline.stdout[-3000:]}")
    timeout = 3 * took + 30
    with (
        tempfile.TemporaryDirectory() as tmp,
        use_db(Path(tmp, "s.sqlite"), WorkDB.Mode.create) as db,
    ):
        init([Path(module) for module in target.functions], db, {})
        spans = {
            module: _spans(Path(module).read_text(), functions)
            for module, functions in target.functions.items()
        }
        items = [
            item
            for item in db.work_items
            for m in item.mutations
            if any(a <= m.start_pos[0] <= b for a, b in spans[str(m.module_path)])
        ]
    if not all_variants:
        # One replacement per arithmetic site (cosmic-ray makes ten: + -> - * / // % ** >>
        # << | & ^); the others seldom say more and cost a test run each.
        seen: set[tuple[str, tuple[int, int]]] = set()
        kept = []
        for item in items:
            (m,) = item.mutations
            if m.operator_name.startswith("core/ReplaceBinaryOperator_"):
                if (str(m.module_path), m.start_pos) in seen:
                    continue
                seen.add((str(m.module_path), m.start_pos))
            kept.append(item)
        items = kept
    if limit is not None:
        items = items[:: max(1, len(items) // limit)][:limit]
    if previous is not None:
        alive = {s["diff"] for s in previous["survived"]}
        items = [item for item in items if _diff(item.mutations[0]) in alive]
    killed, survived, other = 0, [], 0
    print(f"{name}: {len(items)} mutants, tests {took:.1f} s each", flush=True)
    for number, item in enumerate(items, 1):
        result = mutate_and_test(item.mutations, command, timeout)
        if result.worker_outcome != WorkerOutcome.NORMAL:
            other += 1  # no mutation possible, or cosmic-ray failed: not counted
        elif result.test_outcome == TestOutcome.SURVIVED:
            (m,) = item.mutations
            print(f"  survived: {m.module_path}:{m.start_pos[0]} {m.operator_name}", flush=True)
            print(result.diff, flush=True)
            survived.append(
                {"module": str(m.module_path), "line": m.start_pos[0],
                 "operator": m.operator_name, "occurrence": m.occurrence, "diff": result.diff}
            )  # fmt: skip
        else:
            killed += 1
        if number % 20 == 0:
            print(f"  {number}/{len(items)}: {killed} killed, {len(survived)} survived", flush=True)
    if previous is not None:
        killed += int(previous["killed"])
        other += int(previous["not_run"])
    counted = killed + len(survived)
    return {
        "target": name,
        "mutants": counted,
        "killed": killed,
        "survived": survived,
        "not_run": other,
        "score": round(killed / counted, 3) if counted else None,
        "seconds": round(time.monotonic() - started),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated targets: {', '.join(TARGETS)} (all)")
    parser.add_argument("--limit", type=int, help="at most N mutants per target (a sample)")
    parser.add_argument(
        "--all-variants", action="store_true", help="every replacement of an arithmetic operator"
    )
    parser.add_argument(
        "--survivors",
        type=Path,
        help="a --json file of an earlier run of the same code: test only its survivors again "
        "(after tests were added), adding what it killed",
    )
    parser.add_argument("--json", type=Path, help="write the results (survivors too) here")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(TARGETS)
    unknown = [t for t in chosen if t not in TARGETS]
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {', '.join(TARGETS)}")
    results = []
    earlier = {}
    if args.survivors:
        earlier = {r["target"]: r for r in json.loads(args.survivors.read_text())}
    with tempfile.TemporaryDirectory(prefix="aimc-mutation-") as tmp:
        copy = Path(tmp)
        _copy_tree(copy)
        os.chdir(copy)
        # The copy's aimc comes first (before the editable install's finder), also in the
        # subprocesses the CLI tests start; its state and caches stay in the copy.
        os.environ["PYTHONPATH"] = str(copy)
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        for name in chosen:
            results.append(
                run_target(name, TARGETS[name], args.limit, args.all_variants, earlier.get(name))
            )
            if args.json:  # after each target: a run cut short keeps what it measured
                args.json.write_text(json.dumps(results, indent=2) + "\n")
    print("\n| target | mutants | killed | survived | score |")
    print("|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['target']} | {r['mutants']} | {r['killed']} | {len(r['survived'])} "  # type: ignore[arg-type]
            f"| {r['score']:.0%} |"
        )
    for r in results:
        for s in r["survived"]:  # type: ignore[attr-defined]
            print(f"\nsurvived ({r['target']}): {s['module']}:{s['line']} {s['operator']}")
            print(s["diff"])


if __name__ == "__main__":
    main()
