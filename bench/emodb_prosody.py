"""Do the prosody features and cue phrases track emotional arousal on real speech? (Berlin EmoDB)

For every clip of `../shared/data/EmoDB` (acted German speech, 7 emotions, 8 speakers here) this measures
the prosody features (Praat voice quality when installed, and the librosa approximations), then reports:

1. within-speaker AUC of each feature for high-arousal (anger, happiness, fear) vs low-arousal
   (sadness, boredom, neutral) clips: AUC computed per speaker, then averaged, so differences between
   voices (men vs women) do not count. AUC > 0.5: the feature is larger in high-arousal speech.
2. how often each cue phrase fires per emotion, with the speaker reference (each clip against the mean of
   the same speaker's other clips) and with population norms.

EmoDB's clips here are 2.0 s, trimmed or zero-padded; only prosody is measured (no ASR: the bundled
Whisper is English-only). The norms in `prosody.py` were set to round values near EmoDB neutral speech,
so firing rates on EmoDB are in-sample for the population route; AUCs do not depend on any norm.

    python bench/emodb_prosody.py [--emodb PATH] [--limit N]

Writes bench/results/emodb_prosody.{json,md}.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HIGH = ("anger", "happiness", "fear")
LOW = ("sadness", "boredom", "neutral")
EMOTIONS = ("anger", "happiness", "fear", "disgust", "neutral", "boredom", "sadness")
FEATURES = (
    "f0_mean_hz", "f0_range_semitones", "f0_sd_semitones", "f0_final_slope", "intensity_mean_db",
    "intensity_range_db", "alpha_ratio_db", "speech_rate_syll_per_s", "articulation_rate_syll_per_s", "pause_ratio",
    "voiced_fraction", "jitter_local", "shimmer_local", "hnr_db",
)


def auc(pos: list[float], neg: list[float]) -> float | None:
    """P(pos > neg) + 0.5 P(tie): the Mann-Whitney AUC."""
    if not pos or not neg:
        return None
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emodb", type=Path, default=ROOT.parent / "shared" / "data" / "EmoDB")
    ap.add_argument("--limit", type=int, default=0, help="only the first N clips (smoke test)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--features", type=Path, default=None,
                    help="JSON file of measured features: read when present, else written (re-tune cues fast)")
    args = ap.parse_args()
    if not (args.emodb / "labels.csv").is_file():
        sys.exit(f"EmoDB not found at {args.emodb}")

    from tqdm import tqdm

    from affect_llm.extras import is_praat_available
    from affect_llm.textualize.audio import load_audio
    from affect_llm.textualize.prosody import (
        ProsodyFeatures,
        extract_prosody,
        population_reference,
        prosody_cues,
        speaker_reference,
    )

    with open(args.emodb / "labels.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rows = [r for r in rows if (args.emodb / "wav" / r["file"]).is_file()]
    if args.limit:
        rows = rows[: args.limit]
    methods = ["praat", "librosa"] if is_praat_available() else ["librosa"]
    feats: dict[str, list] = {m: [] for m in methods}
    t0 = time.time()
    if args.features and args.features.is_file():
        saved = json.loads(args.features.read_text())
        feats = {m: [ProsodyFeatures(**d) for d in saved["features"][m]] for m in methods}
        elapsed = saved["seconds"]
    else:
        for r in tqdm(rows, desc="prosody", unit="clip"):
            y = load_audio(args.emodb / "wav" / r["file"])
            for m in methods:
                feats[m].append(extract_prosody(y, praat=(m == "praat")))
        elapsed = time.time() - t0
        if args.features:
            args.features.write_text(json.dumps(
                {"seconds": elapsed, "features": {m: [f.model_dump() for f in fs] for m, fs in feats.items()}}))

    speakers = sorted({r["speaker_id"] for r in rows})
    result: dict = {
        "dataset": str(args.emodb), "clips": len(rows), "speakers": speakers, "methods": methods,
        "counts": {e: sum(r["emotion"] == e for r in rows) for e in EMOTIONS},
        "seconds": round(elapsed, 1), "auc": {}, "firing": {},
    }
    primary = methods[0]
    for m in methods:
        aucs: dict[str, dict] = {}
        for f in FEATURES:
            if m != primary and f not in ("jitter_local", "shimmer_local", "hnr_db"):
                continue
            per = []
            for s in speakers:
                idx = [i for i, r in enumerate(rows) if r["speaker_id"] == s]
                vals = {i: getattr(feats[m][i], f) for i in idx}
                pos = [v for i, v in vals.items() if rows[i]["emotion"] in HIGH and v is not None]
                neg = [v for i, v in vals.items() if rows[i]["emotion"] in LOW and v is not None]
                a = auc(pos, neg)
                if a is not None:
                    per.append(a)
            if per:
                aucs[f] = {"mean": round(float(np.mean(per)), 3), "min": round(min(per), 3),
                           "max": round(max(per), 3), "speakers": len(per)}
        result["auc"][m] = aucs

    for ref_kind in ("speaker", "population"):
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for i, r in enumerate(rows):
            f = feats[primary][i]
            if ref_kind == "speaker":
                others = [feats[primary][j] for j, q in enumerate(rows) if q["speaker_id"] == r["speaker_id"] and j != i]
                ref = speaker_reference(others)
            else:
                ref = population_reference(primary)
            cues, _ = prosody_cues(f, ref)
            for c in {c.cue for c in cues}:
                counts[c][r["emotion"]] += 1
        n_em = result["counts"]
        result["firing"][ref_kind] = {
            cue: {e: round(by[e] / n_em[e], 3) if n_em[e] else None for e in EMOTIONS}
            for cue, by in sorted(counts.items())
        }

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "emodb_prosody.json").write_text(json.dumps(result, indent=2))
    (args.out / "emodb_prosody.md").write_text(render_md(result))
    print(render_md(result))


def render_md(res: dict) -> str:
    lines = [
        "# EmoDB: prosody features and cue phrases vs arousal",
        "",
        (
            f"{res['clips']} clips, speakers {', '.join(res['speakers'])}; emotions: "
            + ", ".join(f"{e} {n}" for e, n in res["counts"].items())
            + f". Voice quality: {', '.join(res['methods'])}. Extraction took {res['seconds']} s."
        ),
        "",
        "## Within-speaker AUC, high (anger, happiness, fear) vs low arousal (sadness, boredom, neutral)",
        "",
        (
            "AUC per speaker, then mean (min-max over speakers). > 0.5: larger in high-arousal speech. "
            "Caveat: this copy of EmoDB is peak-normalised per file (every clip peaks at 1.0), so absolute "
            "level (intensity_mean_db) measures crest factor here, not loudness; alpha_ratio_db is level-free."
        ),
        "",
        "| feature | method | AUC mean | min | max |",
        "|---|---|---:|---:|---:|",
    ]
    vq = ("jitter_local", "shimmer_local", "hnr_db")
    for m, aucs in res["auc"].items():
        for f, a in aucs.items():
            how = m if f in vq else "pYIN / RMS / STFT"
            lines.append(f"| {f} | {how} | {a['mean']:.3f} | {a['min']:.3f} | {a['max']:.3f} |")
    for ref_kind, table in res["firing"].items():
        lines += [
            "",
            f"## Cue firing rate per emotion ({ref_kind} reference)",
            "",
            "| cue | " + " | ".join(EMOTIONS) + " |",
            "|---|" + "---:|" * len(EMOTIONS),
        ]
        for cue, by in table.items():
            lines.append(f"| {cue} | " + " | ".join("" if by[e] is None else f"{by[e]:.2f}" for e in EMOTIONS) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    os.environ.setdefault("TQDM_MININTERVAL", "5")
    main()
