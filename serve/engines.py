"""Engines behind the affect API, and the in-process transformers engine.

An engine owns the model and answers two kinds of work: explain requests (the pipeline's prompt,
schema and parsing, so an API answer equals a CLI answer) and OpenAI chat completions. Its life:
`start()` (blocking, run on a background thread so `/healthz` can say "starting"), then `ready`, and
`stop()` at shutdown. `make_engine` picks one by name.

The transformers engine runs every generation on one worker thread: a model must not run two
`generate` calls at once, and queued explain requests are decoded together (up to `max_batch`, same
adapter and label set), which is what makes it usable under concurrent load. Adapters are PEFT LoRA
modules loaded side by side on one base model; the worker switches between them per batch.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from affect_llm.serve.config import ServeSettings
from affect_llm.serve.errors import ApiError
from affect_llm.serve.openai_api import (
    SSE_DONE,
    ChatRequest,
    chunk,
    completion,
    completion_id,
    json_schema_of,
    sse,
)

from affect_llm.backends.base import Generation, Message
from affect_llm.errors import AffectError
from affect_llm.extras import require
from affect_llm.parsing import ParseError
from affect_llm.pipeline import Explainer, ExplainRequest
from affect_llm.schema import EmotionReport


class Engine:
    """Common state and the model list; subclasses implement start/stop/explain/chat."""

    name = "engine"

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.state = "created"  # created | starting | ready | failed | stopped
        self.error: str | None = None
        self.model_id = settings.model or "smollm2-135m-instruct"
        self.started_at: float | None = None
        self.ready_seconds: float | None = None
        #: When the job now running started (monotonic), None when idle: how /healthz sees a wedged engine.
        self.busy_since: float | None = None
        self._stopping = threading.Event()

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def pid(self) -> int | None:
        """Process id of a separate engine process, if there is one."""
        return None

    def run_start(self) -> None:
        """start() with the state bookkeeping; never raises (the error is kept for /healthz and the CLI)."""
        self.state, self.started_at = "starting", time.time()
        try:
            self.start()
        except Exception as err:  # noqa: BLE001 - any start-up failure is reported, not hung on
            self.state, self.error = "failed", f"{type(err).__name__}: {err}" if not isinstance(err, AffectError) else str(err)
            return
        self.ready_seconds = round(time.time() - self.started_at, 2)
        self.state = "ready"

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.state = "stopped"

    def cancel_all(self) -> None:
        """Shutting down: running generations stop at their next token, queued work is answered 503."""
        self._stopping.set()
        if self.state == "ready":
            self.state = "stopping"

    def alive(self) -> bool:
        """Whether the engine's worker (thread or process) is still running."""
        return True

    def wedged(self) -> str | None:
        """Why the engine is not making progress, or None: a dead worker, or one job busy for longer than
        `wedged_after_s` (requests time out long before; a job that outlives them is stuck)."""
        if self.state != "ready":
            return None
        if not self.alive():
            return "the engine's worker is not running"
        since = self.busy_since
        limit = self.settings.wedged_after
        if since is not None and time.monotonic() - since > limit:
            return f"one job has been running for {time.monotonic() - since:.0f} s (limit {limit:g} s)"
        return None

    def model_names(self) -> list[str]:
        return [self.model_id, *self.settings.adapters]

    def check_adapter(self, adapter: str | None, param: str = "adapter") -> str | None:
        if adapter in (None, "", self.model_id):
            return None
        if adapter not in self.settings.adapters:
            raise ApiError(404, f"{param}: unknown adapter or model {adapter!r}; choose one of: "
                           f"{', '.join(self.model_names())}", "model_not_found", param)
        return adapter

    def make_explainers(self, backends: dict[str | None, Any]) -> dict[tuple[str | None, bool], Explainer]:
        """One Explainer per (adapter, free labels), sharing the backends."""
        from affect_llm.label_model import resolve_label_model

        lm = resolve_label_model(self.settings.label_model, self.settings.model)
        if lm is not None:
            lm.warm()
        out = {}
        for adapter, backend in backends.items():
            for free in (False, True):
                out[(adapter, free)] = Explainer(
                    backend=backend, max_new_tokens=self.settings.max_new_tokens,
                    label_vocabulary=None if free else "emotions", label_model=lm,
                )
        return out

    async def explain(self, req: ExplainRequest, *, adapter: str | None, free_labels: bool) -> EmotionReport:
        raise NotImplementedError

    async def chat(self, req: ChatRequest, messages: list[Message], adapter: str | None
                   ) -> dict[str, Any] | AsyncIterator[bytes]:
        raise NotImplementedError

    async def extra_metrics(self) -> str:
        return ""


