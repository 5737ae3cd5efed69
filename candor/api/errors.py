"""One place that turns typed errors into the Anthropic (or OpenAI) error body and status.

Every error carries `request-id`; errors a retry cannot fix carry `x-should-retry: false`; an
overloaded queue answers 529 with `retry-after` so the official SDKs back off and retry.
"""

from __future__ import annotations

import uuid

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from candor.api.context import context_of
from candor.errors import AccessError, CandorError, OverloadedError

RETRYABLE = {408, 409, 429, 500, 502, 503, 504, 529}


ApiError = AccessError  # HTTP-level refusals raised by the API layer itself use the same type


def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex[:24]


def is_openai(request: Request) -> bool:
    return request.url.path.startswith(("/v1/chat/", "/v1/moderations"))


def error_body(request: Request, error_type: str, message: str, param: str | None = None,
               error_code: str | None = None) -> dict[str, object]:
    """The error body in the request's API shape (Anthropic's carries the request id); also the
    payload of the error frame that ends a stream that broke after it started."""
    if is_openai(request):
        return {"error": {"message": message, "type": error_type, "param": param, "code": error_type}}
    error: dict[str, object] = {"type": error_type, "message": message}
    if error_code:
        error["details"] = {"error_code": error_code}
    return {"type": "error", "error": error, "request_id": context_of(request).request_id}


def body_of(request: Request, exc: CandorError) -> dict[str, object]:
    return error_body(request, exc.error_type, exc.message, exc.field, exc.error_code)


def error_response(request: Request, status: int, error_type: str, message: str,
                   headers: dict[str, str] | None = None, param: str | None = None,
                   error_code: str | None = None) -> JSONResponse:
    """`error_code` becomes `error.details.error_code` (what SDK 2.15+ reads as `APIStatusError.error_code`)."""
    request_id = context_of(request).request_id
    out = {"request-id": request_id, "x-request-id": request_id, **(headers or {})}
    if status not in RETRYABLE:
        out["x-should-retry"] = "false"
    return JSONResponse(error_body(request, error_type, message, param, error_code), status_code=status, headers=out)


async def candor_error_handler(request: Request, exc: CandorError) -> JSONResponse:
    headers = dict(getattr(exc, "headers", {}) or {})
    if isinstance(exc, OverloadedError):
        headers["retry-after"] = str(max(1, round(exc.retry_after)))
    return error_response(request, exc.status_code, exc.error_type, exc.message, headers, exc.field,
                          exc.error_code)


def _loc(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0]
    where = _loc(tuple(first.get("loc", ())))
    kind = first.get("type", "")
    if kind == "json_invalid":
        message = f"request body is not valid JSON: {first.get('ctx', {}).get('error', first.get('msg'))}"
    elif kind == "missing":
        message = f"{where}: Field required"
    else:
        message = f"{where}: {first.get('msg')}"
    return error_response(request, 400, "invalid_request_error", message, param=where)


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    return error_response(request, 500, "api_error", f"internal error: {type(exc).__name__}")
