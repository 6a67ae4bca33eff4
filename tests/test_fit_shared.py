"""The shared fit path (:mod:`aimc.plan.shared`) gives the plans and verdicts of plain
:func:`~aimc.plan.resolve.build_plan`: over the whole shipped catalog on every hardware
profile, in any order, and for configurations, recipes and profiles that differ in one
input only (each gets its own verdict, never another's)."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aimc.check.lint_fit as lint_fit_module
import aimc.plan.layers as layers
import aimc.plan.shared as shared_module
from aimc.check.catalog import Catalog
from aimc.check.lint_fit import lint_fit
from aimc.core.errors import ConfigError
from aimc.core.loader import Document, load_document
from aimc.core.safety import SECRET_ENV
from aimc.domain.recipe import Hardware, Recipe, RecipeRoot
from aimc.plan import vllm_memory
from aimc.plan.candidates import Candidate, candidates
from aimc.plan.model import Setting
from aimc.plan.policy import assess, estimated
from aimc.plan.request import Request
from aimc.plan.resolve import build_plan
from aimc.plan.shared import Profiles, Shared

CATALOG = Catalog.default([])
RECIPES = CATALOG.recipes()
PROFILES = CATALOG.all_hardware()


def _plain(recipe: Recipe, hardware: Hardware, request: Request, c: Candidate) -> Any:
    """The plan (or the error message) as build_plan makes it for ``c`` alone."""
    return _alone(lambda: _built(recipe, hardware, request, c))


def _plain_verdict(
    recipe: Recipe, hardware: Hardware, request: Request, c: Candidate
) -> tuple[str, str, Any]:
    """(verdict, reason, estimate) as plain assess gives them for ``c`` alone."""
    (a,) = _alone(lambda: assess(recipe, hardware, request, [c]))
    return a.verdict, a.reason, a.plan.estimate if a.plan else None


def _alone(make: Callable[[], Any]) -> Any:
    """``make()`` with nothing kept from any other plan."""
    for cached in (
        vllm_memory._capture_sizes,
        vllm_memory._within,
        vllm_memory._graph_memory,
        vllm_memory._graphs,
    ):
        cached.cache_clear()
    return make()


def _built(
    recipe: Recipe, hardware: Hardware, request: Request, c: Candidate, shared: Shared | None = None
) -> Any:
    """The plan's JSON, or the error."""
    try:
        return build_plan(recipe, hardware, request, c, shared=shared).to_json()
    except ConfigError as exc:
        return f"ConfigError: {exc.message}"


@pytest.fixture
def plain() -> Callable[..., Any]:
    return _plain


def _retargeted(recipe: Recipe, profile: str) -> Recipe:
    """``recipe`` with every configuration offered on ``profile`` alone."""
    data = copy.deepcopy(recipe.data)
    for conf in data["configurations"]:
        conf["hardware"] = [profile]
    return _recipe(data, recipe.path)


def _recipe(data: dict[str, Any], path: str = "recipes/models/x/y.yaml") -> Recipe:
    doc = Document(path=path, data=data, sha256="0" * 64)
    return Recipe(doc, RecipeRoot(Path(path).parent, "lint"))


def _profile(data: dict[str, Any]) -> Hardware:
    doc = Document(path=f"<{data['name']}>", data=data, sha256="")
    return Hardware(doc, RecipeRoot(Path("."), "lint"))


def _pairs() -> Iterator[tuple[Recipe, Hardware]]:
    """Every shipped recipe on every shipped profile (its configurations retargeted)."""
    for recipe in RECIPES:
        for hardware in PROFILES:
            yield _retargeted(recipe, hardware.name), hardware


def test_lint_verdicts_are_plain_ones_over_the_catalog_on_every_profile(plain) -> None:
    """What lint/fit asks (one Shared per recipe, estimates alone, a request per GPU
    count; through assess and through estimated, lint/fit's own) against plain build_plan
    for each candidate alone."""
    compared = differ = 0
    for recipe, hardware in _pairs():
        shared = Shared(recipe, Request(model=recipe.model_id))
        cands = candidates(recipe, hardware.name)
        random.Random(f"{recipe.model_id} {hardware.name}").shuffle(cands)
        for c in cands:
            request = Request(model=recipe.model_id, gpus=c.gpus)
            (fast,) = assess(recipe, hardware, request, [c], shared=shared, plans=False)
            want = _plain_verdict(recipe, hardware, request, c)
            assert (fast.verdict, fast.reason, fast.estimate) == want, (recipe.model_id, c)
            # lint/fit's own way in: the one candidate, as assess judges it
            one = estimated(recipe, hardware, request, c, shared)
            assert (one.verdict, one.reason, one.estimate) == want, (recipe.model_id, c)
            compared += want[2] is not None
            differ += want[2] is not None and fast.verdict != "runnable"
    assert compared > 2000 and differ > 100  # the catalog x every profile, fits and not


