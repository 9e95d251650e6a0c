"""The application factory: plugins, routers, exception handlers, lifespan."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path

from arq.connections import ArqRedis
from litestar import Litestar, Response, Router, get
from litestar.config.compression import CompressionConfig
from litestar.datastructures import CacheControlHeader, ResponseHeader, State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.plugins.prometheus import PrometheusController
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from redis.asyncio import ConnectionPool
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from app.accounts.api import AuthController, MeController, StaffAdminController
from app.accounts.sms import make_sms_sender
from app.accounts.suspension_api import MySuspensionController, SuspensionAdminController
from app.accounts.totp_api import (
    MySecondFactorController,
    SecondFactorResetController,
    SecondFactorSignInController,
)
from app.accounts.vneid import VneidClient
from app.complaints.api import (
    ModerationController,
    PhotoController,
    PublicReportController,
    ReportController,
)
from app.console.api import (
    ConsolePhotoController,
    ConsoleReportController,
    ConsoleRoutingController,
)
from app.console.bulk_api import BulkReportController  # issue 22 item 2
from app.console.templates_api import ResponseTemplateController  # issue 22 item 1
from app.core import db
from app.core.auth import AuthenticationMiddleware
from app.core.clock import Clock
from app.core.conditional import (
    NO_COMPRESSION,
    ConditionalCompressionMiddleware,
    document_conditional,
)
from app.core.errors import EXCEPTION_HANDLERS
from app.core.files_api import serve_file
from app.core.headers import SecurityHeadersMiddleware
from app.core.logging import RequestIdMiddleware, configure_logging
from app.core.openapi import docs_viewer, document_problems
from app.core.ops import (
    HealthController,
    MetricsTokenMiddleware,
    RequestMetricsMiddleware,
    worker_status,
)
from app.core.push import make_push_sender
from app.core.ratelimit import RateLimiter
from app.core.site import favicon
from app.core.storage import make_storage
from app.dossiers.api import MyDossierController, PublicDossierController
from app.dossiers.imports_api import DossierImportController
from app.dossiers.index_api import ConsoleAgencyIndexController, PublicAgencyIndexController
from app.dossiers.ingest_api import AgencyAdminController, IngestController, document_ingest
from app.health.api import HealthImportController, HealthRecordController
from app.notifications.api import (
    AnnouncementController,
    FollowedAreasController,
    InboxController,
    PreferencesController,
)
from app.open311.admin_api import Open311KeyController
from app.open311.router import open311_router
from app.opendata.api import OpenDataController
from app.places.api import AddressSearchController, PlacesController
from app.places.reference import ReferenceData
from app.routing.api import RoutingRuleController
from app.routing.service import Deadlines
from app.settings import Settings, get_settings
from app.startup import refuse_unsafe_production
from app.stats.api import ConsoleServiceIndexController, PublicServiceIndexController
from app.sync.api import SyncController  # one sync call on app open (issue 24)
from app.uploads.api import UploadController  # resumable uploads, tus (issue 24)
from app.web.api import ConsolePages, content_security_policy, page_error_handler
from app.web.dossier_imports import DossierImportPages
from app.web.dossier_supervision import DossierSupervisionPages
from app.web.moderation import ModerationPages
from app.web.response_templates import ResponseTemplatePages  # issue 22 items 1-2
from app.web.two_factor import SecondFactorResetPages, TwoFactorPages

API_VERSION = "0.1.0"
WEB_DIR = Path(__file__).parent / "web"


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False

    @get(cache=False)
    async def get(self, state: State) -> Response:
        await worker_status(state)  # refresh the worker and backlog gauges
        return await PrometheusController.get.fn(self)


async def provide_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    async with db.transaction(state.sessionmaker, state.redis) as session:
        yield session


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    refuse_unsafe_production(settings, "api")  # exits with one message naming every problem

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        engine = db.make_engine(settings)
        # connects lazily: the API starts (and says "not ready") while Redis is down
        redis = ArqRedis(
            pool_or_conn=ConnectionPool.from_url(
                settings.redis_url, socket_connect_timeout=2, socket_timeout=5
            ),
            default_queue_name=settings.queue_name,
        )
        storage = make_storage(settings)
        push = make_push_sender(settings)
        app.state.update(
            settings=settings,
            engine=engine,
            sessionmaker=db.make_sessionmaker(engine),
            redis=redis,
            storage=storage,
            push=push,
            limiter=RateLimiter(settings.redis_url, prefix=f"{settings.redis_prefix}:rl"),
            sms=make_sms_sender(settings),
            vneid=VneidClient(settings),
            deadlines=Deadlines.from_settings(settings),
        )
        if "clock" not in app.state:
            app.state.clock = Clock()
        # reloads run on an engine of their own (a connection per reload, NullPool): a
        # reload must never wait for the request pool, whose connections may all be held
        # by requests waiting for that very reload (a deadlock until the pool timed out)
        reference_engine = create_async_engine(
            settings.database_url,
            poolclass=NullPool,
            hide_parameters=True,
            connect_args={"server_settings": {"application_name": "city-app", "timezone": "UTC"}},
        )
        app.state.reference = ReferenceData(
            db.make_sessionmaker(reference_engine), settings.database_url
        )
        app.state.reference.start()
        try:  # loaded before the first request; if PostgreSQL is down, on first use
            await asyncio.wait_for(app.state.reference.current(), timeout=5)
        except Exception:  # noqa: BLE001
            pass
        try:
            await storage.ensure_ready()
        except Exception:  # readiness reports it; the API still starts
            pass
        # what start-up allocated (modules, routes, the reference snapshot) lives as long
        # as the process: leave it out of every garbage collection from now on (issue 18
        # item 9; the worker does the same)
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await app.state.reference.close()
            await reference_engine.dispose()
            await push.close()
            await app.state.vneid.aclose()
            await redis.aclose()
            await engine.dispose()

    api = Router(
        path="/api/v1",
        route_handlers=[
            AuthController,
            MeController,
            StaffAdminController,
            SecondFactorSignInController,  # staff second factor (issue 22 item 3)
            MySecondFactorController,
            SecondFactorResetController,
            MySuspensionController,  # abuse controls (issue 22 item 6)
            SuspensionAdminController,
            PlacesController,
            AddressSearchController,  # reporting without a map (issue 22 item 7)
            OpenDataController,  # open data (issue 22 item 4)
            PhotoController,
            UploadController,  # resumable photo uploads, tus 1.0 (issue 24 item 3)
            ReportController,
            PublicReportController,
            ModerationController,
            RoutingRuleController,
            ConsoleReportController,
            ConsolePhotoController,
            ResponseTemplateController,  # response templates (issue 22 item 1)
            BulkReportController,  # bulk work on the queue (issue 22 item 2)
            ConsoleRoutingController,
            PublicServiceIndexController,
            ConsoleServiceIndexController,
            InboxController,
            SyncController,  # one sync call on app open (issue 24 item 2)
            PreferencesController,
            FollowedAreasController,
            AnnouncementController,
            DossierImportController,
            IngestController,
            AgencyAdminController,
            MyDossierController,
            PublicDossierController,
            PublicAgencyIndexController,
            ConsoleAgencyIndexController,
            HealthRecordController,
            HealthImportController,
            Open311KeyController,  # third-party apps' Open311 keys (issue 21)
        ],
        dependencies={"session": Provide(provide_session)},
    )
    pages = Router(
        path="/",
        route_handlers=[
            ConsolePages,
            ResponseTemplatePages,  # response templates, bulk work (issue 22 items 1-2)
            DossierImportPages,
            DossierSupervisionPages,
            ModerationPages,  # suspensions, abuse flags, photo redaction (issue 22 items 5-6)
            TwoFactorPages,  # staff second factor (issue 22 item 3)
            SecondFactorResetPages,
            create_static_files_router(
                path="/console/static",
                directories=[WEB_DIR / "static"],
                include_in_schema=False,
                cache_control=CacheControlHeader(max_age=3600),
            ),
        ],
        dependencies={"session": Provide(provide_session)},
        # every kind the app's handlers know, so pages never answer with problem+json
        exception_handlers={kind: page_error_handler for kind in EXCEPTION_HANDLERS},
        # no framing (clickjacking a form), no console URL leaked in Referer headers
        response_headers=[
            ResponseHeader(name="X-Frame-Options", value="DENY"),
            ResponseHeader(name="Referrer-Policy", value="same-origin"),
            ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
            # scripts and styles only from our files; images also from the photo store
            # and the tile server (issue 17 item 9)
            ResponseHeader(name="Content-Security-Policy", value=content_security_policy(settings)),
        ],
        include_in_schema=False,
    )
    app = Litestar(
        route_handlers=[
            api,
            pages,
            open311_router({"session": Provide(provide_session)}),
            HealthController,
            MetricsController,
            serve_file,
            favicon,
        ],
        template_config=TemplateConfig(directory=WEB_DIR / "templates", engine=JinjaTemplateEngine),
        lifespan=[lifespan],
        state=State({"settings": settings}),
        middleware=[
            RequestIdMiddleware,
            SecurityHeadersMiddleware,  # no-store for credentialed requests, HSTS on https
            RequestMetricsMiddleware,  # city_requests_*: Litestar's metrics, cheaper
            MetricsTokenMiddleware,  # before authentication: its token is not a user's
            AuthenticationMiddleware,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        # level 6, not Litestar's 9: a 511 KiB street view costs 3.2 ms of CPU instead of
        # 7.6 ms for 52 KiB instead of 49 (docs/benchmarks.md, issue 3 second pass)
        # brotli where the client asks (issue 24 item 4), gzip otherwise; the middleware
        # also answers conditional requests for routes with opt=CONDITIONAL
        # (app/core/conditional.py); a route opts out of compression with
        # opt={"no_compression": True} (already-compressed bodies, tus PATCH answers)
        compression_config=CompressionConfig(
            backend="brotli",
            gzip_fallback=True,
            minimum_size=1024,
            exclude="/files",
            exclude_opt_key=NO_COMPRESSION,
            gzip_compress_level=6,
            brotli_quality=4,  # as small as 5 on our JSON, ~40 % less CPU (bench/conditional.py)
            middleware_class=ConditionalCompressionMiddleware,  # no Accept-Encoding: not entered
        ),
        request_max_body_size=1_048_576,
        openapi_config=OpenAPIConfig(
            title="City app API",
            version=API_VERSION,
            description=(
                "Backend of a city's citizen app: reports, routing, deadlines, dossiers, "
                "health records and push notifications. Errors are RFC 9457 problem+json."
            ),
            path="/docs",
            render_plugins=[docs_viewer()],  # vendored, pinned: no CDN
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
        ),
        debug=False,
        logging_config=None,  # configure_logging() owns logging: JSON lines
    )
    document_problems(app.openapi_schema)
    document_conditional(app)  # If-None-Match, ETag and 304 on the opted-in GETs (issue 24)
    document_ingest(app.openapi_schema)  # the signed batches' bodies, read raw
    return app
