"""docker-compose.yml ships no usable secret (issue 17, item 1): without each one compose
refuses and names it; with all of them the file is valid. docker-compose is installed by
.ci/run (Debian's package)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = {
    "POSTGRES_PASSWORD": "placeholder-db",
    "SECRET_KEY": "placeholder-secret",
    "CITIZEN_ID_HASH_KEY": "placeholder-hash",
    "DATA_ENCRYPTION_KEY": "placeholder-seal",
    "MINIO_ROOT_PASSWORD": "placeholder-minio",
    "SMS_HTTP_URL": "http://sms.invalid",
}


def compose_config(env_vars: dict[str, str]) -> subprocess.CompletedProcess:
    compose = shutil.which("docker-compose")
    assert compose, (
        "docker-compose is missing: .ci/run installs it (apt-get install docker-compose)"
    )
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED}
    env.update(env_vars)
    return subprocess.run(
        [compose, "-f", "docker-compose.yml", "config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compose_is_valid_with_every_secret_given():
    result = compose_config(REQUIRED)
    assert result.returncode == 0, result.stderr
    assert "placeholder-secret" in result.stdout
    for shipped in ("change-me-in-production", "city-minio-secret", "POSTGRES_PASSWORD: city\n"):
        assert shipped not in result.stdout
    assert "SMS_BACKEND: http" in result.stdout


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_compose_refuses_without_a_secret_and_names_it(missing):
    result = compose_config({k: v for k, v in REQUIRED.items() if k != missing})
    assert result.returncode != 0
    assert f"set {missing} (" in result.stderr