def test_an_estimate_alone_reads_as_the_plans_estimate() -> None:
    """assess(plans=False) makes an estimate's JSON only when it is read: it is then the
    plan's, key for key in the same order, and a plain dict of it writes the same JSON."""
    recipe, h100 = CATALOG.recipe("Qwen/Qwen3-32B"), CATALOG.hardware("h100")
    for c in candidates(recipe, "h100"):
        request = Request(model=recipe.model_id, gpus=c.gpus)
        (fast,) = assess(recipe, h100, request, [c], plans=False)
        (whole,) = assess(recipe, h100, request, [c])
        assert fast.plan is None and whole.plan is not None and fast.estimate is not None
        want = whole.plan.estimate
        assert (fast.verdict, fast.reason) == (want["verdict"], want["reason"])
        assert list(fast.estimate.items()) == list(want.items()) and len(fast.estimate) == len(want)
        assert fast.estimate == want and want == fast.estimate and repr(fast.estimate) == repr(want)
        assert json.dumps(dict(fast.estimate)) == json.dumps(want)


def test_shared_plans_are_plain_plans_over_the_catalog(plain) -> None:
    """Whole plans, for a GPU count left open and asked for, in a shuffled order."""
    for recipe in RECIPES:
        for request in (Request(model=recipe.model_id), Request(model=recipe.model_id, gpus=4)):
            shared = Shared(recipe, request)
            work = [(h, c) for h in PROFILES for c in candidates(recipe, h.name)]
            random.Random(recipe.model_id).shuffle(work)
            for hardware, c in work:
                got = _built(recipe, hardware, request, c, shared)
                assert got == plain(recipe, hardware, request, c), (recipe.model_id, c)


#: One input of a configuration, and values it may take (each changes the estimate).
_ONE_INPUT: dict[str, st.SearchStrategy[Any]] = {
    "memory_utilization": st.sampled_from([0.5, 0.7, 0.8, 0.85, 0.95]),
    "args.max-num-seqs": st.sampled_from([8, 64, 128, 512]),
    "args.max-num-batched-tokens": st.sampled_from([16384, 32768]),
    "args.enforce-eager": st.just(True),
    "env.VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS": st.just("0"),
    "context_length": st.sampled_from([2048, 8192, 16384, 30000]),
    "low_memory": st.sampled_from([1024, 4096, 12000]),
    "kv_cache_dtype": st.just("fp8"),
}


def _with(conf: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(conf)
    scope, _, key = name.partition(".")
    if key:
        out.setdefault(scope, {})[key] = value
    elif name == "low_memory":
        out["low_memory"] = {"max_context": value}
    elif name == "kv_cache_dtype":
        out["weights"] = {"bf16": {"repo": "Qwen/Qwen3-8B", "kv_cache_dtype": value}}
    else:
        out[name] = value
    return out


def _base() -> dict[str, Any]:
    """Qwen3-8B's recipe with one bf16 vLLM configuration on h100."""
    data = copy.deepcopy(CATALOG.recipe("Qwen/Qwen3-8B").data)
    conf = {"id": "a", "hardware": ["h100"], "precision": ["bf16"], "gpus": [1, 2]}
    data["configurations"] = [conf]
    return data


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(sorted(_ONE_INPUT)).flatmap(
        lambda name: st.tuples(st.just(name), _ONE_INPUT[name])
    ),
    st.randoms(use_true_random=False),
)
def test_configurations_differing_in_one_input_each_get_their_own_verdict(
    change: tuple[str, Any], rng: random.Random
) -> None:
    """Two configurations alike but for one input, judged through one Shared in any
    order: each gets the estimate plain build_plan gives it, and the two differ."""
    data = _base()
    a = data["configurations"][0]
    b = _with(a, *change)
    b["id"] = "b"
    data["configurations"] = [a, b]
    recipe = _recipe(data)
    h100 = CATALOG.hardware("h100")
    shared = Shared(recipe, Request(model=recipe.model_id))
    cands = candidates(recipe, "h100")
    rng.shuffle(cands)
    got = {}
    for c in cands:
        request = Request(model=recipe.model_id, gpus=c.gpus)
        (fast,) = assess(recipe, h100, request, [c], shared=shared, plans=False)
        assert fast.estimate == _plain(recipe, h100, request, c)["estimate"]
        got[c.index, c.gpus] = fast.estimate
    for gpus in (1, 2):
        assert got[0, gpus] != got[1, gpus], (change, gpus)


