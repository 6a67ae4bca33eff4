"""``python -m aimc``: the same as the ``aim-engine`` command."""

from aimc.cli import main

main()
