"""The one file digest: asset checks, data and run cards, index manifests and feature caches all use it."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["sha256_file"]


def sha256_file(path: str | Path, length: int | None = None) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (corpora and weights need not fit in memory);
    `length` keeps only that many leading hex digits (cache keys, card fields)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:length]
