"""What every context's ``tasks.py`` shares: the job's transaction boundary.

A task (an arq job function or cron) lives in ``app/<context>/tasks.py`` beside the
service it calls; ``workers/main.py`` only lists them and builds the worker's ``ctx``
(``settings``, ``engine``, ``sessionmaker``, ``redis``, ``storage``, ``push``, ``clock``,
``deadlines``). A task is thin: it opens one boundary per step, calls the service, and
returns a small summary for arq's result. arq registers a task under its function name,
which is the job's name in Redis: renaming one strands the queued jobs of a running
deployment.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from app.core import db


async def in_transaction(
    ctx: dict[str, Any], work: Callable[..., Awaitable[Any]], *args: Any
) -> Any:
    """The job's boundary: one session and transaction; jobs it enqueues go after commit."""
    async with db.transaction(ctx["sessionmaker"], ctx["redis"]) as session:
        return await work(session, *args)
