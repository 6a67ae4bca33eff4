"""Interop imports that compile (issue 25): what would keep an imported recipe from
compiling is reported at the foreign line (exit 2, nothing written), ``--fix`` applies
the known migrations to the pinned vLLM (each reported, ``validate --from --fix`` as a
diff), a configuration that cannot run on its GPU is left out without poisoning the rest,
and the flags the collections set are served as they serve them.

The collections are written by the tests (``tests/helpers/interop.py``), in each format's
field names. What the pinned vLLM reads comes from its vocabulary
(``aimc/backends/vllm.json``, generated from vLLM 0.32.0), not from the migration table.
"""

from __future__ import annotations

import itertools
import json
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from tests.helpers.interop import (
    AIM_DTYPE_AUTO,
    AIM_GPT_OSS,
    AIM_STALE,
    VR_STALE,
    VR_STRATEGY_TP,
    VR_TAXONOMY,
    aim_clean,
    aim_stale,
    line_of,
    vllm_clean,
    vllm_stale,
    write,
)

STALE_AIM = "aim-build/profiles/Qwen/Qwen3-32B/vllm-mi300x-fp8-tp1-latency.yaml"
STALE_VR = "recipes/models/Qwen/Qwen3-32B.yaml"


def _vocabulary() -> Any:
    from aimc.backends import vocabulary

    return vocabulary("vllm")


def _launch_words(build: Path) -> list[str]:
    return shlex.split((build / "launch.sh").read_text().replace("\\\n", " "), comments=True)


def compile_all(out: Path, build: Path) -> list[list[str]]:
    """``aim-engine compile`` of every configuration x hardware x precision x GPU count
    of every recipe in ``out``: each must succeed; the words of each launch.sh."""
    launched = []
    for path in sorted((out / "models").rglob("*.yaml")):
        recipe = yaml.safe_load(path.read_text())
        for conf in recipe["configurations"]:
            for hw, precision, gpus in itertools.product(
                conf["hardware"], conf["precision"], conf["gpus"]
            ):
                target = build / f"{conf['id']}-{hw}-{precision}-{gpus}"
                result = run_cli(
                    "compile", recipe["model"]["id"], str(gpus), "--target", hw,
                    "--precision", precision, "--recipes", str(out), "-o", str(target),
                    "--launcher", "process",
                )  # fmt: skip
                assert result.code == 0, (recipe["model"]["id"], conf["id"], hw, result.err)
                launched.append(_launch_words(target))
    assert launched
    return launched


# --- without --fix: reported at the line, nothing written ---------------------------------


def test_stale_settings_are_errors_at_their_lines_and_nothing_is_written(tmp_path: Path) -> None:
    aim_stale(tmp_path / "aim-build")
    out = tmp_path / "out"
    result = run_cli("import", "aim-profiles", "aim-build", "-o", "out", cwd=tmp_path)
    assert result.code == 2 and not out.exists(), result.err
    err = result.err
    vocab = _vocabulary()
    for needle, name in (
        ("max-seq-len-to-capture", "max-seq-len-to-capture"),
        ("swap_space", "swap-space"),
    ):
        assert name not in vocab.flags  # gone from vLLM 0.32.0
        at = f"{STALE_AIM}:{line_of(AIM_STALE, needle)}:3: error: unknown vllm 0.32.0 engine arg"
        assert f"{at} '{name}'" in err
    for name in ("VLLM_USE_AITER_TRITON_ROPE", "VLLM_V1_USE_PREFILL_DECODE_ATTENTION"):
        assert name not in vocab.env
        assert f"{STALE_AIM}:{line_of(AIM_STALE, name)}:3: error: unknown vllm" in err
    assert f"{STALE_AIM}:{line_of(AIM_STALE, 'VLLM_USE_V1:')}:3: error: 'VLLM_USE_V1'" in err
    # Each says what --fix does, with its source.
    assert "hint: import --fix renames it to VLLM_ROCM_USE_AITER_TRITON_ROPE" in err
    assert "import --fix drops it: '--swap-space' was removed" in err
    assert "vllm-project/vllm#36216" in err and "--fix" in err


