"""The canonical sample: one JSON object per line, the format every builder writes and every consumer
(evaluation runner, retrieval index, training recipes) reads.

Why one format: a template, a metric or an index never needs to know which corpus a sample came from,
so adding a dataset means writing one row→sample function and nothing else. The field list is fixed
by `data_builders/README.md`; `extra="forbid"` makes a typo in a hand-written file an error instead of
a silently ignored key.

Reading validates every line and reports the first bad one as `FILE:LINE: field 'x': problem`; writing
goes to a temporary file in the same folder and is renamed into place, so a crash never leaves a
half-written dataset behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from affect_llm.errors import AffectError
from affect_llm.schema import Cue, Turn

__all__ = [
    "Cue",
    "PreferencePair",
    "Sample",
    "Turn",
    "iter_samples",
    "read_pairs",
    "read_samples",
    "write_pairs",
    "write_samples",
]


class Sample(BaseModel):
    """One emotion-annotated item: inputs (text, dialogue context, media paths) and targets.

    `labels` are lower-case emotion words. `label_space` names the closed label set they come from
    (see `affect_llm.data_builders.label_spaces`) or is null for open-vocabulary labels (OV-MERD).
    `context` holds the dialogue turns *before* the target utterance, oldest first; `speaker` is the
    target utterance's speaker. Media paths are absolute (builders resolve them) so a JSONL file can be
    moved without breaking them as long as the source data stays where it is.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, description="unique within the dataset, e.g. 'meld/train/d12_u3'")
    dataset: str = Field(min_length=1, description="builder name, e.g. 'meld'")
    split: str = Field(min_length=1, description="train | dev | test | all")
    # inputs
    text: str = Field(default="", description="the target utterance / document; may be empty for media")
    context: list[Turn] = Field(default_factory=list, description="preceding dialogue turns, oldest first")
    speaker: str | None = None
    audio: str | None = None
    video: str | None = None
    image: str | None = None
    # targets
    labels: list[str] = Field(default_factory=list)
    label_space: str | None = Field(default=None, description="closed label-set name; null = open vocab")
    description: str | None = Field(default=None, description="free-text explanation of the emotion")
    cues: list[Cue] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict, description="dialogue_id, turn, licence, ...")

    @field_validator("labels")
    @classmethod
    def _clean_labels(cls, v: list[str]) -> list[str]:
        out: list[str] = []
        for label in v:
            label = label.strip().lower()
            if not label:
                raise ValueError("empty label")
            if label not in out:
                out.append(label)
        return out

    @model_validator(mode="after")
    def _check(self) -> Sample:
        if not (self.text.strip() or self.audio or self.video or self.image or self.context):
            raise ValueError("sample has no input: give text, context, audio, video or image")
        if self.label_space is not None:
            from affect_llm.data_builders.label_spaces import LABEL_SPACES

            space = LABEL_SPACES.get(self.label_space)
            if space is not None:
                bad = [label for label in self.labels if label not in space]
                if bad:
                    raise ValueError(
                        f"labels {bad} are not in label space {self.label_space!r} ({', '.join(space)})"
                    )
        return self

    @property
    def dialogue_id(self) -> str | None:
        """The dialogue this sample belongs to (used to keep demonstrations leak-free), if any."""
        d = self.meta.get("dialogue_id")
        # derived tasks (speaker-id, emotion-impact) name their source corpus in meta["base"]
        return None if d is None else f"{self.meta.get('base', self.dataset)}/{self.split}/{d}"


class PreferencePair(BaseModel):
    """A DPO preference pair in TRL's column names (`prompt`, `chosen`, `rejected`)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    dataset: str = Field(min_length=1)
    split: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    chosen: str = Field(min_length=1)
    rejected: str = Field(min_length=1)
    video: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


M = TypeVar("M", bound=BaseModel)


def _describe(err: ValidationError) -> str:
    from affect_llm.errors import validation_text

    return validation_text(err)


def _iter_jsonl(path: str | os.PathLike[str], model: type[M]) -> Iterator[M]:
    from affect_llm.fileio import iter_jsonl

    p = Path(path)
    for lineno, obj in iter_jsonl(p, "JSONL file"):
        try:
            yield model.model_validate(obj)
        except ValidationError as e:
            raise AffectError(f"{p}:{lineno}: {_describe(e)}") from None


def iter_samples(path: str | os.PathLike[str]) -> Iterator[Sample]:
    """Stream samples from a JSONL file, validating each line."""
    return _iter_jsonl(path, Sample)


def read_samples(path: str | os.PathLike[str]) -> list[Sample]:
    """All samples of a JSONL file; the first invalid line raises `AffectError` with its line number."""
    samples = list(_iter_jsonl(path, Sample))
    seen: dict[str, int] = {}
    for i, s in enumerate(samples):
        if s.id in seen:
            raise AffectError(f"{path}: duplicate sample id {s.id!r} (records {seen[s.id] + 1} and {i + 1})")
        seen[s.id] = i
    return samples


def read_pairs(path: str | os.PathLike[str]) -> list[PreferencePair]:
    """All preference pairs of a JSONL file (as written by the EmoPrefer builder)."""
    return list(_iter_jsonl(path, PreferencePair))


def _write_jsonl(path: str | os.PathLike[str], records: Iterable[BaseModel | dict], model: type[M]) -> int:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    n = 0
    try:
        from affect_llm.fileio import _umask

        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; data files read like any other
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for n, rec in enumerate(records, start=1):
                if not isinstance(rec, model):
                    try:
                        rec = model.model_validate(rec if isinstance(rec, dict) else rec.model_dump())
                    except ValidationError as e:
                        raise AffectError(f"record {n}: {_describe(e)}") from None
                fh.write(json.dumps(rec.model_dump(mode="json", exclude_none=False), ensure_ascii=False))
                fh.write("\n")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def write_samples(path: str | os.PathLike[str], samples: Iterable[Sample | dict]) -> int:
    """Write samples as JSONL atomically (temp file + rename). Returns the number written."""
    return _write_jsonl(path, samples, Sample)


def write_pairs(path: str | os.PathLike[str], pairs: Iterable[PreferencePair | dict]) -> int:
    """Write preference pairs as JSONL atomically. Returns the number written."""
    return _write_jsonl(path, pairs, PreferencePair)