#: One fact of a model the estimate reads, and another value of it (Qwen3-8B's weights
#: give their bytes, so its parameter count is not one).
_ONE_FACT = {
    "layers": 40,
    "hidden_size": 5120,
    "kv_heads": 4,
    "head_dim": 64,
    "max_context": 16384,
    "vocab_size": 64000,
}


@pytest.mark.parametrize("fact", sorted(_ONE_FACT))
def test_recipes_differing_in_one_fact_each_get_their_own_estimate(fact: str) -> None:
    """Two recipes in one process that differ in one fact: each is estimated for its own
    facts, never served the other's (whatever aimc keeps between recipes)."""
    first, second = _base(), _base()
    second["model"]["facts"][fact] = _ONE_FACT[fact]
    h100 = CATALOG.hardware("h100")
    found = []
    for data in (first, second, first):
        recipe = _recipe(data)
        shared = Shared(recipe, Request(model=recipe.model_id))
        (c,) = [c for c in candidates(recipe, "h100") if c.gpus == 1]
        request = Request(model=recipe.model_id, gpus=1)
        (fast,) = assess(recipe, h100, request, [c], shared=shared, plans=False)
        found.append(fast.estimate)
    assert found[0] == found[2] != found[1]


@pytest.mark.parametrize(
    "change",
    [("memory_gib", 40.0), ("multi_gpu_env", {"VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS": "0"})],
)
def test_profiles_differing_in_one_input_each_get_their_own_verdict(change, plain) -> None:
    """One Shared serves every profile: two that differ in one input (the memory, a
    variable set only with more than one GPU) are each judged on their own."""
    h100 = CATALOG.hardware("h100")
    other = copy.deepcopy(h100.data)
    other[change[0]] = change[1]
    profiles = [h100, _profile(other)]
    recipe = _recipe(_base())
    shared = Shared(recipe, Request(model=recipe.model_id))
    estimates = []
    for hardware in [*profiles, *profiles]:
        for c in candidates(recipe, "h100"):
            request = Request(model=recipe.model_id, gpus=c.gpus)
            (fast,) = assess(recipe, hardware, request, [c], shared=shared, plans=False)
            assert fast.estimate == plain(recipe, hardware, request, c)["estimate"]
            estimates.append(fast.estimate)
    assert estimates[:4] == estimates[4:]
    assert estimates[1] != estimates[3]  # 2 GPUs: the two profiles differ


def test_a_plan_that_cannot_be_built_is_refused_for_its_own_shape_only(plain) -> None:
    """An environment value that cannot be written, set only with more than one GPU: the
    1-GPU plan is built, the 2-GPU one refused, whatever was asked first."""
    h100 = copy.deepcopy(CATALOG.hardware("h100").data)
    h100["multi_gpu_env"] = {"NCCL_DEBUG": "a b"}
    hardware = _profile(h100)
    recipe = _recipe(_base())
    for order in ([1, 2], [2, 1]):
        shared = Shared(recipe, Request(model=recipe.model_id))
        for gpus in order:
            (c,) = [c for c in candidates(recipe, "h100") if c.gpus == gpus]
            request = Request(model=recipe.model_id, gpus=gpus)
            got = _built(recipe, hardware, request, c, shared)
            assert got == plain(recipe, hardware, request, c)
            assert isinstance(got, str) == (gpus == 2), got


def test_shared_refuses_another_recipe_or_request() -> None:
    recipe = _recipe(_base())
    other = _recipe(_base())
    h100 = CATALOG.hardware("h100")
    shared = Shared(recipe, Request(model=recipe.model_id))
    c = candidates(recipe, "h100")[0]
    with pytest.raises(ValueError, match="recipe"):
        build_plan(other, h100, Request(model=recipe.model_id), c, shared=shared)
    with pytest.raises(ValueError, match="request"):
        build_plan(recipe, h100, Request(model=recipe.model_id, port=9000), c, shared=shared)
    with pytest.raises(ValueError, match="facts"):
        shared.estimate(dict(recipe.data["model"]["facts"]))


