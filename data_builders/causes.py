"""Emotion-cause corpora: RECCON (DailyDialog/IEMOCAP cause spans + free-text explanations) and ECF
(SemEval-2024 Task 3, Friends emotion-cause pairs).

Causes are kept twice: `meta["causes"]` lists `{turn, speaker, span}` (turn = 0-based index in the
dialogue, null for a latent cause outside the conversation), and `cues` cite each span as evidence
(`modality` "text" when the cause is in the target utterance, "context" when it is in another turn),
which is what an explanation should point at. RECCON's annotator explanations become `description`.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from affect_llm.data_builders.common import (
    Dialogue,
    DialogueSet,
    Option,
    Utt,
    erc_builder,
    read_json,
    require_files,
)
from affect_llm.data_builders.schema import Cue

from affect_llm.errors import AffectError

RECCON_LICENCE = "CC BY-NC-SA 4.0 (DailyDialog part); IEMOCAP part is licence-restricted, research only"
ECF_LICENCE = "GPL-3.0 (NUSTM/SemEval-2024_ECAC, NUSTM/MECPE); research use only"

# RECCON has a few label typos and IEMOCAP-style names inside the DailyDialog part.
RECCON_DD_FIX = {
    "happines": "happiness", "happy": "happiness", "excited": "happiness", "sad": "sadness",
    "surprised": "surprise", "angry": "anger",
}


def cause_cues(causes: list[dict[str, Any]], target_turn: int) -> list[Cue]:
    cues = []
    for c in causes:
        if c["turn"] is None:
            continue
        where = "this utterance" if c["turn"] == target_turn else f"turn {c['turn']} ({c['speaker']})"
        cues.append(Cue(modality="text" if c["turn"] == target_turn else "context",
                        cue=c["span"], evidence=f"emotion cause in {where}"))
    return cues


# ------------------------------------------------------------------------------------------ RECCON


def reccon_dialogue(did: str, utts_raw: list[dict[str, Any]], subset: str) -> tuple[Dialogue, Counter]:
    """One RECCON conversation → dialogue with labels, cause cues and explanations (pure)."""
    fixes: Counter = Counter()
    utts: list[Utt] = []
    for i, u in enumerate(utts_raw):
        emo = str(u["emotion"]).strip().lower()
        if subset == "dailydialog" and emo in RECCON_DD_FIX:
            fixes[f"{emo}→{RECCON_DD_FIX[emo]}"] += 1
            emo = RECCON_DD_FIX[emo]
        utts.append(Utt(speaker=str(u["speaker"]), text=str(u["utterance"]).strip(), labels=[emo],
                        meta={"utterance_id": int(u["turn"])}))
    turn_index = {u.meta["utterance_id"]: i for i, u in enumerate(utts)}
    for i, u in enumerate(utts_raw):
        evidence = u.get("expanded emotion cause evidence") or []
        spans = u.get("expanded emotion cause span") or []
        causes = []
        for ev, span in zip(evidence, spans):
            if ev == "b" or ev not in turn_index:
                causes.append({"turn": None, "speaker": None, "span": None, "latent": True})
                continue
            t = turn_index[ev]
            causes.append({"turn": t, "speaker": utts[t].speaker, "span": str(span).strip()})
        if causes:
            utts[i].meta["causes"] = causes
            utts[i].meta["cause_types"] = list(u.get("type") or [])
            utts[i].cues = cause_cues(causes, i)
        if u.get("explanation"):
            utts[i].description = str(u["explanation"]).strip()
    return Dialogue(id=did, utts=utts), fixes


def reccon_dialogues(source: Path, split: str, subset: str = "dailydialog") -> DialogueSet:
    if subset == "iemocap":
        if split != "test":
            raise AffectError("RECCON's IEMOCAP part has only a test split (use --split test)")
        name, space = "iemocap_test.json", "iemocap6"
    else:
        file_split = "valid" if split == "dev" else split
        name, space = f"dailydialog_{file_split}.json", "dailydialog7"
    (path,) = require_files(source, "RECCON", [name])
    data = read_json(path)
    if not isinstance(data, dict):
        raise AffectError(f"{path}: expected an object of dialogue id → [conversation]")
    dialogues, notes, fixes = [], [], Counter()
    for did, convs in data.items():
        for j, conv in enumerate(convs):
            dlg, f = reccon_dialogue(did if len(convs) == 1 else f"{did}_{j}", conv, subset)
            dialogues.append(dlg)
            fixes += f
    if fixes:
        notes.append("label fixes: " + ", ".join(f"{k} ×{v}" for k, v in sorted(fixes.items())))
    return DialogueSet(dialogues=dialogues, label_space=space, files=[path], notes=notes)


RECCON = erc_builder(
    name="reccon",
    title="RECCON",
    origin="github declare-lab/RECCON data/original_annotation/*.json",
    licence=RECCON_LICENCE,
    dialogues=reccon_dialogues,
    options={"subset": Option("dailydialog", "which conversations", ("dailydialog", "iemocap"))},
)


# --------------------------------------------------------------------------------------------- ECF

_PAIR = re.compile(r"\((\d+),(\d+)\)")


def ecf_json_dialogue(conv: dict[str, Any]) -> Dialogue:
    """One SemEval-2024 Subtask-1 conversation (span-level cause pairs) → dialogue (pure)."""
    utts = [Utt(speaker=str(u["speaker"]), text=str(u["text"]).strip(),
                labels=[str(u["emotion"]).strip().lower()], meta={"utterance_id": int(u["utterance_ID"])})
            for u in conv["conversation"]]
    index = {u.meta["utterance_id"]: i for i, u in enumerate(utts)}
    causes: dict[int, list[dict[str, Any]]] = {}
    for emo_part, cause_part in conv.get("emotion-cause_pairs", []):
        e_id = int(str(emo_part).split("_", 1)[0])
        c_id_s, _, span = str(cause_part).partition("_")
        c_id = int(c_id_s)
        if e_id not in index or c_id not in index:
            raise AffectError(f"ECF conversation {conv['conversation_ID']}: pair refers to a missing turn")
        t = index[c_id]
        causes.setdefault(index[e_id], []).append({"turn": t, "speaker": utts[t].speaker, "span": span.strip()})
    for i, cs in causes.items():
        utts[i].meta["causes"] = cs
        utts[i].cues = cause_cues(cs, i)
    return Dialogue(id=f"c{conv['conversation_ID']}", utts=utts)


def ecf_txt_dialogues(text: str) -> list[Dialogue]:
    """ECF 1.0 `{train,dev,test}.txt` blocks (header, pair line, one line per turn) → dialogues."""
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        head = lines[i].split()
        if not head:
            i += 1
            continue
        if len(head) != 2 or not all(h.isdigit() for h in head):
            raise AffectError(f"ECF txt line {i + 1}: expected 'conversation_id n_turns', got {lines[i]!r}")
        cid, n = head[0], int(head[1])
        pairs = [(int(a), int(b)) for a, b in _PAIR.findall(lines[i + 1])]
        utts = []
        for line in lines[i + 2: i + 2 + n]:
            parts = [p.strip() for p in line.split(" | ")]
            if len(parts) < 4:
                raise AffectError(f"ECF txt conversation {cid}: malformed turn line {line!r}")
            utts.append(Utt(speaker=parts[1], text=" | ".join(parts[3:-1]) if len(parts) > 4 else parts[3],
                            labels=[parts[2].lower()], meta={"utterance_id": int(parts[0])}))
        causes: dict[int, list[dict[str, Any]]] = {}
        for e, c in pairs:
            if 1 <= e <= len(utts) and 1 <= c <= len(utts):
                causes.setdefault(e - 1, []).append(
                    {"turn": c - 1, "speaker": utts[c - 1].speaker, "span": utts[c - 1].text})
        for t, cs in causes.items():
            utts[t].meta["causes"] = cs
            utts[t].cues = cause_cues(cs, t)
        out.append(Dialogue(id=f"c{cid}", utts=utts))
        i += 2 + n
    return out


def ecf_dialogues(source: Path, split: str, version: int = 2) -> DialogueSet:
    if version == 2:
        if split == "dev":
            raise AffectError("ECF 2.0 (SemEval-2024) has train and test only; use --opt version=1 for dev")
        (path,) = require_files(source, "ECF (SemEval-2024 Task 3)", [f"Subtask_1_{split}.json"])
        data = read_json(path)
        dialogues = [ecf_json_dialogue(c) for c in data]
        notes = ["ECF 2.0: cause spans inside the cause utterance"]
    else:
        (path,) = require_files(source, "ECF (SemEval-2024 Task 3)", [f"ECF1_{split}.txt"])
        dialogues = ecf_txt_dialogues(path.read_text(encoding="utf-8"))
        notes = ["ECF 1.0: utterance-level causes (the whole cause utterance is the span)"]
    return DialogueSet(dialogues=dialogues, label_space="meld7", files=[path], notes=notes)


ECF = erc_builder(
    name="ecf",
    title="ECF (SemEval-2024 Task 3)",
    origin="github NUSTM/SemEval-2024_ECAC data/Subtask_1_*.json; NUSTM/MECPE data/*.txt",
    licence=ECF_LICENCE,
    dialogues=ecf_dialogues,
    options={"version": Option(2, "2 = SemEval-2024 span-level json, 1 = ECF 1.0 txt", (1, 2))},
    named_speakers=True,
)
