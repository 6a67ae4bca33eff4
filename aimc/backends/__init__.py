"""Inference engines aimc serves with, one module each, registered in one place.

:mod:`aimc.backends.base` holds the :class:`Backend` record and the registry;
:mod:`aimc.backends.vocabulary` each backend's flag vocabulary. The built-in backends are
the modules imported below (a new engine is one more module and one more name here); a
program or test may :func:`register` its own.
"""

from __future__ import annotations

# Registration order is the order of the choices and the schemas' enum: vLLM first.
from aimc.backends import vllm

# isort: split
from aimc.backends import sglang

# isort: split
from aimc.backends.base import BACKENDS, Backend, get, names, register
from aimc.backends.vocabulary import Vocabulary, use_installed, vocabulary, vocabulary_fingerprint

__all__ = [
    "BACKENDS",
    "Backend",
    "Vocabulary",
    "get",
    "names",
    "register",
    "sglang",
    "use_installed",
    "vllm",
    "vocabulary",
    "vocabulary_fingerprint",
]
