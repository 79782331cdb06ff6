"""EmoryNLP (Friends, 7 feeling-wheel emotions): `emorynlp_{train,dev,test}_final.csv` (MELD repo copy).

A dialogue is one scene: (season, episode, scene id).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from affect_llm.data_builders.common import (
    Dialogue,
    DialogueSet,
    Utt,
    erc_builder,
    read_csv,
    require_columns,
    require_files,
)

from affect_llm.errors import AffectError

LICENCE = "Apache-2.0 (emorynlp/emotion-detection)"
COLUMNS = ["Utterance", "Speaker", "Emotion", "Scene_ID", "Utterance_ID", "Season", "Episode"]


def parse_speakers(value: str) -> str:
    """`"['Monica Geller']"` → `"Monica Geller"`; several speakers are joined with ' and '."""
    value = value.strip()
    if value.startswith("["):
        try:
            names = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise AffectError(f"EmoryNLP: cannot parse speaker list {value!r}") from None
        return " and ".join(str(n).strip() for n in names)
    return value


def row_to_utt(row: dict[str, str]) -> Utt:
    return Utt(
        speaker=parse_speakers(row["Speaker"]),
        text=row["Utterance"].strip(),
        labels=[row["Emotion"].strip().lower()],
        meta={"utterance_id": int(row["Utterance_ID"]), "season": int(row["Season"]),
              "episode": int(row["Episode"])},
    )


def load_dialogues(source: Path, split: str) -> DialogueSet:
    (path,) = require_files(source, "EmoryNLP", [f"emorynlp_{split}_final.csv"])
    rows = read_csv(path)
    require_columns(rows, path, COLUMNS)
    scenes: dict[tuple[int, int, int], list[Utt]] = defaultdict(list)
    for row in rows:
        key = (int(row["Season"]), int(row["Episode"]), int(row["Scene_ID"]))
        scenes[key].append(row_to_utt(row))
    dialogues = [
        Dialogue(id=f"s{s:02d}e{e:02d}c{c:02d}", utts=sorted(u, key=lambda x: x.meta["utterance_id"]))
        for (s, e, c), u in sorted(scenes.items())
    ]
    return DialogueSet(dialogues=dialogues, label_space="emorynlp7", files=[path])


BUILDER = erc_builder(
    name="emorynlp",
    title="EmoryNLP",
    origin="github declare-lab/MELD data/emorynlp/emorynlp_{train,dev,test}_final.csv",
    licence=LICENCE,
    dialogues=load_dialogues,
    named_speakers=True,
)
