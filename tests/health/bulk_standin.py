"""A stand-in for the health system's FHIR server, speaking FHIR Bulk Data Access (IG v2)
on loopback: the kick-off (``GET .../Patient/$export`` with ``Prefer: respond-async`` →
202 + Content-Location), the status URL (202 with Retry-After and X-Progress while it
"works", then 200 with the manifest; DELETE to end it) and the output files (NDJSON,
bearer token required when the manifest says so). ``mode`` makes it misbehave the ways
the importer must survive. Every request is recorded with its time.
"""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass, field

from aiohttp import web

PORTS = range(18600, 18700)  # this helper's range
TOKEN = "bulk-token-for-tests"
OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "exception", "diagnostics": "export failed"}],
}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    at: float


@dataclass
class BulkServer:
    files: dict[str, bytes] = field(default_factory=dict)  # type -> NDJSON
    mode: str = "ok"  # ok | never | kickoff_error | export_error | missing_file | busy
    polls_before_done: int = 2
    retry_after: int = 1
    seen: list[Seen] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    base: str = ""
    _polls: dict[str, int] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    @property
    def export_url(self) -> str:
        return f"{self.base}/fhir/Patient/$export"

    def requests(self, method: str, prefix: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.startswith(prefix)]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/fhir/Patient/$export", self.kick_off)
        app.router.add_get("/status/{id}", self.status)
        app.router.add_delete("/status/{id}", self.delete)
        app.router.add_get("/files/{id}/{type}.ndjson", self.file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        for port in PORTS:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    continue
            try:
                await web.TCPSite(self._runner, "127.0.0.1", port).start()
            except OSError:
                continue
            self.base = f"http://127.0.0.1:{port}"
            return
        raise RuntimeError("no free port in 18600-18699")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _record(self, request: web.Request) -> None:
        self.seen.append(
            Seen(request.method, request.path_qs, dict(request.headers), time.monotonic())
        )

    async def kick_off(self, request: web.Request) -> web.Response:
        self._record(request)
        if request.headers.get("Prefer") != "respond-async":
            return web.json_response(OUTCOME, status=400)
        if self.mode == "kickoff_error":
            return web.json_response(OUTCOME, status=500)
        export = uuid.uuid4().hex
        self._polls[export] = 0
        return web.Response(status=202, headers={"Content-Location": f"/status/{export}"})

    async def status(self, request: web.Request) -> web.Response:
        self._record(request)
        export = request.match_info["id"]
        if export in self.deleted or export not in self._polls:
            return web.json_response(OUTCOME, status=404)
        self._polls[export] += 1
        if self.mode == "export_error":
            return web.json_response(OUTCOME, status=500)
        if self.mode == "busy" and self._polls[export] == 1:
            return web.Response(status=429, headers={"Retry-After": str(self.retry_after)})
        if self.mode == "never" or self._polls[export] <= self.polls_before_done:
            return web.Response(
                status=202,
                headers={"Retry-After": str(self.retry_after), "X-Progress": "exporting"},
            )
        manifest = {
            "transactionTime": "2026-12-05T00:00:00Z",
            "request": self.export_url,
            "requiresAccessToken": True,
            "output": [
                {"type": kind, "url": f"{self.base}/files/{export}/{kind}.ndjson"}
                for kind in sorted(self.files, reverse=True)  # Patient not first on purpose
            ],
            "error": [],
        }
        return web.json_response(manifest)

    async def delete(self, request: web.Request) -> web.Response:
        self._record(request)
        self.deleted.add(request.match_info["id"])
        return web.Response(status=202)

    async def file(self, request: web.Request) -> web.Response:
        self._record(request)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response(OUTCOME, status=401)
        kind = request.match_info["type"]
        if self.mode == "missing_file" or kind not in self.files:
            return web.json_response(OUTCOME, status=404)
        return web.Response(body=self.files[kind], content_type="application/fhir+ndjson")
