"""SHA-256 for aimc: Python's own implementation until OpenSSL's is loaded anyway.

``hashlib.sha256`` is OpenSSL's: fast (~0.5 ms a MB here, ~2 us a 3 KB file) but ``import
hashlib`` loads ``_hashlib`` and libcrypto, ~4.5 ms of a command's start-up. Python's own
``_sha2`` (3.12+; ``_sha256`` before) imports in ~0.4 ms and is slower per byte (~4 ms a
MB, ~10 us a 3 KB file): the better buy for the few hundred KB a command such as
``compile`` hashes (~150 KB: ~0.5 ms), the worse for ``validate`` of a repository, whose
checker loads ``hashlib`` for its thousands of files. So :func:`sha256` gives OpenSSL's
hash once ``hashlib`` is loaded, Python's own before; both give the same digests. A Python
built without its own uses ``hashlib``'s. aimc hashes through :func:`sha256`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashlib import _Hash

__all__ = ["sha256"]


def _python_sha256() -> Callable[[bytes], _Hash] | None:
    """Python's own SHA-256 (``_sha2`` from 3.12, ``_sha256`` before), None without it."""
    for name in ("_sha2", "_sha256"):
        try:
            own: Callable[[bytes], _Hash] = importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
        return own
    return None


_OWN = _python_sha256()


def sha256(data: bytes = b"") -> _Hash:
    """A SHA-256 hash object, started with ``data``."""
    if _OWN is None or "hashlib" in sys.modules:
        import hashlib  # loaded already (or the only SHA-256 there is): see the module doc

        return hashlib.sha256(data)
    return _OWN(data)
