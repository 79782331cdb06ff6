"""Atomic file writes: a temporary file in the target folder, then one rename.

Every result a user keeps (run folders, dataset cards, run cards, caches) is written this way so an
interruption never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
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
