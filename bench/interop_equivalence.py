"""Equivalence of aimc's imports with the collections' own command generators (issue 25).

Usage::

    .venv/bin/python bench/interop_equivalence.py AIM_BUILD RECIPES [--aimc SRC] [--json FILE]

``AIM_BUILD`` is a checkout of amd-enterprise-ai/aim-build, ``RECIPES`` one of
vllm-project/recipes. Nothing of either is copied into aimc: their generators run from
the checkouts.

* AIM: for every model profile (``profiles/**``, not ``general/``), aim-build's own
  ``ProfileRegistry`` loads it and ``CommandGenerator.generate_execution_params`` gives the
  argv and env AIM launches; ``ProfileSelector.find_profile`` (``AIM_GPU_MODEL``,
  ``AIM_GPU_COUNT``, ``AIM_PRECISION`` set to the profile's, the rest at their defaults)
  says which profile AIM launches for that GPU, count and precision.
* vLLM Recipes: under node, the site's ``src/lib/command-synthesis.js``: every variant x
  single-node strategy x GPU its picker offers (the CommandBuilder's filters: a
  ``restricted`` GPU only when ``meta.hardware`` names it, ``listCompatibleHardware``,
  ``fitsSingleNode``, ``isStrategyReachable``, ``isStrategySupportedOnHardware``), and
  ``resolveCommand()``'s ``argv`` and ``env``.

aimc (this checkout, or the source tree ``--aimc SRC``, e.g. a worktree of an older
commit) imports each collection (``import --fix --partial`` when it has those options),
then ``show-config`` resolves each collection command's model x GPU x precision x GPU
count. Each command is classified:

* **not imported**: aimc has no configuration for it, or resolves to another one (AIM: a
  profile of the same slot AIM does not pick; vLLM Recipes: another variant);
* **refused**: ``show-config`` fails;
* per flag and variable, a difference is **managed** (what aimc always sets and
  documents: ``--host``, ``--port``, ``--served-model-name`` when the names agree,
  ``--dtype``, ``--max-model-len`` and ``--gpu-memory-utilization`` where the collection
  leaves them to vLLM, the GPU count), a **migration** (a row of
  ``aimc.interop._migrations.MIGRATIONS``, reported by ``--fix``) or a **divergence**.

The summary counts commands, imported, compiled, identical modulo managed flags, migrated
only, and diverging; ``--verbose`` lists each divergence. aimc runs with an empty model
cache and ``HF_HUB_OFFLINE=1`` (no facts from the hub) unless ``--online``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# --- the collections' own generators ------------------------------------------------------

_AIM = r"""
import dataclasses, json, logging, sys
from pathlib import Path
root = Path(sys.argv[1])
sys.path.insert(0, str(root / "src"))
logging.disable(logging.CRITICAL)
from aim_runtime.config import AIMConfig
from aim_runtime.command_generator import CommandGenerator
from aim_runtime.profile_registry import ProfileRegistry
from aim_runtime.profile_selector import ProfileSelector
from aim_runtime.profile_validator import ProfileValidator
import aim_runtime.profile_selector as ps
schemas = str(root / "schemas")
validator = ProfileValidator(schemas)
out = []
for path in sorted((root / "profiles").rglob("*.yaml")):
    if "/general/" in str(path):
        continue
    try:
        profile = ProfileRegistry._load_and_validate_profile(str(path), validator, 2)
    except Exception as exc:
        out.append({"file": str(path.relative_to(root)), "error": str(exc)[:200]})
        continue
    if profile is None or not profile.aim_id:
        continue
    meta = profile.metadata
    config = AIMConfig(aim_id=profile.aim_id, schema_search_path=schemas,
                       cache_path="/nonexistent-aim-cache", port=8000,
                       profile_base_path=str(root / "profiles"),
                       gpu_model=meta.gpu, gpu_count=int(meta.gpu_count),
                       precision=meta.precision)
    argv, env = CommandGenerator(config).generate_execution_params(profile)
    try:
        picked = ProfileSelector(config).find_profile().profile_handling.path
    except Exception:
        picked = None
    out.append({
        "file": str(path.relative_to(root)), "model": profile.aim_id,
        "repo": profile.model_id or profile.aim_id,
        "gpu": str(meta.gpu.value).lower(), "precision": str(meta.precision.value),
        "gpus": int(meta.gpu_count), "engine": str(meta.engine.value),
        "argv": [str(a) for a in argv], "env": {k: str(v) for k, v in env.items()},
        "aim_picks": picked == str(path),
        "id": path.stem,
    })