def test_a_gpu_that_cannot_run_a_configuration_never_poisons_the_others(tmp_path: Path) -> None:
    """gpt-oss-20b mxfp4 on MI250X beside MI300X and MI325X (failed before: all three
    imported, then every configuration of the recipe refused, MI300X included)."""
    src = tmp_path / "aim-build"
    g = "profiles/openai/gpt-oss-20b"
    write(
        src,
        {
            f"{g}/vllm-{gpu.lower()}-fp4-tp1-latency.yaml": AIM_GPT_OSS.format(gpu=gpu)
            for gpu in ("MI300X", "MI325X", "MI250X")
        },
    )
    hardware = yaml.safe_load(Path("recipes/hardware/mi250x.yaml").read_text())
    assert "mxfp4" not in hardware["precisions"]  # aimc's profile of gfx90a
    result = run_cli("import", "aim-profiles", "aim-build", "-o", "out", cwd=tmp_path)
    assert result.code == 0, result.err
    mi250x = f"{g}/vllm-mi250x-fp4-tp1-latency.yaml"
    where = f"aim-build/{mi250x}:{line_of(AIM_GPT_OSS, 'gpu:')}:8: warning: mi250x (gfx90a)"
    assert f"{where} does not support precision 'mxfp4'" in result.err
    assert "is not imported for mi250x" in result.err
    recipe = yaml.safe_load((tmp_path / "out/models/openai/gpt-oss-20b.yaml").read_text())
    assert sorted(h for c in recipe["configurations"] for h in c["hardware"]) == [
        "mi300x",
        "mi325x",
    ]
    assert sorted(p.name for p in (tmp_path / "out/hardware").iterdir()) == [
        "mi300x.yaml",
        "mi325x.yaml",
    ]
    compile_all(tmp_path / "out", tmp_path / "build")


# --- --fix --------------------------------------------------------------------------------


def test_fix_migrates_each_stale_setting_and_every_recipe_compiles(tmp_path: Path) -> None:
    aim_stale(tmp_path / "aim-build")
    result = run_cli("import", "aim-profiles", "aim-build", "-o", "out", "--fix", cwd=tmp_path)
    assert result.code == 0, result.err
    err = result.err
    at = lambda needle: f"{STALE_AIM}:{line_of(AIM_STALE, needle)}:3: warning: "  # noqa: E731
    assert f"{at('swap_space')}'--swap-space' was removed before vllm 0.32" in err
    assert f"{at('max-seq-len-to-capture')}'--max-seq-len-to-capture' was removed" in err
    assert f"{at('VLLM_USE_AITER_TRITON_ROPE')}'VLLM_USE_AITER_TRITON_ROPE' is " in err
    assert "renamed to VLLM_ROCM_USE_AITER_TRITON_ROPE" in err
    assert f"{at('VLLM_V1_USE_PREFILL')}'VLLM_V1_USE_PREFILL_DECODE_ATTENTION' was" in err
    assert f"{at('VLLM_USE_V1:')}'VLLM_USE_V1' was removed" in err
    launched = compile_all(tmp_path / "out", tmp_path / "build")
    words = {w for argv in launched for w in argv}
    vocab = _vocabulary()
    assert "VLLM_ROCM_USE_AITER_TRITON_ROPE" in vocab.env  # what vLLM 0.32.0 reads
    assert "VLLM_ROCM_USE_AITER_TRITON_ROPE=1" in words
    assert not {"--swap-space", "--max-seq-len-to-capture"} & words
    assert not any(w.startswith(("VLLM_USE_V1=", "VLLM_USE_AITER_", "VLLM_V1_")) for w in words)
    assert "HSA_NO_SCRATCH_RECLAIM=1" in words  # the rest as the profile sets it


