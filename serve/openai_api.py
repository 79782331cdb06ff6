"""OpenAI-compatible chat completions: request validation, media content parts, response shapes.

Audio, image and video content parts are textualized here, before any engine sees them: the model
reads a bracketed description of the observed cues (and the transcript), so a text-only LLM can use a
voice or a face. Only `data:` URLs are accepted for images and video (this server fetches nothing).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from affect_llm.serve.errors import ApiError
from affect_llm.serve.media import check_media, decode_base64
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """The fields we act on; any other OpenAI field is kept and forwarded to vLLM as is."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=8192)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    seed: int | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    logprobs: bool = False
    n: int = Field(default=1, ge=1, le=1)
    response_format: dict[str, Any] | None = None

    @property
    def token_budget(self) -> int:
        return self.max_completion_tokens or self.max_tokens or 256


def validation_message(err: ValidationError) -> tuple[str, str]:
    """(param, one-line message) of the first problem, naming the field."""
    from affect_llm.errors import describe_validation

    where, msg = describe_validation(err)
    where = where or "body"
    return where, f"{where}: {msg}"


def parse_chat(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object", "invalid_body")
    try:
        return ChatRequest.model_validate(body)
    except ValidationError as err:
        param, msg = validation_message(err)
        raise ApiError(400, msg, "invalid_field", param) from None


def json_schema_of(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """The schema a `response_format` asks for (None = free text)."""
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise ApiError(400, "response_format.json_schema.schema must be a JSON schema object",
                           "invalid_field", "response_format")
        return schema
    raise ApiError(400, f"response_format.type {kind!r} is unsupported; use text, json_object or json_schema",
                   "invalid_field", "response_format")


def media_parts(req: ChatRequest) -> list[tuple[int, int, str, str, bytes]]:
    """Every media content part as (message index, part index, kind, param, bytes), format checked."""
    out = []
    for i, msg in enumerate(req.messages):
        if not isinstance(msg.content, list):
            continue
        for j, part in enumerate(msg.content):
            param = f"messages.{i}.content.{j}"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                if not isinstance(part.get("text"), str):
                    raise ApiError(400, f"{param}.text must be a string", "invalid_field", param)
                continue
            if kind == "input_audio":
                audio = part.get("input_audio") or {}
                data = decode_base64(param, audio.get("data", "") if isinstance(audio, dict) else "")
                out.append((i, j, "audio", param, data))
            elif kind in ("image_url", "video_url"):
                media = "image" if kind == "image_url" else "video"
                spec = part.get(kind) or {}
                url = spec.get("url", "") if isinstance(spec, dict) else spec
                if not isinstance(url, str) or not url.startswith("data:"):
                    raise ApiError(400, f"{param}: only data: URLs are accepted (this server fetches nothing)",
                                   "unsupported_url", param)
                out.append((i, j, media, param, decode_base64(param, url)))
            else:
                raise ApiError(400, f"{param}: content part type {kind!r} is unsupported; use text, "
                               "input_audio, image_url or video_url", "unsupported_content", param)
    for _, _, kind, param, data in out:
        check_media(kind, data, param)
    return out


def describe_input(inp: Any) -> str:
    """A textualized input as the bracketed text the model reads."""
    what = {"audio": "speech", "video": "video", "image": "image"}.get(inp.kind, inp.kind)
    cues = []
    for c in inp.cues[:10]:
        s = c.cue + (f" ({c.evidence})" if c.evidence else "")
        if c.start is not None and c.end is not None:
            s += f" at {c.start:.1f}-{c.end:.1f} s"
        cues.append(s)
    parts = []
    if inp.transcript:
        parts.append(f'transcript: "{inp.transcript.strip()}"')
    parts.append("observed cues: " + ("; ".join(cues) if cues else "none detected"))
    return f"[{what} input — " + "; ".join(parts) + "]"


def flatten_messages(req: ChatRequest, described: dict[tuple[int, int], str]) -> list[dict[str, str]]:
    """Messages with string contents only: text parts joined, media parts replaced by their description."""
    out = []
    for i, msg in enumerate(req.messages):
        if isinstance(msg.content, list):
            pieces = []
            for j, part in enumerate(msg.content):
                pieces.append(part["text"] if part.get("type") == "text" else described[(i, j)])
            content = "\n".join(p for p in pieces if p)
        else:
            content = msg.content or ""
        role = "system" if msg.role == "developer" else msg.role
        out.append({"role": role, "content": content})
    return out


# ---------------------------------------------------------------------------- response shapes
def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def logprobs_block(pieces: list[str], logprobs: list[float] | None) -> dict[str, Any] | None:
    if logprobs is None:
        return None
    return {"content": [
        {"token": p, "logprob": lp, "bytes": list(p.encode("utf-8")), "top_logprobs": []}
        for p, lp in zip(pieces, logprobs)
    ]}


def completion(cid: str, model: str, gen: Any, want_logprobs: bool) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": gen.text},
            "logprobs": logprobs_block(gen.pieces, gen.logprobs) if want_logprobs else None,
            "finish_reason": gen.finish_reason,
        }],
        "usage": {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
                  "total_tokens": gen.prompt_tokens + gen.completion_tokens},
    }


def chunk(cid: str, model: str, delta: dict[str, Any], finish: str | None = None,
          usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, Any] = {
        "id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if usage is None else [],
    }
    if usage is not None:
        body["usage"] = usage
    return sse(body)


def sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"
