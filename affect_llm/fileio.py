"""The one input and output layer of the toolkit.

Input: `read_text`, `iter_lines` and `iter_jsonl` read every user-supplied text file; a missing file, a
folder, an unreadable file or a byte that is not UTF-8 becomes one `AffectError` naming the file (and the
byte offset and line). Output: `check_output_file` / `check_output_dir` refuse, before any model loads, a
destination that is one of the command's inputs, a folder where a file is meant (or the reverse) or a
read-only place; `atomic_write` writes through a temporary file and one rename, with the mode a plain
`open()` would give (umask), so an interruption never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` via a temporary file and a rename; folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; results should read like any other
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def replace_dir(tmp: Path, out: Path) -> None:
    """Move a finished temporary folder `tmp` to `out`, replacing any old `out` only once `tmp` is complete.

    The old folder is first renamed aside and is put back if the final rename fails.
    """
    tmp, out = Path(tmp), Path(out)
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.replace(out, old / out.name)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old / out.name, out)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def check_output_dir(out: Path, inputs: list[Path] | tuple[Path, ...] = ()) -> None:
    """Refuse, before any work, an output folder that is a file, overlaps an input, or cannot be written."""
    from affect_llm.errors import AffectError

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AffectError(f"output folder {out} exists and is not a folder")
    res = out.resolve()
    for f in inputs:
        fr = Path(f).resolve()
        if fr == res or res in fr.parents:
            raise AffectError(f"output folder {out} would overwrite the input {f}")
    parent = res if res.exists() else next((p for p in res.parents if p.exists()), res.parent)
    if not os.access(parent, os.W_OK):
        raise AffectError(f"output folder {out} is not writable")


# ---------------------------------------------------------------------------- the input layer
def check_input_file(path: str | os.PathLike[str], what: str = "file") -> Path:
    """`path` as a Path when it is a readable regular file; otherwise one clear `AffectError`."""
    from affect_llm.errors import AffectError

    p = Path(path)
    if not p.exists():
        raise AffectError(f"{what} {p}: no such file (not found)")
    if p.is_dir():
        raise AffectError(f"{what} {p} is a folder, not a file")
    if not p.is_file():
        raise AffectError(f"{what} {p} is not a regular file")
    if not os.access(p, os.R_OK):
        raise AffectError(f"{what} {p} is not readable (permission denied)")
    return p


def _not_utf8(p: Path, what: str, offset: int, lineno: int | None = None):
    from affect_llm.errors import AffectError

    where = f" (line {lineno})" if lineno is not None else ""
    return AffectError(f"{what} {p} is not UTF-8 text: invalid byte at offset {offset}{where}")


def read_text(path: str | os.PathLike[str], what: str = "file") -> str:
    """The whole of a UTF-8 text file (a BOM is dropped); errors name the file and the bad byte's offset."""
    p = check_input_file(path, what)
    data = _read_bytes(p, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        skip = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        raise _not_utf8(p, what, err.start + skip, data.count(b"\n", 0, err.start + skip) + 1) from None


def _read_bytes(p: Path, what: str) -> bytes:
    from affect_llm.errors import AffectError

    try:
        return p.read_bytes()
    except OSError as err:
        raise AffectError(f"cannot read {what} {p}: {err.strerror or err}") from None


def iter_lines(path: str | os.PathLike[str], what: str = "file") -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 text file, streamed; a bad byte raises naming the file, offset and line."""
    from affect_llm.errors import AffectError

    p = check_input_file(path, what)
    offset = 0
    try:
        fh = p.open("rb")
    except OSError as err:
        raise AffectError(f"cannot read {what} {p}: {err.strerror or err}") from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw, offset = raw[3:], 3
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise _not_utf8(p, what, offset + err.start, lineno) from None
            offset += len(raw)
            yield lineno, line


def iter_jsonl(path: str | os.PathLike[str], what: str = "file") -> Iterator[tuple[int, dict]]:
    """(line number, object) of a JSONL file; blank lines are skipped, every problem names file and line."""
    from affect_llm.errors import AffectError

    p = Path(path)
    for lineno, line in iter_lines(p, what):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise AffectError(f"{p}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
        except RecursionError:
            raise AffectError(f"{p}:{lineno}: JSON nested too deeply") from None
        if not isinstance(obj, dict):
            raise AffectError(f"{p}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        yield lineno, obj


# ---------------------------------------------------------------------------- the output layer
def _same_path(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_output_file(out: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = (),
                      what: str = "output file") -> Path:
    """Refuse, before any work, an output file that is one of the inputs (or lies inside an input folder),
    is a folder, or whose folder cannot be created or written. Returns `out` as a Path."""
    from affect_llm.errors import AffectError

    out = Path(out)
    if str(out) in ("", "."):
        raise AffectError(f"{what} is empty")
    if out.is_dir():
        raise AffectError(f"{what} {out} is a folder; give a file name")
    res = out.resolve()
    for f in inputs:
        fp = Path(f)
        if _same_path(fp, out):
            raise AffectError(f"{what} {out} is also an input ({f}); it would be overwritten, so write elsewhere")
        if fp.is_dir() and fp.resolve() in res.parents and res.exists():
            raise AffectError(f"{what} {out} would replace a file of the input folder {f}; write elsewhere")
    _check_parent_writable(res, out, what)
    if out.exists() and not os.access(out, os.W_OK):
        raise AffectError(f"{what} {out} exists and is read-only")
    return out


def _check_parent_writable(res: Path, shown: Path, what: str) -> None:
    from affect_llm.errors import AffectError

    parent = next((p for p in res.parents if p.exists()), None)
    if parent is None or not parent.is_dir():
        raise AffectError(f"{what} {shown}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise AffectError(f"{what} {shown} cannot be written: {parent} is read-only")
