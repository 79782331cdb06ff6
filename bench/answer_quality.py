"""Answer quality on dev splits: majority class, kNN vote, the label model alone, and the explain pipeline.

Four dev sets, each with its field's headline metric:
- MELD dev and EmoryNLP dev (closed 7-label ERC): weighted F1;
- GoEmotions dev (closed 28 labels): multi-label macro F1 over the 28 labels and over the Ekman groups;
- OV-MERD (open vocabulary, CC BY-NC, never trained on): emotion-wheel EW-L1 / EW-L2 F-scores.

For the LLM pipeline it also reports the grounding rate of cited cues (the cue's evidence occurs in the
turn, its context or the textualized signals), the share of explanations consistent with their labels,
the share of broken explanations (a copied turn, a list, a JSON fragment, < 4 words, unfinished), ECE and
Brier. `own_broken` / `own_untrusted` check the model's *own* sentence (from its raw answer): broken, or also
quoting what is not in the input, giving a quote to the wrong speaker or citing nothing; the pipeline shows a
sentence written from the cited evidence instead (`explanation_rewritten`), so `broken` is what a user sees.

    python bench/answer_quality.py embed                      # cache MiniLM embeddings of the dev/train sets
    python bench/answer_quality.py labels [--meld-label-model runs/lm_meld]
    python bench/answer_quality.py llm --name new --n 100     # the shipped default (adapter + label model)
    python bench/answer_quality.py llm --name today --n 50 --code-root /tmp/affect_old   # an older checkout
    python bench/answer_quality.py report
    python bench/answer_quality.py calibration --runs r5_meld,r5_emorynlp,r5_goemotions   # confidence rules

`llm` writes one JSONL of answers per dataset (resumable: answered ids are skipped); `report` scores them
all with the same code and writes bench/results/answer_quality.{json,md}. Samples are a seeded draw
(seed 0) of each dev set, the same for every run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, md_table, write_results  # noqa: E402

DATA = ROOT / "data"
CACHE = ROOT / "runs" / "emb_cache.npz"
SETS = {
    "meld": {"dev": "meld_dev.jsonl", "train": "meld_train.jsonl", "space": "meld7", "metric": "weighted F1"},
    "emorynlp": {"dev": "emorynlp_dev.jsonl", "train": "emorynlp_train.jsonl", "space": "emorynlp7",
                 "metric": "weighted F1"},
    "goemotions": {"dev": "goemotions_dev.jsonl", "train": "goemotions_train.jsonl", "space": "goemotions28",
                   "metric": "macro F1 (28) / Ekman macro F1"},
    "ovmerd": {"dev": "ovmerd_all.jsonl", "train": None, "space": None, "metric": "EW-L1 / EW-L2"},
}


def _samples(name: str):
    from affect_llm.data_builders.schema import read_samples

    return [s for s in read_samples(DATA / SETS[name]["dev"]) if s.labels and s.text.strip()]


def draw(name: str, n: int | None):
    samples = _samples(name)
    if n is None or n >= len(samples):
        return samples
    return random.Random(0).sample(samples, n)


# ------------------------------------------------------------------------------------------ scoring
def score(name: str, gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    from affect_llm.data_builders.label_spaces import LABEL_SPACES
    from affect_llm.emotion_groups import FAMILIES, family
    from affect_llm.eval.classification import Counts, accuracy, weighted_f1

    if name == "ovmerd":
        from affect_llm.eval.ov import evaluate_ov

        doc = evaluate_ov(gold, pred)
        return {"ew_l1": doc["ew_level1"]["f1"], "ew_l2": doc["ew_level2"]["f1"]}
    if name == "goemotions":
        space = LABEL_SPACES["goemotions28"]

        def macro(g_sets, p_sets, labels):
            f1s = []
            for lab in labels:
                tp = sum(1 for g, p in zip(g_sets, p_sets) if lab in g and lab in p)
                fp = sum(1 for g, p in zip(g_sets, p_sets) if lab not in g and lab in p)
                fn = sum(1 for g, p in zip(g_sets, p_sets) if lab in g and lab not in p)
                f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
            return sum(f1s) / len(f1s)

        g28 = [set(g) for g in gold]
        p28 = [set(p) for p in pred]
        ge = [{family(x) for x in g} - {None} for g in gold]
        pe = [{family(x) for x in p} - {None} for p in pred]
        return {"macro_f1_28": macro(g28, p28, space), "ekman_macro_f1": macro(ge, pe, FAMILIES)}
    space = LABEL_SPACES[SETS[name]["space"]]
    c = Counts.from_pairs([(g[0], p[0] if p else None) for g, p in zip(gold, pred)], space)
    return {"weighted_f1": weighted_f1(c), "accuracy": accuracy(c)}


# ------------------------------------------------------------------------------------------ baselines
def cmd_embed(args) -> None:
    from affect_llm.label_model import EmbeddingCache, Query, featurize
    from affect_llm.retrieval import SentenceEmbedder
    from affect_llm.data_builders.schema import read_samples

    cache = EmbeddingCache(SentenceEmbedder(), CACHE)
    for name, spec in SETS.items():
        for split in ("dev", "train"):
            if spec.get(split):
                ss = read_samples(DATA / spec[split])
                featurize(cache, [Query(s.text, s.context, s.speaker) for s in ss if s.text.strip()], progress=True)
                print(f"embedded {name} {split}: {len(ss)}", flush=True)


def _feats(samples):
    from affect_llm.label_model import EmbeddingCache, Query, featurize
    from affect_llm.retrieval import SentenceEmbedder

    cache = EmbeddingCache(SentenceEmbedder(), CACHE)
    return featurize(cache, [Query(s.text, s.context, s.speaker) for s in samples])


def _label_model_preds(lm, samples, space, name):
    from affect_llm.label_model import Query

    if lm.embedder == "minilm":  # the bundled encoder: its cached vectors
        probs = lm.predict_features(_feats(samples), [s.text for s in samples])
    else:  # a fine-tuned encoder embeds for itself
        probs = lm.predict([Query(s.text, s.context, s.speaker) for s in samples])
    labels, proj = lm.project(probs, list(space) if space else None)
    out = []
    for row in proj:
        order = row.argsort()[::-1]
        pick = [labels[order[0]]]
        if name == "ovmerd" and row[order[1]] >= 0.5 * row[order[0]]:
            pick.append(labels[order[1]])
        out.append(pick)
    return out, proj, labels


def cmd_labels(args) -> None:
    import numpy as np

    from affect_llm.data_builders.label_spaces import LABEL_SPACES
    from affect_llm.data_builders.schema import read_samples
    from affect_llm.eval.calibration import brier, ece
    from affect_llm.label_model import LabelModel, bundled_label_model_dir
    from affect_llm.vocabulary import VOCAB_ALIASES

    default = LabelModel.load(args.label_model or bundled_label_model_dir())
    meld_lm = LabelModel.load(args.meld_label_model) if args.meld_label_model else None
    rows = []
    for name, spec in SETS.items():
        samples = draw(name, None)
        gold = [s.labels for s in samples]
        space = LABEL_SPACES[spec["space"]] if spec["space"] else None
        # Majority class of the evaluated data itself (the usual baseline).
        majority = Counter(g[0] for g in gold).most_common(1)[0][0]
        rows.append({"set": name, "method": f"majority class ({majority})", "n": len(samples),
                     **score(name, gold, [[majority]] * len(gold))})
        # kNN label vote (k = 16, similarity-weighted, the target-turn embedding) over the train pool;
        # OV-MERD has no train split: the permissive pool (GoEmotions + EmoryNLP, vocabulary words).
        pool_files = [spec["train"]] if spec["train"] else ["goemotions_train.jsonl", "emorynlp_train.jsonl"]
        pool = [s for f in pool_files for s in read_samples(DATA / f) if s.labels and s.text.strip()]
        d = 384
        fp, fe = _feats(pool)[:, :d], _feats(samples)[:, :d]
        sims = fe @ fp.T
        top = np.argpartition(-sims, 16, axis=1)[:, :16]
        knn = []
        for i, idx in enumerate(top):
            votes: Counter = Counter()
            for j in idx:
                lab = pool[j].labels[0]
                votes[VOCAB_ALIASES.get(lab, lab) if name == "ovmerd" else lab] += float(sims[i, j])
            knn.append([votes.most_common(1)[0][0]])
        rows.append({"set": name, "method": "kNN vote (k = 16)", "n": len(samples), **score(name, gold, knn)})
        preds, proj, labels = _label_model_preds(default, samples, space, name)
        conf = [float(r.max()) for r in proj]
        recs = [(c, float(p[0] in g)) for c, p, g in zip(conf, preds, gold)]
        rows.append({"set": name, "method": "label model alone (bundled, permissive data)", "n": len(samples),
                     **score(name, gold, preds), "ece": ece(recs), "brier": brier(recs)})
        if meld_lm is not None and name == "meld":
            preds, proj, _ = _label_model_preds(meld_lm, samples, space, name)
            recs = [(float(r.max()), float(p[0] in g)) for r, p, g in zip(proj, preds, gold)]
            rows.append({"set": name, "method": "label model alone (trained on MELD train)", "n": len(samples),
                         **score(name, gold, preds), "ece": ece(recs), "brier": brier(recs)})
        print(json.dumps(rows[-1]), flush=True)
    (RESULTS / "answer_quality_labels.json").parent.mkdir(parents=True, exist_ok=True)
    (RESULTS / "answer_quality_labels.json").write_text(json.dumps(rows, indent=2))


# ------------------------------------------------------------------------------------------ the LLM
WORKER = r"""
import json, sys, time
from pathlib import Path
name, ds, space, out_path, ids, opts = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4]), json.loads(sys.argv[5]), json.loads(sys.argv[6])
from affect_llm.pipeline import Explainer, request_from
from affect_llm.data_builders.schema import read_samples
from affect_llm.data_builders.label_spaces import LABEL_SPACES
kw = {}
if opts.get("adapter") is not None:
    kw["adapter"] = None if opts["adapter"] == "none" else opts["adapter"]
