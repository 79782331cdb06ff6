"""The data that crosses module boundaries: cues, dialogue turns and the explain answer.

`AnswerPayload` is what the model is asked to write (its JSON schema constrains decoding);
`EmotionReport` is what users get: the payload plus confidence, provenance and timings.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Modality = Literal["text", "speech", "face", "context"]
MODALITIES: tuple[str, ...] = ("text", "speech", "face", "context")

# Bounds keep a small model from looping until the token limit inside a JSON string or list.
MAX_LABELS = 3
MAX_LABEL_CHARS = 20
MAX_EXPLANATION_CHARS = 140
MAX_CUE_CHARS = 40
MAX_EVIDENCE_CHARS = 120


class Cue(BaseModel):
    """One observable signal an answer can cite: a phrase, a voice property, a facial action."""

    model_config = ConfigDict(extra="forbid")

    modality: Modality
    cue: str = Field(description="short phrase naming the signal, e.g. 'pitch falls at the end'")
    evidence: str = Field(default="", description="the words or numbers that show it")
    start: float | None = Field(default=None, description="seconds from the start of the media")
    end: float | None = None
    strength: float | None = Field(default=None, ge=0.0, le=1.0, description="graded intensity")


class Turn(BaseModel):
    """One line of a dialogue given as context."""

    model_config = ConfigDict(extra="ignore")

    speaker: str = ""
    text: str

    @field_validator("text")
    @classmethod
    def _non_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text is empty")
        return v


class AnswerCue(BaseModel):
    """A cue as the model cites it in an answer."""

    modality: Modality
    cue: str = Field(max_length=MAX_CUE_CHARS)
    evidence: str = Field(max_length=MAX_EVIDENCE_CHARS)


class AnswerPayload(BaseModel):
    """What the model writes: labels, the ids of the evidence it cites, one explanation.

    `explain_task.answer_schema` is the JSON schema constrained decoding enforces for one request (its
    label and evidence enums depend on the request)."""

    labels: list[str] = Field(min_length=1, max_length=MAX_LABELS)
    cues: list[Any] = Field(default_factory=list, description="cited evidence ids (E1, E2, ...)")
    explanation: str = Field(max_length=MAX_EXPLANATION_CHARS)


class EmotionReport(BaseModel):
    """The explain answer returned by the CLI (`--json`), the Python API and the HTTP API."""

    labels: list[str]
    explanation: str
    cues: list[AnswerCue] = Field(description="the cited evidence items, each with its exact text from the input")
    confidence: float | None = Field(
        ge=0.0, le=1.0, description="label-model probability and the model's own label probability, averaged; "
        "null if neither is known"
    )
    llm_confidence: float | None = Field(default=None, description="the LLM's own probability of its labels")
    label_prior: dict[str, float] | None = Field(default=None, description="the label model's top labels")
    inconsistent: bool = Field(default=False, description="the explanation names only emotions outside the "
                               "labels' emotion families")
    explanation_rewritten: list[str] = Field(
        default_factory=list, description="why the model's own sentence was replaced by one written from the "
        "cited evidence (broken, a quote not in the input, a quote given to the wrong speaker, cites no evidence); "
        "empty: the explanation is the model's own (its raw answer is in `raw`)")
    dropped_citations: int = Field(default=0, description="cited ids that named nothing in the evidence list "
                                   "(only from endpoints that cannot constrain)")
    model: str
    template: str
    timings: dict[str, float] = Field(default_factory=dict)
    raw: str

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
