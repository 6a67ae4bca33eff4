"""aimc.core.digest: the digests hashlib gives; Python's own SHA-256 until OpenSSL's is
loaded anyway."""

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


def test_it_loads_no_openssl_and_uses_it_once_loaded() -> None:
    """A command that hashes a few files pays no OpenSSL import; validate of a repository,
    whose checker loads hashlib, hashes its thousands of files with OpenSSL's."""
    code = (
        "import sys, aimc.core.digest as d\n"
        "d.sha256(b'x')\n"
        "print('_hashlib' in sys.modules)\n"
        "import hashlib\n"
        "print(type(d.sha256(b'x')) is type(hashlib.sha256()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "True"]
