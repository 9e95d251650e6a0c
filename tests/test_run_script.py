"""`make run`'s supervision (scripts/serve.sh, issue 17 item 10): a dying worker is
restarted with backoff while the API keeps serving; Ctrl-C stops both; an API that dies
stops everything. The script runs for real with stand-in commands: a small HTTP server
for the API and a shell script for the worker that records each start and dies."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def starts(path: Path) -> list[float]:
    return [float(x) for x in path.read_text().split()] if path.exists() else []


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def serve(tmp_path: Path, worker_lives: float, **env: str) -> tuple[subprocess.Popen, int, Path]:
    port = free_port()
    log = tmp_path / "worker-starts"
    worker = tmp_path / "worker.sh"
    worker.write_text(f"date +%s.%N >> {log}\nsleep {worker_lives}\nexit 3\n")
    environ = {
        **os.environ,
        "API_CMD": f"{sys.executable} -m http.server {port} --bind 127.0.0.1 -d {tmp_path}",
        "WORKER_CMD": f"sh {worker}",
        **env,
    }
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "serve.sh")],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal would give it
    )
    return process, port, log


def ctrl_c(process: subprocess.Popen) -> tuple[str, str]:
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group
    out, err = process.communicate(timeout=10)
    return out, err


def assert_group_gone(pgid: int) -> None:
    def gone() -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, 5, "every process of the group to stop")


def test_a_dying_worker_is_restarted_with_backoff_while_the_api_serves(tmp_path):
    process, port, log = serve(tmp_path, worker_lives=0.2)
    try:
        wait_for(lambda: api_answers(port), 10, "the API")
        # the worker dies at once, three times: restarted after 1 s, then 2 s
        deadline = time.monotonic() + 12
        while len(starts(log)) < 3:
            assert time.monotonic() < deadline, "the worker was not restarted"
            assert process.poll() is None, "the script stopped when the worker died"
            assert api_answers(port), "the API stopped serving when the worker died"
            time.sleep(0.2)
        first, second, third = starts(log)[:3]
        assert 1.1 <= second - first < 2.0  # lived 0.2 s + waited 1 s
        assert 2.1 <= third - second < 3.2  # lived 0.2 s + waited 2 s: backoff doubles
        assert api_answers(port)
    finally:
        out, err = ctrl_c(process)
    assert process.returncode == 130
    assert "restarting it in 1 s (the API keeps serving)" in err
    assert "restarting it in 2 s" in err
    assert "Console" in out and "planned" not in out  # item 17: the banner
    assert not api_answers(port)
    assert_group_gone(process.pid)
    count = len(starts(log))
    time.sleep(1.5)
    assert len(starts(log)) == count, "the worker was restarted after Ctrl-C"


def test_backoff_resets_after_the_worker_stayed_up(tmp_path):
    process, port, log = serve(tmp_path, worker_lives=1.2, WORKER_BACKOFF_RESET_SECONDS="1")
    try:
        wait_for(lambda: len(starts(log)) >= 3, 12, "three worker starts")
        first, second, third = starts(log)[:3]
        # each run lasted longer than the reset period: every wait is 1 s again
        assert 2.1 <= second - first < 3.0
        assert 2.1 <= third - second < 3.0
        assert api_answers(port)
    finally:
        ctrl_c(process)
    assert_group_gone(process.pid)


def test_when_the_api_dies_everything_stops(tmp_path):
    worker = tmp_path / "worker.sh"
    worker.write_text(f"echo up >> {tmp_path / 'worker-up'}\nexec sleep 60\n")
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "serve.sh")],
        env={**os.environ, "API_CMD": "sh -c exit", "WORKER_CMD": f"sh {worker}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert "API exited with status 0; stopping the worker" in err
    assert_group_gone(process.pid)
