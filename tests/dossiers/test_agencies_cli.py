"""The command line for agencies (issue 19): agency-create prints the first secret once,
agency-secret-rotate a new one with the overlap, agency-status-code-set edits the
mapping; the secret the CLI printed signs a batch the API accepts (sync tests: the CLI
runs its own event loop; the API is called from a loop of its own afterwards)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime

import pytest

from app.cli import main
from app.core.sealed import unseal
from tests.dossiers.conftest import signed_headers
from tests.test_cli import fetch


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def test_agency_create_rotate_and_map_from_the_cli(database, capsys, settings):
    code = f"CLI-{uuid.uuid4().hex[:6]}"
    [unit] = fetch("SELECT code FROM units ORDER BY code LIMIT 1")
    status, out, _ = run_cli(
        capsys, "agency-create", "--code", code, "--name-vi", "Sở Xây dựng", "--unit", unit["code"]
    )
    assert status == 0
    first = re.search(r"(whsec_\S+)", out)[1]
    [row] = fetch(
        "SELECT a.name_en, u.code AS unit, count(s.id) AS secrets FROM agencies a "
        "JOIN units u ON u.id = a.unit_id JOIN agency_secrets s ON s.agency_id = a.id "
        "WHERE a.code = $1 GROUP BY a.name_en, u.code",
        code,
    )
    assert (row["name_en"], row["unit"], row["secrets"]) == ("Sở Xây dựng", unit["code"], 1)

    status, out, _ = run_cli(
        capsys, "agency-secret-rotate", "--agency", code, "--overlap-hours", "2"
    )
    assert status == 0
    second = re.search(r"(whsec_\S+)", out)[1]
    assert second != first and "stay valid until" in out
    old, _ = fetch(
        "SELECT s.secret, s.expires_at - s.created_at AS left FROM agency_secrets s "
        "JOIN agencies a ON a.id = s.agency_id WHERE a.code = $1 ORDER BY s.created_at",
        code,
    )
    # stored sealed (migration 0060): the first one is the secret printed first
    assert unseal(settings.data_encryption_key, "agency-secret", old["secret"]) == first
    assert old["left"].total_seconds() <= 2 * 3600 + 60

    status, out, _ = run_cli(
        capsys, "agency-status-code-set", "--agency", code, "1=received", "9=completed"
    )
    assert status == 0
    status, _, _ = run_cli(capsys, "agency-status-code-set", "--agency", code, "--remove", "1")
    assert status == 0
    assert [
        (r["code"], r["status"])
        for r in fetch(
            "SELECT c.code, c.status FROM agency_status_codes c JOIN agencies a"
            " ON a.id = c.agency_id WHERE a.code = $1",
            code,
        )
    ] == [("9", "completed")]
    # refusals: an unknown status, an unknown agency, a taken code
    status, _, err = run_cli(capsys, "agency-status-code-set", "--agency", code, "2=lost")
    assert status == 2 and "refused" in err
    status, _, err = run_cli(capsys, "agency-secret-rotate", "--agency", "NO-SUCH")
    assert status == 1 and "agency_not_found" in err
    status, _, err = run_cli(
        capsys, "agency-create", "--code", code, "--name-vi", "x", "--unit", unit["code"]
    )
    assert status == 1 and "agency_code_taken" in err
    actions = [
        r["action"]
        for r in fetch("SELECT action FROM audit_log WHERE object_id = $1 ORDER BY id", code)
    ]
    assert actions == [
        "agency.created",
        "agency.secret_issued",
        "agency.secret_issued",
        "agency.status_code_set",
        "agency.status_code_set",
        "agency.status_code_removed",
    ]

    # the printed secret signs a batch the API accepts
    async def push() -> int:
        from app.main import create_app
        from tests.conftest import running

        application = create_app(settings)
        async with running(application) as client:
            body = json.dumps(
                {
                    "events": [
                        {
                            "id": "cli-1",
                            "type": "dossier.progress",
                            "dossier_code": "NONE-1",
                            "at": datetime.now(UTC).isoformat(),
                        }
                    ]
                }
            ).encode()
            r = await client.post(
                f"/api/v1/ingest/agencies/{code}/events",
                content=body,
                headers=signed_headers(second, body, datetime.now(UTC)),
            )
            assert r.status_code == 200, r.text
            return r.json()["counts"]["refused"]  # no such dossier: refused, but signed

    assert asyncio.run(push()) == 1
