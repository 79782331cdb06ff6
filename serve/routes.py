"""The endpoints of the affect API, as three routers over one shared `ServeContext`.

`ops` holds the open endpoints (`/`, `/healthz`, `/metrics`); `affect` the affect API (`/v1/affect/info`,
`/v1/affect/explain`); `openai` the OpenAI-compatible ones (`/v1/models`, `/v1/chat/completions`).
Request bodies are read and checked here (`read_json`, `read_explain`): strings are normalised at the
boundary (a lone surrogate or a NUL is a 400), input over the documented limit is a 413, and nothing
a client sends can reach the engine unchecked.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from affect_llm.serve.config import ServeSettings
from affect_llm.serve.engines import Engine
from affect_llm.serve.errors import ApiError
from affect_llm.serve.media import KINDS, Textualizer, check_media, cue_timeline, decode_base64
from affect_llm.serve.metrics import Metrics
from affect_llm.serve.openai_api import (
    describe_input,
    flatten_messages,
    media_parts,
    parse_chat,
    validation_message,
)
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from affect_llm.errors import AffectError
from affect_llm.schema import Turn

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


# ---------------------------------------------------------------------------- shared state
@dataclass
class ServeContext:
    """What every endpoint shares: settings, engine, metrics, the textualizer and the demo index."""

    settings: ServeSettings
    engine: Engine
    metrics: Metrics
    textualizer: Textualizer
    demo_index: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def ensure_ready(self) -> None:
        engine = self.engine
        if engine.state == "failed":
            raise ApiError(503, f"engine failed to start: {engine.error}", "engine_failed")
        if engine.state in ("stopping", "stopped"):
            raise ApiError(503, "the server is shutting down", "shutting_down")
        if not engine.ready:
            raise ApiError(503, "the engine is starting; retry shortly", "engine_starting",
                           headers={"Retry-After": "5"})

    async def timed(self, coro: Any) -> Any:
        """The request's work under its deadline; past it a 504 (the engine cancels what is left)."""
        try:
            return await asyncio.wait_for(coro, self.settings.request_timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, f"no answer within {self.settings.request_timeout_s:g} s", "timeout") from None

    async def textualize(self, items: list[tuple[str, str, bytes]]) -> tuple[list[Any], float]:
        if not items:
            return [], 0.0
        self.textualizer.check_supported(sorted({k for k, _, _ in items}))
        t0 = time.perf_counter()
        inputs = await self.timed(asyncio.wrap_future(self.textualizer.submit(items)))
        return inputs, time.perf_counter() - t0

    async def retrieve(self, eb: ExplainBody, text: str) -> list[Any]:
        index = self.demo_index
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


def ctx_of(request: Request) -> ServeContext:
    return request.app.state.ctx


# ---------------------------------------------------------------------------- open endpoints
ops = APIRouter()


@ops.get("/", include_in_schema=False)
async def root() -> Any:
    return RedirectResponse("/demo/")


@ops.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    """200 only when the engine is ready and its worker is making progress; a wedged engine (one job busy
    past `wedged_after_s`, or a dead worker) is 503 "wedged"."""
    engine = ctx_of(request).engine
    wedged = engine.wedged()
    status = "wedged" if wedged else {"ready": "ok"}.get(engine.state, engine.state)
    body: dict[str, Any] = {"status": status, "engine": engine.name, "model": engine.model_id}
    if engine.ready:
        body["ready_s"] = engine.ready_seconds
    if engine.pid is not None:
        body["engine_pid"] = engine.pid
    if wedged:
        body["error"] = wedged
    elif engine.error:
        body["error"] = engine.error
    return JSONResponse(body, status_code=200 if engine.ready and not wedged else 503)


@ops.get("/metrics")
async def prometheus(request: Request) -> Response:
    ctx = ctx_of(request)
    ctx.metrics.engine(ctx.engine)
    data, ctype = ctx.metrics.render()
    extra = await ctx.engine.extra_metrics()
    return Response(data + extra.encode(), media_type=ctype)


# ---------------------------------------------------------------------------- the affect API
affect = APIRouter()


@affect.get("/v1/affect/info")
async def info(request: Request) -> dict[str, Any]:
    from affect_llm.limits import MAX_INPUT_CHARS, MAX_INPUT_TOKENS

    ctx = ctx_of(request)
    engine, settings = ctx.engine, ctx.settings
    return {
        "engine": engine.name, "model": engine.model_id, "state": engine.state,
        "adapters": list(settings.adapters), "media": ctx.textualizer.support(),
        "demos": settings.demo_index is not None,
        "limits": {"max_request_mb": settings.max_request_mb, "max_audio_seconds": settings.max_audio_seconds,
                   "request_timeout_s": settings.request_timeout_s, "max_input_tokens": MAX_INPUT_TOKENS,
                   "max_input_chars": MAX_INPUT_CHARS},
    }


