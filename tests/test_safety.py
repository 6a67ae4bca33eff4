"""aimc.core.safety's rules one by one, at their boundaries: what ``bench/mutation.py`` showed
no other test pinned (each test names the mutant it kills in ``bench/mutation_survivors.md``
terms: an operator or bound changed in a function of :mod:`aimc.core.safety`)."""

from __future__ import annotations

import pytest

from aimc.core.errors import ConfigError
from aimc.core.safety import (
    MAX_DEVICE_ID,
    check_env,
    format_devices,
    holds_secret,
    mask,
    parse_devices,
    shorten,
)
from aimc.domain.engine_args import shown_set

TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWx12"


# --- shorten -------------------------------------------------------------------------------


def test_shorten_keeps_text_up_to_the_limit_and_says_how_long_it_was() -> None:
    assert shorten("a" * 120) == "a" * 120
    assert shorten("a" * 121) == "a" * 120 + "... (121 characters)"
    assert shorten("abcdef", 3) == "abc... (6 characters)"
    assert shorten("abc", 3) == "abc"


# --- mask ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (TOKEN, "hf_***"),
        ("hf_" + "a" * 20, "hf_***"),
        ("hf_" + "a" * 19, "hf_" + "a" * 19),  # too short to be a token
        ("ghp_" + "a" * 20, "ghp_***"),
        ("gho_" + "a" * 20, "gho_***"),
        ("github_pat_" + "a_b-" * 5, "github_pat_***"),
        ("xoxb-" + "a" * 20, "xoxb-***"),
        ("sk-" + "a" * 20, "sk-***"),
        ("a sk-" + "a" * 20, "a sk-***"),
        ("ask-" + "a" * 20, "ask-" + "a" * 20),  # sk- only at a word's start
        ("AKIA" + "A1" * 8, "AKIA***"),
        ("AKIA" + "A1" * 8 + "X", "AKIA" + "A1" * 8 + "X"),  # exactly 16 after AKIA
        ("Authorization: Bearer abcdefgh", "Authorization: Bearer ***"),
        ("bearer   abcdefgh==", "bearer   ***"),
        ("Bearer abcdefg", "Bearer abcdefg"),  # under 8 characters: not a credential
        ("no secret here", "no secret here"),
    ],
)
def test_mask_hides_each_token_shape_and_keeps_its_prefix(text: str, shown: str) -> None:
    assert mask(text, environ={}) == shown


def test_mask_hides_the_value_of_each_secret_variable_also_stripped() -> None:
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "VLLM_API_KEY", "OPENAI_API_KEY"):
        assert mask("key=abcdef.", environ={name: "abcdef"}) == "key=***."
        assert mask("key=abcdef.", environ={name: "  abcdef\n"}) == "key=***."
    assert mask("key=abcdef", environ={"OTHER": "abcdef"}) == "key=abcdef"


def test_mask_leaves_a_secret_variable_shorter_than_six_characters() -> None:
    """A 1-5 character value would mask ordinary words everywhere."""
    assert mask("a abcde b", environ={"HF_TOKEN": "abcde"}) == "a abcde b"
    assert mask("a abcdef b", environ={"HF_TOKEN": "abcdef"}) == "a *** b"
    assert mask("x", environ={"HF_TOKEN": ""}) == "x"


def test_mask_reads_the_process_environment_by_default(monkeypatch) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "my-own-api-key")
    assert mask("use my-own-api-key") == "use ***"
    assert mask("use my-own-api-key", environ={}) == "use my-own-api-key"


# --- holds_secret --------------------------------------------------------------------------


def test_holds_secret_looks_into_text_lists_and_mappings() -> None:
    env: dict[str, str] = {}
    assert holds_secret(TOKEN, env)
    assert not holds_secret("plain", env)
    assert holds_secret(["a", ("b", TOKEN)], env)
    assert holds_secret({"a": {"b": TOKEN}}, env)
    assert holds_secret({TOKEN: "a"}, env)  # a key too
    assert not holds_secret({"a": ["b", 1, None, 2.5]}, env)
    assert not holds_secret(12345678, env)
    assert holds_secret("x abcdefgh", {"HF_TOKEN": "abcdefgh"})


