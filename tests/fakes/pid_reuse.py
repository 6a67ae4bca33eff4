"""A pid reused between ``stop``'s check and its signal, for real.

Run as PID 1 of a fresh PID namespace (``unshare --user --map-root-user --pid --fork
--mount-proc python3 pid_reuse.py FOLDER``), where pids are handed out predictably and
``/proc/sys/kernel/ns_last_pid`` chooses the next one. It starts a "server" (a session
leader working in FOLDER, as aimc's runs are) and records it; :func:`aimc.run.process.verify`
then proves the record, and right after that proof the server exits and a foreign session
(also working in FOLDER) is started with the server's pid, before ``stop_record`` signals.
Prints one JSON line: whether the foreign process got the pid, whether stop reported the
run stopped, and whether the foreign process is still alive afterwards. Every process ends
with this one (the namespace's init).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from aimc.core.records import RunRecord
from aimc.run import process, runs


def main() -> None:
    folder = Path(sys.argv[1]).resolve()
    server = subprocess.Popen(["sleep", "300"], cwd=folder, start_new_session=True)
    stat = process._proc_stat(server.pid)  # Popen returns once the child exec'd, in FOLDER
    assert stat is not None
    record = RunRecord(
        name="victim",
        pid=server.pid,
        container_id=f"pid:{server.pid}",
        port=1,
        endpoint_url="http://localhost:1",
        folder=str(folder),
        log=str(folder / "server.log"),
        launcher="process",
        model="m",
        gpu_count=1,
        precision="fp32",
        backend="vllm",
        health_path="/health",
        started=time.time(),
        start_time=stat.start_time,
        sid=server.pid,
        boot_id=process._boot_id(),
    )
    real_verify = runs.verify
    foreign: list[subprocess.Popen[bytes]] = []

    def verify_then_reuse(rec: RunRecord) -> bool:
        proved = real_verify(rec)
        server.kill()
        server.wait()  # reaped: its pid is free
        Path("/proc/sys/kernel/ns_last_pid").write_text(str(rec.pid - 1))
        foreign.append(subprocess.Popen(["sleep", "300"], cwd=folder, start_new_session=True))
        return proved

    runs.verify = verify_then_reuse  # type: ignore[assignment]
    proved = real_verify(record)
    stopped = runs.stop_record(record)
    other = foreign[0]
    print(
        json.dumps(
            {
                "proved": proved,
                "reused": other.pid == record.pid,
                "stopped": stopped,
                "foreign_alive": other.poll() is None,
            }
        )
    )


if __name__ == "__main__":
    main()
