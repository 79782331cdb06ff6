"""The affect API: FastAPI app, request guard (API key, size limit, metrics) and the uvicorn runner.

`create_app(settings)` builds the app from the routers of `affect_llm.serve.routes` over one shared
`ServeContext`; the engine starts on a background thread at start-up so the port answers at once
(`/healthz` is 503 "starting" until the engine is ready, then 200; 503 "wedged" when a job hangs). If the
engine fails to start, `run(settings)` stops the server and raises the engine's error. Every error is
JSON (see `affect_llm.serve.errors`); a bad request never takes the server down. SIGINT/SIGTERM cancel
the engine's work at its next token, so the server is down within a few seconds.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from affect_llm.serve.config import ServeSettings
from affect_llm.serve.engines import Engine, make_engine
from affect_llm.serve.errors import ApiError, error_body
from affect_llm.serve.media import Textualizer
from affect_llm.serve.metrics import Metrics
from affect_llm.serve.routes import (  # noqa: F401 - re-exported: request parsing lives with the routes
    ExplainBody,
    ServeContext,
    read_explain,
    read_json,
    wheel_view,
)
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from affect_llm.errors import AffectError
from affect_llm.limits import InputTooLongError

# A child of uvicorn's logger: our lines appear in the server log with uvicorn's format and level.
log = logging.getLogger("uvicorn.error.affect")


# ---------------------------------------------------------------------------- request guard
class Guard:
    """Pure ASGI middleware: metrics for every request, Bearer key on /v1/*, body size limit."""

    def __init__(self, app: Any, *, settings: ServeSettings, metrics: Metrics) -> None:
        self.app, self.settings, self.metrics = app, settings, metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, start, status = scope["path"], time.perf_counter(), [500]

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            error = self._check_auth(scope, path)
            if error is None and scope["method"] in ("POST", "PUT", "PATCH"):
                body, error = await self._read_body(scope, receive)
                if error is None:
                    receive = _replay(body)
            if error is not None:
                await _send_json(send_status, error.status, error.body(), error.headers)
            else:
                await self.app(scope, receive, send_status)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.observe(self.metrics.route(path), status[0], time.perf_counter() - start)

    def _check_auth(self, scope: dict, path: str) -> ApiError | None:
        key = self.settings.api_key
        if not key or not path.startswith("/v1/"):
            return None
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode()):
            return None
        why = "missing Authorization header" if not auth else "invalid API key"
        return ApiError(401, f"{why}: send 'Authorization: Bearer <key>'", "unauthorized",
                        headers={"WWW-Authenticate": "Bearer"})

    async def _read_body(self, scope: dict, receive: Callable) -> tuple[bytes, ApiError | None]:
        limit = self.settings.max_request_bytes
        too_big = ApiError(413, f"request body exceeds the limit of {self.settings.max_request_mb:g} MiB",
                           "request_too_large")
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return b"", too_big
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", too_big
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks), None


def _replay(body: bytes) -> Callable:
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # like a client that sends nothing more
        return {"type": "http.disconnect"}

    return receive


async def _send_json(send: Callable, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


# ---------------------------------------------------------------------------- the app
def create_app(settings: ServeSettings, engine: Engine | None = None) -> FastAPI:
    from affect_llm.serve import routes

    engine = engine or make_engine(settings)
    ctx = ServeContext(settings=settings, engine=engine, metrics=Metrics(),
                       textualizer=Textualizer(asr_backend=settings.asr_backend,
                                               max_seconds=settings.max_audio_seconds))
    app = FastAPI(title="affect-llm", version="1", lifespan=_lifespan(ctx), docs_url="/docs", redoc_url=None)
    app.state.ctx = ctx
    app.state.engine, app.state.metrics, app.state.settings = engine, ctx.metrics, settings
    _install_error_handlers(app)
    app.include_router(routes.ops)
    app.include_router(routes.affect)
    app.include_router(routes.openai)

    from importlib import resources

    from fastapi.staticfiles import StaticFiles

    static = resources.files("affect_llm.serve").joinpath("static")
    app.mount("/demo", StaticFiles(directory=str(static), html=True), name="demo")
    return _wrap(app, settings, ctx.metrics)


def _lifespan(ctx: ServeContext) -> Callable:
    engine = ctx.engine

    def start_engine(app: Any) -> None:
        if ctx.settings.demo_index:
            try:
                from affect_llm.retrieval import DemoIndex

                ctx.demo_index = DemoIndex.load(ctx.settings.demo_index)
            except (AffectError, ImportError) as err:
                engine.state, engine.error = "failed", f"demo index: {err}"
        if engine.state != "failed":
            engine.run_start()
        ctx.metrics.engine(engine)
        if engine.state == "failed":
            log.error("engine failed to start: %s", engine.error)
            callback = getattr(app.state, "on_engine_failure", None)
            if callback is not None:
                callback(engine.error)
        elif engine.ready:
            log.info("engine %s ready with %s after %.1f s", engine.name, engine.model_id, engine.ready_seconds)

    @asynccontextmanager
    async def lifespan(app: Any):
        thread = threading.Thread(target=start_engine, args=(app,), name="engine-start", daemon=True)
        thread.start()
        yield
        import anyio

        engine.cancel_all()
        await anyio.to_thread.run_sync(engine.stop)
        if hasattr(engine, "aclose"):
            await engine.aclose()
        ctx.textualizer.close()
        log.info("engine stopped")

    return lifespan


def _install_error_handlers(app: FastAPI) -> None:
    """Every error as the one JSON shape: user mistakes 4xx (413 for input over the limit), bugs 500."""

    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, err: ApiError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    @app.exception_handler(InputTooLongError)
    async def _too_long(_req: Request, err: InputTooLongError) -> JSONResponse:
        return JSONResponse(error_body(413, str(err), "input_too_long", "text"), status_code=413)

    @app.exception_handler(AffectError)
    async def _affect_error(_req: Request, err: AffectError) -> JSONResponse:
        return JSONResponse(error_body(400, str(err), "invalid_input"), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_req: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        return JSONResponse(error_body(err.status_code, str(err.detail), code), status_code=err.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, err: RequestValidationError) -> JSONResponse:
        from affect_llm.errors import describe_validation

        where, msg = describe_validation(err)
        return JSONResponse(error_body(400, f"{where}: {msg}", "invalid_field", where), status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(error_body(500, f"internal error: {type(err).__name__}: {err}", "internal"),
                            status_code=500)


def _wrap(app: Any, settings: ServeSettings, metrics: Metrics) -> Any:
    """The FastAPI app with the guard as its outermost middleware (so 401/413 are counted too)."""
    app.add_middleware(Guard, settings=settings, metrics=metrics)
    return app


# ---------------------------------------------------------------------------- runner
def run(settings: ServeSettings, *, on_listening: Callable[[str], None] | None = None,
        engine: Engine | None = None) -> None:
    """Serve until SIGINT/SIGTERM. The signal cancels the engine's work at its next token (the requests in
    flight get a 503 "shutting down"), in-flight responses finish, the engine stops: a few seconds.

    Raises `AffectError` when the engine cannot start (after stopping the server)."""
    import uvicorn

    app = create_app(settings, engine)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                            timeout_graceful_shutdown=int(settings.graceful_timeout_s), access_log=False)
    eng = app.state.engine

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            eng.cancel_all()  # a long generation must not hold the shutdown
            super().handle_exit(sig, frame)

    server = Server(config)
    failure: list[str] = []

    def on_failure(error: str | None) -> None:
        failure.append(error or "unknown error")
        server.should_exit = True

    app.state.on_engine_failure = on_failure

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started and on_listening is not None:
            on_listening(listening_url(server, settings.host))

    threading.Thread(target=announce, name="announce", daemon=True).start()
    server.run()
    if failure:
        raise AffectError(f"engine failed to start: {failure[0]}")


def listening_url(server: Any, host: str) -> str:
    port = server.servers[0].sockets[0].getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}"