if opts.get("label_model") is not None:
    kw["label_model"] = None if opts["label_model"] == "none" else opts["label_model"]
if opts.get("backend"):
    kw["backend"] = opts["backend"]
if opts.get("prior_weight") is not None:
    from affect_llm.decoding import DECODING
    DECODING["prior_weight"] = opts["prior_weight"]
ex = Explainer(**kw)
by_id = {s.id: s for s in read_samples(opts["data"])}
done = set()
if out_path.is_file():
    done = {json.loads(l)["id"] for l in out_path.read_text().splitlines() if l.strip()}
with out_path.open("a") as fh:
    for i in ids:
        if i in done:
            continue
        s = by_id[i]
        req = request_from(text=s.text, speaker=s.speaker, context=s.context,
                           label_space=list(LABEL_SPACES[space]) if space != "-" else None)
        t0 = time.perf_counter()
        try:
            r = ex.explain_many([req], batch_size=1)[0].model_dump(mode="json")
        except Exception as err:  # an unparsable answer counts as wrong, not fatal
            r = {"labels": [], "explanation": "", "cues": [], "confidence": None, "raw": str(err)}
        r["seconds"] = time.perf_counter() - t0
        fh.write(json.dumps({"id": i, "gold": s.labels, **r}) + "\n")
        fh.flush()