def test_fix_on_vllm_recipes_and_the_site_flags_kept(tmp_path: Path) -> None:
    """Stale base args, variant args and override env; ``--trust-remote-code``,
    ``--quantization awq`` and ``--dtype auto`` kept (failed before: dropped with a
    warning that said aimc sets them); ``--max-model-len 32768`` an integer (failed
    before: the string "32768", a schema error)."""
    vllm_stale(tmp_path / "recipes")
    plain = run_cli("import", "vllm-recipes", "recipes", "-o", "out", cwd=tmp_path)
    assert plain.code == 2 and not (tmp_path / "out").exists()
    assert "'--swap-space' was removed" in plain.err and "schema" not in plain.err
    result = run_cli("import", "vllm-recipes", "recipes", "-o", "out", "--fix", cwd=tmp_path)
    assert result.code == 0, result.err
    at = lambda needle: f"{STALE_VR}:{line_of(VR_STALE, needle)}:"  # noqa: E731
    assert f"{at('--swap-space')}7: warning: '--swap-space' was removed" in result.err
    assert f"{at('--max-seq-len-to-capture')}9: warning: '--max-seq-len-to-capture'" in result.err
    assert f"{at('VLLM_USE_FLASHINFER_MOE_FP8')}7: warning:" in result.err
    assert "is set by aimc" not in result.err
    recipe = yaml.safe_load((tmp_path / "out/models/Qwen/Qwen3-32B.yaml").read_text())
    assert recipe["defaults"]["context_length"] == 32768
    assert recipe["model"]["trust_remote_code"] is True
    assert recipe["weights"]["bf16"] == {"repo": "Qwen/Qwen3-32B", "dtype": "auto"}
    int4 = {"repo": "Qwen/Qwen3-32B-AWQ", "quantization": "awq"}
    awq = [c for c in recipe["configurations"] if c["precision"] == ["int4"]]
    assert awq and all(c.get("weights", recipe["weights"])["int4"] == int4 for c in awq)
    for argv in compile_all(tmp_path / "out", tmp_path / "build"):
        assert "--trust-remote-code" in argv
        assert argv[argv.index("--max-model-len") + 1] == "32768"
        served = argv[argv.index("--served-model-name") + 1]
        if "--quantization" in argv:  # the AWQ variant: its checkpoint, served as its repo
            assert argv[argv.index("--quantization") + 1] == "awq"
            assert served == "Qwen/Qwen3-32B-AWQ"
        else:  # bf16: the checkpoint's own dtype, as the site's command leaves it
            assert argv[argv.index("--dtype") + 1] == "auto" and served == "Qwen/Qwen3-32B"


def test_validate_fix_prints_a_diff_that_makes_the_collection_clean(tmp_path: Path) -> None:
    aim_stale(tmp_path / "aim-build")
    vllm_stale(tmp_path / "recipes")
    for source, folder in (("aim-profiles", "aim-build"), ("vllm-recipes", "recipes")):
        before = {p: p.read_bytes() for p in tmp_path.rglob("*.yaml")}
        result = run_cli("validate", "--from", source, folder, "--fix", cwd=tmp_path)
        assert result.code == 0, result.out  # what is left after --fix: no error
        diff = result.out[: result.out.index("\n" + folder + "/") + 1]
        assert diff.startswith(f"--- a/{folder}/") and "\n+++ b/" in diff
        assert {p: p.read_bytes() for p in tmp_path.rglob("*.yaml")} == before  # a dry run
        patch = tmp_path / f"{source}.diff"
        patch.write_text(diff)
        applied = subprocess.run(
            ["git", "apply", "--verbose", str(patch)], cwd=tmp_path, capture_output=True
        )
        assert applied.returncode == 0, applied.stderr
        again = run_cli("validate", "--from", source, folder, "--fix", cwd=tmp_path)
        assert again.code == 0 and again.out.startswith("# nothing to migrate"), again.out
    text = (tmp_path / STALE_AIM).read_text()
    assert "VLLM_ROCM_USE_AITER_TRITON_ROPE: '1'" in text and "swap_space" not in text
    text = (tmp_path / STALE_VR).read_text()
    assert "--swap-space" not in text and '"16"' not in text and "seq-len-to" not in text
    assert '"--max-model-len"\n    - "32768"' in text  # a flag's value goes only with it
    plain = run_cli("validate", "--from", "vllm-recipes", "recipes", cwd=tmp_path)
    assert plain.code == 0, plain.out


def test_validate_fix_needs_from(tmp_path: Path) -> None:
    result = run_cli("validate", "--fix", "recipes")
    assert result.code == 2 and "--fix applies to --from" in result.err
    assert "Traceback" not in result.err


# --- what the collections launch, kept -----------------------------------------------------


