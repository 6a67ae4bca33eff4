"""Secrets hidden in text: the one masking rule every message, record and report applies.

A leaf module (no aimc imports) so that the lowest layers, :mod:`aimc.core.diagnostics`
included, can mask what they are given; :mod:`aimc.core.safety` re-exports :func:`mask`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

__all__ = ["SECRET_ENV", "add_secret_env", "mask"]

#: Token shapes of the usual providers (Hugging Face, OpenAI-style, GitHub, AWS, Slack).
#: The distinctive prefixes match anywhere, also glued to a word (``tokenhf_...``,
#: ``HF_TOKEN_hf_...``); ``sk-`` only at a word's start.
_TOKEN = re.compile(
    r"(hf_|gh[pousr]_)[A-Za-z0-9]{20,}|(github_pat_|xox[abprs]-)[A-Za-z0-9_\-]{20,}"
    r"|\b(sk-)[A-Za-z0-9_\-]{20,}"
    r"|\b(AKIA)[0-9A-Z]{16}\b|(?i:\b(bearer\s+))[A-Za-z0-9._~+/\-]{8,}=*"
)
#: The shortest secret masked: a variable's shorter value is too common a text to hide
#: (and every token shape is longer).
_SHORTEST = 6
#: The caller's variables whose values are masked wherever they appear: Hugging Face's,
#: the API key aimc itself sends to the servers it starts (``VLLM_API_KEY``, also what an
#: OpenAI-style client reads); a backend registered with secret variables of its own adds
#: them (:func:`add_secret_env`, called by :func:`aimc.backends.register`).
SECRET_ENV: list[str] = ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "VLLM_API_KEY", "OPENAI_API_KEY"]


def add_secret_env(names: Iterable[str]) -> None:
    """Mask the values of the variables ``names`` too, from now on."""
    SECRET_ENV.extend(name for name in names if name not in SECRET_ENV)


def mask(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with secrets replaced by ``***``: token-shaped words, and the values of
    the caller's secret variables (:data:`SECRET_ENV`) wherever they appear, as given and
    without surrounding whitespace (huggingface_hub strips ``HF_TOKEN`` before sending it,
    so a server echoing it echoes the stripped value)."""
    if len(text) < _SHORTEST:
        return text  # nothing that short is masked (the checker's anchor has no message)
    env = os.environ if environ is None else environ
    for name in SECRET_ENV:
        value = env.get(name, "")
        for secret in (value, value.strip()):
            if len(secret) >= _SHORTEST:
                text = text.replace(secret, "***")
    return _TOKEN.sub(lambda m: next((g for g in m.groups() if g), "") + "***", text)
