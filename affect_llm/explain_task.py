"""The explain contract: one object owns what a question becomes and how its answer is read.

`ExplainTask` turns an `ExplainRequest` into a `Prepared` query (the evidence list, the label model's
prior, the demonstrations, the chat messages, the JSON schema) and a model's `Generation` back into an
`EmotionReport`. The CLI, the Python API, the server, the eval runner and the training-data builder all
go through it, so what is trained, served and scored is the same prompt and the same parsing.

The model writes `{"labels": [...], "cues": ["E2", ...], "explanation": "..."}`:
- labels come from the task's closed label space, or from the label model's top candidates, or from the
  bundled emotion words (no label model), or are free (`label_vocabulary=None`);
- cues are ids of the evidence list, an enum in the schema, so every cited cue is in the input; the
  report shows each item's exact text, never the id;
- the explanation comes last, after the model has committed to labels and evidence, so it can say why.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from affect_llm.backends.base import Generation, Message
from affect_llm.errors import AffectError
from affect_llm.evidence import Evidence, build_evidence
from affect_llm.prompting import get_template
from affect_llm.schema import MAX_EXPLANATION_CHARS, AnswerCue, Cue, EmotionReport, Turn

from affect_llm.decoding import DECODING  # noqa: F401  (re-exported: the task owns its decoding defaults)

TOP_K_CANDIDATES = 5  # open-vocabulary answers choose among the label model's top candidates
MAX_OPEN_LABELS = 1  # one label: a 135M model's second label was "neutral" beside an emotion, or a guess
MAX_CITED = 2
DIALOGUE_TURNS = 4  # turns of context shown in the prompt (the evidence list names the ones that matter)


class Demo(BaseModel):
    """A worked example shown in the prompt (filled by demonstration retrieval)."""

    text: str
    speaker: str | None = None
    label: str = ""

    @classmethod
    def from_sample(cls, sample: Any) -> "Demo":
        from affect_llm.retrieval import key_text

        return cls(text=sample.text or key_text(sample, 1), speaker=sample.speaker, label=", ".join(sample.labels))


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
            v = list(dict.fromkeys(x.strip() for x in v if x.strip()))
            if not v:
                raise ValueError("label_space is empty")
        return v


def request_from(**fields: Any) -> ExplainRequest:
    """Build a request, turning validation problems into one-line user errors."""
    from pydantic import ValidationError

    from affect_llm.errors import check_text

    for name in ("text", "speaker"):
        check_text(fields.get(name), name)
    for i, turn in enumerate(fields.get("context") or ()):
        for name in ("speaker", "text"):
            value = turn.get(name) if isinstance(turn, dict) else getattr(turn, name, None)
            check_text(value, f"context.{i}.{name}")
    try:
        return ExplainRequest(**fields)
    except ValidationError as err:
        from affect_llm.errors import describe_validation

        where, msg = describe_validation(err)
        raise AffectError(f"invalid input: {where or 'request'}: {msg}") from None


@dataclass
class Prepared:
    """Everything one query needs: built once, used by the backend call, the parser and training."""

    request: ExplainRequest
    evidence: list[Evidence]
    prior: list[tuple[str, float]]  # label-model probabilities over the candidates, best first ([] = no model)
    candidates: list[str] | None  # the labels the schema allows (None = free)
    max_labels: int
    messages: list[Message]
    schema: dict[str, Any]
    template: str
    prior_all: dict[str, float] = field(default_factory=dict)  # over the whole label space / model labels

    @property
    def prompt_labels(self) -> list[str]:
        """The label names the prompt shows (allowed labels and the label model's line)."""
        return list(dict.fromkeys([*(self.candidates or []), *(lab for lab, _ in self.prior)]))

    def candidate_prior(self) -> dict[str, float] | None:
        """The label model's probabilities of the allowed labels, renormalised (None without a prior)."""
        if not self.prior_all or not self.candidates:
            return None
        closed = self.request.label_space is not None
        mass = {c: self.prior_all.get(c, 0.0) if closed else pooled(c, self.prior_all) for c in self.candidates}
        total = sum(mass.values())
        return {c: p / total for c, p in mass.items()} if total > 0 else None


class ExplainTask:
    """Messages, evidence, prior, demonstrations, schema, parsing and decoding defaults of the explain answer."""

    def __init__(self, *, template: str = "explain", system_template: str = "system",
                 label_vocabulary: list[str] | None = None, label_model: Any = None) -> None:
        self.template = get_template(template)
        self.system = get_template(system_template)
        self.label_vocabulary = label_vocabulary
        self.label_model = label_model

    # -- building -----------------------------------------------------------------------------------
    def prepare_many(self, requests: Sequence[ExplainRequest]) -> list[Prepared]:
        priors = self._priors(requests)
        return [self._prepare(r, p) for r, p in zip(requests, priors)]

    def prepare(self, request: ExplainRequest) -> Prepared:
        return self.prepare_many([request])[0]

    def _priors(self, requests: Sequence[ExplainRequest]) -> list[tuple[list[str], Any] | None]:
        if self.label_model is None or not requests:
            return [None] * len(requests)
        from affect_llm.label_model import Query

        probs = self.label_model.predict([Query(r.text, r.context, r.speaker) for r in requests])
        out: list[tuple[list[str], Any] | None] = []
        for r, row in zip(requests, probs):
            labels, proj = self.label_model.project(row[None, :], r.label_space)
            out.append((labels, proj[0]))
        return out

    def _prepare(self, req: ExplainRequest, prior_raw: tuple[list[str], Any] | None) -> Prepared:
        evidence = build_evidence(req.text, speaker=req.speaker, context=req.context, cues=req.cues)
        prior_all: dict[str, float] = {}
        if prior_raw is not None:
            labels, probs = prior_raw
            prior_all = {lab: float(p) for lab, p in zip(labels, probs)}
        ranked = sorted(prior_all.items(), key=lambda kv: -kv[1])
        if req.label_space:
            candidates: list[str] | None = list(req.label_space)
            max_labels = 1
            prior = ranked[:3]
        elif ranked:
            candidates = [lab for lab, _ in sorted(prior_all.items(), key=lambda kv: -pooled(kv[0], prior_all))]
            candidates = candidates[:TOP_K_CANDIDATES]
            max_labels = MAX_OPEN_LABELS
            prior = ranked[:TOP_K_CANDIDATES]
        else:
            candidates = list(self.label_vocabulary) if self.label_vocabulary else None
            max_labels = MAX_OPEN_LABELS
            prior = []
        messages = self._messages(req, evidence, prior)
        schema = answer_schema(candidates, max_labels, [e.id for e in evidence])
        return Prepared(request=req, evidence=evidence, prior=prior, candidates=candidates, max_labels=max_labels,
                        messages=messages, schema=schema, template=self.template.tag, prior_all=prior_all)

    def _messages(self, req: ExplainRequest, evidence: list[Evidence], prior: list[tuple[str, float]]) -> list[Message]:
        ctx_ids = {e.text: e.id for e in evidence if e.modality == "context"}
        from affect_llm.evidence import _turn_text

        dialogue = []
        for t in req.context[-DIALOGUE_TURNS:]:
            line = _turn_text(t.speaker, t.text)
            dialogue.append({"id": ctx_ids.get(line, ""), "line": line})
        shown_ctx = {d["line"] for d in dialogue}
        # A context item older than the shown window still needs its line, or its id would cite nothing.
        extra_ctx = [e for e in evidence if e.modality == "context" and e.text not in shown_ctx]
        user = self.template.render(
            text=req.text,
            speaker=req.speaker,
            dialogue=[{"id": e.id, "line": e.text} for e in extra_ctx] + dialogue,
            words=[e for e in evidence if e.modality == "text"],
            signals=[e for e in evidence if e.modality in ("speech", "face")],
            prior=[(lab, round(100 * p)) for lab, p in prior],
            label_space=req.label_space or [],
            demos=[d.model_dump() for d in req.demos],
            soft=sorted(req.media),
        )
        return [{"role": "system", "content": self.system.render()}, {"role": "user", "content": user}]

    # -- reading ------------------------------------------------------------------------------------
    def report(self, prep: Prepared, gen: Generation, *, model: str, timings: dict[str, float]) -> EmotionReport:
        from affect_llm.parsing import ParseError, label_probabilities, parse_answer

        try:
            payload = parse_answer(gen.text)
        except ParseError as err:
            raise ParseError(f"{err} (finish reason: {gen.finish_reason})") from None
        labels = payload.labels
        if prep.candidates is not None:
            allowed = {c.lower(): c for c in prep.candidates}
            kept = [allowed[x.lower()] for x in labels if x.lower() in allowed]
            if not kept:
                raise ParseError(f"the model's labels {labels} are none of the allowed labels")
            labels = kept[: prep.max_labels]
        if len(labels) > 1 and "neutral" in labels:  # "neutral" beside an emotion says nothing
            labels = [x for x in labels if x != "neutral"]
        items, dropped = cited_items(payload.cues, prep.evidence)
        cues = [AnswerCue(modality=e.modality, cue=e.kind, evidence=e.text) for e in items]
        explanation = render_ids(payload.explanation, prep.evidence)
        rewritten = explanation_check(explanation, prep)
        if rewritten:  # a sentence a reader can't trust: say why from the cited evidence instead
            if is_inconsistent(explanation, labels):  # the flag's finding stays visible
                rewritten.append("names emotions outside its labels")
            explanation = evidence_explanation(prep, labels, items)
        llm_p = label_probabilities(gen.text, gen.pieces, gen.logprobs)
        confidence = combine_confidence(labels, llm_p, prep.prior_all)
        return EmotionReport(
            labels=labels,
            explanation=explanation,
            cues=cues,
            confidence=confidence,
            llm_confidence=(sum(llm_p) / len(llm_p)) if llm_p else None,
            label_prior={k: round(v, 4) for k, v in prep.prior} or None,
            inconsistent=is_inconsistent(explanation, labels),
            explanation_rewritten=rewritten,
            dropped_citations=dropped,
            model=model,
            template=prep.template,
            timings=timings,
            raw=gen.text,
        )

    # -- training targets ---------------------------------------------------------------------------
    def target(self, prep: Prepared, gold: Sequence[str], key: str) -> str | None:
        """The answer the model should write for a sample with labels `gold` (None: no usable label).

        Labels: the gold labels the schema allows (a gold label outside the label model's candidates makes
        no target: the model cannot learn to write what it will never be allowed to). Evidence: the items
        that point to the gold label's family, then the dialogue, then salient words. The explanation cites
        them and names the label, in one of several phrasings picked by a hash of `key`.
        """
        from affect_llm.explanations import target_explanation
        from affect_llm.vocabulary import VOCAB_ALIASES

        labels: list[str] = []
        for g in gold:
            cands = prep.candidates
            if cands is None:
                lab = g
            else:
                pool = {c.lower(): c for c in cands}
                lab = pool.get(g.lower()) or pool.get(VOCAB_ALIASES.get(g.lower(), ""))
            if lab and lab not in labels:
                labels.append(lab)
        labels = labels[: prep.max_labels]
        if not labels:
            return None
        cited = pick_evidence(prep.evidence, labels)
        expl = target_explanation(prep.request, labels, cited, key)
        return json.dumps({"labels": labels, "cues": [e.id for e in cited], "explanation": expl}, ensure_ascii=False)


def pooled(label: str, prior: dict[str, float]) -> float:
    """An open label's weight: its own probability plus half the rest of its emotion family's.

    A fine-grained model splits "sad" over sadness, grief, disappointment, ... while neutral stands alone,
    so the raw argmax says neutral for "My dog died this morning" (neutral .29, sadness .25, grief .08)."""
    from affect_llm.emotion_groups import family

    fam = family(label)
    if fam in (None, "neutral"):
        return prior.get(label, 0.0)
    rest = sum(p for lab, p in prior.items() if lab != label and family(lab) == fam)
    return prior.get(label, 0.0) + 0.5 * rest


# ------------------------------------------------------------------------------------------- schema
def answer_schema(candidates: list[str] | None, max_labels: int, evidence_ids: list[str]) -> dict[str, Any]:
    """The JSON schema constrained decoding enforces: labels, cited evidence ids, one explanation."""
    item: dict[str, Any] = {"type": "string", "enum": list(candidates)} if candidates else \
        {"type": "string", "minLength": 1, "maxLength": 24}
    cues: dict[str, Any] = {"type": "array", "maxItems": 0}
    if evidence_ids:
        cues = {"type": "array", "items": {"type": "string", "enum": list(evidence_ids)}, "minItems": 1,
                "maxItems": min(MAX_CITED, len(evidence_ids))}
    return {
        "type": "object",
        "properties": {
            "labels": {"type": "array", "items": item, "minItems": 1, "maxItems": max_labels},
            "cues": cues,
            # >= 30 characters: "Chandler sounds neutral." cites nothing; a sentence that quotes evidence is longer.
            "explanation": {"type": "string", "minLength": 30, "maxLength": MAX_EXPLANATION_CHARS},
        },
        "required": ["labels", "cues", "explanation"],
        "additionalProperties": False,
    }


# ---------------------------------------------------------------------------------------- citations
_ID = re.compile(r"^\s*\[?E?(\d+)\]?\s*$", re.IGNORECASE)


def cited_items(raw: Sequence[Any], evidence: Sequence[Evidence]) -> tuple[list[Evidence], int]:
    """The evidence items the citations name (each once, in citation order), and how many named nothing."""
    by_id = {e.id.lower(): e for e in evidence}
    by_text = {e.text.lower(): e for e in evidence}
    items: list[Evidence] = []
    seen: set[str] = set()
    dropped = 0
    for c in raw:
        if isinstance(c, dict):
            c = c.get("id") or c.get("evidence") or c.get("cue") or ""
        s = str(c).strip()
        m = _ID.match(s)
        item = by_id.get(f"e{m.group(1)}") if m else by_text.get(s.strip('"').lower())
        if item is None:
            dropped += 1
            continue
        if item.id in seen:
            continue
        seen.add(item.id)
        items.append(item)
    return items, dropped


_ID_THEN_QUOTE = re.compile(r"\b(E\d+)\b(?:([:,]?\s*)(['\"‘“`])(.*?)(['\"’”`]))?")
_QUOTED_ID = re.compile(r"['\"‘“`](E\d+)['\"’”`]")


def render_ids(explanation: str, evidence: Sequence[Evidence]) -> str:
    """Evidence ids the model wrote in its sentence ("in E1") become the item's text: ids stay internal.
    An id the model then quotes itself (`E2: 'say it Kyle!'`) is written once, not `"say it Kyle!": '…'`,
    and a quoted id (`'E2'`) loses the model's quotes."""
    by_id = {e.id: e for e in evidence}
    explanation = _QUOTED_ID.sub(lambda m: m.group(1) if m.group(1) in by_id else m.group(0), explanation)

    def sub(m: re.Match) -> str:
        e = by_id.get(m.group(1))
        if e is None:
            return m.group(0)
        text = e.text if e.modality != "text" else f'"{e.text}"'
        if m.group(3) is None or m.group(4).strip().casefold() == e.text.strip().casefold():
            return text
        return text + m.group(0)[len(m.group(1)):]  # a different quote follows: keep it

    return _ID_THEN_QUOTE.sub(sub, explanation)


def pick_evidence(evidence: Sequence[Evidence], labels: Sequence[str]) -> list[Evidence]:
    """The evidence that best supports `labels`: same family, then agreeing polarity, then context/signals."""
    from affect_llm.emotion_groups import family

    fams = {family(x) for x in labels} - {None}
    positive = bool(fams & {"joy"})
    negative = bool(fams & {"anger", "sadness", "fear", "disgust"})

    def score(e: Evidence) -> float:
        s = 0.0
        if e.family and e.family in fams:
            s += 4
        if (positive and e.polarity > 0) or (negative and e.polarity < 0):
            s += 2
        if e.kind in ("negation", "intensified emotion word", "exclamation", "emoji", "capitals (emphasis)"):
            s += 1
        if e.modality in ("speech", "face"):
            s += 1.5
        if e.modality == "context":
            s += 0.5 if fams - {"neutral"} else 0.2
        if e.family and fams and e.family not in fams:
            s -= 3
        if "neutral" in fams:
            s += -2 if (e.polarity or e.family) else (1 if e.modality == "text" else 0)
        return s

    ranked = sorted(evidence, key=lambda e: (-score(e), int(e.id[1:])))
    picked = [e for e in ranked if score(e) > 0][:MAX_CITED] or ranked[:1]
    return sorted(picked, key=lambda e: int(e.id[1:]))


def explanation_check(explanation: str, prep: Prepared) -> list[str]:
    """What makes the model's sentence untrustworthy (empty: nothing): broken (explanations.py), a quote that
    is not in the input or given to the wrong speaker, or no pointer to the input at all."""
    from affect_llm.explanations import cites_input, explanation_problems, quote_problems

    req = prep.request
    signals = [e.text for e in prep.evidence if e.modality in ("speech", "face")]
    problems = explanation_problems(explanation, req.text, req.context, prep.prompt_labels)
    problems += quote_problems(explanation, req.text, req.speaker, req.context, signals)
    names = [req.speaker or ""] + [t.speaker for t in req.context]
    if not problems and not cites_input(explanation, [req.text] + [t.text for t in req.context] + signals, names):
        problems.append("cites no evidence")
    return list(dict.fromkeys(problems))


def evidence_explanation(prep: Prepared, labels: Sequence[str], items: Sequence[Evidence]) -> str:
    """A sentence written from the cited evidence, in the phrasings the adapter was trained on; the first of
    them (in an order fixed by the turn) that passes the broken-sentence checks ('"Fine!" signals anger.' is
    three words)."""
    from affect_llm.explanations import explanation_problems, target_explanation

    req = prep.request
    first = ""
    for attempt in range(8):
        out = target_explanation(req, labels, items, key=req.text if attempt == 0 else f"{req.text}#{attempt}")
        if not explanation_problems(out, req.text, req.context, prep.prompt_labels):
            return out
        first = first or out
    return first


# -------------------------------------------------------------------------------------- consistency
_EMOTION_FORMS: dict[str, str] | None = None


def _emotion_forms() -> dict[str, str]:
    """Emotion words and their common adjective forms -> the word (for spotting emotions in prose)."""
    global _EMOTION_FORMS
    if _EMOTION_FORMS is None:
        from affect_llm.emotion_groups import _GROUPS
        from affect_llm.explanations import ADJECTIVES

        forms = {w: w for w in _GROUPS}
        forms.update({adj: w for w, adj in ADJECTIVES.items()})
        _EMOTION_FORMS = forms
    return _EMOTION_FORMS


def named_emotions(text: str) -> list[str]:
    forms = _emotion_forms()
    return [forms[w] for w in re.findall(r"[a-z]+", text.lower()) if w in forms]


def is_inconsistent(explanation: str, labels: Sequence[str]) -> bool:
    """True when the explanation names emotions and none of them is in the labels' emotion families."""
    from affect_llm.emotion_groups import families

    named = [w for w in named_emotions(explanation) if w not in ("like",)]
    if not named:
        return False
    return not (families(named) & families(labels))


# --------------------------------------------------------------------------------------- confidence
def combine_confidence(labels: Sequence[str], llm: list[float], prior: dict[str, float]) -> float | None:
    """The label model's probability of the chosen labels (their mean); the LLM's own label probability only
    when there is no label model.

    Why not an average of the two: the LLM's constrained label probability is high whatever it picks (0.75-0.93
    on average on dev answers; the prior already steered the choice), so averaging made answers overconfident. Fitted jointly on dev
    answers (logistic calibration on both log-odds, each set held out in turn), the LLM's probability got a
    weight of 0.02-0.23 against the label model's 0.68-0.76, and its held-out ECE beat the label model's alone
    only on EmoryNLP, by 0.007 (`python bench/answer_quality.py calibration`).
    The label model is temperature-calibrated, and a label the LLM picks against it gets its low probability.
    """
    vals: list[float] = []
    for i, lab in enumerate(labels):
        p_llm = llm[i] if i < len(llm) else None
        p = prior.get(lab) if prior else p_llm
        if p is not None and not math.isnan(p):
            vals.append(p)
    if not vals:
        return None
    return float(min(1.0, max(0.0, sum(vals) / len(vals))))
