"""Command line: ``python -m app.cli <command>``.

setup                    create the database if missing, migrate, load reference data
openapi                  print the OpenAPI document (JSON) to stdout
create-unit              create a responsible unit
create-staff             create a staff account with roles
agency-create            register an agency that pushes dossiers (prints its secret once)
agency-secret-rotate     issue an agency a new signing secret (rotation with an overlap)
agency-status-code-set   map an agency's status codes to ours (CODE=STATUS ...)
dossier-import           import an agency's NDJSON/CSV file of dossier events, inline
health-import            import FHIR R4 NDJSON files or Bundles into the health book
open311-key-create       issue a third-party app an Open311 API key (printed once)
open311-key-list         the Open311 API keys (never the keys themselves)
open311-key-revoke       revoke an Open311 API key (by id or shown prefix)
staff-second-factor-reset  remove a staff member's second factor (the last admin's lost phone)
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import uuid

import asyncpg
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.places.demo import DEMO_STAFF, DEMO_STAFF_EMAILS, DEMO_STAFF_PASSWORD
from app.settings import get_settings


async def _ensure_database(url: str) -> None:
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    conn = await asyncpg.connect(admin)
    try:
        exists = await conn.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", parsed.database
        )
        if not exists:
            await conn.execute(f'CREATE DATABASE "{parsed.database}"')
            print(f"created database {parsed.database}", file=sys.stderr)
    finally:
        await conn.close()


def _migrate() -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(os.path.join(os.path.dirname(__file__), "..", "alembic.ini"))
    command.upgrade(cfg, "head")


async def _demo_staff() -> None:
    """Development only: an admin, a dispatcher and an officer/manager of one ward."""
    from app.accounts import service
    from app.accounts.models import User
    from app.core import db

    settings = get_settings()
    engine = db.make_engine(settings)
    sessionmaker = db.make_sessionmaker(engine)
    async with db.transaction(sessionmaker, None) as session:
        for email, name, roles in DEMO_STAFF:
            if await session.scalar(select(User.id).where(User.email == email)):
                continue
            try:
                await service.create_staff(session, email, name, DEMO_STAFF_PASSWORD, list(roles))
            except Exception as exc:  # a unit code missing in this city's data
                print(f"skipped demo staff {email}: {exc}", file=sys.stderr)
    await engine.dispose()


def cmd_setup(_: argparse.Namespace) -> None:
    settings = get_settings()
    asyncio.run(_ensure_database(settings.database_url))
    _migrate()
    if settings.load_demo_data:
        from app.places.demo import load_reference_data_sync

        load_reference_data_sync(settings.database_url)
        print("reference data loaded (Hanoi wards; boundaries synthetic)", file=sys.stderr)
        if settings.environment == "development":
            asyncio.run(_demo_staff())
            print(
                f"demo staff: {', '.join(DEMO_STAFF_EMAILS)} / password {DEMO_STAFF_PASSWORD}",
                file=sys.stderr,
            )


def cmd_openapi(_: argparse.Namespace) -> None:
    sys.stdout.write(openapi_json())


def openapi_json() -> str:
    from app.main import create_app

    schema = create_app().openapi_schema.to_schema()
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


async def _create_unit(args: argparse.Namespace) -> None:
    from app.core import db
    from app.places.models import Unit

    engine = db.make_engine(get_settings())
    async with db.transaction(db.make_sessionmaker(engine), None) as session:
        parent_id = None
        if args.parent:
            parent_id = await session.scalar(select(Unit.id).where(Unit.code == args.parent))
            if parent_id is None:
                raise SystemExit(f"no unit with code {args.parent}")
        unit = Unit(
            id=uuid.uuid4(),
            code=args.code,
            name_vi=args.name_vi,
            name_en=args.name_en or args.name_vi,
            kind=args.kind,
            parent_id=parent_id,
            area_code=args.area,
        )
        session.add(unit)
    await engine.dispose()
    print(f"created unit {args.code}")


async def _create_staff(args: argparse.Namespace) -> None:
    from app.accounts import service
    from app.core import db

    password = os.environ.get("STAFF_PASSWORD") or getpass.getpass("Password: ")
    if len(password) < 12:
        raise SystemExit("password must have at least 12 characters")
    roles: list[tuple[str, str | None]] = []
    for spec in args.role:
        role, _, unit = spec.partition(":")
        if role in ("officer", "manager") and not unit:
            raise SystemExit(f"{role} needs a unit: --role {role}:<unit-code>")
        if role in ("dispatcher", "admin") and unit:
            raise SystemExit(f"{role} is city-wide: --role {role}")
        if role not in ("officer", "manager", "dispatcher", "admin"):
            raise SystemExit(f"unknown role {role}")
        roles.append((role, unit or None))
    engine = db.make_engine(get_settings())
    async with db.transaction(db.make_sessionmaker(engine), None) as session:
        user = await service.create_staff(session, args.email, args.name, password, roles)
        print(f"created staff {user.id}")
    await engine.dispose()


async def _dossier_import(args: argparse.Namespace) -> int:
    """Store the file as an import (as the console does), apply it here to the end and
    print its counts and refused lines. Exit 0 done, 1 failed, 2 refused outright."""
    from app import policy
    from app.core import db, i18n
    from app.core.clock import Clock
    from app.core.errors import AppError
    from app.core.storage import make_storage
    from app.dossiers import imports

    settings = get_settings()
    engine = db.make_engine(settings)
    sessionmaker = db.make_sessionmaker(engine)
    storage = make_storage(settings)
    clock = Clock()
    actor = policy.system_actor(clock.now())  # whoever runs the CLI administers the city
    try:
        await storage.ensure_ready()
        source = await asyncio.to_thread(open, args.file, "rb")
        with source:
            upload = imports.Upload(source, os.path.basename(args.file), None, args.format)
            async with db.transaction(sessionmaker, None) as session:
                agency = await imports.agency_for_import(session, actor, args.agency)
                created = await imports.create_import(
                    session, settings, storage, actor, agency, upload, clock.now()
                )
        print(f"import {created.id}: {created.size_bytes} bytes stored", file=sys.stderr)
        result = await imports.run_import(
            sessionmaker, None, storage, settings, clock.now, created.id
        )
        shown, after, more = 0, 0, True
        async with db.transaction(sessionmaker, None) as session:
            while more:
                detail = await imports.import_detail(
                    session, actor, created.id, clock.now(), locale="en", after_line=after
                )
                if after == 0:
                    item = detail.item
                    print(
                        f"import {item.id}: {item.status}; lines {item.lines_done}, "
                        f"accepted {item.accepted}, duplicates {item.duplicates}, "
                        f"refused {item.refused}"
                        + (f"; failure {item.failure}" if item.failure else "")
                    )
                for error in detail.errors:
                    if shown < args.show_errors:
                        field = f" ({error.field})" if error.field else ""
                        print(f"line {error.line}: {error.code}{field}: {error.message}")
                    shown += 1
                more = detail.next_after_line is not None
                after = detail.next_after_line or 0
        if shown > args.show_errors:
            print(f"... and {shown - args.show_errors} more refused lines")
        return 0 if result.status == "done" else 1
    except FileNotFoundError:
        print(f"error: no file {args.file}", file=sys.stderr)
        return 2
    except AppError as exc:
        message = i18n.translate(exc.code, "en", exc.params)
        print(f"error: {exc.code}: {message}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()


async def _health_import(args: argparse.Namespace) -> int:
    """Create a health import job for the files (or directories) given; run it here to
    the end (or, with --enqueue, leave it to the workers). Prints the counts and the first
    per-line errors. Exit 0 succeeded, 1 failed, 2 refused outright."""
    from app import policy
    from app.core import db, i18n
    from app.core.clock import Clock
    from app.core.errors import AppError
    from app.health import runner, service

    settings = get_settings()
    engine = db.make_engine(settings)
    sessionmaker = db.make_sessionmaker(engine)
    actor = policy.system_actor(Clock().now())  # whoever runs the CLI administers the city
    redis = None
    try:
        if args.enqueue:
            from arq import create_pool
            from arq.connections import RedisSettings

            redis = await create_pool(
                RedisSettings.from_dsn(settings.redis_url),
                default_queue_name=settings.queue_name,
            )
        async with db.transaction(sessionmaker, redis) as session:
            job_id = await service.create_file_job(session, actor, args.paths)
        print(f"health import job {job_id}", file=sys.stderr)
        if args.enqueue:
            return 0
        while True:
            result = await runner.run_job(engine, settings, job_id)
            if result.outcome in ("finished", "gone"):
                break
            if result.outcome == "busy":  # another import holds the lock: wait our turn
                await asyncio.sleep(2)
        async with db.transaction(sessionmaker, None) as session:
            job = await service.get_job(session, actor, job_id, "en")
            errors = await service.job_errors(session, actor, job_id, "en", limit=args.show)
        print(
            f"{job.status}: {job.lines} lines, {job.imported} imported, {job.unchanged} "
            f"unchanged, {job.skipped} skipped, {job.duplicates} duplicates, "
            f"{job.errors} errors, {job.duration_seconds or 0:.1f} s"
        )
        for e in errors.items:
            print(f"  {e.file}:{e.line}: {e.reason}")
        return 0 if job.status == "succeeded" else 1
    except AppError as exc:
        print(i18n.translate(exc.code, "en", exc.params), file=sys.stderr)
        return 2
    finally:
        if redis is not None:
            await redis.aclose()
        await engine.dispose()


async def _agency_command(args: argparse.Namespace) -> int:
    """The agencies' administration (issue 19) as the system: the same service and audit
    log as the admin API."""
    from datetime import timedelta

    import msgspec

    from app import policy
    from app.core import db
    from app.core.clock import Clock
    from app.core.errors import AppError
    from app.dossiers import agencies
    from app.dossiers.ingest_schemas import AgencyIn, StatusCodeSet

    settings = get_settings()
    engine = db.make_engine(settings)
    overlap = timedelta(
        hours=getattr(args, "overlap_hours", None) or settings.agency_secret_overlap_hours
    )
    try:
        async with db.transaction(db.make_sessionmaker(engine), None) as session:
            actor = policy.system_actor(Clock().now())
            if args.command == "agency-create":
                body = msgspec.convert(
                    {
                        "code": args.code,
                        "name_vi": args.name_vi,
                        "name_en": args.name_en or args.name_vi,
                        "unit_code": args.unit,
                    },
                    AgencyIn,
                )
                await agencies.create_agency(session, actor, body)
                issued = await agencies.issue_secret(session, actor, args.code, overlap)
                print(f"created agency {args.code}; signing secret (shown once): {issued.secret}")
            elif args.command == "agency-secret-rotate":
                issued = await agencies.issue_secret(session, actor, args.agency, overlap)
                until = issued.previous_valid_until
                print(f"new signing secret for {args.agency} (shown once): {issued.secret}")
                if until is not None:
                    print(f"the secrets valid before stay valid until {until.isoformat()}")
            else:
                for pair in args.pairs:
                    code, _, status = pair.partition("=")
                    checked = msgspec.convert({"status": status}, StatusCodeSet)
                    await agencies.set_status_code(
                        session, actor, args.agency, code, checked.status
                    )
                    print(f"{args.agency}: {code} -> {checked.status}")
                for code in args.remove:
                    await agencies.remove_status_code(session, actor, args.agency, code)
                    print(f"{args.agency}: {code} removed")
    except AppError as exc:
        print(f"refused: {exc.code}", file=sys.stderr)
        return 1
    except msgspec.ValidationError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    return 0


async def _open311_key_command(args: argparse.Namespace) -> int:
    """Third-party apps' Open311 keys (issue 21) as the system: the same service and
    audit log as the admin API."""
    import msgspec

    from app import policy
    from app.core import db
    from app.core.clock import Clock
    from app.core.errors import AppError
    from app.open311 import keys

    settings = get_settings()
    engine = db.make_engine(settings)
    try:
        async with db.transaction(db.make_sessionmaker(engine), None) as session:
            actor = policy.system_actor(Clock().now())
            if args.command == "open311-key-create":
                body = msgspec.convert({"name": args.name, "contact": args.contact}, keys.KeyIn)
                issued = await keys.issue_key(session, actor, body)
                print(f"issued key {issued.record.id} to {issued.record.name}")
                print(f"API key (shown once): {issued.key}")
            elif args.command == "open311-key-list":
                for key in await keys.list_keys(session, actor):
                    state = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
                    used = key.last_used_at.isoformat() if key.last_used_at else "never used"
                    print(f"{key.id}  {key.prefix}…  {state}  {used}  {key.name} <{key.contact}>")
            else:
                try:
                    key_ids = [uuid.UUID(args.key)]
                except ValueError:
                    key_ids = [k.id for k in await keys.find_by_prefix(session, args.key)]
                if len(key_ids) != 1:
                    print(f"refused: {len(key_ids)} keys match {args.key!r}", file=sys.stderr)
                    return 1
                revoked = await keys.revoke_key(session, actor, key_ids[0])
                print(f"revoked key {revoked.id} ({revoked.prefix}…, {revoked.name})")
    except AppError as exc:
        print(f"refused: {exc.code}", file=sys.stderr)
        return 1
    except msgspec.ValidationError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    return 0


async def _second_factor_reset(args: argparse.Namespace) -> int:
    """An operator removes a staff member's second factor as the system, through the same
    service as an admin's reset (sessions revoked, audited): for the one case the console
    cannot serve, the last admin who lost their phone and their recovery codes."""
    from redis.asyncio import Redis

    from app import policy
    from app.accounts import totp
    from app.accounts.models import User
    from app.core import db
    from app.core.clock import Clock
    from app.core.errors import AppError

    settings = get_settings()
    engine = db.make_engine(settings)
    redis = Redis.from_url(settings.redis_url)
    try:
        async with db.transaction(db.make_sessionmaker(engine), None) as session:
            email = args.email.strip().lower()
            user_id = await session.scalar(
                select(User.id).where(User.email == email, User.kind == "staff")
            )
            if user_id is None:
                print("refused: staff_member_not_found", file=sys.stderr)
                return 1
            await totp.reset(session, settings, redis, policy.system_actor(Clock().now()), user_id)
        print(f"second factor removed for {args.email}; their sessions are revoked")
    except AppError as exc:
        print(f"refused: {exc.code}", file=sys.stderr)
        return 1
    finally:
        await redis.aclose()
        await engine.dispose()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="create database, migrate, load reference data").set_defaults(
        func=cmd_setup
    )
    sub.add_parser("openapi", help="print the OpenAPI document").set_defaults(func=cmd_openapi)
    unit = sub.add_parser("create-unit", help="create a responsible unit")
    unit.add_argument("--code", required=True)
    unit.add_argument("--name-vi", required=True)
    unit.add_argument("--name-en")
    unit.add_argument(
        "--kind", required=True, choices=["ward_committee", "department", "utility", "dispatcher"]
    )
    unit.add_argument("--parent", help="parent unit code")
    unit.add_argument("--area", help="area code the unit serves")
    unit.set_defaults(func=lambda a: asyncio.run(_create_unit(a)))
    staff = sub.add_parser(
        "create-staff", help="create a staff account (password from STAFF_PASSWORD or a prompt)"
    )
    staff.add_argument("--email", required=True)
    staff.add_argument("--name", required=True)
    staff.add_argument(
        "--role",
        action="append",
        required=True,
        help="officer:<unit>, manager:<unit>, dispatcher, admin (repeatable)",
    )
    staff.set_defaults(func=lambda a: asyncio.run(_create_staff(a)))
    dossier_import = sub.add_parser(
        "dossier-import",
        help="import an agency's NDJSON or CSV file of dossier events (run here, to the end)",
    )
    dossier_import.add_argument("--agency", required=True, help="the agency's code")
    dossier_import.add_argument(
        "--format", choices=["ndjson", "csv"], help="default: from the file's extension"
    )
    dossier_import.add_argument(
        "--show-errors", type=int, default=100, help="refused lines printed (default 100)"
    )
    dossier_import.add_argument("file", help="path of the NDJSON or CSV file")
    dossier_import.set_defaults(func=lambda a: sys.exit(asyncio.run(_dossier_import(a))))
    health_import = sub.add_parser(
        "health-import",
        help="import FHIR R4 NDJSON files (one resource a line) or Bundles (.json)",
    )
    health_import.add_argument("paths", nargs="+", help="files, or directories of them")
    health_import.add_argument(
        "--enqueue", action="store_true", help="leave the job to the workers and return"
    )
    health_import.add_argument("--show", type=int, default=20, help="errors to print")
    health_import.set_defaults(func=lambda a: sys.exit(asyncio.run(_health_import(a))))
    agency = sub.add_parser(
        "agency-create",
        help="register an agency that pushes dossiers; prints its first signing secret once",
    )
    agency.add_argument("--code", required=True)
    agency.add_argument("--name-vi", required=True)
    agency.add_argument("--name-en")
    agency.add_argument("--unit", required=True, help="code of the unit that answers for it")
    agency.set_defaults(func=lambda a: sys.exit(asyncio.run(_agency_command(a))))
    rotate = sub.add_parser(
        "agency-secret-rotate",
        help="issue a new signing secret (printed once); the valid ones expire after the overlap",
    )
    rotate.add_argument("--agency", required=True)
    rotate.add_argument("--overlap-hours", type=int, help="default: AGENCY_SECRET_OVERLAP_HOURS")
    rotate.set_defaults(func=lambda a: sys.exit(asyncio.run(_agency_command(a))))
    codes = sub.add_parser(
        "agency-status-code-set",
        help="map the agency's status codes to ours: CODE=STATUS ... (or --remove CODE)",
    )
    codes.add_argument("--agency", required=True)
    codes.add_argument("--remove", action="append", default=[], help="a code to unmap")
    codes.add_argument("pairs", nargs="*", help="e.g. 1=received 2=processing 9=completed")
    codes.set_defaults(func=lambda a: sys.exit(asyncio.run(_agency_command(a))))
    open311_create = sub.add_parser(
        "open311-key-create",
        help="issue a third-party app an Open311 API key; prints the key once",
    )
    open311_create.add_argument("--name", required=True, help="the app's name")
    open311_create.add_argument("--contact", required=True, help="whom to call about it")
    open311_create.set_defaults(func=lambda a: sys.exit(asyncio.run(_open311_key_command(a))))
    open311_list = sub.add_parser(
        "open311-key-list", help="the Open311 API keys (id, prefix, state, last use, app)"
    )
    open311_list.set_defaults(func=lambda a: sys.exit(asyncio.run(_open311_key_command(a))))
    open311_revoke = sub.add_parser("open311-key-revoke", help="revoke an Open311 API key")
    open311_revoke.add_argument("key", help="the key's id, or the prefix the list shows")
    open311_revoke.set_defaults(func=lambda a: sys.exit(asyncio.run(_open311_key_command(a))))
    reset = sub.add_parser(
        "staff-second-factor-reset",
        help="remove a staff member's second factor and end their sessions (audited)",
    )
    reset.add_argument("email", help="the staff member's sign-in email")
    reset.set_defaults(func=lambda a: sys.exit(asyncio.run(_second_factor_reset(a))))
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