"""


def cmd_llm(args) -> None:
    opts = {"adapter": args.adapter, "label_model": args.label_model, "prior_weight": args.prior_weight,
            "backend": args.backend}
    env = {**os.environ, "AFFECT_LLM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    if args.code_root:
        env["PYTHONPATH"] = str(args.code_root)
    for name in args.sets.split(","):
        spec = SETS[name]
        ids = [s.id for s in draw(name, args.n)]
        out = RESULTS / f"answers_{args.name}_{name}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        space = spec["space"] if name != "ovmerd" else "-"
        o = {**opts, "data": str(DATA / spec["dev"])}
        if name == "meld" and args.meld_label_model:
            o["label_model"] = args.meld_label_model
        print(f"{args.name} {name}: {len(ids)} samples -> {out}", flush=True)
        # An older checkout must win over this one: run from its folder (the script's cwd comes first on sys.path).
        subprocess.run([sys.executable, "-c", WORKER, args.name, name, space, str(out), json.dumps(ids), json.dumps(o)],
                       check=True, env=env, cwd=str(args.code_root) if args.code_root else None)


def _grounded(cue: dict, sample) -> bool:
    """The cue's evidence (quotes stripped) occurs in the turn, a context turn or the textualized cues."""
    import re

    ev = str(cue.get("evidence", "")).strip()
    if not ev:
        return False
    hay = " ".join([sample.text] + [f"{t.speaker}: \"{t.text}\" {t.speaker}: {t.text}" for t in sample.context]
                   + [c.cue + " " + c.evidence for c in sample.cues]).lower()
    hay = re.sub(r"\s+", " ", hay)
    ev = re.sub(r"\s+", " ", ev.lower()).strip().strip("'\"").rstrip(" …")
    parts = [p.strip().strip("'\"") for p in re.split(r"', '|\", \"", ev)]
    return all(p and p in hay for p in parts)


