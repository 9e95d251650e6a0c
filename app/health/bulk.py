"""A FHIR Bulk Data Access (IG v2) client: the health system's server exports, we pull.

Kick-off ``GET <HEALTH_BULK_EXPORT_URL>?_type=…`` with ``Prefer: respond-async`` → 202
and a ``Content-Location`` (the status URL, kept on the job so a crash resumes polling
instead of exporting again). The status URL answers 202 while it works (we wait what its
``Retry-After`` says, at most ``HEALTH_BULK_MAX_WAIT_SECONDS``; 429/503 with Retry-After
are waited out the same way), then 200 with the manifest. Each output file is streamed to
``HEALTH_IMPORT_DIR/<job id>/`` (the bearer token too when the manifest requires it),
becomes a file of the job (Patient files first), and the status URL is DELETEd. An export
not complete by ``HEALTH_BULK_TIMEOUT_SECONDS`` is cancelled (DELETE) and the job fails
with that reason; so does any error answer, with its status code.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import urljoin

import asyncpg
import httpx
import msgspec

from app.health import lifecycle
from app.settings import Settings

log = logging.getLogger("city.health")

# the types asked for (what the book keeps); the server may send fewer
EXPORT_TYPES = (
    "Patient",
    "Practitioner",
    "Organization",
    "Encounter",
    "Condition",
    "AllergyIntolerance",
    "Immunization",
    "Observation",
    "DiagnosticReport",
    "MedicationRequest",
    "MedicationStatement",
    "Procedure",
)
_ORDER = {"Patient": 0, "Practitioner": 1, "Organization": 1}

Step = Literal["importing", "failed", "waiting"]


class OutputFile(msgspec.Struct):
    type: str
    url: str
    count: int | None = None


class Manifest(msgspec.Struct):
    transactionTime: str | None = None  # noqa: N815
    requiresAccessToken: bool = False  # noqa: N815
    output: list[OutputFile] = []
    error: list[OutputFile] = []


class BulkFailure(Exception):
    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def retry_after(response: httpx.Response, now: datetime, cap: int) -> float:
    """Seconds to wait as the server asked (delta-seconds or an HTTP date), within [1, cap]."""
    value = response.headers.get("retry-after", "").strip()
    seconds: float = 1.0
    if value.isdigit():
        seconds = float(value)
    elif value:
        try:
            seconds = (parsedate_to_datetime(value) - now).total_seconds()
        except (TypeError, ValueError):
            seconds = 1.0
    return max(1.0, min(float(cap), seconds))


def _headers(settings: Settings, accept: str) -> dict[str, str]:
    headers = {"Accept": accept}
    if settings.health_bulk_token:
        headers["Authorization"] = f"Bearer {settings.health_bulk_token}"
    return headers


async def _fail(
    pg: asyncpg.Connection, job_id: uuid.UUID, current: str, code: str, params: dict[str, object]
) -> Step:
    action = "timeout" if code == "health_bulk_timeout" else "fail"
    await lifecycle.transition(
        pg, job_id, current, "failed", action, code, msgspec.json.encode(params).decode()
    )
    log.warning("health_bulk_failed", extra={"job": str(job_id), "code": code, **params})
    return "failed"


async def export(
    pg: asyncpg.Connection,
    settings: Settings,
    job_id: uuid.UUID,
    status: str,
    deadline: float,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[Step, float]:
    """Kick off (if not yet), poll, download. (``importing``: the files are the job's;
    ``failed``; ``waiting``: call again after the returned seconds)."""
    async with httpx.AsyncClient(
        transport=transport, timeout=httpx.Timeout(30.0), follow_redirects=False
    ) as client:
        try:
            if status == "queued":
                await _kick_off(pg, client, settings, job_id)
                status = "exporting"
            return await _poll_and_download(pg, client, settings, job_id, deadline)
        except BulkFailure as exc:
            return await _fail(pg, job_id, status, exc.code, exc.params), 0.0
        except httpx.HTTPError as exc:
            kind = type(exc).__name__
            return await _fail(pg, job_id, status, "health_bulk_unreachable", {"error": kind}), 0.0


async def _kick_off(
    pg: asyncpg.Connection, client: httpx.AsyncClient, settings: Settings, job_id: uuid.UUID
) -> None:
    url = settings.health_bulk_export_url
    if not url:
        raise BulkFailure("health_bulk_not_configured")
    headers = _headers(settings, "application/fhir+json") | {"Prefer": "respond-async"}
    response = await client.get(url, params={"_type": ",".join(EXPORT_TYPES)}, headers=headers)
    location = response.headers.get("content-location")
    if response.status_code != 202 or not location:
        raise BulkFailure("health_bulk_kickoff_refused", status=response.status_code)
    async with pg.transaction():
        await pg.execute(
            "UPDATE health_import_jobs SET bulk_status_url = $2,"
            " bulk_deadline = now() + make_interval(secs => $3) WHERE id = $1",
            job_id,
            urljoin(url, location),
            float(settings.health_bulk_timeout_seconds),
        )
        await lifecycle.transition(pg, job_id, "queued", "exporting", "kick_off")


async def _poll_and_download(
    pg: asyncpg.Connection,
    client: httpx.AsyncClient,
    settings: Settings,
    job_id: uuid.UUID,
    deadline: float,
) -> tuple[Step, float]:
    row = await pg.fetchrow(
        "SELECT bulk_status_url, bulk_deadline <= now() AS expired FROM health_import_jobs"
        " WHERE id = $1",
        job_id,
    )
    assert row is not None
    status_url: str = row["bulk_status_url"]
    while True:
        if row["expired"]:
            await _cancel(client, settings, status_url)
            raise BulkFailure("health_bulk_timeout", seconds=settings.health_bulk_timeout_seconds)
        response = await client.get(status_url, headers=_headers(settings, "application/json"))
        if response.status_code == 200:
            break
        transient = response.status_code in (429, 503) and "retry-after" in response.headers
        if response.status_code != 202 and not transient:
            raise BulkFailure("health_bulk_export_failed", status=response.status_code)
        wait = retry_after(response, datetime.now(UTC), settings.health_bulk_max_wait_seconds)
        await pg.execute(
            "UPDATE health_import_jobs SET progressed_at = now() WHERE id = $1", job_id
        )
        if time.monotonic() + wait > deadline:
            return "waiting", wait
        await asyncio.sleep(wait)
        row = await pg.fetchrow(
            "SELECT bulk_status_url, bulk_deadline <= now() AS expired FROM health_import_jobs"
            " WHERE id = $1",
            job_id,
        )
        assert row is not None
    try:
        manifest = msgspec.json.decode(response.content, type=Manifest)
    except msgspec.DecodeError:
        raise BulkFailure("health_bulk_manifest_invalid") from None
    directory = await asyncio.to_thread(_job_dir, settings, job_id)
    outputs = sorted(manifest.output, key=lambda o: _ORDER.get(o.type, 2))
    files: list[tuple[str, str]] = []
    for number, output in enumerate(outputs, start=1):
        name = f"{number:04d}-{''.join(ch for ch in output.type if ch.isalnum())[:40]}.ndjson"
        path = os.path.join(directory, name)
        await _download(client, settings, urljoin(status_url, output.url), path, manifest)
        files.append((path, name))
    async with pg.transaction():
        await pg.executemany(
            "INSERT INTO health_import_files (job_id, position, path, name, format)"
            " VALUES ($1, $2, $3, $4, 'ndjson') ON CONFLICT DO NOTHING",
            [(job_id, n, path, name) for n, (path, name) in enumerate(files, start=1)],
        )
        if manifest.error:
            await pg.execute(
                "INSERT INTO health_import_errors (job_id, code, field) VALUES ($1, $2, $3)",
                job_id,
                "health_bulk_server_errors",
                str(len(manifest.error)),
            )
            await pg.execute(
                "UPDATE health_import_jobs SET errors = errors + 1 WHERE id = $1", job_id
            )
        await lifecycle.transition(pg, job_id, "exporting", "importing", "downloaded")
    await _cancel(client, settings, status_url)  # done with it: the server may delete files
    return "importing", 0.0


def _job_dir(settings: Settings, job_id: uuid.UUID) -> str:
    directory = os.path.join(os.path.abspath(settings.health_import_dir), str(job_id))
    os.makedirs(directory, exist_ok=True)
    return directory


async def _download(
    client: httpx.AsyncClient, settings: Settings, url: str, path: str, manifest: Manifest
) -> None:
    headers = {"Accept": "application/fhir+ndjson"}
    if manifest.requiresAccessToken and settings.health_bulk_token:
        headers["Authorization"] = f"Bearer {settings.health_bulk_token}"
    async with client.stream("GET", url, headers=headers) as response:
        if response.status_code != 200:
            raise BulkFailure("health_bulk_download_failed", status=response.status_code)
        handle = await asyncio.to_thread(open, path, "wb")
        try:
            async for chunk in response.aiter_bytes(1 << 16):
                await asyncio.to_thread(handle.write, chunk)
        finally:
            await asyncio.to_thread(handle.close)


async def _cancel(client: httpx.AsyncClient, settings: Settings, status_url: str) -> None:
    """DELETE the status URL: tells the server we are done (or gave up)."""
    try:
        await client.delete(status_url, headers=_headers(settings, "application/json"))
    except httpx.HTTPError as exc:
        log.warning("health_bulk_delete_failed", extra={"error": type(exc).__name__})
