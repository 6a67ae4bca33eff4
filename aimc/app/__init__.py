"""Use cases: what aimc's commands do, shared by the CLI and the Python API.

Each module is one use case (compile, show, launch, ...): it takes parsed values (a
catalog, a :class:`~aimc.plan.request.Request`, a target name, an emitter name) and hands on a
result for the caller to print or return. A use case never reads command-line options and
never prints; ``aimc.cli`` parses and prints, ``aimc.api`` returns.

:mod:`aimc.app.compile` writes or ``--check``s a folder, :mod:`aimc.app.show` decides what
``show-config`` shows (and the no-GPU fallback), :mod:`aimc.app.launch` compiles a plan into
a run folder, readies the model cache, starts the server and waits until it serves.
"""
