"""Admin API for routing rules."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Request, delete, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter

from app.core.auth import require_roles
from app.core.client_address import client_ip
from app.core.db import DbSession
from app.routing import service
from app.routing.schemas import RuleIn, RuleOut

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]  # OpenAPI security requirement


class RoutingRuleController(Controller):
    """category × area → unit. A rule for the report's own area wins over a city-wide
    one; then higher priority. Without a rule: the ward's People's Committee, then the
    city dispatcher."""

    path = "/admin/routing-rules"
    tags = ["routing"]
    guards = [require_roles("admin")]
    security = BEARER

    @get("/", summary="Routing rules (admin)")
    async def list_rules(
        self,
        session: DbSession,
        category: Annotated[str | None, QueryParameter(max_length=40)] = None,
    ) -> list[RuleOut]:
        return await service.list_rules(session, category)

    @post("/", summary="Add a routing rule (admin)")
    async def create_rule(
        self, request: Request, session: DbSession, data: JSONBody[RuleIn]
    ) -> RuleOut:
        return await service.create_rule(session, request.user, data, client_ip(request))

    @put("/{rule_id:uuid}", summary="Replace a routing rule (admin)")
    async def update_rule(
        self,
        request: Request,
        session: DbSession,
        rule_id: FromPath[uuid.UUID],
        data: JSONBody[RuleIn],
    ) -> RuleOut:
        return await service.update_rule(session, request.user, rule_id, data, client_ip(request))

    @delete("/{rule_id:uuid}", status_code=204, summary="Delete a routing rule (admin)")
    async def delete_rule(
        self, request: Request, session: DbSession, rule_id: FromPath[uuid.UUID]
    ) -> None:
        await service.delete_rule(session, request.user, rule_id, client_ip(request))
