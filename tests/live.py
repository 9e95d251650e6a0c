"""The API served by granian in a process of its own, as ``scripts/serve.sh`` serves it,
on this run's database, Redis prefix and secrets, for tests that drive it with an
off-the-shelf client over real TCP (Open311's ``georeport``, tus's ``tuspy``).

Each test module passes the port range its author was given on the shared machine."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT_DIR = Path(__file__).resolve().parents[1]
START_SECONDS = 60


def free_port(ports: range | None = None) -> int:
    """A free loopback port: the first of ``ports``, or one the kernel picks."""
    if ports is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port in {ports.start}-{ports.stop - 1}", pytrace=False)


def _log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def live_server(ports: range | None, log_dir: Path, **env: str) -> Iterator[str]:
    """Start granian on a free port of ``ports`` (any free port with None); yield its base
    URL; stop it (its whole process group) at the end. ``env`` adds to this run's
    environment. Its output goes to ``log_dir``/granian.log, whose tail a failure shows."""
    port = free_port(ports)
    base_url = f"http://127.0.0.1:{port}"
    log_path = log_dir / "granian.log"
    environment = {**os.environ, "PYTHONPATH": str(ROOT_DIR), "PUBLIC_BASE_URL": base_url, **env}
    command = [
        sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
        "app.main:create_app", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--log-level", "warning",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=ROOT_DIR, env=environment, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if server.poll() is not None:
                pytest.fail(
                    f"the API exited with {server.returncode} while starting; "
                    f"{log_path}:\n{_log_tail(log_path)}",
                    pytrace=False,
                )
            try:
                if httpx.get(f"{base_url}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the API did not answer /health/live within {START_SECONDS} s; "
                    f"{log_path}:\n{_log_tail(log_path)}",
                    pytrace=False,
                )
            time.sleep(0.1)
        yield base_url
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