@affect.post("/v1/affect/explain")
async def explain(request: Request) -> JSONResponse:
    from affect_llm.limits import check_request
    from affect_llm.pipeline import request_from

    ctx = ctx_of(request)
    engine = ctx.engine
    t0 = time.perf_counter()
    body, files = await read_explain(request)
    try:
        eb = ExplainBody.model_validate(body)
    except ValidationError as err:
        param, msg = validation_message(err)
        raise ApiError(400, msg, "invalid_field", param) from None
    check_request(eb)  # 413 before any work when the text alone is over the limit
    ctx.ensure_ready()
    adapter = engine.check_adapter(eb.adapter)
    items = []
    for kind in KINDS:
        data = files.get(kind)
        if data is None and getattr(eb, kind) is not None:
            data = decode_base64(kind, getattr(eb, kind))
        if data is not None:
            check_media(kind, data)
            items.append((kind, kind, data))
    inputs, textualize_s = await ctx.textualize(items)
    text = eb.text.strip() or " ".join(i.transcript.strip() for i in inputs if i.transcript).strip()
    if not text:
        if not inputs:
            raise ApiError(400, "give text or a media file (audio, image or video)", "empty_input", "text")
        text = "(no words)"
    cues = sorted((c for i in inputs for c in i.cues), key=lambda c: -(c.strength or 0.0))[:MAX_PROMPT_CUES]
    demos = await ctx.retrieve(eb, text) if eb.demos else []
    try:
        req = request_from(text=text, speaker=eb.speaker, context=eb.context, cues=cues,
                           label_space=eb.label_space, demos=demos)
    except AffectError as err:
        raise ApiError(400, str(err), "invalid_field") from None
    check_request(req)
    report = await ctx.timed(engine.explain(req, adapter=adapter, free_labels=eb.free_labels))
    ctx.metrics.completion_tokens.inc(report.timings.get("completion_tokens", 0.0))
    ctx.metrics.explain_labels.labels("+".join(k for k, _, _ in items) or "text").inc()
    out = report.to_json_dict()
    out["timings"].update(textualize_s=round(textualize_s, 4), total_s=round(time.perf_counter() - t0, 4))
    out["inputs"] = [{k: v for k, v in i.to_json_dict().items() if k != "words"} for i in inputs]
    out["timeline"] = cue_timeline(inputs)
    out["wheel"] = wheel_view(report.labels)
    return JSONResponse(out)


# ---------------------------------------------------------------------------- OpenAI-compatible
openai = APIRouter()


@openai.get("/v1/models")
async def models(request: Request) -> dict[str, Any]:
    ctx = ctx_of(request)
    ctx.ensure_ready()
    engine = ctx.engine
    created = int(engine.started_at or time.time())
    return {"object": "list", "data": [
        {"id": name, "object": "model", "created": created, "owned_by": "affect-llm",
         "root": engine.model_id, "parent": None if name == engine.model_id else engine.model_id}
        for name in engine.model_names()
    ]}


@openai.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Any:
    from affect_llm.limits import check_chars, messages_chars

    ctx = ctx_of(request)
    engine = ctx.engine
    req = parse_chat(await read_json(request))
    check_chars(messages_chars(m.model_dump() for m in req.messages), "messages")
    ctx.ensure_ready()
    adapter = engine.check_adapter(req.model, "model")
    parts = media_parts(req)
    inputs, _ = await ctx.textualize([(kind, param, data) for _, _, kind, param, data in parts])
    described = {(i, j): describe_input(inp) for (i, j, *_), inp in zip(parts, inputs)}
    messages = flatten_messages(req, described)
    if req.stream:
        stream = await ctx.timed(engine.chat(req, messages, adapter))
        return StreamingResponse(stream, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    return JSONResponse(await ctx.timed(engine.chat(req, messages, adapter)))


# ---------------------------------------------------------------------------- request bodies
def check_strings(obj: Any, where: str = "body") -> None:
    """Every string of a parsed body (keys too) is valid Unicode without NUL, or a 400 naming the field."""
    from affect_llm.errors import check_text

    stack = [(where, obj)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            try:
                check_text(value, path)
            except AffectError as err:
                raise ApiError(400, str(err), "invalid_text", path) from None
        elif isinstance(value, dict):
            for k, v in value.items():
                stack.append((path, k))
                stack.append((f"{path}.{k}" if path != "body" else str(k), v))
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}", v) for i, v in enumerate(value))


async def read_json(request: Any) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise ApiError(400, "request body is empty; send a JSON object", "invalid_body")
    try:
        body = json.loads(raw)
    except UnicodeDecodeError as err:
        raise ApiError(400, f"request body is not UTF-8 (invalid byte at offset {err.start})",
                       "malformed_json") from None
    except json.JSONDecodeError as err:
        raise ApiError(400, f"malformed JSON: {err.msg} at line {err.lineno} column {err.colno}",
                       "malformed_json") from None
    except RecursionError:
        raise ApiError(400, "malformed JSON: nested too deeply", "malformed_json") from None
    check_strings(body)
    return body


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
        check_strings(value, key)
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
