"""Hostile input: file size, nesting, alias expansion and echoed values stay bounded.

The CLI tests run ``python -m aimc`` in a subprocess (``process=True``: not in this
process, tests/helpers/cli.py) whose ``timeout=`` is the only time guard: a regression
fails with ``TimeoutExpired`` instead of hanging the suite.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from aimc.core.diagnostics import Diagnostic
from aimc.core.errors import ValidationFailed
from aimc.core.loader import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    Document,
    load_document,
    read_bytes,
    read_document,
)
from aimc.domain.schema import check_schema
from tests.conftest import CORPUS, ROOT, Result, run_cli

#: Seconds a hostile file may take before the test fails (the goal is well under 2).
TIMEOUT = 30
#: A diagnostic line; a whole-file problem (unreadable) names the file alone, no line:col.
DIAG = re.compile(r"^(?P<path>[^:]+)(?::(?P<line>\d+):(?P<col>\d+))?: error: (?P<message>.+)$")


def _validate(target: str) -> Result:
    return run_cli("validate", target, timeout=TIMEOUT, process=True)


def _only_error(result: Result) -> re.Match[str]:
    """The one diagnostic of a failed ``validate``, checked to be whole lines of text."""
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.out + result.err
    lines = result.out.splitlines()
    assert len(lines) in (2, 3), lines  # diagnostic, maybe its hint, summary
    assert lines[-1] == "1 error in 1 file"
    match = DIAG.match(lines[0])
    assert match, lines[0]
    return match


def _error(raw: bytes) -> Diagnostic:
    with pytest.raises(ValidationFailed) as info:
        load_document(raw, "x.yaml")
    (diag,) = info.value.diagnostics
    return diag


@pytest.mark.parametrize(
    ("name", "where", "message"),
    [
        ("alias-bomb", (7, 12), "YAML aliases expand to more than 20000 nodes"),
        ("deep-nesting", (3, 135), "YAML document is nested too deeply"),
        (
            "huge-value",
            (6, 16),
            "must be at most 200 character(s), got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            "xxxxxxxxxxxxxxxxxxxxxxx…' (921600 characters)",
        ),
    ],
)
def test_hostile_corpus_file_is_one_error_at_its_place(
    name: str, where: tuple[int, int], message: str
) -> None:
    """Failed before: the alias bomb ran for 30+ s and
    1.3 GB (here: TimeoutExpired), the deep nesting crashed libyaml's composer (exit 139,
    no output), and the huge value came back whole in jsonschema's message."""
    match = _only_error(_validate(f"tests/corpus/invalid/{name}.yaml"))
    assert (int(match["line"]), int(match["col"])) == where
    assert match["message"].removesuffix(" (at /model/description)") == message


