"""Reading user-supplied text files: dialogue context JSONL, checked line by line before any model loads."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from affect_llm.errors import AffectError, describe_validation
from affect_llm.schema import Turn


def read_context(path: Path) -> list[Turn]:
    """A dialogue as JSONL, one `{"speaker": str, "text": str}` per line; blank lines are skipped."""
    from affect_llm.fileio import iter_jsonl

    turns: list[Turn] = []
    for lineno, obj in iter_jsonl(path, "context file"):
        try:
            turns.append(Turn(**obj))
        except ValidationError as err:
            field, msg = describe_validation(err)
            raise AffectError(f"{path}:{lineno}: {field or 'line'}: {msg}") from None
    if not turns:
        raise AffectError(f"context file {path} holds no dialogue turns")
    return turns