def test_dtype_auto_stays_auto_and_aim_serves_both_names(tmp_path: Path) -> None:
    """AIM's ``dtype: auto`` on an fp16 profile (failed before: ``--dtype float16``); an
    fp8 checkpoint served under [model_id, aim_id] as AIM's CommandGenerator does (failed
    before: the aim_id alone)."""
    aim_stale(tmp_path / "aim-build")
    assert yaml.safe_load(AIM_DTYPE_AUTO)["engine_args"]["dtype"] == "auto"
    result = run_cli("import", "aim-profiles", "aim-build", "-o", "out", "--fix", cwd=tmp_path)
    assert result.code == 0, result.err
    for precision, gpus in (("fp16", "2"), ("fp8", "1")):
        build = tmp_path / f"build-{precision}"
        result = run_cli(
            "compile", "Qwen/Qwen3-32B", gpus, "--target", "mi300x", "--precision", precision,
            "--recipes", "out", "-o", str(build), "--launcher", "process", cwd=tmp_path,
        )  # fmt: skip
        assert result.code == 0, result.err
        argv = _launch_words(build)
        rest = argv[argv.index("--served-model-name") + 1 :]
        names = list(itertools.takewhile(lambda w: not w.startswith("--"), rest))
        if precision == "fp16":
            assert argv[argv.index("--dtype") + 1] == "auto"
            assert names == ["Qwen/Qwen3-32B"]
        else:
            assert "--dtype" not in argv
            assert names == ["Qwen/Qwen3-32B-FP8", "Qwen/Qwen3-32B"]


def test_meta_hardware_excludes_unsupported_and_is_no_allowlist(tmp_path: Path) -> None:
    """As the site's picker: every taxonomy GPU but the ones marked ``unsupported``, a
    restricted one only when named (failed before: only the GPUs named, so h100, marked
    unsupported, was the one imported)."""
    vllm_stale(tmp_path / "recipes")
    assert "restricted: true" in VR_TAXONOMY.split("b200:")[1].split("trillium")[0]
    result = run_cli("import", "vllm-recipes", "recipes", "-o", "out", "--fix", cwd=tmp_path)
    assert result.code == 0, result.err
    recipe = yaml.safe_load((tmp_path / "out/models/Qwen/Qwen3-32B.yaml").read_text())
    offered = {h for c in recipe["configurations"] for h in c["hardware"]}
    assert offered == {"mi300x", "b200"}  # not h100 (unsupported), b200 named though restricted
    assert "h100" not in result.err and "trillium" not in result.err  # not offered: no word


def test_no_variant_converts_says_why_per_variant(tmp_path: Path) -> None:
    """A model file for a CPU only (Qwen3-8B on the site lists xeon6) imports on the GPUs
    the site offers too; one whose variants all fail says why for each."""
    xeon = VR_TAXONOMY.replace(
        "tasks:", "  xeon6: {brand: Intel, generation: cpu, gpu_count: 1, vram_gb: 512,\n"
        "          restricted: true}\ntasks:"
    )  # fmt: skip
    model = """\
meta:
  hardware: {xeon6: verified}
model:
  model_id: "Qwen/Qwen3-32B"
variants:
  default: {precision: bf16, vram_minimum_gb: 100}
  fp4: {precision: mxfp8, vram_minimum_gb: 30}
"""
    src = write(
        tmp_path / "recipes",
        {
            "taxonomy.yaml": xeon,
            "strategies/single_node_tp.yaml": VR_STRATEGY_TP,
            "models/Qwen/Qwen3-32B.yaml": model,
        },
    )
    result = run_cli("validate", "--from", "vllm-recipes", str(src), "--format", "json")
    data = json.loads(result.out)["data"]
    messages = [d["message"] for d in data["diagnostics"]]
    assert not any("no variant" in m for m in messages), messages
    assert any("'xeon6': Intel cpu is not a GPU aimc targets" in m for m in messages)
    only_fp4 = model.replace("  default: {precision: bf16, vram_minimum_gb: 100}\n", "")
    (src / "models/Qwen/Qwen3-32B.yaml").write_text(only_fp4)
    result = run_cli("validate", "--from", "vllm-recipes", str(src), "--format", "json")
    messages = [d["message"] for d in json.loads(result.out)["data"]["diagnostics"]]
    (why,) = [m for m in messages if "no variant" in m]
    assert "(fp4: precision 'mxfp8' has no aimc equivalent)" in why


