"""The explain pipeline: request -> prompt (versioned template) -> backend -> parsed, scored report."""

from __future__ import annotations

import time
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from affect_llm.backends.base import Backend, Message, make_backend
from affect_llm.errors import AffectError
from affect_llm.parsing import ParseError, label_confidence, parse_answer
from affect_llm.prompting import get_template, template_versions
from affect_llm.schema import Cue, EmotionReport, Turn, answer_json_schema


class Demo(BaseModel):
    """A worked example shown in the prompt (filled by demonstration retrieval)."""

    text: str
    speaker: str | None = None
    context: list[Turn] = Field(default_factory=list)
    label: str = ""
    answer: str = ""

    @classmethod
    def from_sample(cls, sample: Any) -> "Demo":
        """A retrieved canonical sample as a demo; its answer is shown in the answer's own JSON shape."""
        import json

        from affect_llm.retrieval import demo_fields

        fields = demo_fields(sample)
        answer: dict[str, Any] = {}
        if fields["answer"]:
            answer["explanation"] = fields["answer"]
        answer["labels"] = list(sample.labels)
        fields["answer"] = json.dumps(answer, ensure_ascii=False)
        return cls(**fields)


class ExplainRequest(BaseModel):
    """One query: the target utterance, its dialogue context and any textualized cues."""

    model_config = ConfigDict(extra="forbid")

    text: str
    speaker: str | None = None
    context: list[Turn] = Field(default_factory=list)
    cues: list[Cue] = Field(default_factory=list)
    label_space: list[str] | None = None
    demos: list[Demo] = Field(default_factory=list)
    # Non-verbal inputs given to a projector model as soft tokens: {"audio"|"face": file path}.
    media: dict[str, str] = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _text_non_empty(cls, v: str) -> str:
        if not v or not v.strip():
            raise ValueError("text is empty")
        return v.strip()

    @field_validator("label_space")
    @classmethod
    def _labels_non_empty(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            v = [x.strip() for x in v if x.strip()]
            if not v:
                raise ValueError("label_space is empty")
        return v


def request_from(**fields: Any) -> ExplainRequest:
    """Build a request, turning validation problems into one-line user errors."""
    from pydantic import ValidationError

    try:
        return ExplainRequest(**fields)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "request"
        raise AffectError(f"invalid input: {where}: {first['msg'].removeprefix('Value error, ')}") from None


class Explainer:
    """What does this person feel, and why? Backed by any registered backend.

    >>> Explainer().explain(text="I can't believe you forgot my birthday again.")  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | None = None,
        backend: str | Backend = "transformers",
        *,
        adapter: str | None = "default",
        projector: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        dtype: str = "bfloat16",
        max_new_tokens: int = 160,
        temperature: float = 0.0,
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
        """
        self.template = get_template(template)
        self.system = get_template(system_template)
        self.max_new_tokens, self.temperature, self.seed = max_new_tokens, temperature, seed
        if label_vocabulary == "emotions":
            from affect_llm.vocabulary import EMOTION_WORDS

            label_vocabulary = list(EMOTION_WORDS)
        elif isinstance(label_vocabulary, str):
            raise AffectError(f"unknown label vocabulary {label_vocabulary!r}; use 'emotions', a list, or None")
        self.label_vocabulary = label_vocabulary
        self.k = k
        self.demo_index = None
        if demos:
            if k < 1:
                raise AffectError("--demos needs --k N with N >= 1")
            from affect_llm.retrieval import DemoIndex

            self.demo_index = DemoIndex.load(demos)
        start = time.perf_counter()
        if isinstance(backend, str):
            kwargs: dict[str, Any] = {"model": model}
            if backend == "openai":
                kwargs.update(base_url=base_url, api_key=api_key)
            else:
                from affect_llm.assets import resolve_adapter

                kwargs.update(adapter=resolve_adapter(adapter, model), dtype=dtype)
            if projector:
                if backend != "transformers":
                    raise AffectError(f"--projector needs the transformers backend (got {backend!r}); serve soft "
                                      "tokens through vLLM with prompt embeddings, see affect_llm.projector.vllm_embeds")
                kwargs["projector"] = projector
            self.backend = make_backend(backend, **kwargs)
        else:
            self.backend = backend
        self.load_seconds = time.perf_counter() - start

    # -- prompt ---------------------------------------------------------------------------------
    def template_for(self, req: ExplainRequest):
        """The template a request renders with: InstructERC wording for closed-set dialogue tasks."""
        if req.label_space and self.template.name == "explain" and req.context:
            return get_template("erc")
        return self.template

    def messages(self, req: ExplainRequest) -> list[Message]:
        user = self.template_for(req).render(
            text=req.text,
            speaker=req.speaker,
            context=[t.model_dump() for t in req.context],
            cues=[c.model_dump() for c in req.cues],
            label_space=req.label_space or [],
            demos=[d.model_dump() for d in req.demos],
            soft=sorted(req.media),
        )
        return [{"role": "system", "content": self.system.render()}, {"role": "user", "content": user}]

    def schema(self, req: ExplainRequest) -> dict[str, Any]:
        """The answer schema for this request: closed label set, emotion vocabulary, or free labels."""
        schema = answer_json_schema()
        labels = schema["properties"]["labels"]
        if req.label_space:
            labels["items"] = {"type": "string", "enum": list(req.label_space)}
            labels["maxItems"] = 1
        elif self.label_vocabulary:
            labels["items"] = {"type": "string", "enum": list(self.label_vocabulary)}
        return schema

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
        samples: list[Any] | None = None,
    ) -> list[EmotionReport]:
        """Explain many requests in batches; `samples` are their canonical samples (for demo retrieval)."""
        reqs = self.with_demos(list(requests), samples)
        reports: list[EmotionReport] = []
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(reqs), desc="explain", unit="query")
        # Requests with the same schema share a batch (one constraint per generate call).
        for i in range(0, len(reqs), batch_size):
            chunk = reqs[i : i + batch_size]
            groups: dict[str, list[int]] = {}
            for j, r in enumerate(chunk):
                groups.setdefault(repr(r.label_space), []).append(j)
            out: list[EmotionReport | None] = [None] * len(chunk)
            for idxs in groups.values():
                sub = [chunk[j] for j in idxs]
                for j, rep in zip(idxs, self._run(sub)):
                    out[j] = rep
            reports.extend(r for r in out if r is not None)
            if bar:
                bar.update(len(chunk))
        if bar:
            bar.close()
        return reports

    def _run(self, reqs: list[ExplainRequest]) -> list[EmotionReport]:
        extra: dict[str, Any] = {}
        if any(r.media for r in reqs):
            if not getattr(self.backend, "accepts_media", False):
                raise AffectError("audio/face soft tokens need a projector model: load one with --projector DIR "
                                  "(or pass the signals as textualized cues instead)")
            extra["media"] = [dict(r.media) for r in reqs]
        start = time.perf_counter()
        gens = self.backend.generate(
            [self.messages(r) for r in reqs],
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            seed=self.seed,
            json_schema=self.schema(reqs[0]),
            **extra,
        )
        seconds = time.perf_counter() - start
        reports = []
        for req, gen in zip(reqs, gens):
            try:
                payload = parse_answer(gen.text)
            except ParseError as err:
                raise ParseError(f"{err} (finish reason: {gen.finish_reason})") from None
            reports.append(
                EmotionReport(
                    labels=payload.labels,
                    explanation=payload.explanation,
                    cues=payload.cues,
                    confidence=label_confidence(gen.text, gen.pieces, gen.logprobs),
                    model=self.backend.model_id,
                    template=self.template_for(req).tag,
                    timings={
                        "generate_s": round(seconds / len(reqs), 4),
                        "batch_s": round(seconds, 4),
                        "completion_tokens": float(gen.completion_tokens),
                        "tokens_per_s": round(gen.completion_tokens / seconds, 2) if seconds else 0.0,
                    },
                    raw=gen.text,
                )
            )
        return reports

    def describe(self) -> dict[str, Any]:
        """Provenance for run cards and reports."""
        return {
            "model": self.backend.model_id,
            "backend": self.backend.name,
            "template": self.template.tag,
            "templates": template_versions(),
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
            "label_vocabulary": "free" if not self.label_vocabulary else f"{len(self.label_vocabulary)} words",
            "demos": {"index": self.demo_index.manifest if self.demo_index is not None else None, "k": self.k},
        }
