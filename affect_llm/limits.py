"""The documented input limits: one place, read by the CLI, the Python API and the HTTP service.

An explain prompt (system message, demonstrations, dialogue context, cues and the utterance, after the
chat template) may hold at most `MAX_INPUT_TOKENS` tokens. The embedded model's context is 8,192 tokens;
the limit leaves room for the longest answer budget (`--max-new-tokens` <= 2048) and keeps one request's
work bounded on a CPU. Before anything is tokenized, the characters a request carries are capped at
`MAX_INPUT_CHARS` (no tokenizer packs more than 16 characters into a token on ordinary text), so a
megabyte of text is refused at once instead of being tokenized. Too long: `InputTooLongError` (an
`AffectError`: exit code 2 on the CLI, HTTP 413 from the API).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from affect_llm.errors import AffectError

MAX_INPUT_TOKENS = 4096
MAX_INPUT_CHARS = 16 * MAX_INPUT_TOKENS


class InputTooLongError(AffectError):
    """The input is longer than the documented limit; the message gives the size and the limit."""


def request_chars(req: Any) -> int:
    """Characters of everything a request puts in the prompt (text, context, cues, demonstrations)."""
    def items(name: str) -> list:
        value = getattr(req, name, None)
        return list(value) if isinstance(value, (list, tuple)) else []

    n = len(getattr(req, "text", "") or "") + len(getattr(req, "speaker", "") or "")
    for turn in items("context"):
        n += len(turn.text) + len(turn.speaker or "")
    for cue in items("cues"):
        n += len(getattr(cue, "cue", "") or "") + len(getattr(cue, "evidence", "") or "")
    for demo in items("demos"):
        n += len(str(demo))
    for label in items("label_space"):
        n += len(label)
    return n


def check_chars(n: int, what: str = "input") -> None:
    if n > MAX_INPUT_CHARS:
        raise InputTooLongError(f"{what} is too long: {n:,} characters; the limit is {MAX_INPUT_CHARS:,} characters "
                                f"({MAX_INPUT_TOKENS:,} prompt tokens). Shorten the text or the context")


def check_request(req: Any) -> None:
    """The cheap character bound of one explain request (no tokenizer)."""
    check_chars(request_chars(req))


def messages_chars(messages: Iterable[dict[str, Any]]) -> int:
    n = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            n += len(content)
        elif isinstance(content, list):
            n += sum(len(str(p.get("text", ""))) for p in content if isinstance(p, dict))
    return n


def tokenizer_of(backend: Any) -> Any:
    """The backend's tokenizer (in-process backends, the server's adapter views), or None (remote)."""
    for obj in (backend, getattr(backend, "base", None)):
        tok = getattr(obj, "tokenizer", None)
        if tok is not None and hasattr(tok, "apply_chat_template"):
            return tok
    return None


def prompt_tokens(tokenizer: Any, messages: list[dict[str, Any]]) -> int:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):  # BatchEncoding in recent transformers
        ids = ids["input_ids"]
    return len(ids)


def check_messages(backend: Any, messages: list[dict[str, Any]], what: str = "input") -> int | None:
    """Refuse a prompt over `MAX_INPUT_TOKENS` (counted with the backend's own chat template); returns the
    token count, or None when the backend has no local tokenizer (a remote server: the request's character
    bound applies here, the server enforces its own context)."""
    tok = tokenizer_of(backend)
    if tok is None:
        return None
    n_chars = messages_chars(messages)
    if n_chars > 2 * MAX_INPUT_CHARS:  # never tokenize megabytes (the prompt repeats the input as evidence)
        raise InputTooLongError(f"{what} is too long: the prompt holds {n_chars:,} characters; the limit is "
                                f"{MAX_INPUT_TOKENS:,} prompt tokens. Shorten the text or the context")
    n = prompt_tokens(tok, messages)
    if n > MAX_INPUT_TOKENS:
        raise InputTooLongError(f"{what} is too long: {n:,} prompt tokens after the template; the limit is "
                                f"{MAX_INPUT_TOKENS:,}. Shorten the text or the context")
    return n
