"""IEMOCAP (USC SAIL, 5 sessions of dyadic dialogues): ERC in the 6-class or 4-class protocol.

Read from the release folder (`IEMOCAP_full_release/`): per session, `dialog/EmoEvaluation/<dialog>.txt`
(one `[start - end]<TAB>turn<TAB>code<TAB>[V, A, D]` line per utterance, the majority label) and
`dialog/transcriptions/<dialog>.txt` (`turn [start-end]: text`). Turns are ordered by start time; an
utterance whose label is outside the protocol (frustrated in 4-class, `xxx` = no agreement, ...) is
kept as context but is not a sample.

Protocols as the literature runs them: 6-class {neutral, happy, sad, angry, excited, frustrated},
reported with weighted F1 (DialogueRNN, COSMIC, InstructERC); 4-class {neutral, happy, sad, angry}
with excited merged into happy, reported as WA (accuracy) and UA (unweighted recall). Session 5 is the
test split; sessions 1-4 are train, with a fixed tenth of their dialogues (CRC32 of the name) held out
as dev so checkpoints are never chosen on test data.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from pathlib import Path

from affect_llm.data_builders.common import Dialogue, DialogueSet, Option, Utt, erc_builder

from affect_llm.errors import AffectError

LICENCE = "IEMOCAP release agreement (USC SAIL): research use only, no redistribution"
METRICS = {"6": "weighted F1 (+ accuracy)", "4": "WA (accuracy) and UA (unweighted average recall)"}
CODES = {"neu": "neutral", "hap": "happy", "sad": "sad", "ang": "angry", "exc": "excited", "fru": "frustrated",
         "sur": "surprised", "fea": "fearful", "dis": "disgusted", "oth": "other"}
PROTOCOLS = {
    "6": ("iemocap6", {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry",
                       "excited": "excited", "frustrated": "frustrated"}),
    "4": ("iemocap4", {"neutral": "neutral", "happy": "happy", "excited": "happy", "sad": "sad", "angry": "angry"}),
}
TEST_SESSIONS = (5,)
EVAL_LINE = re.compile(r"^\[(\d+\.?\d*)\s*-\s*(\d+\.?\d*)\]\s+(\S+)\s+(\w+)\s+\[([^\]]*)\]")
TRANS_LINE = re.compile(r"^(Ses\d\d[FM]_\S+)\s+\[(\d+\.?\d*)-(\d+\.?\d*)\]:\s*(.*)$")


def parse_evaluation(text: str) -> dict[str, tuple[str, list[float]]]:
    """EmoEvaluation file → {turn name: (code, [valence, arousal, dominance])} (pure)."""
    out = {}
    for line in text.splitlines():
        m = EVAL_LINE.match(line.strip())
        if m:
            vad = [float(x) for x in m.group(5).split(",") if x.strip()]
            out[m.group(3)] = (m.group(4).lower(), vad)
    return out


def parse_transcription(text: str) -> list[tuple[str, float, str]]:
    """Transcription file → [(turn name, start seconds, text)] (pure); other lines are skipped."""
    out = []
    for line in text.splitlines():
        m = TRANS_LINE.match(line.strip())
        if m:
            out.append((m.group(1), float(m.group(2)), m.group(4).strip()))
    return out


def speaker_of(turn: str) -> str:
    """`Ses01F_impro01_M003` → `Ses01_M` (the speaking actor: session + the gender letter of the turn)."""
    return f"{turn[:5]}_{turn.rsplit('_', 1)[-1][0]}"


def in_dev(dialog: str) -> bool:
    return zlib.crc32(dialog.encode()) % 10 == 0


def load_dialogues(source: Path, split: str, classes: str = "6") -> DialogueSet:
    if not source.is_dir():
        raise AffectError(f"--source {source}: no such folder (give IEMOCAP_full_release)")
    wanted = TEST_SESSIONS if split == "test" else tuple(s for s in range(1, 6) if s not in TEST_SESSIONS)
    sessions = [source / f"Session{s}" for s in wanted if (source / f"Session{s}" / "dialog").is_dir()]
    if not sessions:
        present = ", ".join(sorted(p.name for p in source.iterdir())[:8]) or "nothing"
        names = ", ".join(f"Session{s}/dialog" for s in wanted)
        raise AffectError(f"--source {source} does not look like IEMOCAP_full_release: no {names} (it has: {present})")
    space, keep = PROTOCOLS[classes]
    skipped: Counter = Counter()
    files: list[Path] = []
    dialogues = []
    for sess in sessions:
        for ev_path in sorted((sess / "dialog" / "EmoEvaluation").glob("*.txt")):
            name = ev_path.stem
            if split != "test" and in_dev(name) != (split == "dev"):
                continue
            tr_path = sess / "dialog" / "transcriptions" / f"{name}.txt"
            if not tr_path.is_file():
                raise AffectError(f"{ev_path}: no transcription {tr_path.relative_to(source)}")
            files += [ev_path, tr_path]
            labels = parse_evaluation(ev_path.read_text(encoding="utf-8", errors="replace"))
            utts = []
            for turn, start, text in sorted(parse_transcription(tr_path.read_text(encoding="utf-8", errors="replace")),
                                            key=lambda t: t[1]):
                code, vad = labels.get(turn, ("", []))
                label = keep.get(CODES.get(code, ""))
                if turn in labels and label is None:
                    skipped[f"label {code} outside the {classes}-class protocol"] += 1
                wav = sess / "sentences" / "wav" / name / f"{turn}.wav"
                meta = {"utterance_id": turn, "code": code, "start": start}
                if vad:
                    meta["vad"] = vad
                utts.append(Utt(speaker=speaker_of(turn), text=text, labels=[label] if label else [], meta=meta,
                                audio=str(wav) if wav.is_file() else None))
            dialogues.append(Dialogue(id=name, utts=utts, meta={"session": int(sess.name[-1])}))
    notes = [f"{classes}-class protocol; the field reports {METRICS[classes]}",
             "splits: Session5 = test; Sessions 1-4 = train, a fixed tenth of their dialogues (CRC32) = dev"]
    if classes == "4":
        notes.append("excited merged into happy (4-class convention)")
    return DialogueSet(dialogues=dialogues, label_space=space, files=files, skipped=skipped, notes=notes)


BUILDER = erc_builder(
    name="iemocap",
    title="IEMOCAP",
    origin="USC SAIL IEMOCAP_full_release: Session*/dialog/{EmoEvaluation,transcriptions}/*.txt",
    licence=LICENCE,
    dialogues=load_dialogues,
    options={"classes": Option("6", "protocol: 6-class or 4-class (excited → happy)", ("6", "4"))},
    named_speakers=False,
)
