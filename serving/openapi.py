"""The OpenAPI document at `/docs.json`, made to say what the service really answers.

BentoML declares 200/400/404/500 with its own error schemas and no authentication. The guard
answers 401, 408, 413, 415, 429, 503 and 504 as well, every error in one shape
(`{"error": message, "detail": [...]}`), and every route but the probes needs a bearer key.
`patched_docs` rewrites the document on its way out.
"""

from __future__ import annotations

import json
from typing import Any

from serving.responses import Send

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Error",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What is wrong, in words"},
        "detail": {
            "type": "array",
            "description": "For a request that failed validation: each field and what is wrong",
            "items": {"type": "object", "properties": {
                "loc": {"type": "array", "items": {"anyOf": [{"type": "string"},
                                                             {"type": "integer"}]}},
                "type": {"type": ["string", "null"]},
                "msg": {"type": ["string", "null"]},
            }},
        },
    },
}

ERRORS: dict[str, str] = {
    "400": "The request is invalid (the detail names each field)",
    "401": "Missing or invalid API key",
    "404": "A lead or model that does not exist",
    "408": "The body did not arrive within serve.body_timeout_seconds",
    "413": "The body is larger than serve.max_body_bytes",
    "415": "The body is not application/json",
    "429": "Too many requests in flight; retry after Retry-After seconds",
    "500": "An unexpected error (details in the server log)",
    "503": "Models still loading, or the service is shutting down",
    "504": "No answer within serve.request_timeout_seconds",
}
OPEN = frozenset({"/livez", "/readyz", "/healthz"})
SCHEME = "bearerAuth"
_REF = {"$ref": "#/components/schemas/Error"}
_BENTOML_ERRORS = ("InvalidArgument", "NotFound", "InternalServerError")


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _REF}}}


def patch(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` (BentoML's document) with LeadLens' errors, bearer scheme and extra routes."""
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in _BENTOML_ERRORS:
        schemas.pop(name, None)
    schemas["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = {SCHEME: {
        "type": "http", "scheme": "bearer",
        "description": "An API key from LEADLENS_API_KEYS: `Authorization: Bearer KEY`"}}
    doc["security"] = [{SCHEME: []}]
    doc["info"] = {"title": "LeadLens", "version": str(doc.get("info", {}).get("version", "")),
                   "description": "Lead scores with reasons, dropout risk and the rep report."}
    paths = doc.setdefault("paths", {})
    paths["/model"] = {"get": {
        "description": "Versions, training window and test metrics of the models served, and "
                       "which worker answered.",
        "responses": {"200": {"description": "The models being served", "content": {
            "application/json": {"schema": {"type": "object"}}}}}}}
    paths["/leads/{id}/history"] = {"get": {
        "description": "A lead's score at each refresh (score, grade, model version), its "
                       "trend (Improving, Steady, Declining, Not enough info) and its last move "
                       "explained: each reason's change of points and the activities between.",
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "string"}, "description": "the lead_id"}],
        "responses": {"200": {"description": "The lead's score history", "content": {
            "application/json": {"schema": {"type": "object"}}}},
            "404": _error("No refresh has recorded this lead")}}}
    paths["/ingest/{table}"] = {"post": {
        "description": "Push contract rows from the CRM (table: leads, activities or reps), "
                       "validated as `leadlens ingest` validates and merged into the warehouse "
                       "at the service's next poll. Needs a write key (LEADLENS_WRITE_KEYS); "
                       "read keys get 403.",
        "parameters": [{"name": "table", "in": "path", "required": True,
                        "schema": {"type": "string", "enum": ["leads", "activities", "reps"]}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["rows"], "properties": {"rows": {
                "type": "array", "minItems": 1, "maxItems": 10000,
                "items": {"type": "object"}}}}}}},
        "responses": {"202": {"description": "Accepted rows queued, refused rows counted and "
                                             "named (position, column, rule)", "content": {
            "application/json": {"schema": {"type": "object"}}}},
            "403": _error("A read key: pushing needs a write key")}}}
    for path, item in paths.items():
        for op in item.values():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses = op["responses"]
            if path in OPEN:
                op["security"] = []
                if path == "/readyz":
                    responses["503"] = _error(ERRORS["503"])
                continue
            wanted = ERRORS if "requestBody" in op else {
                k: v for k, v in ERRORS.items() if k in ("401", "429", "500", "503", "504")}
            for status, description in wanted.items():
                responses[status] = _error(description)
    return doc


def patched_docs(send: Send) -> Send:
    """`send` that rewrites a 200 `/docs.json` answer with `patch` (other answers pass)."""
    held: dict[str, Any] | None = None
    chunks: list[bytes] = []

    async def rewriting(message: dict[str, Any]) -> None:
        nonlocal held
        if message["type"] == "http.response.start" and message.get("status") == 200:
            held = message
            return
        if held is not None and message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = json.dumps(patch(json.loads(b"".join(chunks)))).encode()
            headers = [(k, v) for k, v in held.get("headers", [])
                       if k.lower() != b"content-length"]
            await send({**held, "headers": [*headers,
                                            (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await send(message)

    return rewriting