_TASK = None


def _own_sentence_problems(rec: dict, sample) -> tuple[list[str], bool] | None:
    """What the checks find in the model's own sentence (from its raw answer), whether or not the run's code
    rewrote it: the same figure for runs before and after the rewrite existed; and whether it is broken.
    None: unparsable."""
    global _TASK
    from affect_llm.explain_task import ExplainTask, explanation_check, render_ids, request_from
    from affect_llm.explanations import explanation_problems
    from affect_llm.parsing import ParseError, parse_answer
    from affect_llm.vocabulary import EMOTION_WORDS

    if _TASK is None:
        _TASK = ExplainTask(label_vocabulary=list(EMOTION_WORDS))  # evidence only: no label model needed
    try:
        payload = parse_answer(rec.get("raw") or "")
    except ParseError:
        return None
    prep = _TASK.prepare(request_from(text=sample.text, speaker=sample.speaker, context=sample.context))
    sentence = render_ids(payload.explanation, prep.evidence)
    return explanation_check(sentence, prep), bool(explanation_problems(sentence, sample.text, sample.context))


def cmd_report(args) -> None:
    from affect_llm.data_builders.schema import read_samples
    from affect_llm.eval.calibration import brier, ece
    from affect_llm.explain_task import is_inconsistent
    from affect_llm.explanations import explanation_problems

    rows = json.loads((RESULTS / "answer_quality_labels.json").read_text()) if (
        RESULTS / "answer_quality_labels.json").is_file() else []
    for f in sorted(RESULTS.glob("answers_*_*.jsonl")):
        run, name = f.stem.removeprefix("answers_").rsplit("_", 1)
        by_id = {s.id: s for s in read_samples(DATA / SETS[name]["dev"])}
        recs = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        gold = [r["gold"] for r in recs]
        pred = [[str(x).lower() for x in r["labels"]] for r in recs]
        cues = [c for r in recs for c in r.get("cues", [])]
        grounded = [_grounded(c, by_id[r["id"]]) for r in recs for c in r.get("cues", [])]
        broken = [bool(explanation_problems(r["explanation"], by_id[r["id"]].text, by_id[r["id"]].context)) for r in recs]
        consistent = [not is_inconsistent(r["explanation"], r["labels"]) for r in recs if r["labels"]]
        own = [_own_sentence_problems(r, by_id[r["id"]]) for r in recs if r["labels"]]
        own = [p for p in own if p is not None]
        if name in ("meld", "emorynlp", "goemotions"):
            cal = [(r["confidence"], float(bool(p) and p[0] in g)) for r, p, g in zip(recs, pred, gold)
                   if r.get("confidence") is not None]
        else:
            cal = []
        row = {"set": name, "method": f"explain pipeline: {run}", "n": len(recs), **score(name, gold, pred),
               "grounded": sum(grounded) / len(grounded) if grounded else None, "cues": len(cues),
               "consistent": sum(consistent) / len(consistent) if consistent else None,
               "broken": sum(broken) / len(broken) if broken else None,
               "own_untrusted": sum(bool(p) for p, _ in own) / len(own) if own else None,
               "own_broken": sum(b for _, b in own) / len(own) if own else None,
               "ece": ece(cal), "brier": brier(cal),
               "s_per_answer": sum(r.get("seconds", 0) for r in recs) / max(1, len(recs)),
               "top_labels": ", ".join(f"{k} {v}" for k, v in Counter(p[0] for p in pred if p).most_common(3))}
        rows.append(row)
        priors = [r.get("label_prior") or {} for r in recs]
        if all(priors):  # the label model's own top label on the very same draw, for a paired comparison
            lm = [[max(p, key=p.get)] for p in priors]
            rows.append({"set": name, "method": f"label model alone, same draw as {run}", "n": len(recs),
                         **score(name, gold, lm)})
    cols = ["set", "method", "n", "weighted_f1", "macro_f1_28", "ekman_macro_f1", "ew_l1", "ew_l2", "grounded",
            "consistent", "broken", "own_broken", "own_untrusted", "ece", "brier", "s_per_answer", "top_labels"]
    order = {k: i for i, k in enumerate(SETS)}
    rows.sort(key=lambda r: (order[r["set"]], r["method"]))
    md = "# Answer quality on dev splits\n\n" + md_table(rows, cols)
    print(md)
    write_results("answer_quality", {"rows": rows}, md)


