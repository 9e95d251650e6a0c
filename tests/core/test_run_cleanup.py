"""A test run leaves nothing behind in /tmp or Redis (issue 17, item 17). A run cannot
watch its own teardown, so this runs pytest on a tiny test, with tests/conftest.py as
its plugin, in a subprocess: the tiny test writes into the run's photo store and Redis
prefix (its own keys and arq's for its queue), then the outer test checks both are gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from tests.conftest import REDIS_URL

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, os
from pathlib import Path

import redis

from tests import conftest


def test_leave_traces():
    store = Path(os.environ["STORAGE_DIR"])
    (store / "photos").mkdir(parents=True)
    (store / "photos" / "one.jpg").write_bytes(b"jpeg")
    client = redis.Redis.from_url(conftest.REDIS_URL)
    prefix = os.environ["REDIS_PREFIX"]
    client.set(f"{prefix}:rl:probe", 1)
    client.set(f"arq:result:{prefix}:queue:route:probe", 1)
    client.zadd(f"{prefix}:queue", {"probe": 1})
    client.close()
    Path(os.environ["PROBE_OUT"]).write_text(
        json.dumps({"store": str(store), "prefix": prefix})
    )
"""


def test_a_run_removes_its_photo_store_and_redis_keys(tmp_path):
    (tmp_path / "test_probe.py").write_text(PROBE)
    out = tmp_path / "probe.json"
    env = {**os.environ, "PROBE_OUT": str(out)}
    env.pop("KEEP_TEST_DB", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest"]
        + ["-c", str(ROOT / "pyproject.toml"), str(tmp_path / "test_probe.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    probe = json.loads(out.read_text())
    assert probe["store"].startswith("/tmp/city-test-storage-")
    assert not Path(probe["store"]).exists()
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert list(client.scan_iter(match=f"*{probe['prefix']}*", count=1000)) == []
    finally:
        client.close()