def test_lint_makes_each_layer_once_for_what_it_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Failed before (four layers per candidate): the recipe layer is made once per
    backend x precision whose weights the recipe holds (the configurations that hold
    their own share one per backend) for every configuration and profile, the hardware
    layer once per profile x backend x one-or-more GPUs."""
    made: dict[str, list[tuple[Any, ...]]] = {"recipe": [], "hardware": []}
    for name, key in (("recipe", "recipe_layer"), ("hardware", "hardware_layer")):
        real = getattr(layers, key)

        def counted(*args: Any, _real: Any = real, _name: str = name) -> Any:
            made[_name].append(args)
            return _real(*args)

        monkeypatch.setattr(layers, key, counted)
    recipe = CATALOG.recipe("Qwen/Qwen3-32B")
    hardware = {h.name: h.data for h in PROFILES}
    assert lint_fit(recipe.doc, hardware) == []
    confs = recipe.data["configurations"]
    reads = {
        (c.backend, None if c.precision in confs[c.index].get("weights", {}) else c.precision)
        for c in candidates(recipe)
    }
    keys = [args[1:] for args in made["recipe"]]
    assert set(keys) == reads and len(keys) == len(reads)  # each once
    assert len(reads) < len({(c.index, c.backend, c.precision) for c in candidates(recipe)})
    assert len(made["hardware"]) == len(set(made["hardware"]))  # never twice alike
    kinds = {(c.hardware, c.backend, c.gpus > 1, c.nodes > 1) for c in candidates(recipe)}
    assert len(made["hardware"]) <= len(kinds)


def test_lint_makes_each_profile_layer_once_for_every_recipe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Failed before (every recipe made its own): the hardware layers are made for the
    first recipe linted against the profiles, and not again for the next ones."""
    made: list[tuple[Any, ...]] = []
    real = layers.hardware_layer

    def counted(*args: Any) -> Any:
        made.append(args)
        return real(*args)

    monkeypatch.setattr(layers, "hardware_layer", counted)
    monkeypatch.setattr(lint_fit_module, "_PROFILES", Profiles())
    hardware = {h.name: h.data for h in PROFILES}
    first = CATALOG.recipe("Qwen/Qwen3-32B")
    assert lint_fit(first.doc, hardware) == []
    assert made
    before = len(made)
    assert lint_fit(first.doc, hardware) == []
    assert lint_fit(_recipe(copy.deepcopy(first.data)).doc, hardware) == []
    assert len(made) == before


#: One input of a profile, and another value of it (each changes an estimate on 2 GPUs).
_PROFILE_INPUT: dict[str, Any] = {
    "memory_gib": 40.0,
    "multi_gpu_env": {"VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS": "0"},
    "backends": {"vllm": {"args": {"max-num-seqs": 8}}},
    "description": "NVIDIA A100 80GB",
}


@settings(max_examples=20, deadline=None)
@given(st.permutations([None, *sorted(_PROFILE_INPUT)]), st.integers(1, 3))
def test_profiles_kept_for_many_recipes_give_each_profile_its_own_verdict(
    order: list[str | None], most: int
) -> None:
    """One :class:`Profiles` serves recipes and profiles that differ in one input, in any
    order and however few profiles it keeps: every estimate is plain build_plan's."""
    h100 = CATALOG.hardware("h100")
    variants = {None: h100}
    for name, value in _PROFILE_INPUT.items():
        data = copy.deepcopy(h100.data)
        data[name] = value
        variants[name] = _profile(data)
    other = _base()
    other["model"]["facts"]["layers"] = 40
    kept = Profiles(most)
    estimates: dict[tuple[int, str | None], Any] = {}
    for n, data in enumerate((_base(), other)):
        recipe = _recipe(data)
        for name in order:
            shared = Shared(recipe, Request(model=recipe.model_id), kept)
            for c in candidates(recipe, "h100"):
                request = Request(model=recipe.model_id, gpus=c.gpus)
                (fast,) = assess(recipe, variants[name], request, [c], shared=shared, plans=False)
                assert fast.estimate == _plain(recipe, variants[name], request, c)["estimate"]
                if c.gpus == 2:
                    estimates[n, name] = fast.estimate
    for n in (0, 1):
        assert all(estimates[n, name] != estimates[n, None] for name in _PROFILE_INPUT)


