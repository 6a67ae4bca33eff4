"""The files aimc writes mean the same to the pinned vLLM as launch.sh's argv: vLLM's own
parser reads each vllm.yaml (marked ``server``: needs the real vLLM in .venv-vllm)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from aimc.app.pipeline import make_plan
from aimc.check.catalog import Catalog
from aimc.emit.emitters import compile_plan
from aimc.emit.render import server_argv
from aimc.plan.request import Request
from tests.conftest import ROOT
from tests.helpers.multinode import run_recorded, three_node_catalog

pytestmark = pytest.mark.server

LOAD = """
import json, sys
from vllm.entrypoints.launchers.cli_args import make_arg_parser
from vllm.utils.argparse_utils import FlexibleArgumentParser
parser = make_arg_parser(FlexibleArgumentParser())
print(json.dumps([parser.load_config_file(path) for path in sys.argv[1:]]))
"""

SETS = [
    (),
    ("enable-prefix-caching=false", "disable-log-stats=true"),
    ("enable-chunked-prefill=false", "max-num-seqs=64"),
]


@pytest.fixture(scope="module")
def vllm_python() -> Path:
    path = Path(os.environ.get("AIMC_TEST_VLLM_PYTHON") or ROOT / ".venv-vllm/bin/python")
    if not path.exists():
        pytest.fail(f"{path} not found: run scripts/setup-vllm.sh")
    return path


def test_vllm_reads_each_config_file_as_launch_sh_passes_it(
    vllm_python: Path, tmp_path: Path
) -> None:
    """``vllm serve --config`` is said to drop ``key: false``: for vLLM 0.32.0 that is
    true only of flags without a ``--no-`` form (where false is the default anyway); a
    negatable flag's false becomes ``--no-FLAG``. This holds aimc to that, per file."""
    paths, expected = [], []
    for i, sets in enumerate(SETS):
        request = Request(model="Qwen/Qwen3-8B", launcher="process", sets=sets)
        plan = make_plan(Catalog.default(), request, "h100")
        path = tmp_path / f"vllm-{i}.yaml"
        path.write_text(compile_plan(plan, request, "h100").files["vllm.yaml"])
        paths.append(str(path))
        expected.append(server_argv(plan))
    out = subprocess.run(
        [str(vllm_python), "-c", LOAD, *paths],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout  # fmt: skip
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen == expected
    assert "--no-enable-prefix-caching" in seen[1]


ROLE = """
import json, sys
from vllm.entrypoints.launchers.cli_args import make_arg_parser
from vllm.utils.argparse_utils import FlexibleArgumentParser
parser = make_arg_parser(FlexibleArgumentParser())
out = []
for argv in json.loads(sys.stdin.read()):
    a = parser.parse_args(argv)
    out.append([a.node_rank, a.master_addr, a.nnodes, a.headless,
                a.tensor_parallel_size, a.pipeline_parallel_size])
print(json.dumps(out))
"""


def test_vllm_reads_each_nodes_role_of_a_three_node_plan(vllm_python: Path, tmp_path: Path) -> None:
    """The head's and each worker's argv (launch.sh, launch-worker.sh with
    AIM_NODE_RANK 1 and 2) as vLLM's own parser reads them: rank, head address, node
    count, --headless only off the head."""
    catalog = three_node_catalog(tmp_path / "recipes")
    request = Request(
        model="meta-llama/Llama-3.1-405B-Instruct", precision="bf16", nodes=3, launcher="process"
    )
    plan = make_plan(catalog, request, "h100")
    out = tmp_path / "out"
    out.mkdir()
    for name, text in compile_plan(plan, request, "h100").files.items():
        (out / name).write_text(text)
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    argvs = []
    for script, rank in [("launch.sh", 0), ("launch-worker.sh", 1), ("launch-worker.sh", 2)]:
        env = {"AIM_MASTER_ADDR": "10.1.2.3", "AIM_NODE_RANK": str(rank)}
        code, err, seen = run_recorded(out / script, sandbox, env)
        assert code == 0, err
        argvs.append(seen["argv"][seen["argv"].index("-m") + 2 :])
    done = subprocess.run(
        [str(vllm_python), "-c", ROLE], input=json.dumps(argvs),
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == [
        [0, "10.1.2.3", 3, False, 8, 3],
        [1, "10.1.2.3", 3, True, 8, 3],
        [2, "10.1.2.3", 3, True, 8, 3],
    ]
