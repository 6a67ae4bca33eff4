"""Secrets are never shown: :func:`aimc.core.safety.mask` finds a token whatever surrounds
it, a name that says secret names a secret, and a token (token-shaped, or the caller's own
``HF_TOKEN``) is masked in every error and note and never reaches an artifact.

The reporters' own masking (errors, diagnostics, log lines in every format) is held in
test_report.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT

TOKEN = "hf_" + "Q7x9" * 9


def test_a_secret_smuggled_in_a_name_is_refused_and_not_echoed(cli, tmp_path: Path) -> None:
    """Failed before: ``env.HF_TOKEN;X=hf_...`` passed the secret check, wrote the token into
    every artifact, and a refused token was printed back in the error."""
    for item in (f"env.HF_TOKEN;X={TOKEN}", f"env.HF_TOKEN={TOKEN}", f"hf-token={TOKEN}"):
        for fmt in ("text", "json"):
            out = tmp_path / "build"
            result = cli(
                "compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(out), "--set", item,
                "--format", fmt,
            )  # fmt: skip
            assert result.code == 2
            assert TOKEN not in result.out + result.err
            assert "***" in result.out + result.err
            assert not out.exists()


def test_the_callers_token_is_masked_in_errors(cli, tmp_path: Path) -> None:
    """Failed before: an unsafe env value was echoed whole, a pasted token with it."""
    secret = "s3cr3t-value-pasted"
    result = cli(
        "compile", "Qwen/Qwen3-8B", "--target", "h100", "-o", str(tmp_path / "b"),
        "--set", f"env.FOO={secret}$", env={"HF_TOKEN": secret},
    )  # fmt: skip
    assert result.code == 2
    assert secret not in result.err
    assert "environment variable FOO (--set env.FOO=***$) holds a token" in result.err


def test_notes_mask_secrets(capsys, monkeypatch) -> None:
    """Failed before: notes on stderr printed whatever text they were given."""
    from aimc.core.log import note

    monkeypatch.setenv("VLLM_API_KEY", "my-own-api-key-123")
    for fmt in ("json", "text"):
        monkeypatch.setenv("LOG_FORMAT", fmt)
        note(f"fetching with {TOKEN} and key my-own-api-key-123 (Bearer abcdefghijkl)")
        err = capsys.readouterr().err
        assert TOKEN not in err and "my-own-api-key-123" not in err and "abcdefghijkl" not in err
        assert err.count("***") == 3


GITHUB_TOKEN = "ghp_" + "Zz09" * 9


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_a_token_is_masked_whatever_surrounds_it(before: str, after: str) -> None:
    """Failed before: a token glued to a word (``tokenhf_...``, ``HF_TOKEN_hf_...``) was
    shown, because the pattern wanted a word boundary before ``hf_``."""
    from aimc.core.safety import mask

    for token in (TOKEN, GITHUB_TOKEN):
        shown = mask(before + token + after, environ={})
        assert token not in shown and token[8:20] not in shown, shown
    assert mask("HF_TOKEN_" + TOKEN, environ={}) == "HF_TOKEN_hf_***"
    assert mask("task-" + "a" * 30, environ={}) == "task-" + "a" * 30  # not an sk- key


@pytest.mark.parametrize("name", ["HF_TOKEN_VALUE", "PGPASSWORD", "OPENAI_APIKEY", "db-passwd"])
def test_names_that_say_secret_are_secrets(name: str) -> None:
    """Failed before: only a last word TOKEN and whole words PASSWORD/SECRET counted."""
    from aimc.check.lint import is_secret

    assert is_secret(name)


@pytest.mark.parametrize("name", ["max-num-batched-tokens", "tokenizer", "TOKENIZERS_PARALLELISM"])
def test_names_about_tokens_are_not_secrets(name: str) -> None:
    from aimc.check.lint import is_secret

    assert not is_secret(name)


def test_a_token_under_any_name_never_reaches_an_artifact(cli, tmp_path: Path) -> None:
    """Failed before: a token-shaped value under a harmless name (env or arg) passed
    validate and was compiled into aim.env, launch.sh and vllm.yaml."""
    recipe = tmp_path / "models" / "Qwen" / "Qwen3-8B.yaml"
    recipe.parent.mkdir(parents=True)
    text = (ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text()
    text = text.replace(
        "  context_length: 32768\n",
        f"  context_length: 32768\n  env: {{MY_SETTING: {TOKEN}}}\n  args: {{revision: {TOKEN}}}\n",
        1,
    )
    recipe.write_text(text)
    result = cli("validate", str(recipe))
    assert result.code == 2 and TOKEN not in result.out + result.err
    assert "the value of 'MY_SETTING' holds a token" in result.out
    assert "the value of 'revision' holds a token" in result.out
    for item in (
        f"env.MY_SETTING={TOKEN}",
        f"revision=x{TOKEN}",
        "tokenizer=[a, hf_" + "z" * 30 + "]",
    ):
        out = tmp_path / "o"
        done = cli("compile", "Qwen/Qwen3-8B", "--target", "h100", "--set", item, "-o", str(out))
        assert done.code == 2 and not out.exists(), done.err
        assert TOKEN not in done.out + done.err and "holds a token" in done.err


_PIECES = ["abcdef", "abcde", " abcdef ", "sk-", "hf_", "bearer ", "AKIA", "Q7x9", "x", "/", " "]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_PIECES) | st.text(max_size=3), max_size=8).map("".join),
    st.dictionaries(st.sampled_from(["HF_TOKEN", "VLLM_API_KEY", "OTHER"]),
                    st.sampled_from([*_PIECES, "", "abcdefg", TOKEN])),
)  # fmt: skip
def test_short_text_is_never_changed_and_long_text_masked_as_before(
    text: str, environ: dict[str, str]
) -> None:
    """Text shorter than the shortest secret (a diagnostic's empty message, a short pointer)
    comes back as it was, without a look at the environment; any text is masked as it
    always was: each secret variable's value of 6 characters or more, then every token."""
    from aimc.core import masking

    expected = text
    for value in (environ.get(name, "") for name in masking.SECRET_ENV):
        for secret in (value, value.strip()):
            expected = expected.replace(secret, "***") if len(secret) >= 6 else expected
    expected = masking._TOKEN.sub(lambda m: next(g for g in m.groups() if g) + "***", expected)
    assert masking.mask(text, environ=environ) == expected
    if len(text) < 6:
        assert masking.mask(text, environ=_Unread()) == text


class _Unread(dict[str, str]):
    """An environment that must not be read."""

    def get(self, *args: object) -> str:  # type: ignore[override]
        raise AssertionError("the environment was read for a short text")
