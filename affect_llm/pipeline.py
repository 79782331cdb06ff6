"""The explain pipeline: request -> `ExplainTask` (evidence, prior, prompt, schema) -> backend -> report.

`Explainer` adds what a session needs around the task: the model behind a backend, the bundled adapter
and label model, demonstration retrieval and batching.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

from affect_llm.backends import make_backend, resolve_backend
from affect_llm.backends.base import Backend, Message
from affect_llm.errors import AffectError
from affect_llm.explain_task import DECODING, Demo, ExplainRequest, ExplainTask, Prepared, request_from
from affect_llm.limits import MAX_INPUT_TOKENS, InputTooLongError, check_messages, check_request
from affect_llm.prompting import template_versions
from affect_llm.schema import EmotionReport

__all__ = ["MAX_INPUT_TOKENS", "Demo", "ExplainRequest", "Explainer", "InputTooLongError", "request_from"]


def _check_params(*, max_new_tokens: Any, temperature: Any, seed: Any, k: Any) -> None:
    """Decoding parameters of the Python API, checked before anything loads; the error names the parameter."""
    import math

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if not is_int(max_new_tokens) or not 8 <= max_new_tokens <= 4096:
        raise AffectError(f"max_new_tokens must be an integer in 8..4096 (got {max_new_tokens!r})")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
            or not 0 <= temperature <= 2:
        raise AffectError(f"temperature must be a number in 0..2 (got {temperature!r})")
    if not is_int(seed):
        raise AffectError(f"seed must be an integer (got {seed!r})")
    if not is_int(k) or not 0 <= k <= 32:
        raise AffectError(f"k must be an integer in 0..32 (got {k!r})")


class Explainer:
    """What does this person feel, and why? Backed by any registered backend.

    >>> Explainer().explain(text="I can't believe you forgot my birthday again.")  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | None = None,
        backend: str | Backend = "auto",
        *,
        adapter: str | None = "default",
        label_model: Any = "default",
        projector: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        dtype: str | None = None,
        max_new_tokens: int = DECODING["max_new_tokens"],
        temperature: float = DECODING["temperature"],
        seed: int = 0,
        template: str = "explain",
        system_template: str = "system",
        label_vocabulary: str | list[str] | None = "emotions",
        demos: str | None = None,
        k: int = 0,
    ) -> None:
        """`label_vocabulary`: "emotions" (the bundled emotion words), a list, or None for free labels.

        `adapter`: "default" = the tuned LoRA adapter shipped for the default model (only applied to that
        model, and only by in-process backends), None = the bare model, or an adapter folder.
        `label_model`: "default" = the bundled label model (for the default model), None = none, a folder,
        or a loaded `LabelModel`.
        """
        from affect_llm.label_model import LabelModel, resolve_label_model

        _check_params(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, k=k)
        self.max_new_tokens, self.temperature, self.seed = int(max_new_tokens), float(temperature), int(seed)
        if label_vocabulary == "emotions":
            from affect_llm.vocabulary import EMOTION_WORDS

            label_vocabulary = list(EMOTION_WORDS)
        elif isinstance(label_vocabulary, str):
            raise AffectError(f"unknown label vocabulary {label_vocabulary!r}; use 'emotions', a list, or None")
        elif label_vocabulary is not None:
            if not isinstance(label_vocabulary, (list, tuple)) or not all(isinstance(x, str) for x in label_vocabulary):
                raise AffectError("label_vocabulary must be 'emotions', a list of strings, or None for free labels")
            blank = [x for x in label_vocabulary if not x.strip()]
            label_vocabulary = [x.strip() for x in label_vocabulary if x.strip()]
            if not label_vocabulary:
                raise AffectError("label_vocabulary is empty (or only blank strings); give emotion words, 'emotions', "
                                  "or None for free labels")
            if blank:
                raise AffectError(f"label_vocabulary holds {len(blank)} blank label(s); every label must be a word")
        self.label_vocabulary = label_vocabulary
        if isinstance(backend, str):
            lm_for = model
        else:  # a built backend: the bundled label model only goes with the embedded model it was made for
            from affect_llm.assets import DEFAULT_LLM

            lm_for = None if str(getattr(backend, "model_id", "")).startswith(DEFAULT_LLM) else "another-model"
        lm = label_model if isinstance(label_model, LabelModel) else resolve_label_model(label_model, lm_for)
        self.task = ExplainTask(template=template, system_template=system_template,
                                label_vocabulary=label_vocabulary, label_model=lm)
        self.k = k
        self.demo_index = None
        if demos:
            if k < 1:
                raise AffectError("--demos needs --k N with N >= 1")
            from affect_llm.retrieval import DemoIndex

            self.demo_index = DemoIndex.load(demos)
        start = time.perf_counter()
        if isinstance(backend, str):
            backend = resolve_backend(backend, model, projector=projector)
            kwargs: dict[str, Any] = {"model": model}
            if backend == "openai":
                kwargs.update(base_url=base_url, api_key=api_key)
                if adapter not in (None, "default"):
                    raise AffectError("--adapter needs an in-process backend (transformers or vllm); an OpenAI-"
                                      "compatible server loads adapters itself (affect-llm serve --adapter NAME=DIR)")
            else:
                from affect_llm.assets import resolve_adapter

                kwargs.update(adapter=resolve_adapter(adapter, model))
                if dtype is not None:
                    kwargs["dtype"] = dtype
            if projector:
                if backend != "transformers":
                    raise AffectError(f"--projector needs the transformers backend (got {backend!r}); serve soft "
                                      "tokens through vLLM with prompt embeddings, see affect_llm.projector.vllm_embeds")
                kwargs["projector"] = projector
            self.backend = make_backend(backend, **kwargs)
        else:
            self.backend = backend
        if lm is not None and self.task.label_model is lm:
            lm.warm()  # the embedder loads with the model, not inside the first query's time
        self.load_seconds = time.perf_counter() - start

    @property
    def template(self):
        return self.task.template

    @property
    def label_model(self):
        return self.task.label_model

    # -- prompt ---------------------------------------------------------------------------------
    def messages(self, req: ExplainRequest) -> list[Message]:
        return self.task.prepare(req).messages

    # -- demonstrations -------------------------------------------------------------------------
    def with_demos(self, requests: list[ExplainRequest], samples: list[Any] | None = None) -> list[ExplainRequest]:
        """Attach k retrieved demonstrations to requests that have none.

        `samples` (canonical samples, same order) are the retrieval queries when known, so the index can
        exclude the sample itself and its dialogue; otherwise a query is built from the request.
        """
        if self.demo_index is None:
            return requests
        from affect_llm.data_builders.schema import Sample

        todo = [i for i, r in enumerate(requests) if not r.demos]
        queries = [
            samples[i] if samples is not None else
            Sample(id=f"query-{i}", dataset="query", split="query", text=requests[i].text,
                   context=requests[i].context, speaker=requests[i].speaker)
            for i in todo
        ]
        out = list(requests)
        for i, picked in zip(todo, self.demo_index.select_many(queries, self.k)):
            # Most similar last: the closest example sits right before the real case.
            out[i] = requests[i].model_copy(update={"demos": [Demo.from_sample(s) for s in reversed(picked)]})
        return out

    # -- queries --------------------------------------------------------------------------------
    def explain(self, text: str | None = None, **fields: Any) -> EmotionReport:
        req = fields.pop("request", None) or request_from(text=text or "", **fields)
        return self.explain_many([req])[0]

    def explain_many(
        self, requests: Iterable[ExplainRequest], batch_size: int = 8, progress: bool = False,
        samples: list[Any] | None = None, cancelled: Any = None,
    ) -> list[EmotionReport]:
        """Explain many requests in batches; `samples` are their canonical samples (for demo retrieval).

        `cancelled()`, when given, is polled by in-process backends at every token: true stops the batch."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise AffectError(f"batch_size must be an integer of at least 1 (got {batch_size!r})")
        reqs = list(requests)
        for r in reqs:
            if not isinstance(r, ExplainRequest):
                raise AffectError(f"explain_many takes ExplainRequest objects (build them with request_from), got "
                                  f"{type(r).__name__}")
            check_request(r)  # the cheap character bound, before retrieval or tokenizing
        reqs = self.with_demos(reqs, samples)
        reports: list[EmotionReport] = []
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(reqs), desc="explain", unit="query")
        for i in range(0, len(reqs), batch_size):
            chunk = reqs[i : i + batch_size]
            t0 = time.perf_counter()
            preps = self.task.prepare_many(chunk)
            prep_s = (time.perf_counter() - t0) / max(1, len(chunk))
            reports.extend(self._run(preps, prep_s, cancelled))  # one schema per request, one batch
            if bar:
                bar.update(len(chunk))
        if bar:
            bar.close()
        return reports

    def _run(self, preps: list[Prepared], prep_s: float, cancelled: Any = None) -> list[EmotionReport]:
        for p in preps:  # the documented prompt limit, with the backend's own template and tokenizer
            check_messages(self.backend, p.messages)
        extra: dict[str, Any] = {}
        if cancelled is not None:
            extra["cancelled"] = cancelled
        if any(p.request.media for p in preps):
            if not getattr(self.backend, "accepts_media", False):
                raise AffectError("audio/face soft tokens need a projector model: load one with --projector DIR "
                                  "(or pass the signals as textualized cues instead)")
            extra["media"] = [dict(p.request.media) for p in preps]
        if getattr(self.backend, "accepts_label_priors", False) and any(p.prior_all for p in preps):
            extra["label_priors"] = [p.candidate_prior() for p in preps]
        start = time.perf_counter()
        gens = self.backend.generate(
            [p.messages for p in preps],
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            seed=self.seed,
            json_schema=[p.schema for p in preps],
            **extra,
        )
        seconds = time.perf_counter() - start
        reports = []
        for prep, gen in zip(preps, gens):
            timings = {
                "prepare_s": round(prep_s, 4),
                "generate_s": round(seconds / len(preps), 4),
                "batch_s": round(seconds, 4),
                "completion_tokens": float(gen.completion_tokens),
                "tokens_per_s": round(gen.completion_tokens / seconds, 2) if seconds else 0.0,
            }
            reports.append(self.task.report(prep, gen, model=self.backend.model_id, timings=timings))
        return reports

    def describe(self) -> dict[str, Any]:
        """Provenance for run cards and reports."""
        lm = self.task.label_model
        return {
            "model": self.backend.model_id,
            "backend": self.backend.name,
            "template": self.template.tag,
            "templates": template_versions(),
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
            "label_vocabulary": "free" if not self.label_vocabulary else f"{len(self.label_vocabulary)} words",
            "label_model": None if lm is None else {"path": str(lm.path), "labels": len(lm.labels),
                                                    "train_files": [f["path"] for f in lm.card.get("train_files", [])]},
            "demos": {"index": self.demo_index.manifest if self.demo_index is not None else None, "k": self.k},
        }
