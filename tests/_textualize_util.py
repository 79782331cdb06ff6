"""Helpers for the textualizer tests: skips for missing extras/assets/data, and speech clips."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
EMODB = SHARED / "data" / "EmoDB"


def need(*modules: str) -> None:
    from affect_llm.extras import is_available

    missing = [m for m in modules if not is_available(m)]
    if missing:
        pytest.skip(f"optional modules missing: {', '.join(missing)}")


def need_asset(name: str) -> Path:
    from affect_llm.assets import asset_path
    from affect_llm.errors import MissingAssetError

    try:
        return asset_path(name)
    except MissingAssetError:
        pytest.skip(f"asset {name!r} not pulled (run `affect-llm assets pull`)")


def need_emodb() -> Path:
    if not (EMODB / "labels.csv").is_file():
        pytest.skip("shared EmoDB data not available")
    return EMODB


def espeak(text: str, out: Path, speed: int = 150, pitch: int = 50, voice: str = "en-us") -> Path:
    """Synthesise `text` to a wav with espeak-ng (apt package espeak-ng); skip when it is absent."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), text], check=True)
    return out


def run_cli(argv: list[str], capsys: Any) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `affect-llm ARGV` run in this process."""
    from affect_llm.cli.app import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def harmonic(f0: np.ndarray | float, seconds: float, sr: int = 16_000, amp: float = 0.3) -> np.ndarray:
    """A voice-like harmonic signal (5 partials) following the pitch track `f0` (Hz, scalar or per sample)."""
    n = int(seconds * sr)
    f = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,)) if np.ndim(f0) == 0 else np.asarray(f0)
    phase = 2 * np.pi * np.cumsum(f) / sr
    y = sum((0.6**k) * np.sin((k + 1) * phase) for k in range(5))
    return (amp * y / np.max(np.abs(y))).astype(np.float32)
