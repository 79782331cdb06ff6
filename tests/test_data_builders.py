"""Dataset builders and the canonical sample format: fixtures in the real formats, plus real-data checks
that skip when ../shared is absent."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest
from affect_llm.data_builders.common import card_paths
from affect_llm.data_builders.registry import BUILDERS, build_dataset, run_builder
from affect_llm.data_builders.schema import Sample, read_pairs, read_samples, write_samples

from affect_llm.errors import AffectError, UnknownNameError

FIX = Path(__file__).parent / "fixtures" / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def build(name: str, folder: str, split: str | None = None, **opts):
    result, _ = run_builder(name, FIX / folder, split, {k: str(v) for k, v in opts.items()})
    return result.records


# ------------------------------------------------------------------------------- canonical format


def test_roundtrip_and_atomic_write(tmp_path: Path) -> None:
    s = Sample(id="x/1", dataset="x", split="train", text="hi", context=[{"speaker": "A", "text": "yo"}],
               labels=["Joy", "joy"], label_space="meld7", meta={"dialogue_id": "d1"})
    assert s.labels == ["joy"]
    out = tmp_path / "d.jsonl"
    assert write_samples(out, [s, s.model_copy(update={"id": "x/2"})]) == 2
    back = read_samples(out)
    assert back[0] == s and back[1].id == "x/2"
    assert [p.name for p in tmp_path.iterdir()] == ["d.jsonl"]  # no temp file left behind


def test_failed_write_leaves_old_file(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    write_samples(out, [Sample(id="a", dataset="x", split="s", text="t")])
    with pytest.raises(AffectError, match="record 2"):
        write_samples(out, [{"id": "b", "dataset": "x", "split": "s", "text": "t"}, {"id": "c"}])
    assert [s.id for s in read_samples(out)] == ["a"]
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"id": "a", "dataset": "x", "split": "s", "text": "t", "labelz": []}', "jsonl:2: field 'labelz'"),
        ('{"id": "a", "dataset": "x", "split": "s"}', "jsonl:2: .*no input"),
        (('{"id": "a", "dataset": "x", "split": "s", "text": "t", "labels": ["joy"], "label_space": "ekman7", '
         '"context": [{"speaker": "A", "text": " "}]}'), "jsonl:2: field 'context.0.text'"),
        ('{"id": "a", "dataset": "x", "split": "s", "text": "t", "labels": ["happy"], "label_space": "ekman7"}',
         "not in label space 'ekman7'"),
        ("not json", "jsonl:2: not valid JSON"),
    ],
)
def test_read_errors_name_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"id": "ok", "dataset": "x", "split": "s", "text": "fine"}\n' + line + "\n")
    with pytest.raises(AffectError, match=message):
        read_samples(p)


def test_duplicate_ids_rejected(tmp_path: Path) -> None:
    p = tmp_path / "dup.jsonl"
    row = '{"id": "a", "dataset": "x", "split": "s", "text": "t"}\n'
    p.write_text(row * 2)
    with pytest.raises(AffectError, match="duplicate sample id 'a'"):
        read_samples(p)


# ----------------------------------------------------------------------------------------- builders


def test_meld_dialogue_window_and_order() -> None:
    recs = build("meld", "MELD", "dev", window=1)
    assert [r.id for r in recs] == ["meld/dev/d0/0", "meld/dev/d0/1", "meld/dev/d0/2", "meld/dev/d1/0", "meld/dev/d1/1"]
    third = recs[2]
    assert third.text == "I waited in line all night." and third.speaker == "Rachel"
    assert [(t.speaker, t.text) for t in third.context] == [("Ross", "You did? How?")]  # last k=1 turn
    assert third.labels == ["neutral"] and third.label_space == "meld7"
    assert third.meta["dialogue_id"] == "d0" and third.meta["sentiment"] == "neutral"
    assert recs[3].context == []  # a new dialogue starts without context
    full = build("meld", "MELD", "dev")
    assert len(full[2].context) == 2


def test_wrong_source_folder_is_refused() -> None:
    with pytest.raises(AffectError, match="does not look like a MELD folder: missing dev_sent_emo.csv"):
        run_builder("meld", FIX / "EmoryNLP", "dev")
    with pytest.raises(AffectError, match="no split 'validation'"):
        run_builder("meld", FIX / "MELD", "validation")
    with pytest.raises(UnknownNameError, match="choose one of"):
        run_builder("meldd", FIX / "MELD", "dev")
    with pytest.raises(AffectError, match="has no option 'ekmann'"):
        run_builder("goemotions", FIX / "GoEmotions", "dev", {"ekmann": "true"})


def test_emorynlp_scenes_and_speaker_lists() -> None:
    recs = build("emorynlp", "EmoryNLP", "dev")
    assert recs[2].speaker == "Ross Geller and Rachel Green" and recs[2].labels == ["joyful"]
    assert recs[3].meta["dialogue_id"] != recs[0].meta["dialogue_id"] and recs[3].context == []


def test_goemotions_multilabel_and_ekman() -> None:
    recs = build("goemotions", "GoEmotions", "dev")
    assert recs[0].labels == ["admiration", "gratitude"] and recs[0].label_space == "goemotions28"
    ek = build("goemotions", "GoEmotions", "dev", ekman=True)
    assert ek[0].labels == ["joy"] and ek[0].meta["fine_labels"] == ["admiration", "gratitude"]
    assert ek[1].labels == ["surprise"] and ek[3].labels == ["neutral"] and ek[2].labels == ["anger"]


def test_dailydialog_speakers_and_labels() -> None:
    recs = build("dailydialog", "DailyDialog", "dev")
    assert [r.labels[0] for r in recs] == ["neutral", "sadness", "surprise", "happiness", "happiness"]
    assert [r.speaker for r in recs[:3]] == ["A", "B", "A"] and recs[1].meta["act"] == "inform"


def test_empathetic_dialogue_and_situation_forms() -> None:
    d = build("empathetic", "EmpatheticDialogues", "dev")
    assert d[0].text == "yes , nobody has seen him yet ." and d[0].labels == ["sad"]
    assert [t.speaker for t in d[0].context] == ["speaker", "listener"]
    s = build("empathetic", "EmpatheticDialogues", "dev", form="situation")
    assert [r.labels for r in s] == [["terrified"], ["proud"]]


def test_mer2023_split_and_empty_transcripts() -> None:
    result, _ = run_builder("mer2023", FIX / "MER2023_text", "train")
    assert [r.labels[0] for r in result.records] == ["happy", "angry"]
    assert result.skipped == {"empty english transcript": 1}
    assert run_builder("mer2023", FIX / "MER2023_text", "test1")[0].records[0].text == "I miss him so much."


def test_ovmerd_open_vocab_joined_by_name() -> None:
    result, _ = run_builder("ovmerd", FIX / "OV-MERD", "all")
    (s,) = result.records  # the silent clip is skipped (no subtitle, no video folder)
    assert s.label_space is None and s.labels == ["calm", "reserved"]
    assert s.text == "I'm fine." and "calm and reserved" in s.description
    with_video, _ = run_builder("ovmerd", FIX / "OV-MERD", "all", {"video_dir": "/videos"})
    assert with_video.records[1].labels == ["tense", "worried"] and with_video.records[1].video.endswith(".mp4")


def test_emoprefer_dpo_pairs(tmp_path: Path) -> None:
    card = build_dataset("emoprefer", FIX / "EmoPrefer", tmp_path / "pairs.jsonl")
    pairs = read_pairs(tmp_path / "pairs.jsonl")
    assert len(pairs) == 2 and card["counts"]["skipped"] == {"tie (preference = same)": 1}
    assert pairs[0].chosen.startswith("The man frowns") and pairs[0].rejected == "He is happy."
    assert pairs[1].chosen.startswith("She smiles broadly") and pairs[1].meta["chosen_model"] == "modelB"
    assert pairs[0].prompt


def test_reccon_causes_explanations_and_label_fixes() -> None:
    result, _ = run_builder("reccon", FIX / "RECCON", "dev")
    first, second, third = result.records
    assert first.labels == ["happiness"] and first.description.startswith("Finishing")
    assert first.cues[0].modality == "text" and first.cues[0].cue == "finally finished my thesis"
    assert second.cues[0].modality == "context" and "turn 0 (A)" in second.cues[0].evidence
    assert second.meta["causes"][1]["latent"] is True and len(second.cues) == 1
    assert third.cues == [] and "happines→happiness ×1" in result.notes[0]


def test_ecf_span_and_utterance_level_causes() -> None:
    train = build("ecf", "ECF_SemEval2024_Task3", "train")
    assert [c.cue for c in train[1].cues] == ["The oven is on fire", "left the towel on it"]
    assert [c.modality for c in train[1].cues] == ["context", "text"]
    dev = build("ecf", "ECF_SemEval2024_Task3", "dev", version=1)
    assert dev[1].labels == ["sadness"] and [c["turn"] for c in dev[1].meta["causes"]] == [0, 1]
    with pytest.raises(AffectError, match="version=1 for dev"):
        run_builder("ecf", FIX / "ECF_SemEval2024_Task3", "dev")


def test_emodb_audio_paths(tmp_path: Path) -> None:
    (tmp_path / "wav").mkdir()
    for name in ("03a01Fa.wav", "03a01Wa.wav"):
        with wave.open(str(tmp_path / "wav" / name), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"\0\0" * 160)
    (tmp_path / "labels.csv").write_text(
        "file,speaker_id,text_code,emotion,version,sample_rate,duration_s\n"
        "03a01Fa.wav,03,a01,happiness,a,16000,0.01\n03a01Wa.wav,03,a01,anger,a,16000,0.01\n"
        "03a01Xx.wav,03,a01,anger,a,16000,0.01\n"
    )
    result, _ = run_builder("emodb", tmp_path, None)
    assert [r.labels[0] for r in result.records] == ["happiness", "anger"]
    assert Path(result.records[0].audio).is_file() and result.records[0].text == ""
    assert result.skipped == {"wav file missing": 1}


def test_instructerc_auxiliary_tasks() -> None:
    spk = build("speaker-id", "MELD", "dev", window=2)
    assert spk[2].speaker is None and spk[2].labels == ["rachel"] and spk[2].meta["candidates"] == ["Rachel", "Ross"]
    assert spk[2].meta["speaker_name"] == "Rachel"
    imp = build("emotion-impact", "MELD", "dev")
    assert imp[0].text == "" and imp[0].speaker == "Ross" and imp[0].labels == ["surprise"]
    assert [t.text for t in imp[0].context] == ["I finally got the tickets!"]
    assert len(imp) == 3  # 2 + 1 next-turn targets in the two dialogues
    with pytest.raises(AffectError, match="must be one of"):
        run_builder("speaker-id", FIX / "DailyDialog", "dev", {"base": "dailydialog"})


def test_build_dataset_writes_card(tmp_path: Path) -> None:
    out = tmp_path / "data" / "meld_dev.jsonl"
    card = build_dataset("meld", FIX / "MELD", out, split="dev", options={"window": "3"})
    jpath, mpath = card_paths(out)
    assert json.loads(jpath.read_text()) == card
    assert card["counts"] == {"records": 5, "dialogues": 2} and card["label_distribution"]["joy"] == 1
    assert card["licence"].startswith("GPL-3.0") and card["options"] == {"window": 3, "video_dir": ""}
    assert "| joy | 1 | 20.0% |" in mpath.read_text()
    assert len(read_samples(out)) == 5


def test_cli_data_build_and_errors(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from affect_llm.cli.data_cmd import app

    runner = CliRunner()
    out = tmp_path / "go.jsonl"
    r = runner.invoke(app, ["build", "goemotions", "--source", str(FIX / "GoEmotions"), "--out", str(out),
                            "--split", "dev", "--opt", "ekman=true"])
    assert r.exit_code == 0, r.output
    assert "wrote 4 samples" in r.output and read_samples(out)[0].label_space == "ekman7"
    r = runner.invoke(app, ["build", "goemotions", "--source", str(FIX / "GoEmotions"), "--out", str(out),
                            "--window", "3"])
    assert isinstance(r.exception, AffectError) and "no dialogue window" in str(r.exception)
    r = runner.invoke(app, ["list"])
    assert r.exit_code == 0 and "emotion-impact" in r.output
    r = runner.invoke(app, ["check", str(out)])
    assert r.exit_code == 0 and "4 valid samples" in r.output


def test_every_builder_is_exercised() -> None:
    assert set(BUILDERS) == {"meld", "emorynlp", "goemotions", "dailydialog", "empathetic", "mer2023", "ovmerd",
                             "emoprefer", "reccon", "ecf", "emodb", "speaker-id", "emotion-impact",
                             # tests/test_data_import.py and tests/test_benchmark_builders.py
                             "table", "iemocap", "cmu-mosi", "cmu-mosei", "ch-sims", "ch-sims2", "mer2024", "mer2025"}


# ------------------------------------------------------------------------------- real data (optional)

REAL = [
    ("meld", "MELD", "dev", 1109),
    ("meld", "MELD", "train", 9989),
    ("emorynlp", "EmoryNLP", "dev", 954),
    ("goemotions", "GoEmotions", "dev", 5426),
    ("dailydialog", "DailyDialog", "test", 7740),
    ("empathetic", "EmpatheticDialogues", "test", 5255),
    ("mer2023", "MER2023_text", "test1", None),
    ("ovmerd", "OV-MERD", "all", 312),
    ("emoprefer", "EmoPrefer", "all", 563),
    ("reccon", "RECCON", "test", 2405),
    ("ecf", "ECF_SemEval2024_Task3", "test", 3101),
    ("emodb", "EmoDB", "all", None),
]


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
@pytest.mark.parametrize("name, folder, split, expected", REAL, ids=[f"{r[0]}-{r[2]}" for r in REAL])
def test_real_data(name: str, folder: str, split: str, expected: int | None) -> None:
    if not (SHARED / folder).is_dir():
        pytest.skip(f"{folder} not in ../shared/data")
    result, _ = run_builder(name, SHARED / folder, split)
    if expected is not None:
        assert len(result.records) == expected
    assert len({r.id for r in result.records}) == len(result.records)
    if name == "meld" and split == "dev":
        assert len({r.meta["dialogue_id"] for r in result.records}) == 114
    if name == "ovmerd":
        assert all(r.description for r in result.records)
