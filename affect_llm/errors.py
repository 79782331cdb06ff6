"""User-facing errors.

Every problem a user can cause (bad input, missing asset, unknown name) raises `AffectError`; the CLI
prints its message on one line and exits non-zero, the HTTP API turns it into a 4xx. Anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations


class AffectError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2


class MissingAssetError(AffectError):
    """An offline asset is not in the cache; the message names the command that fetches it."""


class UnknownNameError(AffectError):
    """A registry lookup failed; the message lists the valid choices."""

    def __init__(self, kind: str, name: str, choices: list[str] | tuple[str, ...]) -> None:
        super().__init__(f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(choices))}")
        self.kind, self.name, self.choices = kind, name, list(choices)


def lookup(registry: dict, kind: str, name: str):
    """Registry lookup that fails with the valid choices listed (convention 5)."""
    try:
        return registry[name]
    except KeyError:
        raise UnknownNameError(kind, name, list(registry)) from None


def describe_validation(err, *, prefix: str = "") -> tuple[str, str]:
    """The one formatter of pydantic `ValidationError`s: (dotted field path, one-line message).

    The message is the first problem's, with the others counted: `Input should be a valid string (and 2
    more errors)`; `prefix` is put before the field path (e.g. "messages"). Every layer (files, CLI,
    Python API, HTTP) reports validation problems through this.
    """
    errors = err.errors()
    first = errors[0] if errors else {"loc": (), "msg": str(err)}
    loc = ".".join(str(p) for p in (*([prefix] if prefix else []), *first.get("loc", ())))
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    more = len(errors) - 1
    if more > 0:
        msg += f" (and {more} more error{'s' if more > 1 else ''})"
    return loc, msg


def validation_text(err, *, prefix: str = "") -> str:
    """`field 'labels.0': Input should be a valid string` (or the bare message when no field is named)."""
    loc, msg = describe_validation(err, prefix=prefix)
    return f"field {loc!r}: {msg}" if loc else msg


def check_text(value: str, what: str) -> str:
    """A string from outside (argv, a JSON body, a file): refuse lone surrogates (undecodable bytes or a
    broken `\\ud800` escape) and NUL characters, which no tokenizer or JSON encoder can carry."""
    if not isinstance(value, str):
        return value
    for i, ch in enumerate(value):
        if "\ud800" <= ch <= "\udfff":
            raise AffectError(f"{what} is not valid Unicode text (a lone surrogate or an undecodable byte at "
                              f"character {i})")
        if ch == "\x00":
            raise AffectError(f"{what} contains a NUL character (at character {i})")
    return value
