"""Reading user-supplied text files: dialogue context JSONL, checked line by line before any model loads."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from affect_llm.errors import AffectError, describe_validation
from affect_llm.schema import Turn


def read_text_file(path: Path, what: str = "file") -> str:
    from affect_llm.fileio import read_text

    return read_text(path, what)


def read_context(path: Path) -> list[Turn]:
    """A dialogue as JSONL, one `{"speaker": str, "text": str}` per line; blank lines are skipped."""
    turns: list[Turn] = []
    for lineno, line in enumerate(read_text_file(path, "context file").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise AffectError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
        if not isinstance(obj, dict):
            raise AffectError(f'{path}:{lineno}: expected an object like {{"speaker": "A", "text": "..."}}')
        try:
            turns.append(Turn(**obj))
        except ValidationError as err:
            field, msg = describe_validation(err)
            raise AffectError(f"{path}:{lineno}: {field or 'line'}: {msg}") from None
    if not turns:
        raise AffectError(f"context file {path} holds no dialogue turns")
    return turns