def test_a_refused_variable_names_its_own_source_each_time(plain) -> None:
    """Checked once per variable and value: a value refused is refused again, naming the
    line of the configuration that set it."""
    data = _base()
    a = {**data["configurations"][0], "env": {"NCCL_DEBUG": "a b"}}
    b = {**a, "id": "b"}
    data["configurations"] = [a, b]
    doc = load_document(json.dumps(data, indent=1).encode(), "x/y.yaml")  # a line each
    recipe = Recipe(doc, RecipeRoot(Path("x"), "lint"))
    h100 = CATALOG.hardware("h100")
    shared = Shared(recipe, Request(model=recipe.model_id, gpus=1))
    got = []
    for c in candidates(recipe, "h100"):
        request = Request(model=recipe.model_id, gpus=c.gpus)
        if c.gpus == 1:
            got.append(_built(recipe, h100, request, c, shared))
            assert got[-1] == plain(recipe, h100, request, c)
    assert len(got) == 2 and got[0] != got[1]
    assert all("cannot be written safely" in g for g in got)


def test_a_layer_keeps_what_it_derives_once_for_each_layer() -> None:
    """A layer's settings (and a choice's weights) are made on the first read and kept:
    read again, the very same objects; another layer makes its own."""
    one = layers.Layer("cli", {"port": (9000, "--port"), "env.A": (None, "--set")})
    other = layers.Layer("cli", {"port": (9001, "--port")})
    assert one.scoped is one.scoped and one.removes is True and other.removes is False
    assert one.scoped[0]["port"] == Setting(9000, "cli", "--port")
    assert other.scoped[0]["port"].value == 9001 and one.rank == other.rank == 5
    assert layers.merge_scoped([other, layers.Layer("backend", {"port": (1, "x")}), one]) == (
        {"port": Setting(9000, "cli", "--port")},
        {},
        {},
    )
    recipe = CATALOG.recipe("Qwen/Qwen3-8B")
    choice = layers.Choice(recipe, layers.Src(recipe.doc, "r"), 0, "vllm", "bf16")
    assert choice.weights is choice.weights and choice.weights == recipe.data["weights"]["bf16"]


def test_a_profiles_variables_are_checked_once_for_every_recipe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Failed before (each recipe checked them again): a variable and value that passed
    check_env for one recipe pass for the next recipe with the same Profiles unchecked."""
    checked: list[str] = []
    real = shared_module.check_env

    def counted(name: str, value: str, source: str) -> None:
        checked.append(name)
        real(name, value, source)

    monkeypatch.setattr(shared_module, "check_env", counted)
    h100 = copy.deepcopy(CATALOG.hardware("h100").data)
    h100["env"] = {"AIMC_TEST_VAR": "abcdefgh1234"}
    hardware, profiles = _profile(h100), Profiles()
    for _ in range(2):
        recipe = _recipe(_base())
        request = Request(model=recipe.model_id, gpus=1)
        c = candidates(recipe, "h100")[0]
        build_plan(recipe, hardware, request, c, shared=Shared(recipe, request, profiles))
    assert checked.count("AIMC_TEST_VAR") == 1


@pytest.mark.parametrize("secret", SECRET_ENV)
def test_a_variable_that_passed_is_refused_once_it_holds_a_secret(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    """What passed is kept with the caller's secret variables it was checked against:
    once a secret variable holds the value, the next recipe's plan is refused."""
    for name in SECRET_ENV:
        monkeypatch.delenv(name, raising=False)
    h100 = copy.deepcopy(CATALOG.hardware("h100").data)
    h100["env"] = {"AIMC_TEST_VAR": "abcdefgh1234"}
    hardware, profiles = _profile(h100), Profiles()
    recipe = _recipe(_base())
    request = Request(model=recipe.model_id, gpus=1)
    c = candidates(recipe, "h100")[0]
    build_plan(recipe, hardware, request, c, shared=Shared(recipe, request, profiles))
    monkeypatch.setenv(secret, "abcdefgh1234")
    with pytest.raises(ConfigError, match="holds a token or the value of one of your secret"):
        build_plan(recipe, hardware, request, c, shared=Shared(recipe, request, profiles))
