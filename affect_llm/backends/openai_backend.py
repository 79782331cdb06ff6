"""Any OpenAI-compatible chat endpoint (vLLM's server first of all), over plain HTTP with httpx.

The schema is enforced by the server through `response_format: json_schema` (vLLM's structured
outputs). Token log-probabilities are requested so the confidence comes from the model; servers that
return none give `logprobs=None` and the answer's confidence is null.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from affect_llm.backends.base import Generation, Message
from affect_llm.backends.label_prior import prior_xargs
from affect_llm.decoding import DECODING
from affect_llm.errors import AffectError


class OpenAIBackend:
    name = "openai"
    # Only a server known to load `LabelPriorLogitsProcessor` (affect-llm's managed vLLM child) takes the
    # label model's prior, as `vllm_xargs`; another server would reject or ignore the field.
    accepts_label_priors = False

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        concurrency: int = 8,
        **unknown: Any,
    ) -> None:
        import httpx

        given = sorted(k for k, v in unknown.items() if v is not None)
        if given:  # an in-process option (adapter, dtype, projector, ...) must not be dropped silently
            raise AffectError(f"the openai backend does not take {', '.join(given)}: the server behind --base-url "
                              "loads the model and its adapters")
        if not base_url:
            raise AffectError("the openai backend needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        self.concurrency = concurrency
        self.model_id = model if model not in (None, "", "default") else self._first_model()

    def _request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        import httpx

        try:
            resp = self.client.request(method, path, **kw)
        except httpx.HTTPError as err:
            raise AffectError(f"cannot reach {self.base_url}{path}: {err}") from None
        if resp.status_code >= 400:
            raise AffectError(f"{self.base_url}{path} answered {resp.status_code}: {resp.text[:300]}")
        return resp.json()

    def _first_model(self) -> str:
        data = self._request("GET", "/models").get("data") or []
        if not data:
            raise AffectError(f"{self.base_url}/models lists no model; pass --model")
        return data[0]["id"]

    def _one(self, messages: list[Message], max_new_tokens: int, temperature: float, seed: int,
             json_schema: dict[str, Any] | None, prior: dict[str, float] | None = None) -> Generation:
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": messages,
            "max_tokens": max_new_tokens,
            "temperature": temperature,
            "seed": seed,
            "logprobs": True,
        }
        if json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "affect_answer", "schema": json_schema, "strict": True},
            }
            xargs = prior_xargs(prior, float(DECODING["prior_weight"])) if self.accepts_label_priors else None
            if xargs:
                body["vllm_xargs"] = xargs
        data = self._request("POST", "/chat/completions", json=body)
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        content = (choice.get("logprobs") or {}).get("content") or []
        pieces, logprobs = _aligned_logprobs(text, content)
        usage = data.get("usage") or {}
        return Generation(
            text=text,
            pieces=pieces if logprobs is not None else [],
            logprobs=logprobs,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", len(pieces))),
            finish_reason=choice.get("finish_reason") or "stop",
        )

    def generate(
        self,
        batch: list[list[Message]],
        *,
        max_new_tokens: int = int(DECODING["max_new_tokens"]),
        temperature: float = float(DECODING["temperature"]),
        seed: int = 0,
        json_schema: dict[str, Any] | list[dict[str, Any]] | None = None,
        label_priors: list[dict[str, float] | None] | None = None,
    ) -> list[Generation]:
        from affect_llm.backends.base import schemas_for

        schemas = schemas_for(json_schema, len(batch))
        priors = list(label_priors or []) + [None] * (len(batch) - len(label_priors or []))
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(batch)))) as pool:
            futures = [pool.submit(self._one, m, max_new_tokens, temperature, seed, sc, pr)
                       for m, sc, pr in zip(batch, schemas, priors)]
            return [f.result() for f in futures]


def _aligned_logprobs(text: str, content: list[dict[str, Any]]) -> tuple[list[str], list[float] | None]:
    """Token pieces and log-probs covering exactly `text`.

    vLLM lists the stop token (e.g. `<|im_end|>`) in the log-probs but not in the text: trailing pieces
    past the end of the text are dropped. Anything else that does not line up gives no log-probs.
    """
    pieces: list[str] = []
    logprobs: list[float] = []
    pos = 0
    for c in content:
        if pos == len(text):
            break
        tok = c.get("token", "")
        if not text.startswith(tok, pos):
            return [], None
        pieces.append(tok)
        logprobs.append(float(c["logprob"]))
        pos += len(tok)
    if pos != len(text) or not pieces:
        return [], None
    return pieces, logprobs
