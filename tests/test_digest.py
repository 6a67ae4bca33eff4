"""aimc.core.digest: Python's own SHA-256, the digests hashlib's OpenSSL one gives, without
loading OpenSSL."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from aimc.core.digest import sha256


@given(st.lists(st.binary(max_size=300), max_size=5))
def test_the_digests_are_hashlibs(parts: list[bytes]) -> None:
    ours, theirs = sha256(), hashlib.sha256()
    for part in parts:
        ours.update(part)
        theirs.update(part)
    assert ours.hexdigest() == theirs.hexdigest()
    assert ours.digest() == theirs.digest()
    whole = b"".join(parts)
    assert sha256(whole).hexdigest() == hashlib.sha256(whole).hexdigest()


def test_it_does_not_load_openssl() -> None:
    code = "import sys, aimc.core.digest as d; d.sha256(b'x'); print('_hashlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
