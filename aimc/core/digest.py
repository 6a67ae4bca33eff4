"""SHA-256 for aimc, from Python's built-in implementation.

``hashlib.sha256`` is OpenSSL's: ``import hashlib`` loads ``_hashlib`` and libcrypto, ~4.5 ms
of every command's start-up, for the few hundred KB aimc hashes in one (~150 KB on
``compile``: ~0.5 ms here against ~0.1 ms with OpenSSL). Python's own ``_sha2`` (3.12+;
``_sha256`` before) imports in ~0.4 ms and gives the same digests. A Python built without
it falls back to ``hashlib``. aimc hashes through :func:`sha256` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["sha256"]

if TYPE_CHECKING:  # the same signature as hashlib's
    from hashlib import sha256
else:
    try:
        from _sha2 import sha256
    except ImportError:  # Python < 3.12 names the module _sha256
        try:
            from _sha256 import sha256
        except ImportError:  # a Python built without it: OpenSSL's
            from hashlib import sha256