def test_dir_may_be_the_checkout_or_its_own_folder(tmp_path: Path) -> None:
    aim_clean(tmp_path / "aim-build")
    vllm_clean(tmp_path / "recipes")
    for source, root, folder in (
        ("aim-profiles", "aim-build", "profiles"),
        ("vllm-recipes", "recipes", "models"),
    ):
        outputs = []
        for dir_ in (root, f"{root}/{folder}"):
            out = tmp_path / "out" / dir_.replace("/", "-")
            result = run_cli("import", source, dir_, "-o", str(out), cwd=tmp_path)
            assert result.code == 0, (dir_, result.err)
            outputs.append(
                {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
            )
            checked = run_cli("validate", "--from", source, dir_, "--format", "json", cwd=tmp_path)
            assert json.loads(checked.out)["data"]["files"] > 1, (dir_, checked.out)
        assert outputs[0] == outputs[1] and outputs[0]  # the same recipes either way
    shutil.rmtree(tmp_path / "out")


# --- hostile input: every value the import now writes --------------------------------------

_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=30)
_CATALOG: Any = None


def _catalog() -> Any:
    global _CATALOG
    if _CATALOG is None:
        from aimc.check.catalog import Catalog

        _CATALOG = Catalog.default()
    return _CATALOG


def _imported(source: str, root: Path) -> dict[str, str]:
    """The files ``import --fix --partial`` writes of the checkout at ``root`` (what
    compiles; a refused value is left out)."""
    from aimc import __version__, interop

    conversion = interop.convert(source, root, _catalog(), fix=True)
    interop.check(conversion, _catalog(), partial=True, claims=False)
    if not conversion.recipes:
        return {}
    return interop.render(conversion, source, __version__)


