"""The OpenAPI path item of ``POST /v1/beacons``, built from the msgspec wire types.

FastAPI cannot see the ingest route's body model (the route decodes raw
bytes with msgspec), so :func:`ingest_path_item` states it: request body,
parameters and every status the endpoint can answer, each 4xx/503 with the
:class:`collector.schema.Refusal` body. Schemas come from
``collector.schema.openapi_components()``: one source for decoder and docs.

>>> from collector.config import CollectorConfig
>>> sorted(ingest_path_item(CollectorConfig(require_key=False))["post"]["responses"])
['202', '400', '401', '413', '415', '422', '429', '503']
"""

from __future__ import annotations

from typing import Any

from collector.config import CollectorConfig

_REF = "#/components/schemas/"
_REFUSAL = {"$ref": _REF + "Refusal"}
_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}
}


def _refusal(description: str, retry: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _REFUSAL}},
    }
    if retry:
        response["headers"] = _RETRY_AFTER
    return response


def ingest_path_item(config: CollectorConfig) -> dict[str, Any]:
    """The ``paths["/v1/beacons"]`` entry for the OpenAPI document."""
    beacon = {"$ref": _REF + "WireBeacon"}
    return {
        "post": {
            "operationId": "ingest_beacon",
            "summary": "Ingest one beacon (a batch of player events)",
            "description": (
                "Accepted (202) only after the exporter acknowledged. The body may be "
                "gzip-compressed (Content-Encoding: gzip); the size cap of "
                f"{config.max_body_bytes} bytes applies after decompression. One invalid "
                "event refuses the whole beacon; the response names the field. "
                "text/plain bodies (navigator.sendBeacon) carry the same JSON."
            ),
            "parameters": [
                {"name": "X-Ingest-Key", "in": "header", "required": False,
                 "schema": {"type": "string"}, "description": "ingest key"},
                {"name": "key", "in": "query", "required": False,
                 "schema": {"type": "string"},
                 "description": "ingest key, for clients that cannot set headers"},
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": beacon},
                    "text/plain": {"schema": {"type": "string",
                                              "description": "a WireBeacon as JSON text"}},
                },
            },
            "responses": {
                "202": {"description": "accepted and acknowledged by the exporter",
                        "content": {"application/json": {"schema": {"$ref": _REF + "Accepted"}}}},
                "400": _refusal("malformed: not JSON, bad gzip"),
                "401": _refusal("missing or unknown ingest key"),
                "413": _refusal("body too large (after decompression)"),
                "415": _refusal("unsupported content type or encoding"),
                "422": _refusal("schema, type or range violation; too many events; "
                                "event too old or in the future"),
                "429": _refusal("rate limit of the ingest key exceeded", retry=True),
                "503": _refusal("exporter unavailable (Kafka); retry later", retry=True),
            },
        },
        "options": {
            "operationId": "ingest_preflight",
            "summary": "CORS preflight",
            "responses": {"204": {"description": "allowed"},
                          "403": _refusal("origin not in the CORS allow-list")},
        },
    }
