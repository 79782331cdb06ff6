"""DailyDialog (7 emotions incl. 'no emotion' → neutral): `dialogues_{split}.txt` + emotion/act files.

Turns are separated by `__eou__`; speakers alternate, named A and B.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from affect_llm.data_builders.common import Dialogue, DialogueSet, Utt, erc_builder, require_files

from affect_llm.errors import AffectError

LICENCE = "CC BY-NC-SA 4.0 (DailyDialog), non-commercial"
EMOTIONS = ("neutral", "anger", "disgust", "fear", "happiness", "sadness", "surprise")
ACTS = {1: "inform", 2: "question", 3: "directive", 4: "commissive"}
FILE_SPLIT = {"train": "train", "dev": "validation", "test": "test"}


def split_turns(line: str) -> list[str]:
    parts = [p.strip() for p in line.strip().split("__eou__")]
    return [p for p in parts if p]


def line_to_dialogue(did: str, text_line: str, emo_line: str, act_line: str | None) -> Dialogue | None:
    """One line of each file → dialogue; None when the annotation count does not match the turns."""
    turns = split_turns(text_line)
    emos = [int(x) for x in emo_line.split()]
    acts = [int(x) for x in act_line.split()] if act_line is not None else [0] * len(turns)
    if len(emos) != len(turns) or len(acts) != len(turns):
        return None
    utts = []
    for i, (t, e, a) in enumerate(zip(turns, emos, acts)):
        if not 0 <= e < len(EMOTIONS):
            raise AffectError(f"DailyDialog dialogue {did}: emotion id {e} is not in 0..6")
        meta = {"utterance_id": i}
        if a in ACTS:
            meta["act"] = ACTS[a]
        utts.append(Utt(speaker="AB"[i % 2], text=t, labels=[EMOTIONS[e]], meta=meta))
    return Dialogue(id=did, utts=utts)


def load_dialogues(source: Path, split: str) -> DialogueSet:
    fs = FILE_SPLIT[split]
    text_p, emo_p = require_files(
        source, "DailyDialog", [f"dialogues_{fs}.txt", f"dialogues_emotion_{fs}.txt"]
    )
    act_p = source / f"dialogues_act_{fs}.txt"
    texts = text_p.read_text(encoding="utf-8").splitlines()
    emos = emo_p.read_text(encoding="utf-8").splitlines()
    acts = act_p.read_text(encoding="utf-8").splitlines() if act_p.exists() else [None] * len(texts)
    if not (len(texts) == len(emos) == len(acts)):
        raise AffectError(f"DailyDialog {split}: {text_p.name} and {emo_p.name} have different line counts")
    skipped: Counter = Counter()
    dialogues = []
    for n, (t, e, a) in enumerate(zip(texts, emos, acts)):
        dlg = line_to_dialogue(f"{fs}{n:04d}", t, e, a)
        if dlg is None:
            skipped["turn/label count mismatch (dialogues)"] += 1
        else:
            dialogues.append(dlg)
    files = [text_p, emo_p] + ([act_p] if act_p.exists() else [])
    return DialogueSet(dialogues=dialogues, label_space="dailydialog7", files=files, skipped=skipped)


BUILDER = erc_builder(
    name="dailydialog",
    title="DailyDialog",
    origin="ijcnlp_dailydialog {train,validation,test}/dialogues_*.txt (Li et al. 2017)",
    licence=LICENCE,
    dialogues=load_dialogues,
)
