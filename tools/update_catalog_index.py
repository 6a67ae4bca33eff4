"""Regenerate ``recipes/index.json``: the shipped files that passed validation.

    .venv/bin/python tools/update_catalog_index.py

At run time a shipped file whose path and sha256 are in the index is not schema-checked
again (jsonschema is not even imported), which keeps ``compile`` fast. A file that was
edited after the index was made no longer matches and is fully validated. The test suite
checks that the index is complete and current.
"""

from __future__ import annotations

import json
import sys

from aimc.check.catalog import Catalog
from aimc.check.checker import check_paths
from aimc.core import _resources
from aimc.core.loader import read_document
from aimc.domain.recipe import RecipeRoot


def main() -> None:
    root = _resources.path("recipes")
    result = check_paths([root], Catalog([RecipeRoot(root, "shipped")]))
    if not result.ok():
        sys.exit("the shipped catalog is not valid; run aim-engine validate")
    files = sorted(p for p in root.rglob("*.yaml"))
    index = {p.relative_to(root).as_posix(): read_document(p).sha256 for p in files}
    (root / "index.json").write_text(json.dumps({"validated": index}, indent=1) + "\n")
    print(f"{len(index)} files indexed")


if __name__ == "__main__":
    main()
