"""Sentiment-score corpora of MER-UniBench: CMU-MOSI, CMU-MOSEI, CH-SIMS and CH-SIMS v2.

All four are read from the `label.csv` that the MMSA toolkit (thuiar/MMSA) publishes with each set:
`video_id, clip_id, text, label, annotation, mode` (+ `label_T, label_A, label_V` for the SIMS sets),
where `label` is the sentiment score and `mode` the split (train / valid / test). Scores become class
labels with the binning MMSA's metrics use, so accuracy on these labels is the field's Acc-k:

- MOSI / MOSEI, scores in [-3, 3]: `classes=2` negative / positive, either excluding score 0
  (`binary=non0`, the "Acc-2 non0" column) or counting it as positive (`binary=has0`, "Acc-2 has0");
  `classes=7` the rounded score -3..3 ("Acc-7").
- SIMS / SIMS v2, scores in [-1, 1]: `classes=2` (<= 0 negative), `3` (-0.1 / 0.1 thresholds) and
  `5` (-0.7 / -0.1 / 0.1 / 0.7), MMSA's Acc-2 / Acc-3 / Acc-5.

The score itself stays in `meta.score` (MAE and Pearson r need a numeric prediction, which a label
answer does not give).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from affect_llm.data_builders.common import (
    Builder,
    BuildResult,
    Option,
    read_csv,
    require_columns,
    require_files,
    resolve_optional_path,
)
from affect_llm.data_builders.label_spaces import LABEL_SPACES
from affect_llm.data_builders.schema import Sample

from affect_llm.errors import AffectError

COLUMNS = ["video_id", "clip_id", "text", "label", "mode"]
MODES = {"train": "train", "valid": "dev", "test": "test"}
SIMS_EDGES = {"2": (0.0,), "3": (-0.1, 0.1), "5": (-0.7, -0.1, 0.1, 0.7)}


def mosi_label(score: float, classes: str, binary: str = "non0") -> str | None:
    """MOSI / MOSEI score → class label; None when the protocol leaves the sample out (0 in non0)."""
    if classes == "7":
        return LABEL_SPACES["sentiment7"][round(min(3.0, max(-3.0, score))) + 3]
    if score == 0 and binary == "non0":
        return None
    return "positive" if score >= 0 else "negative"


def sims_label(score: float, classes: str) -> str:
    """SIMS score → class label: bin i holds (edge[i-1], edge[i]] as in MMSA's `__eval_sims_regression`."""
    edges = SIMS_EDGES[classes]
    space = LABEL_SPACES[f"sentiment{classes}"]
    clipped = min(1.0, max(-1.0, score))
    return space[sum(1 for e in edges if clipped > e)]


def row_to_sample(row: dict[str, str], *, dataset: str, split: str, label: str, score: float, licence: str,
                  space: str, video_dir: Path | None) -> Sample:
    vid, clip = row["video_id"].strip(), row["clip_id"].strip()
    meta = {"video_id": vid, "clip_id": clip, "score": score, "licence": licence}
    for key in ("annotation", "label_T", "label_A", "label_V"):
        if (row.get(key) or "").strip():
            meta[key.lower()] = row[key].strip() if key == "annotation" else float(row[key])
    return Sample(
        id=f"{dataset}/{split}/{vid}_{clip}",
        dataset=dataset,
        split=split,
        text=row["text"].strip(),
        video=str(video_dir / vid / f"{clip}.mp4") if video_dir else None,
        labels=[label],
        label_space=space,
        meta=meta,
    )


def make_builder(*, name: str, title: str, folder: str, origin: str, licence: str, scale: str,
                 metrics: str) -> Builder:
    """One builder per corpus; `scale` is "mosi" ([-3, 3]) or "sims" ([-1, 1])."""
    choices = ("2", "7") if scale == "mosi" else ("2", "3", "5")

    def build(source: Path, split: str, classes: str = "2", binary: str = "non0", video_dir: str = "") -> BuildResult:
        (path,) = require_files(source, folder, ["label.csv"])
        rows = read_csv(path)
        require_columns(rows, path, COLUMNS)
        space = f"sentiment{classes}"
        vdir = resolve_optional_path(video_dir, source)
        skipped: Counter = Counter()
        records = []
        for lineno, row in enumerate(rows, start=2):
            mode = MODES.get(row["mode"].strip().lower())
            if mode is None:
                raise AffectError(f"{path}:{lineno}: mode {row['mode']!r} is not one of {', '.join(MODES)}")
            if mode != split:
                continue
            try:
                score = float(row["label"])
            except ValueError:
                raise AffectError(f"{path}:{lineno}: label {row['label']!r} is not a sentiment score") from None
            if not row["text"].strip():
                skipped["empty text"] += 1
                continue
            label = mosi_label(score, classes, binary) if scale == "mosi" else sims_label(score, classes)
            if label is None:
                skipped["score 0 (Acc-2 non0 leaves it out)"] += 1
                continue
            records.append(row_to_sample(row, dataset=name, split=split, label=label, score=score, licence=licence,
                                         space=space, video_dir=vdir))
        proto = f"{classes}-class" + (f", {binary}" if scale == "mosi" and classes == "2" else "")
        notes = [f"{proto} bins of the sentiment score (MMSA); the field reports {metrics}"]
        return BuildResult(records=records, label_space=space, files=[path], skipped=skipped, notes=notes)

    options = {
        "classes": Option("2", "score bins: " + " / ".join(choices) + " classes", choices),
        "video_dir": Option("", "folder of clips (VIDEO_ID/CLIP_ID.mp4, MMSA's Raw/) to set `video` paths"),
    }
    if scale == "mosi":
        options["binary"] = Option("non0", "2-class: non0 leaves score 0 out, has0 counts it positive",
                                   ("non0", "has0"))
    return Builder(name=name, title=title, origin=origin, licence=licence, build=build, options=options)


MOSI_METRICS = "Acc-2 (non0 / has0) with weighted F1, Acc-7, MAE and Pearson r"
SIMS_METRICS = "Acc-2, weighted F1, Acc-3, Acc-5, MAE and Pearson r"

MOSI = make_builder(
    name="cmu-mosi", title="CMU-MOSI", folder="CMU-MOSI (MMSA)", scale="mosi", metrics=MOSI_METRICS,
    origin="CMU MultiComp CMU-MOSI via thuiar/MMSA label.csv (2,199 YouTube opinion clips)",
    licence="CMU-MOSI: research use (CMU MultiComp terms); the clips are third-party YouTube content",
)
MOSEI = make_builder(
    name="cmu-mosei", title="CMU-MOSEI", folder="CMU-MOSEI (MMSA)", scale="mosi", metrics=MOSI_METRICS,
    origin="CMU MultiComp CMU-MOSEI via thuiar/MMSA label.csv (23k YouTube clips)",
    licence="CMU-MOSEI: research use (CMU MultiComp terms); the clips are third-party YouTube content",
)
SIMS = make_builder(
    name="ch-sims", title="CH-SIMS", folder="CH-SIMS (MMSA)", scale="sims", metrics=SIMS_METRICS,
    origin="thuiar CH-SIMS label.csv (Chinese clips, unimodal + multimodal scores)",
    licence="CH-SIMS EULA (thuiar): academic research only, no redistribution",
)
SIMS_V2 = make_builder(
    name="ch-sims2", title="CH-SIMS v2", folder="CH-SIMS v2 (MMSA)", scale="sims", metrics=SIMS_METRICS,
    origin="thuiar CH-SIMS v2 (s) label.csv",
    licence="CH-SIMS v2 EULA (thuiar): academic research only, no redistribution",
)