def test_holds_secret_stops_at_depth_32() -> None:
    nested: object = TOKEN
    for _ in range(32):
        nested = [nested]
    assert holds_secret(nested, {})  # the token at depth 32 is seen
    assert not holds_secret([nested], {})  # depth 33: given up (never recursion errors)


# --- shown_set -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "shown"),
    [
        ("env.HF_TOKEN=abc", "env.HF_TOKEN=***"),
        ("env.MY_PASSWORD=abc", "env.MY_PASSWORD=***"),
        ("args.api-key=abc", "args.api-key=***"),
        ("env.X;HF_TOKEN=abc", "env.X;HF_TOKEN=***"),
        ("env.AIM_X=abc", "env.AIM_X=abc"),
        ("served_model_name=abc", "served_model_name=abc"),
        ("env.HF_TOKEN", "env.HF_TOKEN"),  # no value to hide
        (f"env.AIM_X={TOKEN}", "env.AIM_X=hf_***"),
        ("env.AIM_X=a\nb", "env.AIM_X=a\\nb"),
    ],
)
def test_shown_set_hides_the_value_of_a_secret_name(item: str, shown: str) -> None:
    assert shown_set(item) == shown


def test_shown_set_is_short() -> None:
    shown = shown_set("env.AIM_X=" + "a" * 300)
    assert shown.endswith("... (310 characters)") and len(shown) < 150


# --- check_env values ----------------------------------------------------------------------


def test_check_env_values() -> None:
    check_env("A", "", "t")
    check_env("A", "a" * 4096, "t")
    check_env("A", "letters_@%+=:,./^-09", "t")
    for value in ("a" * 4097, "$(id)", "a b", "'", "a\n"):
        with pytest.raises(ConfigError, match="cannot be written safely"):
            check_env("A", value, "t")
    with pytest.raises(ConfigError, match="holds a token") as caught:
        check_env("A", TOKEN, "t")
    assert TOKEN not in str(caught.value)


# --- devices -------------------------------------------------------------------------------


def test_parse_devices_bounds() -> None:
    assert parse_devices("0") == (0,)
    assert parse_devices(str(MAX_DEVICE_ID)) == (MAX_DEVICE_ID,)
    assert parse_devices(",".join(str(i) for i in range(64))) == tuple(range(64))
    with pytest.raises(ConfigError, match="device id 256 is above 255"):
        parse_devices("1,256")
    with pytest.raises(ConfigError, match="not a list of GPU device ids"):
        parse_devices(",".join(str(i) for i in range(65)))
    with pytest.raises(ConfigError, match="names device 3 more than once"):
        parse_devices("5,3,5,3")
    assert format_devices([4, 5, 6]) == "4,5,6"
    assert format_devices(()) == ""


def test_holds_secret_bounds_mappings_by_depth_too() -> None:
    """Keys and values one level down each: a token 33 mappings deep is past the bound,
    a chain of any length ends (never a RecursionError)."""
    inner: object = {TOKEN: "x"}
    for _ in range(31):
        inner = {"k": inner}
    assert holds_secret(inner, {})  # the key at depth 32
    assert not holds_secret({"k": inner}, {})  # depth 33
    deep: object = "x"
    for _ in range(5000):
        deep = {"k": deep}
    assert not holds_secret(deep, {})


def test_holds_secret_sees_a_secret_whatever_characters_it_holds() -> None:
    """Whether text changed when masked, not how it sorts: ``!`` sorts before ``*``."""
    assert holds_secret("a !!!!!!secret", {"HF_TOKEN": "!!!!!!secret"})
    assert holds_secret("~~~~~~~~", {"HF_TOKEN": "~~~~~~~~"})


def test_a_bad_devices_list_is_quoted_up_to_60_characters() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_devices("x" * 100)
    assert f"--devices '{'x' * 60}... (100 characters)' is not" in caught.value.message