def make_engine(settings: ServeSettings) -> Engine:
    if settings.engine == "transformers":
        return TransformersEngine(settings)
    from affect_llm.serve.vllm_engine import VLLMEngine

    return VLLMEngine(settings)


# ---------------------------------------------------------------------------- transformers engine
@dataclass
class _Job:
    kind: str  # explain | chat | stream
    future: Future
    adapter: str | None
    payload: Any
    key: tuple = field(default_factory=tuple)
    #: Set when the request gives up (timeout, client gone): the decode loop stops at its next token.
    stop: threading.Event = field(default_factory=threading.Event)


class _AdapterView:
    """A Backend that runs the shared model with one adapter active (None: adapters disabled)."""

    def __init__(self, base: Any, adapter: str | None, label: str, peft: bool) -> None:
        self.base, self.adapter, self.peft = base, adapter, peft
        self.name, self.model_id = "transformers", label
        # The label model's prior steers decoding here as in the CLI (the pipeline asks the backend it holds).
        self.accepts_label_priors = getattr(base, "accepts_label_priors", False)

    def activate(self):
        import contextlib

        model = self.base.model
        if not self.peft:
            return contextlib.nullcontext()
        if self.adapter is None:
            return model.disable_adapter()
        model.set_adapter(self.adapter)
        return contextlib.nullcontext()

    def generate(self, batch: list[list[Message]], **kw: Any) -> list[Generation]:
        with self.activate():
            return self.base.generate(batch, **kw)


class _PieceStreamer:
    """Hands each newly decided piece of text to `emit` (the decode loop calls it per token)."""

    def __init__(self, tokenizer: Any, emit: Callable[[str], None]) -> None:
        self.tok, self.emit = tokenizer, emit
        self.ids: list[int] = []
        self.prev = ""

    def __call__(self, _row: int, _tokenizer: Any, token_id: int) -> None:
        self.ids.append(token_id)
        text = self.tok.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return  # incomplete UTF-8 sequence: wait for the next token
        if len(text) > len(self.prev):
            self.emit(text[len(self.prev):])
            self.prev = text


