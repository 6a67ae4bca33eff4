"""A model given as a local folder (aimc.app.pipeline.is_model_folder, aimc.plan.derive): any
text that names no folder is a model id, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimc.app.pipeline import is_model_folder
from tests.conftest import run_cli


@given(
    text=st.one_of(
        st.text(max_size=300),
        st.builds(lambda s: "~" + s, st.text(max_size=40)),
        st.builds(lambda n: "a" * n, st.integers(250, 5000)),
    )
)
@settings(max_examples=300, deadline=None)
def test_any_text_is_a_folder_or_not_never_an_error(text: str) -> None:
    assert is_model_folder(text) in (True, False)


def test_a_folder_with_a_config_is_a_model_folder(tmp_path: Path) -> None:
    assert not is_model_folder(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert is_model_folder(str(tmp_path))


@pytest.mark.parametrize("model", ["~0", "~no-such-user-aimc/x", "a" * 5000])
def test_compile_reads_such_a_model_as_an_id(model: str, tmp_path: Path) -> None:
    """Before: ``Path('~0').expanduser()`` raised RuntimeError, an internal error (exit 1
    with INTERNAL_ERROR); now the text is a model id the catalog does not know (exit 2)."""
    done = run_cli(
        "compile", model, "--target", "h100", "-o", str(tmp_path / "out"),
        env={"CACHE_DIR": str(tmp_path / "cache"), "AIMC_STATE_DIR": str(tmp_path / "state")},
    )  # fmt: skip
    assert done.code == 2, done.err
    assert "internal error" not in done.err and "Traceback" not in done.err
    assert not (tmp_path / "out").exists()
