"""Damaged and foreign files for the caches beside aimc's bytecode
(:class:`aimc.core.filecache.FileCache`).

A damage is any bytes, a cut at a place, a flipped byte, or a named foreign content the test
module makes itself (a well-formed file that answers another question).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from hypothesis import strategies as st

from aimc.core.filecache import FileCache


def damages(size: int, foreign: Sequence[str]) -> st.SearchStrategy[object]:
    """Any bytes, ``("cut", n)``, ``("flip", i, x)`` (places up to ``size``, wrapped to the
    file's length) or one of the names ``foreign``."""
    return st.one_of(
        st.binary(max_size=300),
        st.integers(min_value=0, max_value=size).map(lambda n: ("cut", n)),
        st.tuples(st.integers(0, size), st.integers(1, 255)).map(lambda t: ("flip", *t)),
        st.sampled_from(list(foreign)),
    )


def damaged(good: bytes, damage: object) -> bytes:
    """``good`` with a damage that is not a foreign name applied."""
    if isinstance(damage, bytes):
        return damage
    assert isinstance(damage, tuple), damage
    if damage[0] == "cut":
        return good[: damage[1] % len(good)]
    _, i, x = damage
    i %= len(good)
    return good[:i] + bytes([good[i] ^ x]) + good[i + 1 :]


def framed(cache: FileCache, body: bytes) -> bytes:
    """A file ``cache`` checks as its own (its header and the body's SHA-256) holding ``body``."""
    return cache.header + hashlib.sha256(body).digest() + body