class TransformersEngine(Engine):
    name = "transformers"

    def __init__(self, settings: ServeSettings) -> None:
        super().__init__(settings)
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.views: dict[str | None, _AdapterView] = {}
        self.explainers: dict[tuple[str | None, bool], Explainer] = {}

    # -- life ------------------------------------------------------------------------------
    def start(self) -> None:
        from affect_llm.assets import resolve_adapter
        from affect_llm.backends.transformers_backend import TransformersBackend

        # The bundled tuned adapter, as the CLI uses it (only for the embedded default model).
        base = TransformersBackend(model=self.settings.model, dtype=self.settings.dtype,
                                   adapter=resolve_adapter(self.settings.base_adapter, self.settings.model),
                                   repetition_penalty=self.settings.repetition_penalty)
        self.model_id = base.model_id
        if self.settings.adapters:
            require("train", "adapters", "peft")
            from peft import PeftModel

            names = list(self.settings.adapters)
            model = PeftModel.from_pretrained(base.model, self.settings.adapters[names[0]], adapter_name=names[0])
            for n in names[1:]:
                model.load_adapter(self.settings.adapters[n], adapter_name=n)
            model.eval()
            base.model = model
        peft = bool(self.settings.adapters)
        self.views = {None: _AdapterView(base, None, self.model_id, peft)}
        for n in self.settings.adapters:
            self.views[n] = _AdapterView(base, n, f"{self.model_id}+{n}", peft)
        self.explainers = self.make_explainers(dict(self.views))
        self._thread = threading.Thread(target=self._worker, name="affect-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()  # a running generation ends at its next token
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout=10)
        super().stop()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- requests --------------------------------------------------------------------------
    async def explain(self, req: ExplainRequest, *, adapter: str | None, free_labels: bool) -> EmotionReport:
        fut: Future = Future()
        key = (adapter, free_labels, repr(req.label_space))
        job = _Job("explain", fut, adapter, (req, free_labels), key)
        self._jobs.put(job)
        return await _await(fut, job.stop)

    async def chat(self, req: ChatRequest, messages: list[Message], adapter: str | None
                   ) -> dict[str, Any] | AsyncIterator[bytes]:
        schema = json_schema_of(req.response_format)
        params = {"max_new_tokens": req.token_budget, "seed": req.seed or 0, "json_schema": schema,
                  "temperature": 1.0 if req.temperature is None else req.temperature}
        model = req.model or self.model_id
        from affect_llm.limits import check_messages

        check_messages(self.views[None].base, messages, "messages")  # 413 before the job is queued
        if not req.stream:
            fut: Future = Future()
            job = _Job("chat", fut, adapter, (messages, params))
            self._jobs.put(job)
            gen = await _await(fut, job.stop)
            return completion(completion_id(), model, gen, req.logprobs)
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()

        def emit(text: str) -> None:
            loop.call_soon_threadsafe(pieces.put_nowait, text)

        fut = Future()
        fut.add_done_callback(lambda _f: loop.call_soon_threadsafe(pieces.put_nowait, None))
        stop = threading.Event()
        self._jobs.put(_Job("stream", fut, adapter, (messages, params, emit, stop), stop=stop))
        include_usage = bool((req.stream_options or {}).get("include_usage"))
        return _stream(fut, pieces, completion_id(), model, include_usage, stop)

    # -- worker ----------------------------------------------------------------------------
    def _worker(self) -> None:
        pending: deque[_Job] = deque()
        while True:
            job = pending.popleft() if pending else self._jobs.get()
            if job is None:
                break
            if job.kind != "explain":
                self._run_one(job)
                continue
            # Same-key requests already waiting join the batch; then wait a moment for concurrent
            # requests and take what is queued: the same key joins, the rest waits its turn.
            batch = [job]
            for other in list(pending):
                if len(batch) < self.settings.max_batch and other.kind == "explain" and other.key == job.key:
                    pending.remove(other)
                    batch.append(other)
            deadline = time.monotonic() + self.settings.batch_wait_ms / 1000
            while len(batch) < self.settings.max_batch:
                try:
                    nxt = self._jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    self._jobs.put(None)
                    break
                (batch if nxt.kind == "explain" and nxt.key == job.key else pending).append(nxt)
            self._run_batch(batch)
        for job in pending:
            _shut(job)
        while True:  # requests queued behind the stop signal: their server is going away
            try:
                left = self._jobs.get_nowait()
            except queue.Empty:
                break
            if left is not None:
                _shut(left)

    def _run_batch(self, batch: list[_Job]) -> None:
        if self._stopping.is_set():
            for j in batch:
                _shut(j)
            return
        live = [j for j in batch if not j.stop.is_set() and j.future.set_running_or_notify_cancel()]
        if not live:
            return
        explainer = self.explainers[(live[0].adapter, live[0].payload[1])]

        def cancelled() -> bool:  # the batch stops when the server stops or every request has given up
            return self._stopping.is_set() or all(j.stop.is_set() for j in live)

        self.busy_since = time.monotonic()
        try:
            reports = explainer.explain_many([j.payload[0] for j in live], batch_size=len(live),
                                             cancelled=cancelled)
        except Exception as err:  # noqa: BLE001 - retried one by one so each request gets its own error
            if len(live) == 1 or cancelled():
                for j in live:
                    j.future.set_exception(_stopped_error() if self._stopping.is_set() else err)
                return
            for j in live:
                try:
                    j.future.set_result(explainer.explain_many([j.payload[0]], cancelled=j.stop.is_set)[0])
                except Exception as one:  # noqa: BLE001
                    j.future.set_exception(one)
            return
        finally:
            self.busy_since = None
        for j, r in zip(live, reports):
            if self._stopping.is_set():
                j.future.set_exception(_stopped_error())
            else:
                j.future.set_result(r)

    def _run_one(self, job: _Job) -> None:
        if self._stopping.is_set():
            _shut(job)
            return
        if job.stop.is_set() or not job.future.set_running_or_notify_cancel():
            return
        view = self.views[job.adapter]

        def cancelled() -> bool:
            return self._stopping.is_set() or job.stop.is_set()

        self.busy_since = time.monotonic()
        try:
            if job.kind == "chat":
                messages, params = job.payload
                job.future.set_result(view.generate([messages], cancelled=cancelled, **params)[0])
            else:
                messages, params, emit, _stop = job.payload
                with view.activate():
                    job.future.set_result(_stream_generate(view.base, messages, emit=emit, cancelled=cancelled,
                                                           **params))
        except Exception as err:  # noqa: BLE001 - handed to the waiting request
            job.future.set_exception(err)
        finally:
            self.busy_since = None