print(json.dumps(out))
"""

_SITE = r"""
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const m = await import(input.module);
const { taxonomy, strategies, recipes } = input;
const out = [];
for (const [file, recipe] of recipes) {
  if (!recipe || typeof recipe !== "object" || recipe.omni) continue;
  const declared = recipe.meta?.hardware || {};
  for (const [vkey, variant] of Object.entries(recipe.variants || {})) {
    const hws = m.listCompatibleHardware(taxonomy.hardware_profiles || {}, variant, recipe)
      .filter((id) => !(taxonomy.hardware_profiles[id].restricted && !(id in declared)));
    for (const hwId of hws) {
      const hw = taxonomy.hardware_profiles[hwId];
      if (!m.fitsSingleNode(hw, variant)) continue;
      const perNode = hw.gpu_count || 8;
      for (const s of m.effectiveCompatibleStrategies(recipe)) {
        const strat = strategies[s];
        if (!strat || strat.deploy_type !== "single_node") continue;
        if (!m.isStrategyReachable(recipe, s, strat.deploy_type, perNode, hwId)) continue;
        if (!m.isStrategySupportedOnHardware(recipe, s, hw, hwId)) continue;
        let r;
        try {
          r = m.resolveCommand(recipe, vkey, s, hwId, [], strategies, taxonomy);
        } catch (e) {
          out.push({ file, variant: vkey, strategy: s, hw: hwId, error: String(e).slice(0, 200) });
          continue;
        }
        out.push({ file, model: recipe.model?.model_id, variant: vkey, strategy: s, hw: hwId,
                   brand: hw.brand, precision: variant.precision, argv: r.argv, env: r.env });
      }
    }
  }
}
console.log(JSON.stringify(out));
"""


def aim_commands(root: Path) -> list[dict[str, Any]]:
    """What aim-build itself launches for each model profile (see the module doc)."""
    done = subprocess.run(
        [sys.executable, "-c", _AIM, str(root)], capture_output=True, text=True, check=True
    )
    return list(json.loads(done.stdout))


def site_commands(root: Path) -> list[dict[str, Any]]:
    """What the vLLM Recipes site offers (see the module doc), from its own JavaScript."""
    import yaml

    def load(path: Path) -> Any:
        try:
            return yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            return None

    strategies = {p.stem: load(p) for p in sorted((root / "strategies").glob("*.yaml"))}
    recipes = [
        [str(p.relative_to(root)), load(p)] for p in sorted((root / "models").rglob("*.yaml"))
    ]
    payload = {
        "module": (root / "src/lib/command-synthesis.js").resolve().as_uri(),
        "taxonomy": load(root / "taxonomy.yaml"),
        "strategies": strategies,
        "recipes": recipes,
    }
    done = subprocess.run(
        ["node", "--no-warnings", "--experimental-detect-module", "--input-type=module", "-e",
         _SITE.replace('require("fs")', '(await import("fs"))')],
        input=json.dumps(payload, default=str), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return list(json.loads(done.stdout))


# --- aimc ---------------------------------------------------------------------------------

_WORKER = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[5])
from tests.helpers.cli import run_cli  # the measured tree's own in-process runner
source, checkout, out, wanted = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
here = Path.cwd()
result = None
for flags in (["--fix", "--partial"], ["--partial"], []):
    result = run_cli("import", source, checkout, "-o", str(out), *flags, cwd=here)
    if "No such option" not in result.err:
        break
plans = {}
for n, key in enumerate(json.loads(Path(wanted).read_text())):
    model, hw, precision, gpus = key.split("|")
    build = out.parent / f"build-{source}" / str(n)
    got = run_cli("compile", model, gpus, "--target", hw, "--precision", precision,
        "--recipes", str(out), "--launcher", "process", "-o", str(build), cwd=here)
    if got.code:
        lines = (got.out + got.err).strip().splitlines() or [""]
        try:
            message = json.loads(lines[0])["message"]
        except Exception:
            message = lines[0]
        plans[key] = {"error": message[:300]}
    else:
        plans[key] = {"launch": (build / "launch.sh").read_text()}
print(json.dumps({"import": result.code, "plans": plans}))
"""


