"""Run names are checked before anything starts: ``run`` or ``launch`` with a bad name is
exit 2 with nothing started or written, and any text is either a valid name whose record lies
inside the runs folder or a configuration error. test_runner_verify.py holds the name rules
one by one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.runs import (
    EXAMPLES,
    free_port,
    run_cli,
    tree,
)

BAD_NAMES = ["../x", "A/B", "a/b", "..", ".hidden", "x" * 64, "x\n", "-x", "a..b", ""]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("command", ["run", "launch"])
def test_bad_name_is_exit_2_before_anything_starts(lab, command: str, name: str) -> None:
    """Failed before: 'run --name ../x' started the server and wrote its record outside the
    runs folder; 'launch --name ../x' wrote its folder outside the builds folder; 'A/B'
    started a server and then lost it."""
    before = tree(lab.tmp)
    args = lab.launch_args() if command == "launch" else ["run", str(lab.folder)]
    result = lab.run(*args, "--name", name, FAKE_MODE="ready")
    assert result.code == 2, result.err
    assert "invalid run name" in result.err
    assert "Traceback" not in result.err
    assert not lab.pids.exists()  # nothing started
    assert tree(lab.tmp) == before  # nothing written


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_any_name_is_valid_and_inside_the_runs_folder_or_a_config_error(text: str) -> None:
    """Failed before: there was no name check at all (any text became a path)."""
    from aimc.core.errors import ConfigError
    from aimc.core.records import validate_name
    from aimc.run.runs import _record_path

    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, AIMC_STATE_DIR=tmp):
        try:
            name = validate_name(text)
        except ConfigError:
            with pytest.raises(ConfigError):
                _record_path(text)
            return
        assert name == text
        runs = Path(tmp, "runs").resolve()
        path = _record_path(name).resolve()
        assert path.parent == runs and path.name == f"{name}.json"
        assert "/" not in name and name not in (".", "..")


@pytest.fixture(scope="module")
def exiting_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compiled folder whose launch.sh exits at once (no server to clean up)."""
    folder = tmp_path_factory.mktemp("exiting") / "build"
    result = run_cli(
        "compile",
        "aimc-examples/tiny-llama",
        "--target",
        "cpu",
        "--recipes",
        str(EXAMPLES),
        "--port",
        str(free_port()),
        "-o",
        str(folder),
    )
    assert result.code == 0, result.err
    (folder / "launch.sh").write_text("exit 3\n")
    return folder


@given(st.text(max_size=70))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_run_with_any_name_writes_only_inside_the_state_folder(
    exiting_folder: Path, text: str
) -> None:
    """Failed before: run_folder accepted any name and wrote NAME.json wherever it led."""
    from aimc.core.errors import ConfigError, LaunchError
    from aimc.run.runner import run_folder

    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.dict(os.environ, AIMC_STATE_DIR=str(Path(tmp, "a", "b", "state"))),
    ):
        try:
            run_folder(exiting_folder, 30, name=text)
        except ConfigError:
            assert tree(Path(tmp)) == set()
            return
        except LaunchError as exc:
            assert "exited with code 3" in exc.message
        runs = {"a", "a/b", "a/b/state", "a/b/state/runs"}
        assert tree(Path(tmp)) == runs  # the record was written inside, then forgotten
