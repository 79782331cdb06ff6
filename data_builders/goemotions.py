"""GoEmotions (Reddit comments, 27 emotions + neutral, multi-label), optionally mapped to Ekman's 6 + neutral.

Files: `{train,dev,test}.tsv` (text, comma-separated label ids, comment id; no header), `emotions.txt`
(id order) and, for `--opt ekman=true`, `ekman_mapping.json`.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from affect_llm.data_builders.common import Builder, BuildResult, Option, read_json, require_files
from affect_llm.data_builders.schema import Sample

from affect_llm.errors import AffectError

LICENCE = "Apache-2.0 (google-research/goemotions)"


def ekman_lookup(mapping: dict[str, list[str]]) -> dict[str, str]:
    """Invert `{ekman: [fine labels]}`; neutral maps to itself."""
    inv = {fine: coarse for coarse, fines in mapping.items() for fine in fines}
    inv["neutral"] = "neutral"
    return inv


def row_to_sample(
    row: list[str], split: str, names: list[str], ekman: dict[str, str] | None = None
) -> Sample:
    """One TSV row → sample (pure). Labels keep the file's order; Ekman mapping drops duplicates."""
    if len(row) != 3:
        raise AffectError(f"GoEmotions row has {len(row)} columns, expected 3 (text, labels, id)")
    text, ids, cid = row
    try:
        labels = [names[int(i)] for i in ids.split(",") if i.strip()]
    except (ValueError, IndexError):
        raise AffectError(f"GoEmotions comment {cid}: bad label ids {ids!r}") from None
    fine = list(labels)
    if ekman is not None:
        labels = [ekman[label] for label in labels]
    return Sample(
        id=f"goemotions/{split}/{cid}",
        dataset="goemotions",
        split=split,
        text=text,
        labels=labels,
        label_space="ekman7" if ekman is not None else "goemotions28",
        meta={"comment_id": cid, "licence": LICENCE, **({"fine_labels": fine} if ekman is not None else {})},
    )


def build(source: Path, split: str, ekman: bool = False) -> BuildResult:
    tsv, emo = require_files(source, "GoEmotions", [f"{split}.tsv", "emotions.txt"])
    names = [n.strip() for n in emo.read_text(encoding="utf-8").splitlines() if n.strip()]
    if len(names) != 28:
        raise AffectError(f"{emo}: expected 28 emotion names, found {len(names)}")
    files = [tsv, emo]
    mapping = None
    if ekman:
        (mp,) = require_files(source, "GoEmotions", ["ekman_mapping.json"])
        mapping = ekman_lookup(read_json(mp))
        files.append(mp)
    with tsv.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    records = [row_to_sample(r, split, names, mapping) for r in rows if r]
    multi = sum(1 for r in records if len(r.labels) > 1)
    return BuildResult(records=records, label_space="ekman7" if ekman else "goemotions28", files=files,
                       extra_counts={"multi_label": multi}, skipped=Counter())


BUILDER = Builder(
    name="goemotions",
    title="GoEmotions",
    origin="github google-research/google-research goemotions/data (copy: monologg/GoEmotions-pytorch)",
    licence=LICENCE,
    build=build,
    options={"ekman": Option(False, "map the 27 emotions to Ekman's 6 (+ neutral)")},
)
