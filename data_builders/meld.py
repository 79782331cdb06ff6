"""MELD (Friends, 7 emotions + sentiment): `{train,dev,test}_sent_emo.csv` from declare-lab/MELD."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from affect_llm.data_builders.common import (
    Dialogue,
    DialogueSet,
    Option,
    Utt,
    erc_builder,
    read_csv,
    require_columns,
    require_files,
    resolve_optional_path,
)

LICENCE = "GPL-3.0 (declare-lab/MELD); Friends transcripts are third-party content, research use"
COLUMNS = ["Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID"]


def row_to_utt(row: dict[str, str], video_dir: Path | None = None) -> Utt:
    """One CSV row → utterance (pure)."""
    d, u = int(row["Dialogue_ID"]), int(row["Utterance_ID"])
    meta = {"utterance_id": u, "sentiment": row["Sentiment"].strip().lower()}
    for key in ("Season", "Episode", "StartTime", "EndTime"):
        if row.get(key):
            meta[key.lower()] = row[key]
    return Utt(
        speaker=row["Speaker"].strip(),
        text=row["Utterance"].strip(),
        labels=[row["Emotion"].strip().lower()],
        meta=meta,
        video=str(video_dir / f"dia{d}_utt{u}.mp4") if video_dir else None,
    )


def load_dialogues(source: Path, split: str, video_dir: str = "") -> DialogueSet:
    (path,) = require_files(source, "MELD", [f"{split}_sent_emo.csv"])
    rows = read_csv(path)
    require_columns(rows, path, COLUMNS)
    vdir = resolve_optional_path(video_dir, source)
    by_dialogue: dict[int, list[Utt]] = defaultdict(list)
    for row in rows:
        by_dialogue[int(row["Dialogue_ID"])].append(row_to_utt(row, vdir))
    dialogues = [
        Dialogue(id=f"d{d}", utts=sorted(utts, key=lambda u: u.meta["utterance_id"]))
        for d, utts in sorted(by_dialogue.items())
    ]
    return DialogueSet(dialogues=dialogues, label_space="meld7", files=[path])


BUILDER = erc_builder(
    name="meld",
    title="MELD",
    origin="github declare-lab/MELD data/MELD/{train,dev,test}_sent_emo.csv",
    licence=LICENCE,
    dialogues=load_dialogues,
    options={"video_dir": Option("", "folder of MELD clips (diaD_uttU.mp4) to set `video` paths")},
    named_speakers=True,
)