def _stopped_error() -> ApiError:
    return ApiError(503, "the server is shutting down", "shutting_down")


def _shut(job: _Job) -> None:
    """Answer a job the engine will not run: the server is going away."""
    if job.future.set_running_or_notify_cancel():
        job.future.set_exception(_stopped_error())


async def _await(fut: Future, stop: threading.Event | None = None) -> Any:
    try:
        return await asyncio.wrap_future(fut)
    except ParseError as err:
        raise ApiError(502, f"the model's answer could not be parsed: {err}", "model_output") from None
    except asyncio.CancelledError:  # timeout or client gone: skip the job, or stop it at its next token
        if stop is not None:
            stop.set()
        fut.cancel()
        raise


async def _stream(fut: Future, pieces: asyncio.Queue, cid: str, model: str, include_usage: bool,
                  stop: threading.Event | None = None) -> AsyncIterator[bytes]:
    try:
        yield chunk(cid, model, {"role": "assistant", "content": ""})
        while True:
            text = await pieces.get()
            if text is None:
                break
            yield chunk(cid, model, {"content": text})
        try:
            gen = await asyncio.wrap_future(fut)
        except Exception as err:  # noqa: BLE001 - the stream has begun: report in-band, as OpenAI does
            yield sse({"error": {"message": f"generation failed: {err}", "type": "engine_error", "code": "engine"}})
            yield SSE_DONE
            return
        yield chunk(cid, model, {}, finish=gen.finish_reason)
        if include_usage:
            yield chunk(cid, model, {}, usage={"prompt_tokens": gen.prompt_tokens,
                                                "completion_tokens": gen.completion_tokens,
                                                "total_tokens": gen.prompt_tokens + gen.completion_tokens})
        yield SSE_DONE
    finally:
        if stop is not None:
            stop.set()  # client went away mid-answer: the decode loop stops at its next token
        fut.cancel()  # client went away before its turn: skip the work


def _stream_generate(backend: Any, messages: list[Message], *, emit: Callable[[str], None], max_new_tokens: int,
                     temperature: float, seed: int, json_schema: dict[str, Any] | None,
                     cancelled: Callable[[], bool] | None = None) -> Generation:
    """One streamed generation through the backend's own decode loop (same constraint and penalty)."""
    return backend.generate([messages], max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                            json_schema=json_schema, emit=_PieceStreamer(backend.tokenizer, emit),
                            cancelled=cancelled)[0]
