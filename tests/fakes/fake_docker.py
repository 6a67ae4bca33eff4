"""A stand-in ``docker run`` whose "container" sees only the environment Docker gives it.

Called as ``fake_docker.py run [OPTIONS] IMAGE [ARGS...]`` (by a stand-in ``docker``
script); execs the stand-in server (fake_server.py) with all the words, in an environment
built as ``docker run`` builds a container's (Docker's documented rules): ``-e NAME=VALUE``
/ ``--env NAME=VALUE`` set a variable, ``-e NAME`` copies it from docker's own environment
when it is set there (else it is not set), ``--env-file FILE`` reads ``NAME=VALUE`` lines
literally (``NAME`` alone: copied as with ``-e NAME``; ``#`` lines and blank lines skipped).
Nothing else of docker's environment reaches the "container" but ``PATH`` (the image's own
would be there) and the test's ``FAKE_*`` controls of the stand-in server.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SERVER = Path(__file__).resolve().parent / "fake_server.py"
#: ``docker run`` options that take a value (the ones aimc's launch.sh writes, and more).
_VALUED = {
    "--name", "--device", "--group-add", "--security-opt", "--cap-add", "--gpus", "--ipc",
    "--shm-size", "--network", "-p", "--publish", "-v", "--volume", "-e", "--env",
    "--env-file", "--entrypoint", "-w", "--workdir", "-u", "--user", "--label", "-l",
}  # fmt: skip


def _one(item: str, env: dict[str, str]) -> None:
    name, sep, value = item.partition("=")
    if sep:
        env[name] = value
    elif name in os.environ:
        env[name] = os.environ[name]


def container_env(words: list[str]) -> dict[str, str]:
    """The environment ``docker run`` WORDS (without ``run``) gives its container."""
    env = {k: v for k, v in os.environ.items() if k == "PATH" or k.startswith("FAKE_")}
    i = 0
    while i < len(words) and words[i].startswith("-"):
        word = words[i]
        flag, eq, inline = word.partition("=")
        if flag in _VALUED:
            value = inline if eq else words[i + 1]
            i += 1 if eq else 2
            if flag in ("-e", "--env"):
                _one(value, env)
            elif flag == "--env-file":
                for line in Path(value).read_text().splitlines():
                    if line.strip() and not line.lstrip().startswith("#"):
                        _one(line, env)
        else:
            i += 1  # a flag without a value (--rm, -d, ...)
    return env


def main() -> None:
    words = sys.argv[1:]
    if words[:1] != ["run"]:
        sys.exit(f"fake_docker.py handles 'run' only, not {words[:1]}")
    env = container_env(words[1:])
    os.execve(sys.executable, [sys.executable, str(SERVER), *words[1:]], env)


if __name__ == "__main__":
    main()
