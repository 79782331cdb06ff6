"""MER2024 and MER2025 challenge sets: discrete (6 classes) and open-vocabulary tracks, with subtitles.

Files as the organisers publish them (zeroQiaoba/MERTools; MER2025 on huggingface.co/datasets/MERChallenge):

| builder | track | train labels | test labels | subtitles |
|---|---|---|---|---|
| `mer2024` | `semi`, `noise` (discrete) | `label-disdim.csv` (name, discrete, valence) | `reference-semi.csv` / `reference-noise.csv` (name, discrete) | `transcription-merge.csv` |
| `mer2024` | `ov` | — | `check-openset.csv` (name, openset) | same |
| `mer2025` | `semi` (Track 1, discrete) | `track1_train_disdim.csv` | `track1_test_dis.csv` | `subtitle_chieng.csv` |
| `mer2025` | `fg` (Track 2, open vocabulary) | `track2_train_ovmerd.csv` or `track2_train_mercaptionplus.csv` (+ Track 3 `reason` descriptions) | `track2_test_ov.csv` | same |

Subtitle files have `name, chinese, english`. Any label file can be renamed with `--opt labels=FILE`
(the test-label files came out after each challenge under names of the organisers' choosing).
Discrete labels use `mer6`; open-vocabulary label sets have `label_space: null`.
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
from affect_llm.data_builders.ovmerd import parse_openset
from affect_llm.data_builders.schema import Sample

from affect_llm.errors import AffectError

LICENCE = "MER challenge EULA: academic research / non-commercial only, no redistribution of samples"
OV_TRACKS = ("ov", "fg")
METRICS = {
    "semi": "weighted F1 (the challenge's score; MER-UniBench: hit rate of free answers)",
    "noise": "weighted F1 on the corrupted test set",
    "ov": "set-level accuracy / recall (organisers, GPT synonym groups); here the emotion-wheel scores (EW-L1/L2)",
    "fg": "emotion-wheel F-scores (EW-L1/L2 average, OV-MER protocol)",
}
FILES = {
    "mer2024": {
        "transcripts": "transcription-merge.csv",
        ("semi", "train"): "label-disdim.csv", ("noise", "train"): "label-disdim.csv",
        ("semi", "test"): "reference-semi.csv", ("noise", "test"): "reference-noise.csv",
        ("ov", "test"): "check-openset.csv",
    },
    "mer2025": {
        "transcripts": "subtitle_chieng.csv",
        ("semi", "train"): "track1_train_disdim.csv", ("semi", "test"): "track1_test_dis.csv",
        ("fg", "train"): "track2_train_{ov_train}.csv", ("fg", "test"): "track2_test_ov.csv",
    },
}


def row_to_sample(row: dict[str, str], *, dataset: str, split: str, track: str, text: str, lang: str,
                  video: str | None, description: str | None) -> Sample:
    """One label row + its subtitle → sample (pure)."""
    name = row["name"].strip()
    meta = {"name": name, "track": track, "lang": lang, "licence": LICENCE}
    if (row.get("valence") or "").strip():
        meta["valence"] = float(row["valence"])
    ov = track in OV_TRACKS
    return Sample(
        id=f"{dataset}/{split}/{name}",
        dataset=dataset,
        split=split,
        text=text,
        video=video,
        labels=parse_openset(row["openset"]) if ov else [row["discrete"].strip().lower()],
        label_space=None if ov else "mer6",
        description=description,
        meta=meta,
    )


def make_builder(name: str, title: str, tracks: tuple[str, ...]) -> Builder:
    files = FILES[name]

    def build(source: Path, split: str, track: str = tracks[0], lang: str = "english", labels: str = "",
              ov_train: str = "ovmerd", video_dir: str = "") -> BuildResult:
        key = (track, split)
        if not labels and key not in files:
            raise AffectError(f"{name} track {track!r} has no {split} labels; give --opt labels=FILE or another split")
        label_name = labels or files[key].format(ov_train=ov_train)
        lab_p, tr_p = require_files(source, title, [label_name, files["transcripts"]])
        rows = read_csv(lab_p)
        ov = track in OV_TRACKS
        require_columns(rows, lab_p, ["name", "openset" if ov else "discrete"])
        subs = read_csv(tr_p)
        require_columns(subs, tr_p, ["name", lang])
        by_name = {s["name"]: s[lang] or "" for s in subs}
        descriptions: dict[str, str] = {}
        used = [lab_p, tr_p]
        desc_p = source / label_name.replace("track2_", "track3_")
        if ov and desc_p != lab_p and desc_p.is_file():  # MER2025 Track 3 descriptions of the same samples
            desc_rows = read_csv(desc_p)
            require_columns(desc_rows, desc_p, ["name", "reason"])
            descriptions = {r["name"]: r["reason"].strip() for r in desc_rows if (r["reason"] or "").strip()}
            used.append(desc_p)
        vdir = resolve_optional_path(video_dir, source)
        skipped: Counter = Counter()
        records = []
        for lineno, row in enumerate(rows, start=2):
            sname = row["name"].strip()
            if not ov and row["discrete"].strip().lower() not in LABEL_SPACES["mer6"]:
                raise AffectError(f"{lab_p}:{lineno}: discrete label {row['discrete']!r} is not one of "
                                  f"{', '.join(LABEL_SPACES['mer6'])}")
            text = by_name.get(sname)
            if text is None:
                skipped["no subtitle"] += 1
            elif not text.strip() and vdir is None:
                skipped[f"empty {lang} subtitle"] += 1
            else:
                records.append(row_to_sample(row, dataset=name, split=split, track=track, text=text.strip(), lang=lang,
                                             video=str(vdir / f"{sname}.mp4") if vdir else None,
                                             description=descriptions.get(sname)))
        notes = [f"track {track}; the field reports {METRICS[track]}"]
        return BuildResult(records=records, label_space=None if ov else "mer6", files=used, skipped=skipped,
                           notes=notes)

    options = {
        "track": Option(tracks[0], "challenge track", tracks),
        "lang": Option("english", "subtitle language", ("english", "chinese")),
        "labels": Option("", "label file name inside --source (default: the track's published name)"),
        "video_dir": Option("", "folder of the clips (NAME.mp4) to set `video` paths"),
    }
    if "fg" in tracks:
        options["ov_train"] = Option("ovmerd", "Track 2 training labels", ("ovmerd", "mercaptionplus"))
    return Builder(name=name, title=title, origin=f"{title} (zeroQiaoba/MERTools; EULA from the organisers)",
                   licence=LICENCE, splits=("train", "test"), build=build, options=options)


MER2024 = make_builder("mer2024", "MER2024", ("semi", "noise", "ov"))
MER2025 = make_builder("mer2025", "MER2025", ("semi", "fg"))
