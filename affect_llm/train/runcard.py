"""Run card: what was trained, on what, with which templates and package versions, and how it went.

Written as `run_card.json` (machine-readable) and `run_card.md` (for people) into the output folder,
atomically (temp file + rename), next to the adapter it describes.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from affect_llm.fileio import atomic_write

PACKAGES = ("affect-llm", "torch", "transformers", "trl", "peft", "accelerate", "datasets")


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_run_card(out_dir: str | Path, card: dict[str, Any]) -> Path:
    """Write `run_card.json` + `run_card.md` into `out_dir`; returns the JSON path."""
    from affect_llm.prompting import template_versions

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    card = {
        "templates": template_versions(),
        "packages": package_versions(),
        "python": platform.python_version(),
        **card,
    }
    atomic_write(out / "run_card.json", json.dumps(card, indent=2, ensure_ascii=False, default=str) + "\n")
    lines = [f"# Run card: {card.get('recipe', '?')} → `{out.name}`", ""]
    for key in ("recipe", "base_model", "init_adapter", "data", "data_sha256", "data_licences", "n_train_rows",
                "trainable_params", "total_params"):
        if card.get(key) is not None:
            lines.append(f"- **{key}**: `{card[key]}`")
    lines += ["", "## Metrics", "", "| metric | value |", "|---|---|"]
    for k, v in (card.get("metrics") or {}).items():
        lines.append(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |")
    lines += ["", "## Templates", ""] + [f"- {v}" for v in card["templates"].values()]
    lines += ["", "## Packages", ""] + [f"- {k} {v}" for k, v in card["packages"].items()]
    cfg = card.get("config") or {}
    keep = {k: v for k, v in cfg.items() if k in _CARD_KEYS}
    lines += ["", "## Key config", "", "```json", json.dumps(keep, indent=2, default=str), "```", ""]
    atomic_write(out / "run_card.md", "\n".join(lines))
    return out / "run_card.json"


_CARD_KEYS = {
    "model", "train_file", "pairs_file", "max_samples", "closed_label_space", "label_vocabulary", "lora_r",
    "lora_alpha", "lora_dropout", "lora_target_modules", "quantization", "torch_dtype", "learning_rate",
    "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "max_length",
    "beta", "rewards", "reward_weights", "num_generations", "max_completion_length", "seed",
}
