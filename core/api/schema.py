"""OpenAPI post-processing: document the error answers every operation can give.

drf-spectacular documents what a view declares; the refusals that come from the shared
layers (authentication 401, roles 403, throttling 429, filters and bodies 400, unknown
objects 404, unmatched Accept headers 406, conflicts 409, oversize bodies 413, the
database unavailable 503) are added here, once, so the schema
lists every status code the API can return.
"""

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}
VALIDATION_ERROR = {"$ref": "#/components/schemas/ValidationError"}

COMPONENTS = {
    "Error": {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    "ValidationError": {
        "type": "object",
        "description": "Problems by field name (or non_field_errors / detail / errors).",
        "additionalProperties": {
            "anyOf": [
                {"type": "array"},
                {"type": "string"},
                {"type": "object"},
            ]
        },
    },
}


RETRY_AFTER = {
    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


def add_error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """Add the shared error responses to each operation that does not declare its own."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in COMPONENTS.items():
        schemas.setdefault(name, schema)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "patch", "put", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            extra = {
                "401": _json(ERROR, "Not authenticated."),
                "403": _json(ERROR, "The role does not allow this operation."),
                "429": {
                    **_json(ERROR, "Too many requests."),
                    "headers": RETRY_AFTER,
                },
                "503": {
                    **_json(
                        ERROR,
                        "The database is not available right now (nothing was "
                        "written); retry after the Retry-After seconds.",
                    ),
                    "headers": RETRY_AFTER,
                },
            }
            has_query = any(
                p.get("in") == "query" for p in operation.get("parameters", [])
            )
            if method in {"post", "patch", "put"} or has_query:
                extra["400"] = _json(VALIDATION_ERROR, "Invalid input.")
            if "{" in path or method == "get":
                # Lists too: an unknown ?format= is a 404 in DRF.
                extra["404"] = _json(ERROR, "Not found (or not yours to change).")
            if method == "get":
                extra["406"] = _json(
                    ERROR, "No representation matches the Accept header."
                )
            if method in {"post", "patch", "put", "delete"}:
                extra["409"] = _json(ERROR, "Conflicts with existing data.")
            if method in {"post", "patch", "put"}:
                extra["413"] = _json(ERROR, "The request body is too large.")
                extra["415"] = _json(ERROR, "Unsupported media type.")
            for status, response in extra.items():
                responses.setdefault(status, response)
    return result
