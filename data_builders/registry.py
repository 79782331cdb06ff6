"""Builders by name, and `build_dataset`, the one entry point the CLI and scripts call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from affect_llm.data_builders import (
    causes,
    dailydialog,
    emodb,
    emoprefer,
    emorynlp,
    empathetic,
    goemotions,
    iemocap,
    instructerc,
    meld,
    mer2023,
    mer_challenge,
    ovmerd,
    sentiment,
    table,
)
from affect_llm.data_builders.common import (
    Builder,
    BuildResult,
    check_split,
    make_card,
    parse_options,
    write_card,
)
from affect_llm.data_builders.schema import write_pairs, write_samples

from affect_llm.errors import AffectError, lookup

BUILDERS: dict[str, Builder] = {
    b.name: b
    for b in (
        meld.BUILDER, emorynlp.BUILDER, goemotions.BUILDER, dailydialog.BUILDER, empathetic.BUILDER,
        mer2023.BUILDER, ovmerd.BUILDER, emoprefer.BUILDER, causes.RECCON, causes.ECF, emodb.BUILDER,
        instructerc.SPEAKER_ID, instructerc.EMOTION_IMPACT, table.BUILDER, iemocap.BUILDER, sentiment.MOSI,
        sentiment.MOSEI, sentiment.SIMS, sentiment.SIMS_V2, mer_challenge.MER2024, mer_challenge.MER2025,
    )
}


def get_builder(name: str) -> Builder:
    return lookup(BUILDERS, "dataset builder", name)


def run_builder(name: str, source: str | Path, split: str | None = None,
                options: dict[str, Any] | None = None) -> tuple[BuildResult, dict[str, Any]]:
    """Build records in memory (no files written). Options may be strings (CLI) or typed values."""
    b = get_builder(name)
    split = check_split(b, split or b.default_split)
    opts = parse_options(b, {k: v for k, v in (options or {}).items()})
    result = b.build(Path(source), split, **opts)
    if not result.records:
        raise AffectError(f"builder {name!r} produced no records from {source} (split {split})")
    return result, opts


def build_dataset(name: str, source: str | Path, out: str | Path, split: str | None = None,
                  options: dict[str, Any] | None = None, limit: int | None = None) -> dict[str, Any]:
    """Build one split into `out` (JSONL, atomic) plus its dataset card; returns the card."""
    b = get_builder(name)
    split = split or b.default_split
    result, opts = run_builder(name, source, split, options)
    if limit is not None:
        if limit < 1:
            raise AffectError(f"--limit must be >= 1, got {limit}")
        result.records = result.records[:limit]
        result.notes.append(f"truncated to the first {limit} records (--limit)")
    out = Path(out)
    if b.kind == "pairs":
        write_pairs(out, result.records)
    else:
        write_samples(out, result.records)
    card = make_card(builder=b, result=result, source=Path(source), split=split, options=opts, out=out)
    write_card(card, out)
    return card