def test_over_size_file_is_refused(tmp_path: Path) -> None:
    """Failed before: aimc read the whole file and then
    called this 1 MiB comment an empty file."""
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * MAX_FILE_BYTES + b"\n")
    match = _only_error(_validate(str(big)))
    assert match["message"] == "file is larger than 1 MiB"


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from([0, 1, 4095, 4096, 65536, 65537, MAX_FILE_BYTES - 1, MAX_FILE_BYTES])
    | st.integers(0, 200_000),
    st.integers(0, 70_000),
)
def test_read_bytes_reads_what_is_there_whatever_the_size_said(size: int, grown: int) -> None:
    """read_bytes sizes its first read by fstat's size: a file that grew after (or a
    /proc file that says 0) is still read whole, up to one byte past the limit."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp, "f.yaml")
        file.write_bytes(b"a" * size)
        fstat = os.fstat

        def grows(fd: int) -> os.stat_result:
            info = fstat(fd)
            with open(file, "ab") as more:  # written after the size was read
                more.write(b"b" * grown)
            return info

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "fstat", grows)
            got = read_bytes(file)
        assert got == (b"a" * size + b"b" * grown)[: MAX_FILE_BYTES + 1]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_a_file_whose_size_says_zero_is_read_whole() -> None:
    got = read_bytes(Path("/proc/self/status"))
    assert got.startswith(b"Name:") and b"\nPid:" in got and len(got) > 200


def test_file_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    """The limit is not one byte too strict. A guard for the limit, not a regression test:
    apart from importing ``MAX_FILE_BYTES`` it passes without the limit too."""
    text = b"kind: Recipe\nnote: "
    file = tmp_path / "full.yaml"
    file.write_bytes(text + b"x" * (MAX_FILE_BYTES - len(text) - 1) + b"\n")
    assert read_document(file).data["kind"] == "Recipe"


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_endless_file_is_refused() -> None:
    """Failed before: ``read_bytes()`` on
    /dev/zero grew until killed (here: TimeoutExpired)."""
    match = _only_error(_validate("/dev/zero"))
    assert (match["path"], match["message"]) == ("/dev/zero", "file is larger than 1 MiB")


@pytest.mark.parametrize("value", ["0x" + "f" * 4000, "1" + "0" * 5000, str(2**63)])
def test_an_integer_beyond_64_bits_is_a_diagnostic(tmp_path: Path, value: str) -> None:
    """Failed before: OverflowError in the estimate, or Python's int-to-text limit in a
    message ('internal error', exit 1)."""
    recipe = tmp_path / "r.yaml"
    text = (ROOT / "recipes/models/Qwen/Qwen3-8B.yaml").read_text()
    recipe.write_text(text.replace("layers: 36", f"layers: {value}", 1))
    match = _only_error(_validate(str(recipe)))
    assert match["message"].endswith("is not a valid int")
    assert (int(match["line"]), int(match["col"])) == (10, 13)


def test_a_pipe_nobody_writes_to_is_refused_not_waited_for(tmp_path: Path) -> None:
    """Failed before: opening the FIFO blocked until a writer came (here: TimeoutExpired)."""
    fifo = tmp_path / "recipe.yaml"
    os.mkfifo(fifo)
    match = _only_error(_validate(str(fifo)))
    assert match["message"] == "cannot read file: not a regular file"


def test_alias_bomb_in_a_recipe_directory_does_not_hang_the_catalog(tmp_path: Path) -> None:
    """Failed before: ``list`` expanded the bomb while
    listing (here: TimeoutExpired). A broken user recipe stops ``list`` with its
    diagnostics (exit 2), as ``test_invalid_user_recipe_stops_list_with_its_diagnostics``
    shows for a schema error; the bomb must do the same, and quickly."""
    d = tmp_path / "recipes"
    (d / "models/evil-org").mkdir(parents=True)
    (d / "models/example-org").mkdir(parents=True)
    shutil.copy(CORPUS / "invalid/alias-bomb.yaml", d / "models/evil-org/Bomb.yaml")
    shutil.copy(CORPUS / "valid/recipe-full.yaml", d / "models/example-org/Example-7B.yaml")
    result = run_cli("list", "models", "--recipes", str(d), timeout=TIMEOUT, process=True)
    assert result.code == 2
    assert "Traceback" not in result.err
    assert "Bomb.yaml:7:12: error: YAML aliases expand to more than 20000 nodes" in result.err


def test_control_characters_in_a_key_stay_escaped_on_one_line(tmp_path: Path) -> None:
    """Failed before: aimc printed the key's escape
    sequence and line break raw in the ``(at /pointer)`` part."""
    recipe = (CORPUS / "valid/recipe-full.yaml").read_text()
    recipe = recipe.replace("  facts:\n", '  facts:\n    "la\\e[2J\\nyers\\u2028x": 1\n', 1)
    file = tmp_path / "recipe.yaml"
    file.write_text(recipe)
    match = _only_error(_validate(str(file)))
    assert "\x1b" not in match[0] and "\u2028" not in match[0]
    assert match["message"].endswith(r"(at /model/facts/la\x1b[2J\nyers\u2028x)")


def test_long_values_are_quoted_as_excerpts() -> None:
    """Failed before: the fallback message (here
    uniqueItems) quoted the whole list and the unknown-key message quoted the whole key."""
    name = "a" * 5000
    raw = (CORPUS / "invalid/bad-enum.yaml").read_bytes()
    raw = raw.replace(b"[mi300x]", f"[{name}, {name}]".encode())
    raw = raw.replace(b"  facts:\n", f"  facts:\n    ? {'k' * 5000}\n    : 1\n".encode())
    messages = [d.message for d in check_schema(load_document(raw, "r.yaml"))]
    assert any("non-unique" in m for m in messages), messages
    assert any(m.startswith("unknown key 'kkkk") for m in messages), messages
    for message in messages:
        assert len(message) < 400, message[:400]
    assert any("(5000 characters)" in m for m in messages), messages


def test_messages_are_bounded_whatever_the_caller_passes() -> None:
    """Failed before: a Diagnostic kept any text."""
    diag = Diagnostic("f.yaml", 1, 1, "bad " + "v" * 10**6 + "\x07", hint="h\nint")
    assert len(diag.message) < 600
    assert diag.message.endswith(r"v\x07")
    assert "\n" not in diag.message and diag.format().count("\n") == 1
    assert dataclasses.replace(diag) == diag  # cutting again changes nothing


def test_depth_limit_is_exact_and_counts_aliases() -> None:
    """Failed before: the loader accepted 1000 levels and
    expanded aliases to any depth."""
    ok = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert load_document(ok, "x.yaml").data
    diag = _error(b"a:\n  " + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    assert (diag.line, diag.column, diag.rule) == (2, MAX_DEPTH + 2, "yaml")
    assert diag.message == "YAML document is nested too deeply"
    inner = b"[" * (MAX_DEPTH - 2) + b"]" * (MAX_DEPTH - 2)
    assert load_document(b"a: &a " + inner + b"\nb: [*a]\n", "x.yaml").data
    diag = _error(b"a: &a " + inner + b"\nb: [[*a]]\n")
    assert (diag.line, diag.column) == (2, 6)


def test_node_limit_counts_each_alias_as_its_anchor() -> None:
    """Failed before: the loader had no node limit."""
    items = ",".join(["x"] * 99)
    per_alias = 1 + 99  # the list and its items
    fits = (MAX_NODES - 104) // per_alias  # 104: the mapping, its keys, the anchored list

    def doc(aliases: int) -> bytes:
        return f"a: &a [{items}]\nb: [{', '.join(['*a'] * aliases)}]\n".encode()

    assert len(load_document(doc(fits), "x.yaml").data["b"]) == fits
    diag = _error(doc(fits + 1))
    assert diag.message == f"YAML aliases expand to more than {MAX_NODES} nodes"
    assert (diag.line, diag.column) == (2, 5 + 4 * fits)
    assert _error(b"[" + b"1," * MAX_NODES + b"]").message.startswith("YAML document has more")


def test_long_keys_cannot_multiply_into_huge_pointers() -> None:
    """Failed before: the loader kept one JSON Pointer per
    value: 20 keys of 1000 characters above 1000 values made 20 MB of pointers (the same
    shape at full size made tens of GB)."""
    path = "".join(f"{'  ' * i}? {chr(97 + i) * 1000}\n{'  ' * i}:\n" for i in range(20))
    raw = (path + "  " * 20 + "[" + ",".join(["x"] * 1000) + "]\n").encode()
    diag = _error(raw)
    assert diag.message == "YAML document expands to more than 16 MiB of text"
    assert diag.line == 41


def test_a_recursive_alias_is_named() -> None:
    """Failed before: the loader recursed until Python's
    limit and reported no place."""
    diag = _error(b"a: 1\nb: &b [1, {c: *b}]\n")
    assert (diag.line, diag.column) == (2, 15)
    assert diag.message == "YAML alias 'b' refers to a node that contains it"


@pytest.mark.parametrize(
    "raw", [b"a: " + b"1" * 5000, b"a: !!bool maybe", b"a: !!int x", b"a: !!float 1x"]
)
def test_a_value_its_tag_cannot_take_is_a_diagnostic(raw: bytes) -> None:
    """Failed before: the loader raised ValueError or KeyError
    (a traceback) from the YAML constructor."""
    diag = _error(raw)
    assert (diag.line, diag.column, diag.rule) == (1, 4, "yaml")
    assert "is not a valid" in diag.message and len(diag.message) < 200


def test_invalid_date_is_kept_as_text() -> None:
    """Failed before: the loader crashed on a date-shaped
    string that is no date."""
    assert load_document(b"a: 2024-13-45\n", "x.yaml").data == {"a": "2024-13-45"}


KEYS = st.text(alphabet="abcxyz_-/~", min_size=1, max_size=6)
SCALARS = st.one_of(
    st.integers(-(10**6), 10**6),
    st.booleans(),
    st.none(),
    st.text(alphabet=st.characters(categories=["L", "N", "P", "Zs"]), max_size=8),
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def shared_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A mapping whose values reuse earlier values (the dumper writes anchors/aliases)."""
    values: list[Any] = []
    for _ in range(draw(st.integers(1, 5))):
        refs = draw(st.lists(st.integers(0, len(values) - 1), max_size=3)) if values else []
        own = draw(st.one_of(st.lists(TREES, min_size=1, max_size=3), TREES.map(lambda t: [t])))
        values.append(own + [values[i] for i in refs])
    return {f"k{i}": v for i, v in enumerate(values)}


