"""Command line: ``python -m app.cli <command>``.

setup                    create the database if missing, migrate, load reference data
openapi                  print the OpenAPI document (JSON) to stdout
create-unit              create a responsible unit
create-staff             create a staff account with roles
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
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
