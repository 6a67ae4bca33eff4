"""The typed domain of the catalog: recipe directories, recipes and hardware profiles.

:class:`Recipe` and :class:`Hardware` wrap a validated document; :class:`RecipeRoot` is
one recipe directory and :func:`recipe_roots` their precedence order (``--recipes``
directories, then ``$AIMC_RECIPES``, then the shipped recipes). Finding, loading and
checking them is :mod:`aimc.check.catalog`'s; everything that plans with them (resolve, policy,
lint) needs only these types, so it sits below the catalog.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from aimc.core import _resources
from aimc.core.loader import Document
from aimc.core.settings import setting

__all__ = [
    "ACTIVATION_DTYPES",
    "DEFAULT_BACKEND",
    "RECIPES_ENV",
    "Hardware",
    "Recipe",
    "RecipeRoot",
    "Validated",
    "backend_of",
    "config_id",
    "configurations",
    "default_backend",
    "iter_yaml",
    "model_id_from_path",
    "recipe_roots",
]

#: A weights entry's ``dtype`` (``--dtype``) each quantized precision runs in under the pinned
#: vLLM 0.32: those every quantization method aimc serves it with accepts
#: (``QuantizationConfig.get_supported_act_dtypes``, checked at start in
#: ``vllm/config/vllm.py``): fp8 ``fp8.py``, ``fbgemm_fp8.py``, ``modelopt.py``
#: ``ModelOptFp8Config``, compressed-tensors; int8 compressed-tensors; int4
#: ``auto_awq.py``, ``auto_gptq.py``, compressed-tensors; nvfp4 ``modelopt.py``
#: ``ModelOptNvFp4Config``; mxfp4 ``mxfp4.py`` (bfloat16 only). A 16- or 32-bit precision
#: runs in its own dtype (or ``auto``: lint/dtype).
ACTIVATION_DTYPES: Mapping[str, tuple[str, ...]] = {
    "fp8": ("bfloat16", "float16"),
    "int8": ("bfloat16", "float16"),
    "int4": ("bfloat16", "float16"),
    "nvfp4": ("bfloat16", "float16"),
    "mxfp4": ("bfloat16",),
}

#: Environment variable naming extra recipe directories (``os.pathsep``-separated).
RECIPES_ENV = "AIMC_RECIPES"
_YAML = (".yaml", ".yml")


class RecipeRoot:
    """One directory of recipes; ``label`` says where it came from. Never changed (a plain
    class, as :class:`Validated`: a dataclass costs each start-up ~0.7 ms)."""

    __slots__ = ("label", "path")

    def __init__(self, path: Path, label: str) -> None:
        self.path = path
        self.label = label


def recipe_roots(
    user_dirs: Sequence[str | Path] = (), environ: Mapping[str, str] | None = None
) -> list[RecipeRoot]:
    """The recipe directories in precedence order (first wins): ``user_dirs``, then
    ``$AIMC_RECIPES`` (:attr:`aimc.core.settings.Settings.recipe_dirs`, read from ``environ``,
    default this process's environment), then the shipped recipes."""
    roots = [RecipeRoot(Path(d), "--recipes") for d in user_dirs]
    roots += [RecipeRoot(d, RECIPES_ENV) for d in setting("recipe_dirs", environ)]
    roots.append(RecipeRoot(_resources.path("recipes"), "shipped"))
    return roots


class Validated:
    """A validated YAML document of a recipe directory (what Recipe and Hardware share),
    never changed (plain classes: the three dataclasses cost each start-up ~2 ms; read by
    attribute only, never compared, hashed, printed or replaced)."""

    __slots__ = ("doc", "root")

    def __init__(self, doc: Document, root: RecipeRoot) -> None:
        self.doc = doc
        self.root = root

    @property
    def data(self) -> dict[str, Any]:
        """The document as plain data."""
        data: dict[str, Any] = self.doc.data
        return data

    @property
    def path(self) -> str:
        """The file's display path."""
        return self.doc.path


class Recipe(Validated):
    """A validated model recipe."""

    __slots__ = ()

    @property
    def model_id(self) -> str:
        """The Hugging Face model id."""
        return str(self.data["model"]["id"])

    def configurations(self) -> Iterator[tuple[int, dict[str, Any], str]]:
        """``(index, configuration, its backend)`` for every configuration, in order."""
        return configurations(self.data)


class Hardware(Validated):
    """A validated hardware profile."""

    __slots__ = ()

    @property
    def name(self) -> str:
        """The target name."""
        return str(self.data["name"])


def model_id_from_path(models_dir: Path, file: Path) -> str:
    """``models/<org>/<name>.yaml`` -> ``org/name``."""
    rel = file.relative_to(models_dir).with_suffix("")
    return rel.as_posix()


def iter_yaml(directory: Path) -> Iterator[Path]:
    """YAML files below ``directory``, in a stable order: every folder, hidden ones too,
    except through a link to a folder (as ``rglob`` lists them, at a third of its cost: a
    command lists the catalog's folders several times, ``validate`` a whole repository).
    What :func:`os.walk` would find, from the entries' types :func:`os.scandir` read with
    the names (a stat only for a link); a folder that cannot be listed is passed over."""
    if not directory.is_dir():
        return
    found: list[Path] = []
    folders = [str(directory)]
    while folders:
        try:
            entries = list(os.scandir(folders.pop()))
        except OSError:
            continue
        for entry in entries:
            if _is(entry.is_dir):
                if not entry.is_symlink():
                    folders.append(entry.path)
            elif entry.name.endswith(_YAML):
                file = Path(entry.path)
                if file.suffix in _YAML and _is(entry.is_file):
                    found.append(file)
    yield from sorted(found)


def _is(test: Callable[[], bool]) -> bool:
    """``test()`` (a :class:`os.DirEntry`'s), False where it cannot tell (as ``os.walk``)."""
    try:
        return test()
    except OSError:
        return False


def config_id(conf: Mapping[str, Any], index: int) -> str:
    """A configuration's id, or ``#N`` (1-based) when it has none."""
    return str(conf.get("id") or f"#{index + 1}")


#: The backend of a configuration that names none, in a recipe whose defaults name none.
DEFAULT_BACKEND = "vllm"


def default_backend(data: Mapping[str, Any]) -> str:
    """The backend of the recipe ``data``'s configurations that name none: its
    ``defaults.backend``, else :data:`DEFAULT_BACKEND`."""
    return str(data.get("defaults", {}).get("backend", DEFAULT_BACKEND))


def backend_of(data: Mapping[str, Any], conf: Mapping[str, Any]) -> str:
    """The backend configuration ``conf`` of the recipe ``data`` serves with: its own,
    else the recipe's default (:func:`default_backend`)."""
    return str(conf.get("backend", default_backend(data)))


def configurations(data: Mapping[str, Any]) -> Iterator[tuple[int, dict[str, Any], str]]:
    """``(index, configuration, its backend)`` for every configuration of the recipe
    ``data``, in order."""
    for i, conf in enumerate(data["configurations"]):
        yield i, conf, backend_of(data, conf)
