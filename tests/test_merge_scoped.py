""":func:`aimc.plan.precedence.merge_scoped` merges as the plain precedence does (every key
of every layer applied in rank order, None removing it) and splits the result: for any
layers (in any order, any of them removing values with None), its neutral settings are the
merged keys that are neither ``args.*`` nor ``env.*``, and its flags and variables are the
merged ``args.*`` and ``env.*`` by name, sorted."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.plan.layers import LAYERS, Layer, merge_scoped
from aimc.plan.model import Setting

#: Keys a layer may set: neutral ones, flags and variables, some of whose names sort
#: differently from the order they are set in, and names that look like a scope.
KEYS = st.sampled_from(
    [
        "port",
        "image",
        "context_length",
        "args.zeta",
        "args.alpha",
        "args.max-num-seqs",
        "args.",
        "args.env.X",
        "env.B",
        "env.A",
        "env.",
        "env.args.Y",
        "argsx",
        "envy",
    ]
)
VALUES = st.one_of(st.none(), st.integers(-3, 3), st.text(max_size=3))
LAYER = st.builds(
    lambda name, values: Layer(name, values),
    st.sampled_from(LAYERS),
    st.dictionaries(KEYS, st.tuples(VALUES, st.sampled_from(["a:1", "b:2"])), max_size=6),
)


def _plain(layers: list[Layer]) -> dict[str, Setting]:
    """The precedence written plainly: each key of each layer, lowest rank first (a stable
    sort: layers of one rank in their order), a value replacing, None removing."""
    out: dict[str, Setting] = {}
    for layer in sorted(layers, key=lambda layer: LAYERS.index(layer.name)):
        for key, (value, source) in layer.values.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = Setting(value, layer.name, source)
    return out


def _split(merged: dict[str, Setting]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The plain split of a merge (what resolve did to every merge before)."""
    args = {k[5:]: v for k, v in merged.items() if k.startswith("args.")}
    env = {k[4:]: v for k, v in merged.items() if k.startswith("env.")}
    neutral = {k: v for k, v in merged.items() if not k.startswith(("args.", "env."))}
    return neutral, dict(sorted(args.items())), dict(sorted(env.items()))


@settings(max_examples=300, deadline=None)
@given(st.lists(LAYER, max_size=7))
def test_merge_scoped_is_the_merge_split(layers: list[Layer]) -> None:
    neutral, args, env = merge_scoped(layers)
    plain = _plain(layers)
    want_neutral, want_args, want_env = _split(plain)
    assert neutral == want_neutral
    assert list(args.items()) == list(want_args.items())  # sorted alike
    assert list(env.items()) == list(want_env.items())
    assert None not in (*neutral.values(), *args.values(), *env.values())


def test_a_higher_layer_removes_or_replaces_a_flag_and_a_lower_one_does_not() -> None:
    """Failed without the precedence of the split (a removal seen in layer order, not
    rank order, or a None kept)."""
    cli = Layer("cli", {"args.x": (None, "--set"), "env.B": ("2", "--set")})
    backend = Layer("backend", {"args.x": (1, "d"), "args.y": (2, "d"), "env.B": ("1", "d")})
    hardware = Layer("hardware", {"env.A": ("0", "h"), "port": (None, "h")})
    neutral, args, env = merge_scoped([cli, hardware, backend])
    assert neutral == {}
    assert args == {"y": Setting(2, "backend", "d")}
    assert list(env) == ["A", "B"] and env["B"] == Setting("2", "cli", "--set")
