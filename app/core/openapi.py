"""Make the OpenAPI document tell the truth about errors: every operation answers
problems as RFC 9457 application/problem+json (schema ``Problem``), whatever the
status. Litestar's own default 400 schema is replaced by it."""

from __future__ import annotations

from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
)

from app.core.site import FAVICON_LINK

PROBLEM_REF = "#/components/schemas/Problem"
# the /docs viewer, vendored from npm by scripts/vendor_static.sh (pinned version there)
SCALAR_JS = "/console/static/vendor/scalar/standalone.js"
DOCS_CSS = "/console/static/docs.css"


def docs_viewer() -> ScalarRenderPlugin:
    """Scalar at /docs from our own static files: no CDN, no web fonts, our icon. Works
    offline and shows the same viewer whatever the CDN's ``@latest`` is today."""
    return ScalarRenderPlugin(
        js_url=SCALAR_JS,
        css_url=DOCS_CSS,
        favicon=FAVICON_LINK,
        options={"withDefaultFonts": False},
    )


def _string(description: str) -> Schema:
    return Schema(type=OpenAPIType.STRING, description=description)


PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    title="Problem",
    description="RFC 9457 problem details with a stable machine code.",
    required=["type", "title", "status", "code", "detail"],
    properties={
        "type": _string("URI reference naming the problem type"),
        "title": _string("Short summary of the HTTP status"),
        "status": Schema(type=OpenAPIType.INTEGER),
        "code": _string("Stable machine code, e.g. otp_invalid"),
        "detail": _string("Human explanation in the caller's language (vi default, en)"),
        "instance": _string("The request path"),
        "request_id": _string("Correlates with the logs"),
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(
                type=OpenAPIType.OBJECT,
                required=["field", "message"],
                properties={
                    "field": _string("The offending field"),
                    "message": _string("What is wrong with it"),
                    "source": _string("body, query, path or header"),
                },
            ),
        ),
        "allowed": Schema(type=OpenAPIType.ARRAY, items=_string("An allowed value")),
        "retry_after": Schema(type=OpenAPIType.INTEGER),
    },
)


def document_problems(document: OpenAPI) -> OpenAPI:
    if document.components.schemas is None:
        document.components.schemas = {}
    document.components.schemas["Problem"] = PROBLEM_SCHEMA
    problem = OpenAPIResponse(
        description="Problem details (RFC 9457)",
        content={"application/problem+json": OpenAPIMediaType(schema=Reference(ref=PROBLEM_REF))},
    )
    for path_item in (document.paths or {}).values():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(path_item, method, None)
            if operation is None:
                continue
            responses = operation.responses or {}
            responses.pop("400", None)
            responses["default"] = problem
            operation.responses = responses
    return document
