"""The generic table importer (`data build table`): column mapping, MELD parity with the dedicated builder,
label spaces and renaming, formats, line-numbered errors, and the Hugging Face source when offline."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from affect_llm.data_builders.common import card_paths
from affect_llm.data_builders.registry import build_dataset, run_builder
from affect_llm.data_builders.schema import read_samples

from affect_llm.cli.app import main
from affect_llm.errors import AffectError

FIX = Path(__file__).parent / "fixtures" / "data"
SHARED_MELD = Path(__file__).resolve().parents[2] / "shared" / "data" / "MELD"
MELD_COLS = {"text_col": "Utterance", "label_col": "Emotion", "speaker_col": "Speaker",
             "dialogue_col": "Dialogue_ID", "turn_col": "Utterance_ID", "label_space": "meld7"}


def table(source: Path, split: str = "all", **opts):
    result, _ = run_builder("table", source, split, {k: str(v) for k, v in opts.items()})
    return result


def _by_turn(records, dialogue_key):
    """(dialogue, utterance) → what must match across builders: text, labels, speaker, context."""
    return {
        (dialogue_key(r), int(r.id.rsplit("/", 1)[-1])): (r.text, r.labels, r.speaker,
                                                          [(t.speaker, t.text) for t in r.context])
        for r in records
    }


def _assert_same_as_meld(folder: Path, split: str, window: int) -> int:
    meld, _ = run_builder("meld", folder, split, {"window": str(window)})
    imported = table(folder / f"{split}_sent_emo.csv", split, window=window, **MELD_COLS)
    want = _by_turn(meld.records, lambda r: int(r.meta["dialogue_id"][1:]))
    got = _by_turn(imported.records, lambda r: int(r.meta["dialogue_id"]))
    assert got == want
    assert sorted(r.meta["turn"] for r in imported.records) == sorted(r.meta["turn"] for r in meld.records)
    assert all(r.label_space == "meld7" for r in imported.records)
    return len(got)


@pytest.mark.parametrize("window", [1, 8])
def test_meld_csv_imports_like_the_meld_builder(window: int) -> None:
    assert _assert_same_as_meld(FIX / "MELD", "dev", window) == 5


@pytest.mark.skipif(not SHARED_MELD.is_dir(), reason="../shared/data/MELD is not present")
def test_real_meld_csv_imports_like_the_meld_builder() -> None:
    assert _assert_same_as_meld(SHARED_MELD, "dev", 8) == 1109


def test_card_and_cli(tmp_path: Path, capsys) -> None:
    out = tmp_path / "mine.jsonl"
    with pytest.raises(SystemExit) as exc:
        main(["data", "build", "table", "--source", str(FIX / "MELD" / "dev_sent_emo.csv"), "--out", str(out),
              "--text-col", "Utterance", "--label-col", "Emotion", "--speaker-col", "Speaker", "--dialogue-col",
              "Dialogue_ID", "--turn-col", "Utterance_ID", "--label-space", "meld7", "--window", "2",
              "--opt", "name=friends", "--opt", "licence=CC0"])
    assert exc.value.code == 0
    assert "wrote 5 samples" in capsys.readouterr().out
    samples = read_samples(out)
    assert samples[0].id == "friends/all/0/0" and samples[0].dataset == "friends" and samples[0].meta["licence"] == "CC0"
    assert len(samples[2].context) == 2
    card = json.loads(card_paths(out)[0].read_text())
    assert card["dataset"] == "table" and card["source_files"] == {"dev_sent_emo.csv": card["source_files"]["dev_sent_emo.csv"]}
    assert card["label_space"] == "meld7" and card["options"]["text_col"] == "Utterance"
    assert card["counts"] == {"records": 5, "dialogues": 2, "rows": 5}


def test_multilabel_map_inferred_space_and_formats(tmp_path: Path) -> None:
    rows = [
        {"txt": "I can't wait for the trip!", "emo": "Joy; Anticipation", "part": "train", "clip": "a.wav"},
        {"txt": "Leave me alone.", "emo": "anger", "part": "validation", "clip": ""},
        {"txt": "Fine.", "emo": "meh", "part": "test", "clip": ""},
        {"txt": "Whatever you say", "emo": "", "part": "test", "clip": ""},
    ]
    csv_path = tmp_path / "t.tsv"
    csv_path.write_text("txt\temo\tpart\tclip\n" + "".join(f"{r['txt']}\t{r['emo']}\t{r['part']}\t{r['clip']}\n" for r in rows))
    mapping = tmp_path / "map.yaml"
    mapping.write_text("anticipation: joy\nmeh: null\n")
    res = table(csv_path, text_col="txt", label_col="emo", label_sep=";", label_map=mapping, split_col="part",
                audio_col="clip")
    recs = res.records
    assert [r.labels for r in recs] == [["joy"], ["anger"]]  # "anticipation" renamed onto joy, "meh" dropped
    assert [r.split for r in recs] == ["train", "dev"] and recs[0].audio == str(tmp_path / "a.wav")
    assert recs[0].label_space is None and "inferred label set (2): anger, joy" in res.notes[-1]
    assert res.skipped == {"label mapped to null": 1, "no label": 1}
    dev = table(csv_path, "dev", text_col="txt", label_col="emo", label_sep=";", label_map=mapping, split_col="part")
    assert [r.text for r in dev.records] == ["Leave me alone."]

    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text("".join(json.dumps({"text": r["txt"], "labels": [x for x in r["emo"].split("; ") if x]}) + "\n"
                             for r in rows[:2]))
    assert [r.labels for r in table(jsonl, label_col="labels").records] == [["joy", "anticipation"], ["anger"]]
    # unlabelled import: no --label-col keeps every row
    assert len(table(jsonl).records) == 2

    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    pq.write_table(pa.table({"text": ["hi there", "so sad"], "y": [0, 1]}), tmp_path / "t.parquet")
    got = table(tmp_path / "t.parquet", label_col="y", label_map=_json(tmp_path / "m.json", {"0": "joy", "1": "sadness"}),
                label_space="ekman7")
    assert [r.labels for r in got.records] == [["joy"], ["sadness"]]


def _json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


@pytest.mark.parametrize("content, opts, message", [
    ("text,emo\nhi,joy\n", {"label_col": "emotion"},
     r"t.csv: no column 'emotion' \(--label-col\); columns: text, emo"),
    ("text,emo\nhi,joy\n  ,joy\n", {"label_col": "emo"}, r"t.csv:3: empty text in column 'text'"),
    ("text,emo\na,joy\nb,happy\nc,happy\nd,mad\n", {"label_col": "emo", "label_space": "ekman7"},
     r"t.csv:3: label 'happy' is not in label space 'ekman7' .*unknown labels with counts: 'happy' 2, 'mad' 1"),
    ("text,d,t\na,1,0\nb,1,0\n", {"dialogue_col": "d", "turn_col": "t"}, r"t.csv:3: dialogue '1' has turn '0' twice"),
    ("text,t\na,0\n", {"turn_col": "t"}, "give --dialogue-col too"),
    ('text,emo\n"multi\nline",joy\n,joy\n', {"label_col": "emo"}, r"t.csv:4: empty text"),
])
def test_errors_name_the_line(tmp_path: Path, content: str, opts: dict, message: str) -> None:
    src = tmp_path / "t.csv"
    src.write_text(content)
    with pytest.raises(AffectError, match=message):
        table(src, **opts)


def test_empty_rows_can_be_skipped_and_cli_errors_are_one_line(tmp_path: Path, capsys) -> None:
    src = tmp_path / "t.csv"
    src.write_text("text,emo\nhi,joy\n,joy\n")
    assert table(src, label_col="emo", empty="skip").skipped == {"empty text": 1}
    out = tmp_path / "o.jsonl"
    with pytest.raises(SystemExit) as exc:
        main(["data", "build", "table", "--source", str(src), "--out", str(out), "--label-col", "emo",
              "--label-space", "meld7"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert not out.exists() and list(tmp_path.iterdir()) == [src]
    with pytest.raises(SystemExit):
        main(["data", "build", "meld", "--source", str(FIX / "MELD"), "--out", str(out), "--text-col", "x"])
    assert "--text-col applies to `data build table` only" in capsys.readouterr().err
    (tmp_path / "t.xlsx").touch()
    for bad, msg in [(tmp_path / "t.xlsx", "cannot tell the format"), (tmp_path / "nope.csv", "no such file")]:
        with pytest.raises(AffectError, match=msg):
            table(bad)


def test_hf_source_offline_is_fast_and_clear(monkeypatch) -> None:
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.monotonic()
    with pytest.raises(AffectError, match=r"hub is unreachable \(HF_HUB_OFFLINE is set\).*not in the local cache"):
        table(Path("hf:no-such-user/no-such-set"), "test")
    # hub flags unset, endpoint unreachable: the short probe fails and the load stays offline
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(AffectError, match=r"http://127.0.0.1:9 did not answer"):
        table(Path("hf:no-such-user/no-such-set:cfg"), "test")
    assert time.monotonic() - t0 < 30
    with pytest.raises(AffectError, match="needs a dataset name"):
        table(Path("hf:"), "test")


def test_build_dataset_writes_card_for_a_table(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    card = build_dataset("table", FIX / "MELD" / "dev_sent_emo.csv", out, options={
        "text_col": "Utterance", "label_col": "Emotion"})
    assert card["split"] == "all" and card["counts"]["records"] == 5
    assert "inferred label set" in card["notes"][-1]
