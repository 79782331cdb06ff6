"""Hugging Face ids, checked before any download is attempted.

A hub id is loaded from the local Hugging Face cache when it is there (no network at all). When it is
not, the hub is probed once with a short timeout; an unreachable hub (an offline machine, a firewall)
fails at once with the offline hint instead of the libraries' minute of retries.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from affect_llm.errors import AffectError

PROBE_TIMEOUT_S = 3.0


def offline_hint(model_id: str) -> str:
    return (f"use a local folder or a registered asset (`affect-llm assets list`), or fetch it once on a "
            f"connected machine: `huggingface-cli download {model_id}` (then it loads from the cache)")


def cached_snapshot(model_id: str) -> str | None:
    """The local snapshot folder of a fully cached hub model, or None."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        return snapshot_download(model_id, local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached (or a broken cache entry): the caller decides
        return None


def _endpoint() -> tuple[str, int]:
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    url = urlparse(proxy or os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    return url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    host, port = _endpoint()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_hub_id(model_id: str) -> str:
    """What to load for a hub id: its cached snapshot folder, or the id itself when the hub answers.

    Raises `AffectError` (in at most a few seconds) when it is neither cached nor reachable."""
    snapshot = cached_snapshot(model_id)
    if snapshot is not None:
        return snapshot
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline:
        raise AffectError(f"model {model_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
                          + offline_hint(model_id))
    if not hub_reachable():
        host, port = _endpoint()
        raise AffectError(f"model {model_id!r} is not in the local Hugging Face cache and the hub ({host}:{port}) "
                          f"cannot be reached (offline?); " + offline_hint(model_id))
    return model_id
