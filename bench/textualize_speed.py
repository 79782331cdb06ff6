"""How fast are the textualizers on one CPU thread? Real-time factor (RTF) of decoding + ASR + prosody
(goal: RTF <= 0.5 on 2 s clips, <= 0.2 on >= 10 s clips), frames per second for faces, peak memory.

Parts (each in its own process, so its peak RSS is its own):
* speech: English espeak-ng clips (2.7 s and 11.2 s), median of `--repeats` runs after a warm-up.
* emodb: German EmoDB clips (`../shared/data/EmoDB`, 2 s each, `--emodb-clips` of them spread over the
  speakers) with ASR and without (`--asr none`: decoding + prosody), plus 12 s made of 6 clips of one
  speaker; also how often the language came out as German and the transcript as reliable.
* face: frames/s on a 512x512 video. speech-openai: the openai-whisper backend (`--openai-whisper`).

    python bench/textualize_speed.py [--repeats 3] [--parts speech,emodb,face,pitch] [--openai-whisper]

Writes bench/results/textualize_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AFFECT_LLM_THREADS", "1")

SHORT = "I really did not expect that from you."
LONG = (
    "The meeting is scheduled for Tuesday at three o'clock in the afternoon. Please bring the quarterly "
    "report and the budget figures, and we will go through them together with the whole team."
)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _clips(work: Path) -> dict[str, Path]:
    exe = shutil.which("espeak-ng")
    if exe:
        out = {}
        for name, text in (("short", SHORT), ("long", LONG)):
            path = work / f"{name}.wav"
            subprocess.run([exe, "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
            out[name] = path
        return out
    import numpy as np
    import soundfile as sf

    emodb = ROOT.parent / "shared" / "data" / "EmoDB" / "wav"
    files = sorted(emodb.glob("*.wav"))[:6]
    if not files:
        sys.exit("need espeak-ng or ../shared/data/EmoDB for speech clips")
    ys = [sf.read(f, dtype="float32")[0] for f in files]
    sf.write(work / "short.wav", ys[0], 22_050)
    sf.write(work / "long.wav", np.concatenate(ys), 22_050)
    return {"short": work / "short.wav", "long": work / "long.wav"}


def _one_clip(y, backend: str | None) -> tuple[float, float, float, object]:
    """(ASR wall s, prosody wall s, process CPU s, transcript) for one decoded clip."""
    from affect_llm.textualize.asr import transcribe
    from affect_llm.textualize.prosody import extract_prosody

    c0 = time.process_time()
    t = time.perf_counter()
    tr = transcribe(y, backend) if backend else None
    a = time.perf_counter() - t
    t = time.perf_counter()
    extract_prosody(y)
    p = time.perf_counter() - t
    return a, p, time.process_time() - c0, tr


def part_emodb(n_clips: int) -> dict:
    """German speech: RTF with and without ASR on EmoDB, language and reliability rates."""
    import csv

    import numpy as np

    from affect_llm.threads import default_threads
    from affect_llm.textualize.audio import check_audio, load_audio

    root = ROOT.parent / "shared" / "data" / "EmoDB"
    rows = list(csv.DictReader((root / "labels.csv").open()))
    if not rows:
        sys.exit(f"no EmoDB at {root}")
    by_spk: dict[str, list[dict]] = {}
    for r in rows:
        by_spk.setdefault(r["speaker_id"], []).append(r)
    picked: list[dict] = []  # round-robin over speakers: every speaker, every emotion mix
    while len(picked) < min(n_clips, len(rows)):
        for spk in sorted(by_spk):
            if by_spk[spk] and len(picked) < n_clips:
                picked.append(by_spk[spk].pop(0))
    ys = [load_audio(root / "wav" / r["file"]) for r in picked]
    _one_clip(ys[0], "faster-whisper")  # load + warm-up
    res: dict = {"threads": default_threads(), "clips": len(ys), "audio_s": round(sum(len(y) for y in ys) / 16_000, 1)}
    langs, reliable, examples = [], [], []
    for backend in ("faster-whisper", None):
        wall, cpu = [], []
        for r, y in zip(picked, ys):
            secs = len(y) / 16_000
            t = time.perf_counter()
            a, p, c, tr = _one_clip(load_audio(root / "wav" / r["file"]), backend)
            wall.append((time.perf_counter() - t) / secs)
            cpu.append(c / secs)
            if tr is not None:
                langs.append(tr.language)
                reliable.append(tr.reliable)
                if len(examples) < 6:
                    examples.append({"file": r["file"], "language": tr.language, "reliable": tr.reliable,
                                     "text": tr.text, "issue": tr.issue})
        key = "asr" if backend else "no_asr"
        res[key] = {"rtf_wall_mean": round(float(np.mean(wall)), 4), "rtf_wall_median": round(float(np.median(wall)), 4),
                    "rtf_cpu_mean": round(float(np.mean(cpu)), 4), "rtf_cpu_median": round(float(np.median(cpu)), 4)}
    names = [str(lang) for lang in langs]  # None = language uncertain
    res["language_de"] = round(names.count("de") / len(names), 3)
    res["languages"] = {k: names.count(k) for k in sorted(set(names))}
    res["reliable"] = round(sum(reliable) / len(reliable), 3)
    # the failure that matters: a transcript trusted although the language is wrong
    res["reliable_not_de"] = sum(ok and lang != "de" for ok, lang in zip(reliable, langs))
    res["examples"] = examples
    # >= 10 s of German: 6 clips of the first speaker back to back
    spk = picked[0]["speaker_id"]
    files = [r["file"] for r in rows if r["speaker_id"] == spk][:6]
    long_y = check_audio(np.concatenate([load_audio(root / "wav" / f) for f in files]))
    secs = len(long_y) / 16_000
    for backend in ("faster-whisper", None):
        a, p, c, tr = _one_clip(long_y, backend)
        res[f"long_{'asr' if backend else 'no_asr'}"] = {
            "audio_s": round(secs, 2), "asr_s": round(a, 3), "prosody_s": round(p, 3),
            "rtf_wall": round((a + p) / secs, 4), "rtf_cpu": round(c / secs, 4),
            **({"language": tr.language, "reliable": tr.reliable, "text": tr.text} if tr is not None else {}),
        }
    res["peak_rss_mb"] = round(_peak_mb(), 1)
    return res


def part_speech(repeats: int, backend: str) -> dict:
    from affect_llm.threads import default_threads
    from affect_llm.textualize.asr import transcribe
    from affect_llm.textualize.audio import load_audio
    from affect_llm.textualize.prosody import extract_prosody

    threads = default_threads()  # openai-whisper pins torch to it inside transcribe()
    res: dict = {"backend": backend, "threads": threads, "clips": {}}
    with tempfile.TemporaryDirectory() as tmp:
        clips = _clips(Path(tmp))
        t0 = time.perf_counter()
        transcribe(load_audio(clips["short"]), backend)  # load + warm-up
        extract_prosody(load_audio(clips["short"]))
        res["load_and_warmup_s"] = round(time.perf_counter() - t0, 3)
        for name, path in clips.items():
            asr_t, pros_t, dec_t, cpu_t = [], [], [], []
            for _ in range(repeats):
                c0 = time.process_time()
                t = time.perf_counter()
                y = load_audio(path)
                dec_t.append(time.perf_counter() - t)
                t = time.perf_counter()
                tr = transcribe(y, backend)
                asr_t.append(time.perf_counter() - t)
                t = time.perf_counter()
                extract_prosody(y)
                pros_t.append(time.perf_counter() - t)
                cpu_t.append(time.process_time() - c0)
            secs = len(y) / 16_000
            a, p, d = statistics.median(asr_t), statistics.median(pros_t), statistics.median(dec_t)
            res["clips"][name] = {
                "audio_s": round(secs, 2), "decode_s": round(d, 4), "asr_s": round(a, 3), "prosody_s": round(p, 3),
                "rtf_asr": round(a / secs, 4), "rtf_prosody": round(p / secs, 4),
                "rtf_total": round((a + p + d) / secs, 4), "words": len(tr.words), "text": tr.text,
                "language": tr.language, "reliable": tr.reliable,
                # CPU seconds of the whole process per audio second: what the work costs when other
                # processes share the cores (wall time then overstates it)
                "rtf_cpu": round(statistics.median(cpu_t) / secs, 4),
            }
    res["peak_rss_mb"] = round(_peak_mb(), 1)
    return res


def part_pitch(n_clips: int) -> dict:
    """pYIN with librosa's dense Viterbi against ours over the non-zero transitions, on the same EmoDB
    clips in one process: time of each and whether the pitch tracks are identical."""
    import glob

    import librosa
    import numpy as np

    from affect_llm.textualize import prosody

    files = sorted(glob.glob(str(ROOT.parent / "shared" / "data" / "EmoDB" / "wav" / "*.wav")))
    if not files:
        sys.exit("no EmoDB clips")
    files = files[:: max(1, len(files) // n_clips)][:n_clips]
    clips = [librosa.load(f, sr=prosody.SR)[0] for f in files]
    kw = dict(fmin=prosody.FMIN, fmax=prosody.FMAX, sr=prosody.SR, frame_length=prosody.PITCH_FRAME,
              hop_length=prosody.HOP, resolution=0.25, center=True, fill_na=None)
    dense = sparse = 0.0
    same = 0
    for y in clips:
        t = time.perf_counter()
        a = librosa.pyin(y, **kw)
        dense += time.perf_counter() - t
        t = time.perf_counter()
        b = prosody._pyin(y)
        sparse += time.perf_counter() - t
        same += all(np.array_equal(x, z, equal_nan=True) for x, z in zip(a, b))
    audio = sum(len(y) for y in clips) / prosody.SR
    return {"clips": len(clips), "audio_s": round(audio, 1), "dense_s": round(dense, 2), "sparse_s": round(sparse, 2),
            "ratio": round(sparse / dense, 3), "identical": same}


def part_face(repeats: int) -> dict:
    import av
    import numpy as np
    from skimage import data

    from affect_llm.textualize.face import analyze_face

    ast = data.astronaut()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        with av.open(str(path), "w") as c:
            s = c.add_stream("mpeg4", rate=25)
            s.width, s.height, s.pix_fmt = 512, 512, "yuv420p"
            for i in range(100):  # 4 s at 25 fps, the face drifting
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(ast, i * 2, axis=1)), format="rgb24")
                for p in s.encode(frame):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        img = Path(tmp) / "a.png"
        from PIL import Image

        Image.fromarray(ast).save(img)
        t0 = time.perf_counter()
        analyze_face(img)
        load = time.perf_counter() - t0
        img_t, vid_t = [], []
        n = 0
        for _ in range(repeats):
            t = time.perf_counter()
            analyze_face(img)
            img_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            summary, _, _ = analyze_face(path, fps=25)
            vid_t.append(time.perf_counter() - t)
            n = summary.frames
    v = statistics.median(vid_t)
    return {
        "load_and_first_image_s": round(load, 3), "image_s": round(statistics.median(img_t), 4),
        "video_frames": n, "video_frame_size": "512x512", "video_s": round(v, 3),
        "frames_per_s": round(n / v, 1), "peak_rss_mb": round(_peak_mb(), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--openai-whisper", action="store_true", help="also time the openai-whisper backend")
    ap.add_argument("--parts", default="speech,emodb,face", help="comma-separated: speech, emodb, face, pitch")
    ap.add_argument("--emodb-clips", type=int, default=80, help="EmoDB clips timed (spread over speakers)")
    ap.add_argument("--part", choices=["speech", "face", "speech-openai", "emodb", "pitch"], help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    if args.part:
        fn = {"speech": lambda: part_speech(args.repeats, "faster-whisper"),
              "speech-openai": lambda: part_speech(args.repeats, "openai-whisper"),
              "face": lambda: part_face(args.repeats),
              "emodb": lambda: part_emodb(args.emodb_clips),
              "pitch": lambda: part_pitch(args.emodb_clips)}[args.part]
        print(json.dumps(fn()))
        return
    parts = [p for p in args.parts.split(",") if p] + (["speech-openai"] if args.openai_whisper else [])
    result: dict = {"host": {"cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()}}
    for part in parts:
        proc = subprocess.run([sys.executable, __file__, "--part", part, "--repeats", str(args.repeats),
                               "--emodb-clips", str(args.emodb_clips)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"part {part} failed:\n{proc.stderr[-2000:]}")
        result[part] = json.loads(proc.stdout.strip().splitlines()[-1])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "textualize_speed.json").write_text(json.dumps(result, indent=2))
    md = render(result)
    (args.out / "textualize_speed.md").write_text(md)
    print(md)


def render(r: dict) -> str:
    lines = ["# Textualizer speed (1 thread)", "", f"Host: {r['host']}", "",
             "RTF = wall seconds per audio second (median); RTF CPU = process CPU seconds per audio second.",
             "ASR: multilingual Whisper base (int8, language detection, VAD, one decode at temperature 0).",
             "",
             "| backend | clip | audio s | ASR s | prosody s | RTF ASR | RTF prosody | RTF total | RTF CPU | peak RSS MB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key in ("speech", "speech-openai"):
        if key not in r:
            continue
        s = r[key]
        for name, c in s["clips"].items():
            lines.append(f"| {s['backend']} | English {name} | {c['audio_s']} | {c['asr_s']} | {c['prosody_s']} | "
                         f"{c['rtf_asr']} | {c['rtf_prosody']} | **{c['rtf_total']}** | {c['rtf_cpu']} | {s['peak_rss_mb']} |")
        lines.append(f"| {s['backend']} | load + warm-up | | {s['load_and_warmup_s']} s | | | | | | |")
    if "pitch" in r:
        p = r["pitch"]
        lines += ["", f"## pYIN, dense vs sparse Viterbi ({p['clips']} EmoDB clips, {p['audio_s']} s, one process)", "",
                  f"librosa dense {p['dense_s']} s, ours {p['sparse_s']} s: ratio **{p['ratio']}**; identical pitch "
                  f"tracks: {p['identical']} of {p['clips']}."]
    if "emodb" in r:
        e = r["emodb"]
        a, n = e["asr"], e["no_asr"]
        la, ln = e["long_asr"], e["long_no_asr"]
        lines += ["", f"## EmoDB (German), {e['clips']} clips of 2 s, {e['audio_s']} s in all, 1 thread", "",
                  "| | RTF wall (mean / median) | RTF CPU (mean / median) |", "|---|---:|---:|",
                  f"| decoding + ASR + prosody | **{a['rtf_wall_mean']}** / {a['rtf_wall_median']} | "
                  f"**{a['rtf_cpu_mean']}** / {a['rtf_cpu_median']} |",
                  f"| decoding + prosody (no ASR) | {n['rtf_wall_mean']} / {n['rtf_wall_median']} | "
                  f"{n['rtf_cpu_mean']} / {n['rtf_cpu_median']} |",
                  f"| ratio with / without ASR | {a['rtf_wall_mean'] / max(n['rtf_wall_mean'], 1e-9):.2f}x | "
                  f"{a['rtf_cpu_mean'] / max(n['rtf_cpu_mean'], 1e-9):.2f}x |",
                  f"| {la['audio_s']} s (6 clips of one speaker), ASR + prosody | **{la['rtf_wall']}** | **{la['rtf_cpu']}** |",
                  f"| {ln['audio_s']} s, prosody only | {ln['rtf_wall']} | {ln['rtf_cpu']} |",
                  "", f"Language detected as German: **{e['language_de']:.0%}** ({e['languages']}); transcript "
                  f"reliable: {e['reliable']:.0%}; trusted with a wrong language: {e['reliable_not_de']}. "
                  f"Peak RSS {e['peak_rss_mb']} MB.", "",
                  "| file | language | reliable | transcript / issue |", "|---|---|---|---|"]
        lines += [f"| {x['file']} | {x['language']} | {x['reliable']} | {x['text'] or x['issue']} |" for x in e["examples"]]
    if "speech-openai" in r:
        from affect_llm.textualize.asr import normalize_transcript

        same = all(
            normalize_transcript(r["speech"]["clips"][k]["text"]) == normalize_transcript(c["text"])
            for k, c in r["speech-openai"]["clips"].items()
        )
        lines += ["", f"Both backends give the same transcript (beam 5, normalised) on every clip: **{same}**."]
    if "face" not in r:
        return "\n".join(lines) + "\n"
    f = r["face"]
    lines += ["", "| faces | value |", "|---|---:|",
              f"| frames/s (512x512 video, tracked) | **{f['frames_per_s']}** |",
              f"| one image, s | {f['image_s']} |", f"| load + first image, s | {f['load_and_first_image_s']} |",
              f"| peak RSS MB | {f['peak_rss_mb']} |"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