def aimc_plans(
    source: str, checkout: Path, keys: set[str], src: Path, work: Path, online: bool = False
) -> dict[str, Any]:
    """aimc (from ``src``) imports ``checkout`` and resolves each model|gpu|precision|gpus;
    facts of models aimc has no recipe for from the hub only when ``online``."""
    wanted = work / f"{source}-wanted.json"
    wanted.write_text(json.dumps(sorted(keys)))
    env = {**os.environ, "PYTHONPATH": str(src), "CACHE_DIR": str(work / "cache")}
    env.pop("AIMC_RECIPES", None)
    if not online:  # the counts of the catalog and an empty model cache, whatever the network
        env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", _WORKER, source, str(checkout), str(work / f"out-{source}"),
         str(wanted), str(src)],
        capture_output=True, text=True, env=env, cwd=work, check=False,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"aimc from {src} failed on {source}:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- comparison ---------------------------------------------------------------------------

#: Flags aimc sets itself (docs/interop.md, "The round trip").
ALWAYS = {"host", "port", "model", "download-dir", "tensor-parallel-size", "served-model-name"}
#: Flags aimc adds where the collection leaves them to vLLM (documented as managed).
ADDED = {"dtype", "max-model-len", "gpu-memory-utilization"}
#: Flags that say what vLLM does without them (docs/interop.md: nothing is imported).
DEFAULTS = {"no-trust-remote-code"}
#: Variables aimc's launch.sh sets for its model cache.
MANAGED_ENV = {"CACHE_DIR", "HF_HUB_CACHE"}


def _value(raw: Any) -> str:
    if raw is True or raw is None:
        return ""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return raw
    return json.dumps(raw, sort_keys=True) if not isinstance(raw, str) else raw