def _compiles_to_words(files: dict[str, str], tmp: Path) -> list[list[str]]:
    """Every recipe of ``files`` (schema-valid) compiled, as launch.sh words."""
    from aimc.core.loader import load_document
    from aimc.domain.schema import check_schema

    out = tmp / "out"
    for name, text in files.items():
        assert ".." not in name.split("/") and not name.startswith("/")
        if name.endswith(".yaml"):
            assert not check_schema(load_document(text.encode(), name)), name
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    return compile_all(out, tmp / "build")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    repo=st.one_of(
        st.sampled_from(["Qwen/Qwen3-32B-FP8", "Qwen/Qwen3-32B", "org.x/a-b_c.9"]),
        st.sampled_from(["a/b c", "x/$(id)", "a/b;c", "-x/y", "a/b/c"]),
        _TEXT,
    ),
    context=st.one_of(_TEXT, st.sampled_from(["32768", "32k", "32K", "auto", "-1", "1.5K"])),
    quantization=st.one_of(_TEXT, st.sampled_from(["fp8", "awq", "$(id)", "a b", "x\ny"])),
    dtype=st.one_of(_TEXT, st.sampled_from(["auto", "bfloat16", "float16", "'auto'"])),
    value=st.one_of(_TEXT, st.sampled_from(["1", "$(touch x)", "a'b", "`id`"])),
)
def test_hostile_values_are_refused_or_written_exactly(
    tmp_path_factory: Any, repo: str, context: str, quantization: str, dtype: str, value: str
) -> None:
    """What the import now writes (a variant's repo as its served name, the context of
    ``--max-model-len``, ``--quantization`` and ``--dtype`` in the weights, a renamed
    variable's value) is refused or kept as the collection wrote it, and compiles to one
    shell word each."""
    tmp = tmp_path_factory.mktemp("hostile")
    model = {
        "meta": {"hardware": {"mi300x": "verified"}},
        "model": {
            "model_id": "Qwen/Qwen3-32B",
            "base_args": ["--max-model-len", context, "--dtype", dtype],
        },
        "variants": {
            "fp8": {
                "precision": "fp8",
                "model_id": repo,
                "tp": 1,
                "extra_args": ["--quantization", quantization],
                "extra_env": {"VLLM_USE_AITER_TRITON_ROPE": value},
            }
        },
    }
    files = {
        "taxonomy.yaml": VR_TAXONOMY,
        "strategies/single_node_tp.yaml": VR_STRATEGY_TP,
        "models/Qwen/Qwen3-32B.yaml": json.dumps(model, ensure_ascii=False),
    }
    try:
        written = _imported("vllm-recipes", write(tmp / "recipes", files))
    except UnicodeEncodeError:  # a lone surrogate: not a file anyone can write
        return
    event("refused" if not written else "imported")
    if not written:
        return
    recipe = yaml.safe_load(written["models/Qwen/Qwen3-32B.yaml"])
    (conf,) = recipe["configurations"]  # one, on every GPU the site offers
    repo = repo or "Qwen/Qwen3-32B"  # the site's: a variant without one is the model's
    fp8 = conf.get("weights", recipe["weights"])["fp8"]
    assert fp8["repo"] == repo and conf.get("served_model_name", repo) == repo
    assert fp8.get("quantization", quantization) == quantization
    # fp8: auto is vLLM's default; bfloat16 and float16 are the dtypes it runs fp8 in.
    assert fp8.get("dtype") == (dtype if dtype in ("bfloat16", "float16") else None)
    limit = recipe["defaults"]["context_length"]
    assert isinstance(limit, int) and limit > 0
    if context.isascii() and context.isdigit() and 0 < int(context) <= limit:
        assert limit == int(context)
    env = conf.get("env", {})
    assert "VLLM_USE_AITER_TRITON_ROPE" not in env
    assert env.get("VLLM_ROCM_USE_AITER_TRITON_ROPE", value) == value
    for argv in _compiles_to_words(written, tmp):
        assert argv[argv.index("--served-model-name") + 1] == repo
        if "quantization" in fp8:
            assert argv[argv.index("--quantization") + 1] == quantization
        assert (
            argv[argv.index("--dtype") + 1] == fp8["dtype"]
            if "dtype" in fp8
            else ("--dtype" not in argv)
        )
        if "VLLM_ROCM_USE_AITER_TRITON_ROPE" in env:
            assert f"VLLM_ROCM_USE_AITER_TRITON_ROPE={value}" in argv


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    repo=st.one_of(
        st.sampled_from(["Qwen/Qwen3-32B-FP8", "Qwen/Qwen3-32B", "org.x/a-b_c.9"]),
        st.sampled_from(["-x/y", "a/b c", "a/$(id)", "../../etc"]),
        _TEXT,
    ),
    dtype=st.one_of(_TEXT, st.sampled_from(["auto", "float16", "bfloat16", None])),
)
def test_hostile_aim_names_and_dtypes_are_refused_or_written_exactly(
    tmp_path_factory: Any, repo: str, dtype: str | None
) -> None:
    """An AIM profile's model_id served beside its aim_id, its dtype left to the
    checkpoint: refused, or written as the profile says and one shell word each."""
    tmp = tmp_path_factory.mktemp("hostile-aim")
    profile = yaml.safe_load(AIM_DTYPE_AUTO)
    profile["model_id"] = repo
    profile["engine_args"]["dtype"] = dtype
    files = {"profiles/Qwen/Qwen3-32B/p.yaml": json.dumps(profile, ensure_ascii=False)}
    try:
        written = _imported("aim-profiles", write(tmp / "aim-build", files))
    except UnicodeEncodeError:  # a lone surrogate: not a file anyone can write
        return
    event("refused" if not written else "imported")
    if not written:
        return
    recipe = yaml.safe_load(written["models/Qwen/Qwen3-32B.yaml"])
    (conf,) = recipe["configurations"]
    fp16 = conf.get("weights", recipe["weights"])["fp16"]
    assert fp16["repo"] == repo
    assert fp16.get("dtype") == ("auto" if dtype == "auto" else None)
    names = [repo, "Qwen/Qwen3-32B"] if repo != "Qwen/Qwen3-32B" else None
    assert conf.get("served_model_name") == names
    for argv in _compiles_to_words(written, tmp):
        rest = argv[argv.index("--served-model-name") + 1 :]
        assert list(itertools.takewhile(lambda w: not w.startswith("--"), rest)) == (
            names or ["Qwen/Qwen3-32B"]
        )
        assert argv[argv.index("--dtype") + 1] == ("auto" if dtype == "auto" else "float16")
