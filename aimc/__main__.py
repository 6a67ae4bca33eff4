"""``python -m aimc`` and the console scripts ``aim-engine`` / ``aimc``: the command line,
started with the cyclic garbage collector paused.

Start-up only makes objects that live as long as the process (modules, classes, functions,
click's commands): the collector's ~27 passes over them while a command's modules load
free nothing, and cost ~5 ms of a ~100 ms ``compile``. So :func:`main` turns the collector
off before importing the command line, and :func:`aimc.cli.main` turns it back on once the
command's module is loaded, :func:`gc.freeze`-ing what start-up made (the collector never
scans it again, nor at exit), before the command runs: a long ``validate`` or ``run``
collects as usual. Only these entry points do this: a program that imports aimc, or calls
:func:`aimc.cli.main` itself, keeps its collector as it set it.
"""

from __future__ import annotations

import gc


def main() -> None:
    """The console scripts' entry point."""
    gc.disable()
    from aimc.cli import main as cli_main  # the command line, loaded with the collector off

    cli_main(gc_paused=True)


if __name__ == "__main__":
    main()
