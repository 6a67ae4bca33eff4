"""The Docker CLI as the runner uses it: the engine's socket, a reachable engine, the
container of a run (by name, with the run's label), and removing only a container that
carries this run's own id."""

from __future__ import annotations

import re

from aimc.core.errors import ConfigError, LaunchError, PermissionDeniedError
from aimc.core.settings import setting

__all__ = ["RUN_LABEL", "docker_env"]

#: The label launch.sh gives a container: ``AIM_RUN_ID`` of the run that started it.
RUN_LABEL = "dev.aimc.run"


def docker_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with ``DOCKER_HOST`` pointing at ``DOCKER_SOCKET`` (as read by
    :mod:`aimc.core.settings` from ``env``) when that is set and ``DOCKER_HOST`` is not."""
    socket_path = setting("docker_socket", env)
    if socket_path is not None and "DOCKER_HOST" not in env:
        env["DOCKER_HOST"] = f"unix://{socket_path}"
    return env


def _docker_check(env: dict[str, str]) -> None:
    """Fail clearly (exit 4, or 7 for the socket's permissions) when Docker is unusable."""
    import subprocess  # deferred: compile imports this module (run records), runs no docker

    try:
        proc = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=15,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise LaunchError(
            "docker is not installed (no docker command on PATH)",
            hint="install Docker",  # run, launch, the API alike: no "compile with" advice
        ) from None
    except subprocess.TimeoutExpired:
        raise LaunchError("the Docker engine did not answer within 15 s") from None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        text = message[-1] if message else f"exit code {proc.returncode}"
        # The hints name what the caller chose: DOCKER_HOST (or DOCKER_SOCKET, which sets
        # it) when set, else Docker's default socket.
        host = env.get("DOCKER_HOST")
        if "permission denied" in text.lower():
            raise PermissionDeniedError(
                f"no permission to use the Docker engine: {text}",
                hint=f"this user may not use {host}; check its owner and mode"
                if host
                else "add your user to the docker group, or set DOCKER_SOCKET to a socket "
                "you may use",
            )
        raise LaunchError(
            f"no Docker engine is reachable: {text}",
            hint=f"start the Docker engine at {host}, or point DOCKER_SOCKET at a running one"
            if host
            else "start Docker, or set DOCKER_SOCKET to the socket of a running engine",
        )


def _docker(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run ``docker ARGS``: (exit code, stdout), or (-1, "") when it cannot run or hangs."""
    import subprocess  # deferred: see _docker_check

    try:
        proc = subprocess.run(
            ["docker", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return -1, ""
    return proc.returncode, proc.stdout


def _container(name: str, env: dict[str, str]) -> tuple[str, str] | None:
    """(full id, :data:`RUN_LABEL` value) of the container named ``name``, or None when
    there is none (or the engine does not answer)."""
    fmt = f'{{{{.Id}}}} {{{{index .Config.Labels "{RUN_LABEL}"}}}}'
    code, out = _docker(["container", "inspect", "--format", fmt, "--", name], env, 30)
    words = out.split()
    if code != 0 or not words or not re.fullmatch(r"[0-9a-f]{64}", words[0]):
        return None
    return words[0], words[1] if len(words) > 1 else ""


def _refuse_existing_container(name: str, env: dict[str, str]) -> None:
    """Raises: ConfigError: A container named ``name`` exists (aimc did not start it for
    this run, and never removes it)."""
    found = _container(name, env)
    if found is not None:
        raise ConfigError(
            f"a container named {name} already exists (id {found[0][:12]}); aimc leaves it alone",
            hint=f"launch under another name with --name, or remove it yourself: "
            f"docker rm -f {name}",
        )


def _docker_rm(name: str, env: dict[str, str], run_id: str, container_id: str = "") -> None:
    """Remove the container named ``name`` if it is this run's: it carries the label
    ``run_id`` (or, for a record without one, its id starts with ``container_id``). Any
    other container of that name is left alone. Removed by its full id, not its name."""
    found = _container(name, env)
    if found is None:
        return
    full, label = found
    if run_id:
        ours = label == run_id
    else:
        ours = bool(re.fullmatch(r"[0-9a-f]{12,64}", container_id)) and full.startswith(
            container_id
        )
    if ours:
        _docker(["rm", "-f", full], env)