def parse_argv(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """``--flag value`` words as {flag: value} (``''``: a bare flag; several values joined
    by a space) and the positional words."""
    flags: dict[str, str] = {}
    positional: list[str] = []
    name: str | None = None
    dotted: dict[str, Any] = {}
    for word in words:
        head = word.split("=", 1)[0]
        if "=" in word and head.split(".")[0] in ("-cc", "--compilation-config") and "." in head:
            # vLLM's FlexibleArgumentParser: one JSON --compilation-config, passed last
            node = dotted
            keys = head.split(".")[1:]
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            try:
                node[keys[-1]] = json.loads(word.split("=", 1)[1])
            except ValueError:
                node[keys[-1]] = word.split("=", 1)[1]
            name = None
        elif word.startswith("-") and not word.startswith("--") and len(word) > 2:
            flags[word] = ""  # a short option (-cc.x=y): a flag of its own
            name = None
        elif word.startswith("--"):
            key, eq, val = word[2:].partition("=")
            name = key.replace("_", "-")
            flags[name] = _value(val) if eq else ""
            if eq:
                name = None
        elif name is not None:
            flags[name] = (flags[name] + " " + word).strip() if flags[name] else _value(word)
        else:
            positional.append(word)
    if dotted:
        flags["compilation-config"] = json.dumps(dotted, sort_keys=True)
    return flags, positional


def launched(script: str) -> dict[str, Any]:
    """What aimc's compiled ``launch.sh`` runs: its configuration, exported variables
    (but those aimc sets for its cache), the model, served names and flags."""
    import shlex

    configuration, env, words = "", {}, []
    for line in script.replace("\\\n", " ").splitlines():
        if line.startswith("# configuration: "):
            configuration = line.split(": ")[1].split(":")[0]
        elif line.startswith("export "):
            name, _, value = line[7:].partition("=")
            if name not in MANAGED_ENV:
                env[name] = shlex.split(value)[0] if value else ""
        elif line.startswith("exec "):
            words = shlex.split(line)
    module = words.index("-m") if "-m" in words else 0
    flags, _ = parse_argv(words[module + 2 :])
    return {
        "configuration": configuration,
        "env": env,
        "model": flags.pop("model", ""),
        "served": flags.pop("served-model-name", "").split(),
        "flags": flags,
    }


def _migrations() -> tuple[set[str], dict[str, str]]:
    sys.path.insert(0, str(ROOT))
    from aimc.interop._migrations import MIGRATIONS

    removed = {f"{m.kind}:{m.name}" for m in MIGRATIONS if m.new is None}
    renamed = {f"{m.kind}:{m.name}": f"{m.kind}:{m.new}" for m in MIGRATIONS if m.new}
    return removed, renamed


def compare(row: dict[str, Any], ours: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """(managed, migrated, diverging) differences of one collection command from what
    aimc's ``launch.sh`` runs."""
    removed, renamed = _migrations()
    theirs, env, mine_flags, ours_env = row["flags"], row["env"], ours["flags"], ours["env"]
    managed: list[str] = []
    migrated: list[str] = []
    diverging: list[str] = []
    for name in sorted(set(theirs) | set(mine_flags)):
        mine, their = mine_flags.get(name), theirs.get(name)
        if mine == their or name in ALWAYS:
            continue
        if f"arg:{name}" in removed and mine is None:
            migrated.append(f"--{name}")
        elif (name in ADDED and their is None) or (name in DEFAULTS and mine is None):
            managed.append(f"--{name}")
        else:
            diverging.append(f"--{name}: theirs {their!r}, aimc {mine!r}")
    for name in sorted(set(env) | set(ours_env)):
        mine, their = ours_env.get(name), env.get(name)
        if mine == their:
            continue
        new = renamed.get(f"env:{name}", "")[4:]
        if their is not None and mine is None and f"env:{name}" in removed:
            migrated.append(name)
        elif their is not None and mine is None and new and ours_env.get(new) == their:
            migrated.append(f"{name} -> {new}")
        elif (
            mine is not None
            and their is None
            and any(
                renamed.get(f"env:{old}") == f"env:{name}" and env.get(old) == mine for old in env
            )
        ):
            continue  # the new name of a renamed one, counted above
        else:
            diverging.append(f"{name}: theirs {their!r}, aimc {mine!r}")
    if sorted(row["served"]) != sorted(ours["served"]):
        diverging.append(f"served names: theirs {row['served']}, aimc {ours['served']}")
    if ours["model"] != row["repo"]:
        diverging.append(f"model: theirs {row['repo']}, aimc {ours['model']}")
    return managed, migrated, diverging


def _aim_rows(commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    precisions = {"fp4": "mxfp4"}
    for c in commands:
        if "error" in c:
            rows.append({"name": c["file"], "error": c["error"]})
            continue
        words = c["argv"]
        module = words.index("-m") if "-m" in words else 0
        flags, _ = parse_argv(words[module + 2 :])
        served = flags.pop("served-model-name", "").split()
        precision = precisions.get(c["precision"], c["precision"])
        key = f"{c['model']}|{c['gpu']}|{precision}|{c['gpus']}"
        rows.append({
            "name": c["file"], "key": key, "flags": flags, "env": c["env"], "served": served,
            "repo": c["repo"], "expect": c["id"].lower(), "default": c["aim_picks"],
            "aim_picks": c["aim_picks"],
        })  # fmt: skip
    return rows


def _site_rows(commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for c in commands:
        name = f"{c['file']} {c['variant']} {c['strategy']} {c['hw']}"
        if "error" in c:
            rows.append({"name": name, "error": c["error"]})
            continue
        flags, positional = parse_argv(c["argv"][2:])
        repo = positional[0] if positional else c["model"]
        served = flags.pop("served-model-name", "").split() or [repo]
        tp = flags.get("tensor-parallel-size", "1")
        hw = c["hw"].lower().replace("_", "-")
        key = f"{c['model']}|{hw}|{c['precision']}|{tp}"
        short = c["strategy"].replace("single_node_", "")
        rows.append({
            "name": name, "key": key, "flags": flags, "env": {k: str(v) for k, v in
            c["env"].items()}, "served": served, "repo": repo,
            "expect": f"{c['variant']}-{short}".lower(), "default": True,
        })  # fmt: skip
    return rows


def classify(rows: list[dict[str, Any]], plans: dict[str, Any]) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    kinds: Counter[str] = Counter()  # managed flags and migrations, by name
    details: list[str] = []
    for row in rows:
        counts["commands"] += 1
        if "error" in row:
            counts["generator errors"] += 1
            continue
        counts["AIM's own pick" if "aim_picks" in row else "offered by the site"] += bool(
            row["default"]
        )
        plan = plans.get(row["key"], {"error": "not asked"})
        if "error" in plan:
            counts["refused or not imported"] += 1
            details.append(f"{row['name']}: refused: {plan['error']}")
            continue
        counts["compiled"] += 1
        ours = launched(plan["launch"])
        if not ours["configuration"].startswith(row["expect"][:60]):
            counts["served by another configuration"] += 1
            if row["default"] and "aim_picks" in row:
                details.append(f"{row['name']}: AIM's pick, aimc serves {ours['configuration']}")
            continue
        counts["imported"] += 1
        managed, migrated, diverging = compare(row, ours)
        kinds.update(managed)
        kinds.update(f"migrated {m}" for m in migrated)
        if diverging:
            counts["diverging"] += 1
            details += [f"{row['name']}: {d}" for d in diverging]
        elif migrated:
            counts["identical modulo managed flags and migrations"] += 1
        else:
            counts["identical modulo managed flags"] += 1
    return {"counts": dict(counts), "managed and migrated": dict(kinds), "details": details}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("aim_build", type=Path)
    parser.add_argument("recipes", type=Path)
    parser.add_argument("--aimc", type=Path, default=ROOT, help="aimc source tree to measure")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--verbose", action="store_true", help="list every divergence")
    parser.add_argument(
        "--online",
        action="store_true",
        help="let aimc ask the hub for the facts of models it has no recipe for (default: "
        "HF_HUB_OFFLINE=1, the catalog and an empty model cache only)",
    )
    ns = parser.parse_args()
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="aimc-equivalence-") as tmp:
        work = Path(tmp)
        for source, root, rows in (
            ("aim-profiles", ns.aim_build, _aim_rows(aim_commands(ns.aim_build.resolve()))),
            ("vllm-recipes", ns.recipes, _site_rows(site_commands(ns.recipes.resolve()))),
        ):
            keys = {r["key"] for r in rows if "key" in r}
            found = aimc_plans(source, root.resolve(), keys, ns.aimc.resolve(), work, ns.online)
            report[source] = classify(rows, found["plans"])
            report[source]["import exit code"] = found["import"]
    for source, result in report.items():
        print(f"{source} (import exit {result['import exit code']}):")
        for name, count in result["counts"].items():
            print(f"  {name}: {count}")
        print(
            "  managed/migrated: "
            + ", ".join(f"{k} x{v}" for k, v in sorted(result["managed and migrated"].items()))
        )
        if ns.verbose:
            for line in result["details"]:
                print(f"    {line}")
    if ns.json:
        ns.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