def cmd_calibration(args) -> None:
    """Confidence rules side by side on the answers of runs (one per set): the label model's probability of
    the chosen label, the LLM's own, their mean (the rule until this round), and a logistic calibration on
    both log-odds fitted on the *other* sets' answers (each set held out in turn)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from affect_llm.eval.calibration import brier, ece

    def logit(p):
        p = np.clip(np.asarray(p, dtype=float), 1e-4, 1 - 1e-4)
        return np.log(p / (1 - p))

    data = {}
    for run in args.runs.split(","):
        recs = [json.loads(x) for x in (RESULTS / f"answers_{run}.jsonl").read_text().splitlines() if x.strip()]
        rows = []
        for r in recs:
            if not r["labels"] or r.get("llm_confidence") is None or not r.get("label_prior"):
                continue
            ok = float(r["labels"][0].lower() in [g.lower() for g in r["gold"]])
            rows.append((r["label_prior"].get(r["labels"][0], 0.02), r["llm_confidence"], ok))
        data[run] = np.array(rows)
    out = []
    for run, a in data.items():
        others = np.vstack([b for k, b in data.items() if k.rsplit("_", 1)[1] != run.rsplit("_", 1)[1]])
        fit = LogisticRegression(C=10).fit(np.c_[logit(others[:, 0]), logit(others[:, 1])], others[:, 2])
        rules = {"label model": a[:, 0], "LLM": a[:, 1], "mean of both": (a[:, 0] + a[:, 1]) / 2,
                 "logistic on both (other sets)": fit.predict_proba(np.c_[logit(a[:, 0]), logit(a[:, 1])])[:, 1]}
        for name, conf in rules.items():
            pairs = list(zip(conf.tolist(), a[:, 2].tolist()))
            out.append({"run": run, "rule": name, "n": len(a), "accuracy": float(a[:, 2].mean()),
                        "mean_confidence": float(conf.mean()), "ece": ece(pairs), "brier": brier(pairs),
                        "weights (label model, LLM)": f"{fit.coef_[0][0]:.2f}, {fit.coef_[0][1]:.2f}"
                        if name.startswith("logistic") else ""})
    md = "# Confidence rules on dev answers\n\n" + md_table(out, list(out[0]))
    print(md)
    write_results("answer_quality_calibration", {"rows": out}, md)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("embed")
    lab = sub.add_parser("labels")
    lab.add_argument("--label-model", default=None)
    lab.add_argument("--meld-label-model", default=None)
    llm = sub.add_parser("llm")
    llm.add_argument("--name", required=True)
    llm.add_argument("--n", type=int, default=100)
    llm.add_argument("--sets", default="meld,emorynlp,goemotions,ovmerd")
    llm.add_argument("--adapter", default=None, help="folder, 'default' or 'none' (default: the Explainer's)")
    llm.add_argument("--label-model", default=None, help="folder, 'default' or 'none'")
    llm.add_argument("--meld-label-model", default=None, help="label model for the MELD set only")
    llm.add_argument("--code-root", type=Path, default=None, help="import affect_llm from this checkout")
    llm.add_argument("--threads", type=int, default=1)
    llm.add_argument("--prior-weight", type=float, default=None, help="override DECODING['prior_weight']")
    llm.add_argument("--backend", default=None, help="explain backend (default: the Explainer's, auto)")
    sub.add_parser("report")
    cal = sub.add_parser("calibration")
    cal.add_argument("--runs", required=True, help="answer files (run_set), e.g. r5_meld,r5_emorynlp,r5_goemotions")
    args = ap.parse_args()
    {"embed": cmd_embed, "labels": cmd_labels, "llm": cmd_llm, "report": cmd_report,
     "calibration": cmd_calibration}[args.cmd](args)


if __name__ == "__main__":
    main()