@settings(max_examples=80, deadline=None)
@given(shared_documents(), st.booleans())
def test_anchors_and_aliases_under_the_limits_load_as_ruamel_loads_them(
    data: dict[str, Any], flow: bool
) -> None:
    """Guards against the limits rejecting or changing legitimate anchors and aliases; it
    passes without the limits too (written as the no-regression half)."""
    buf = io.StringIO()
    dumper = YAML(typ="safe")
    dumper.default_flow_style = flow
    dumper.dump(data, buf)
    text = buf.getvalue()
    doc = load_document(text.encode(), "p.yaml")
    assert doc.data == YAML(typ="safe").load(text) == data


TOKENS = [
    *("[", "]", "{", "}", "&a ", "*a", "&b ", "*b", ": ", "- ", ", ", "? ", "\n", "  "),
    *("!!int ", "!!bool ", "!!float ", "!!binary ", "!!set ", "<<: ", "'", '"', "#"),
    *("|\n", ">-\n", "%YAML 1.1\n", "---\n", "...\n", "2024-13-45", "1e5", "0x"),
]
YAMLISH = st.lists(
    st.one_of(st.sampled_from(TOKENS), st.text(alphabet="ab1.~\t", min_size=1, max_size=3)),
    max_size=40,
).map(lambda parts: "".join(parts).encode())


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), YAMLISH))
def test_any_bytes_give_a_document_or_validation_failed(raw: bytes) -> None:
    """Failed before: the loader let the constructor's
    ValueError and KeyError escape (e.g. ``!!bool a``)."""
    try:
        doc = load_document(raw, "r.yaml")
    except ValidationFailed as exc:
        assert len(exc.diagnostics) == 1
        assert "\n" not in exc.diagnostics[0].message
    else:
        assert isinstance(doc, Document)


def test_hostile_corpus_files_stay_under_the_size_limit() -> None:
    """The corpus tests the limits it is meant to test, not the size check. A guard, not a
    regression test: apart from importing ``MAX_FILE_BYTES`` it passes on the old code."""
    for name in ("alias-bomb", "deep-nesting", "huge-value"):
        assert os.path.getsize(ROOT / f"tests/corpus/invalid/{name}.yaml") < MAX_FILE_BYTES


def test_a_hardware_memory_beyond_any_gpu_is_refused_at_its_line(tmp_path: Path) -> None:
    """Failed before: memory_gib 1e307 passed the schema and the estimates overflowed
    ('internal error: OverflowError' from validate, list configs and compile)."""
    profile = tmp_path / "hardware" / "h100.yaml"
    profile.parent.mkdir()
    text = (ROOT / "recipes/hardware/h100.yaml").read_text()
    profile.write_text(text.replace("memory_gib: 79.19", "memory_gib: 1e307", 1))
    match = _only_error(_validate(str(profile)))
    assert match["message"] == "must be at most 1048576, got 1e+307 (at /memory_gib)"
