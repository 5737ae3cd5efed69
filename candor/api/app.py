"""The FastAPI application: routers, error handlers, request ids, body limits, auth and metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from candor import __version__
from candor.accounts.access import AccessControl
from candor.api import admin, critique, files, messages, models, moderations, openai_chat, text_completions
from candor.api.context import SCOPE_KEY, RequestContext
from candor.api.errors import (
    ApiError,
    candor_error_handler,
    error_response,
    new_request_id,
    unexpected_error_handler,
    validation_error_handler,
)
from candor.api.guard import require_key
from candor.api.hosts import HostCheckMiddleware, HostPolicy
from candor.api.metering import meter, response_headers
from candor.api.metrics import Metrics
from candor.api.text_check import require_valid_text
from candor.documents.files import FileStore
from candor.engine.hub import EngineHub
from candor.errors import CandorError
from candor.moderation.policy import Modes
from candor.moderation.records import StoreRecorder
from candor.moderation.service import REQUEST_ID, Moderator
from candor.registry import load_registry
from candor.store import Store, open_store
from candor.web.throttle import SigninThrottle

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024  # the Anthropic API's limit for Messages requests


class EdgeMiddleware:
    """Pure ASGI (streams and disconnects pass straight through): gives every request an id and
    `request-id` header, refuses bodies over the limit with 413, counts requests for metrics."""

    def __init__(self, app, max_body_bytes: int, metrics: Metrics, fastapi_app: FastAPI):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.fastapi_app = fastapi_app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = new_request_id()
        REQUEST_ID.set(request_id)  # moderation decisions name the request
        ctx = RequestContext(request_id)
        scope.setdefault("state", {})[SCOPE_KEY] = ctx
        started = ctx.started
        status_seen = {"code": 500}
        metered = False

        async def record_usage() -> None:
            nonlocal metered
            if not metered:
                metered = True
                # a body refused here (413) never reached routing: meter it by the path it asked for
                path = scope.get("route").path if scope.get("route") is not None else scope.get("path", "")
                await meter(self.fastapi_app, path, scope["method"], ctx, status_seen["code"])

        async def send_with_id(message):
            if message["type"] == "http.response.body" and not message.get("more_body"):
                # Record usage before the last byte leaves, so a client's next request already
                # sees this one's cost (spend limits) however fast it follows.
                await record_usage()
            if message["type"] == "http.response.start":
                status_seen["code"] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k not in (b"request-id", b"x-request-id")]
                headers += [(b"request-id", request_id.encode()), (b"x-request-id", request_id.encode())]
                present = {k.lower() for k, _ in headers}
                try:
                    extra = await asyncio.to_thread(response_headers, self.fastapi_app, ctx)
                except Exception:  # headers are advisory; never fail a response over them
                    log.warning("could not compute rate-limit headers", exc_info=True)
                    extra = {}
                headers += [(k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in present]
                message = {**message, "headers": headers}
            await send(message)

        length = dict(scope.get("headers") or []).get(b"content-length")
        too_big = length is not None and length.isdigit() and int(length) > self.max_body_bytes
        if not too_big and scope["method"] in ("POST", "PUT", "PATCH"):
            body, more = bytearray(), True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > self.max_body_bytes:
                    too_big = True
                    break
            if not too_big:
                replayed, upstream = False, receive

                async def receive_again():
                    nonlocal replayed
                    if not replayed:
                        replayed = True
                        return {"type": "http.request", "body": bytes(body), "more_body": False}
                    return await upstream()

                receive = receive_again
        try:
            if too_big:
                request = Request(scope)
                response = error_response(request, 413, "request_too_large",
                                          f"request body is larger than {self.max_body_bytes} bytes")
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:  # also when the request is cancelled (the client went away, the server shuts down)
            path = scope.get("route").path if scope.get("route") is not None else "other"
            self.metrics.observe_request(path, status_seen["code"], time.perf_counter() - started)
            await asyncio.shield(record_usage())  # a client that disconnected never got a last chunk


def create_app(hub: EngineHub | None = None, *, keys: list[str] | None = None, no_auth: bool = False,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, store: Store | None = None,
               host: str = "127.0.0.1", moderation: Modes | None = None) -> FastAPI:
    """`host` is the address the server is bound to: requests must name it (or localhost) in
    their Host header, see candor.api.hosts. `moderation`: the moderation modes (default: the
    CANDOR_MODERATION settings, see candor.moderation.policy)."""
    host_policy = HostPolicy(host)
    hub = hub or EngineHub(load_registry())
    store = store or open_store()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await hub.close()

    app = FastAPI(title="Candor", version=__version__, lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.hub = hub
    app.state.metrics = Metrics(hub)
    app.state.store = store
    app.state.access = AccessControl(store, keys)
    app.state.no_auth = no_auth
    app.state.signin_throttle = SigninThrottle()
    app.state.files = FileStore(store)  # Files API uploads, kept in the database
    # Moderation for every surface (serving reads it from the hub); a missing classifier file fails
    # here, at start, naming the path. Decisions go to the store and /metrics.
    app.state.moderator = hub.moderator = Moderator.from_settings(moderation)  # type: ignore[attr-defined]
    if app.state.moderator is not None:
        app.state.moderator.recorders += [StoreRecorder(store), app.state.metrics.moderation]

    secured = [Depends(require_key), Depends(require_valid_text)]
    for router in (messages.router, text_completions.router, openai_chat.router, models.router, admin.router,
                   critique.router, files.router, moderations.router):
        app.include_router(router, dependencies=secured)

    from fastapi.staticfiles import StaticFiles

    from candor.web.documents import router as web_documents_router
    from candor.web.routes import STATIC
    from candor.web.routes import router as web_router

    # the chat page signs people in with cookies, not API keys
    for router in (web_router, web_documents_router):
        app.include_router(router, dependencies=[Depends(require_valid_text)])
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/health")
    async def health() -> dict:
        loaded = [await m.engine.health() for m in hub.loaded()]
        return {"status": "ok" if all(h.ok for h in loaded) else "degraded", "version": __version__,
                "models": [{"model": h.model, "ok": h.ok, "queue_depth": h.queue_depth, "busy": h.busy}
                           for h in loaded]}

    @app.get("/metrics", dependencies=secured)
    async def metrics() -> Response:
        return Response(app.state.metrics.render(), media_type="text/plain; version=0.0.4")

    app.add_exception_handler(CandorError, candor_error_handler)  # type: ignore[arg-type]  # typed for one class
    app.add_exception_handler(ApiError, candor_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected_error_handler)

    @app.exception_handler(404)
    async def not_found(request: Request, exc) -> JSONResponse:
        return error_response(request, 404, "not_found_error", f"no route for {request.method} {request.url.path}")

    @app.exception_handler(405)
    async def not_allowed(request: Request, exc) -> JSONResponse:
        return error_response(request, 405, "invalid_request_error",
                              f"method {request.method} is not allowed for {request.url.path}")

    app.add_middleware(HostCheckMiddleware, policy=host_policy)  # inside the edge: refusals get a request id
    app.add_middleware(EdgeMiddleware, max_body_bytes=max_body_bytes, metrics=app.state.metrics, fastapi_app=app)
    return app

