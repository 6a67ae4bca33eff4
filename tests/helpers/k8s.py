"""Reading what the Kubernetes emitter writes as a cluster would: the YAML, the kubelet's
``$(VAR)`` expansion, and the Kubernetes release whose schemas the tests validate with."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
from ruamel.yaml import YAML

#: The newest Kubernetes release whose schemas kubernetes-validate ships.
K8S_VERSION = kubernetes_validate.utils.latest_version()


def load_yaml(text: str) -> Any:
    """One YAML document, read safely."""
    return YAML(typ="safe", pure=True).load(text)


def kubelet_expand(text: str, env: dict[str, str]) -> str:
    """What the kubelet makes of an arg or env value: ``$(NAME)`` expanded when NAME is
    defined, ``$$`` read as ``$`` (a transcription of Kubernetes'
    third_party/forked/golang/expansion/expand.go)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                close = text.find(")", i + 2)
                if close != -1:
                    name = text[i + 2 : close]
                    out.append(env.get(name, f"$({name})"))
                    i = close + 1
                    continue
                out.append("$(")
                i += 2
                continue
            out.append("$" + nxt)
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


#: Text that YAML or the kubelet would read as something else (a mapping, a list, an
#: anchor, a tag, a comment, a boolean, a number, null, a variable reference) unless the
#: writer quotes and escapes it.
YAML_HOSTILE = [
    "a: b",
    "- x",
    "{x: 1}",
    "&a *a",
    "!!python/object:os.system",
    "#",
    "'\"\\",
    "$(HF_TOKEN)",
    "$$(HF_TOKEN)",
    "${HOME}",
    "a$",
    "$",
    "\u2028",
    "yes",
    "0x1A",
    "null",
]
