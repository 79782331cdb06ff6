"""The affect API: FastAPI app, request guard (API key, size limit, metrics) and the uvicorn runner.

`create_app(settings)` builds the app; the engine starts on a background thread at start-up so the
port answers at once (`/healthz` is 503 "starting" until the engine is ready, then 200). If the engine
fails to start, `run(settings)` stops the server and raises the engine's error. Every error is JSON
(see `affect_llm.serve.errors`); a bad request never takes the server down.
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
from affect_llm.serve.media import KINDS, Textualizer, check_media, cue_timeline, decode_base64
from affect_llm.serve.metrics import Metrics
from affect_llm.serve.openai_api import (
    describe_input,
    flatten_messages,
    media_parts,
    parse_chat,
    validation_message,
)
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from affect_llm.errors import AffectError
from affect_llm.schema import Turn

# A child of uvicorn's logger: our lines appear in the server log with uvicorn's format and level.
log = logging.getLogger("uvicorn.error.affect")
MAX_PROMPT_CUES = 12
WHEEL = "wheel2"  # the 7-sector feelings wheel drawn by the demo


class ExplainBody(BaseModel):
    """`POST /v1/affect/explain` as JSON (media as base64 strings) or multipart (media as files)."""

    model_config = ConfigDict(extra="forbid")

    text: str = ""
    speaker: str | None = None
    context: list[Turn] = Field(default_factory=list)
    label_space: list[str] | None = None
    demos: int = Field(default=0, ge=0, le=16, description="retrieved demonstrations (needs --demo-index)")
    adapter: str | None = None
    free_labels: bool = False
    audio: str | None = None
    image: str | None = None
    video: str | None = None

    @field_validator("label_space", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [x.strip() for x in v.split(",") if x.strip()]
        return v


def wheel_view(labels: list[str]) -> dict[str, Any]:
    """Where each label sits on the feelings wheel: sector (level 1) and cluster (level 2), or null."""
    from affect_llm.emotion_wheel import EmotionWheel

    w = EmotionWheel.default()
    return {
        "name": WHEEL,
        "sectors": list(w.clusters(f"{WHEEL}_level1")),
        "labels": [{"label": lab, "sector": w.m3(lab, WHEEL, 1), "cluster": w.m3(lab, WHEEL, 2)} for lab in labels],
    }


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
    engine = engine or make_engine(settings)
    metrics = Metrics()
    textualizer = Textualizer(asr_backend=settings.asr_backend, max_seconds=settings.max_audio_seconds)
    state: dict[str, Any] = {"demo_index": None}

    def start_engine() -> None:
        if settings.demo_index:
            try:
                from affect_llm.retrieval import DemoIndex

                state["demo_index"] = DemoIndex.load(settings.demo_index)
            except (AffectError, ImportError) as err:
                engine.state, engine.error = "failed", f"demo index: {err}"
        if engine.state != "failed":
            engine.run_start()
        metrics.engine(engine)
        if engine.state == "failed":
            log.error("engine failed to start: %s", engine.error)
            callback = getattr(app.state, "on_engine_failure", None)
            if callback is not None:
                callback(engine.error)
        elif engine.ready:
            log.info("engine %s ready with %s after %.1f s", engine.name, engine.model_id, engine.ready_seconds)

    @asynccontextmanager
    async def lifespan(_app: Any):
        thread = threading.Thread(target=start_engine, name="engine-start", daemon=True)
        thread.start()
        yield
        import anyio

        await anyio.to_thread.run_sync(engine.stop)
        if hasattr(engine, "aclose"):
            await engine.aclose()
        textualizer.close()
        log.info("engine stopped")

    app = FastAPI(title="affect-llm", version="1", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.engine, app.state.metrics, app.state.settings = engine, metrics, settings

    # -- errors ----------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, err: ApiError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    @app.exception_handler(AffectError)
    async def _affect_error(_req: Request, err: AffectError) -> JSONResponse:
        return JSONResponse(error_body(400, str(err), "invalid_input"), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_req: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        return JSONResponse(error_body(err.status_code, str(err.detail), code), status_code=err.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return JSONResponse(error_body(400, f"{where}: {first['msg']}", "invalid_field", where), status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(error_body(500, f"internal error: {type(err).__name__}: {err}", "internal"),
                            status_code=500)

    def ensure_ready() -> None:
        if engine.state == "failed":
            raise ApiError(503, f"engine failed to start: {engine.error}", "engine_failed")
        if not engine.ready:
            raise ApiError(503, "the engine is starting; retry shortly", "engine_starting",
                           headers={"Retry-After": "5"})

    async def timed(coro: Any) -> Any:
        try:
            return await asyncio.wait_for(coro, settings.request_timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, f"no answer within {settings.request_timeout_s:g} s", "timeout") from None

    async def textualize(items: list[tuple[str, str, bytes]]) -> tuple[list[Any], float]:
        if not items:
            return [], 0.0
        textualizer.check_supported(sorted({k for k, _, _ in items}))
        t0 = time.perf_counter()
        inputs = await timed(asyncio.wrap_future(textualizer.submit(items)))
        return inputs, time.perf_counter() - t0

    # -- open endpoints --------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def root() -> Any:
        return RedirectResponse("/demo/")

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        body = {"status": {"ready": "ok"}.get(engine.state, engine.state), "engine": engine.name,
                "model": engine.model_id}
        if engine.ready:
            body["ready_s"] = engine.ready_seconds
        if engine.pid is not None:
            body["engine_pid"] = engine.pid
        if engine.error:
            body["error"] = engine.error
        return JSONResponse(body, status_code=200 if engine.ready else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        metrics.engine(engine)
        data, ctype = metrics.render()
        extra = await engine.extra_metrics()
        return Response(data + extra.encode(), media_type=ctype)

    # -- API -------------------------------------------------------------------------------
    @app.get("/v1/affect/info")
    async def info() -> dict[str, Any]:
        return {
            "engine": engine.name, "model": engine.model_id, "state": engine.state,
            "adapters": list(settings.adapters), "media": textualizer.support(),
            "demos": settings.demo_index is not None,
            "limits": {"max_request_mb": settings.max_request_mb, "max_audio_seconds": settings.max_audio_seconds,
                       "request_timeout_s": settings.request_timeout_s},
        }

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        ensure_ready()
        created = int(engine.started_at or time.time())
        return {"object": "list", "data": [
            {"id": name, "object": "model", "created": created, "owned_by": "affect-llm",
             "root": engine.model_id, "parent": None if name == engine.model_id else engine.model_id}
            for name in engine.model_names()
        ]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        req = parse_chat(await read_json(request))
        ensure_ready()
        adapter = engine.check_adapter(req.model, "model")
        parts = media_parts(req)
        inputs, _ = await textualize([(kind, param, data) for _, _, kind, param, data in parts])
        described = {(i, j): describe_input(inp) for (i, j, *_), inp in zip(parts, inputs)}
        messages = flatten_messages(req, described)
        if req.stream:
            stream = await timed(engine.chat(req, messages, adapter))
            return StreamingResponse(stream, media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return JSONResponse(await timed(engine.chat(req, messages, adapter)))

    @app.post("/v1/affect/explain")
    async def explain(request: Request) -> JSONResponse:
        from affect_llm.pipeline import request_from

        t0 = time.perf_counter()
        body, files = await read_explain(request)
        try:
            eb = ExplainBody.model_validate(body)
        except ValidationError as err:
            param, msg = validation_message(err)
            raise ApiError(400, msg, "invalid_field", param) from None
        ensure_ready()
        adapter = engine.check_adapter(eb.adapter)
        items = []
        for kind in KINDS:
            data = files.get(kind)
            if data is None and getattr(eb, kind) is not None:
                data = decode_base64(kind, getattr(eb, kind))
            if data is not None:
                check_media(kind, data)
                items.append((kind, kind, data))
        inputs, textualize_s = await textualize(items)
        text = eb.text.strip() or " ".join(i.transcript.strip() for i in inputs if i.transcript).strip()
        if not text:
            if not inputs:
                raise ApiError(400, "give text or a media file (audio, image or video)", "empty_input", "text")
            text = "(no words)"
        cues = sorted((c for i in inputs for c in i.cues), key=lambda c: -(c.strength or 0.0))[:MAX_PROMPT_CUES]
        demos = await retrieve(eb, text) if eb.demos else []
        try:
            req = request_from(text=text, speaker=eb.speaker, context=eb.context, cues=cues,
                               label_space=eb.label_space, demos=demos)
        except AffectError as err:
            raise ApiError(400, str(err), "invalid_field") from None
        report = await timed(engine.explain(req, adapter=adapter, free_labels=eb.free_labels))
        metrics.completion_tokens.inc(report.timings.get("completion_tokens", 0.0))
        metrics.explain_labels.labels("+".join(k for k, _, _ in items) or "text").inc()
        out = report.to_json_dict()
        out["timings"].update(textualize_s=round(textualize_s, 4), total_s=round(time.perf_counter() - t0, 4))
        out["inputs"] = [{k: v for k, v in i.to_json_dict().items() if k != "words"} for i in inputs]
        out["timeline"] = cue_timeline(inputs)
        out["wheel"] = wheel_view(report.labels)
        return JSONResponse(out)

    async def retrieve(eb: ExplainBody, text: str) -> list[Any]:
        index = state["demo_index"]
        if index is None:
            raise ApiError(400, "demos: this server has no demonstration index (start it with --demo-index DIR)",
                           "demos_unavailable", "demos")
        import anyio
        from affect_llm.data_builders.schema import Sample

        from affect_llm.pipeline import Demo

        query = Sample(id="api-query", dataset="api", split="test", text=text, context=eb.context,
                       speaker=eb.speaker)
        hits = await anyio.to_thread.run_sync(lambda: index.select(query, eb.demos))
        return [Demo.from_sample(s) for s in hits]

    # -- static demo -----------------------------------------------------------------------
    from importlib import resources

    from fastapi.staticfiles import StaticFiles

    static = resources.files("affect_llm.serve").joinpath("static")
    app.mount("/demo", StaticFiles(directory=str(static), html=True), name="demo")
    return _wrap(app, settings, metrics)


def _wrap(app: Any, settings: ServeSettings, metrics: Metrics) -> Any:
    """The FastAPI app with the guard as its outermost middleware (so 401/413 are counted too)."""
    app.add_middleware(Guard, settings=settings, metrics=metrics)
    return app


async def read_json(request: Any) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise ApiError(400, "request body is empty; send a JSON object", "invalid_body")
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not UTF-8", "malformed_json") from None
    except json.JSONDecodeError as err:
        raise ApiError(400, f"malformed JSON: {err.msg} at line {err.lineno} column {err.colno}",
                       "malformed_json") from None


async def read_explain(request: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(fields, uploaded files) from a JSON or multipart explain request."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("", "application/json") or ctype.endswith("+json"):
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object", "invalid_body")
        return body, {}
    if ctype != "multipart/form-data":
        raise ApiError(415, f"content type {ctype!r} is unsupported; send application/json or multipart/form-data",
                       "unsupported_content_type")
    from starlette.datastructures import UploadFile

    try:
        form = await request.form(max_files=len(KINDS), max_fields=32)
    except Exception as err:  # noqa: BLE001 - the multipart parser's errors vary by version
        raise ApiError(400, f"malformed multipart body: {getattr(err, 'detail', err)}", "malformed_multipart") from None
    fields: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key not in KINDS:
                raise ApiError(400, f"unexpected file field {key!r}; files go in: {', '.join(KINDS)}",
                               "invalid_field", key)
            files[key] = await value.read()
            if not files[key]:
                raise ApiError(400, f"{key}: the uploaded file is empty", "empty_file", key)
            continue
        if key == "context":
            fields[key] = _parse_context(value)
        elif key == "demos":
            fields[key] = value.strip() or 0
        elif key == "free_labels":
            fields[key] = value.strip().lower() in ("1", "true", "yes", "on")
        elif value.strip() or key == "text":
            fields[key] = value
    return fields, files


def _parse_context(value: str) -> Any:
    value = value.strip()
    if not value:
        return []
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        pass
    try:
        return [json.loads(line) for line in value.splitlines() if line.strip()]
    except json.JSONDecodeError as err:
        raise ApiError(400, f"context: not a JSON list nor JSONL ({err.msg})", "malformed_json", "context") from None


# ---------------------------------------------------------------------------- runner
def run(settings: ServeSettings, *, on_listening: Callable[[str], None] | None = None,
        engine: Engine | None = None) -> None:
    """Serve until SIGINT/SIGTERM (graceful: in-flight requests finish, the engine stops).

    Raises `AffectError` when the engine cannot start (after stopping the server)."""
    import uvicorn

    app = create_app(settings, engine)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                            timeout_graceful_shutdown=int(settings.graceful_timeout_s), access_log=False)
    server = uvicorn.Server(config)
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
