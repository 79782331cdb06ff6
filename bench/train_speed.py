"""Our SFT recipe vs plain TRL `SFTTrainer` with the same model, rows and settings.

What it shows: `affect-llm train sft` adds no per-step overhead over TRL (ratio ≈ 1) — the recipe only
builds rows with the inference templates and hands them to TRL. Each side runs in its own process (so
peak RSS is its own) for `--steps` optimizer steps after `--warmup` untimed ones; s/step comes from the
trainer's step timestamps, tokens/s from TRL's `num_tokens` log.

    python bench/train_speed.py                      # tiny random Llama (real tokenizer): seconds
    python bench/train_speed.py --model default      # the embedded SmolLM2-135M (minutes on CPU)

Writes bench/results/train_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import md_table, write_results

SAMPLES = [
    ("I can't believe you forgot my birthday again.", ["anger"]), ("This is the best day of my life!", ["joy"]),
    ("I miss her so much.", ["sadness"]), ("Wow, I did not expect that at all.", ["surprise"]),
    ("Ok, see you at five.", ["neutral"]), ("That smell is revolting.", ["disgust"]),
    ("I'm terrified of the exam tomorrow.", ["fear"]), ("Thanks so much for your help!", ["gratitude", "joy"]),
]

CHILD = r'''
import json, resource, sys, time
from affect_llm.threads import configure_threads
configure_threads()
from transformers import TrainerCallback
side, model, train_file, out, steps, warmup, bs = sys.argv[1:8]
steps, warmup, bs = int(steps), int(warmup), int(bs)
stamps = []
class T(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        stamps.append(time.perf_counter())
over = dict(model=model, train_file=train_file, output_dir=out, max_steps=steps + warmup, per_device_train_batch_size=bs,
            learning_rate=1e-4, logging_steps=1, save_strategy="no", report_to="none", lora_r=8, lora_alpha=16,
            lora_dropout=0.0, max_length=512, seed=0, data_seed_shuffle=False)
from affect_llm.train.config import load_config
cfg = load_config("sft", overrides=over)
if side == "ours":
    from affect_llm.train.recipes import train
    card = train("sft", cfg, callbacks=[T()])
    logs = card["log_history"]
else:  # plain TRL: same rows, model, LoRA config and arguments, no affect-llm recipe code
    import trl
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from affect_llm.train.recipes import build_rows
    from affect_llm.assets import resolve_model
    path = resolve_model(model)[1]
    args = trl.SFTConfig(**{k: getattr(cfg, k) for k in ("output_dir", "max_steps", "per_device_train_batch_size",
        "learning_rate", "logging_steps", "save_strategy", "report_to", "max_length", "seed", "use_cpu", "bf16")})
    tr = trl.SFTTrainer(model=AutoModelForCausalLM.from_pretrained(path), args=args,
        train_dataset=Dataset.from_list(build_rows("sft", cfg, train_file)), processing_class=AutoTokenizer.from_pretrained(path),
        peft_config=LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                               task_type="CAUSAL_LM"), callbacks=[T()])
    tr.train()
    logs = tr.state.log_history
toks = [h["num_tokens"] for h in logs if "num_tokens" in h]
timed = stamps[warmup:]
dt = timed[-1] - stamps[warmup - 1] if warmup else timed[-1] - timed[0]
n = len(timed) if warmup else len(timed) - 1
tok = toks[-1] - toks[warmup - 1] if warmup else toks[-1] - toks[0]
print("RESULT " + json.dumps({"s_per_step": dt / n, "tokens_per_s": tok / dt,
      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def tiny_model(folder: Path) -> str:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from affect_llm.assets import asset_path

    tok = AutoTokenizer.from_pretrained(str(asset_path("smollm2-135m-instruct")))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return str(folder)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny", help="tiny (random 2-layer Llama) | default | a folder")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="alternating runs per side; the best is kept")
    a = ap.parse_args()
    from affect_llm.data_builders.schema import write_samples

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        model = tiny_model(t / "tiny") if a.model == "tiny" else a.model
        write_samples(t / "train.jsonl", [dict(id=f"b/{i}", dataset="b", split="train", text=x, labels=y)
                                          for i, (x, y) in enumerate(SAMPLES * 4)])
        runs: dict[str, list[dict]] = {"ours": [], "trl": []}
        for r in range(a.repeats):
            for side in ("ours", "trl") if r % 2 == 0 else ("trl", "ours"):
                proc = subprocess.run([sys.executable, "-c", CHILD, side, model, str(t / "train.jsonl"),
                                       str(t / f"out_{side}"), str(a.steps), str(a.warmup), str(a.batch)],
                                      capture_output=True, text=True)
                line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
                if proc.returncode or not line:
                    raise SystemExit(f"{side} failed:\n{proc.stderr[-3000:]}")
                runs[side].append(json.loads(line[0][7:]))
    best = {s: min(v, key=lambda d: d["s_per_step"]) for s, v in runs.items()}
    ratio = {"s_per_step": best["ours"]["s_per_step"] / best["trl"]["s_per_step"],
             "tokens_per_s": best["ours"]["tokens_per_s"] / best["trl"]["tokens_per_s"],
             "peak_rss": best["ours"]["peak_rss_mb"] / best["trl"]["peak_rss_mb"]}
    rows = [{"side": s, **{k: round(v, 3) for k, v in best[s].items()}} for s in ("ours", "trl")]
    rows.append({"side": "ours / trl", "s_per_step": round(ratio["s_per_step"], 3),
                 "tokens_per_s": round(ratio["tokens_per_s"], 3), "peak_rss_mb": round(ratio["peak_rss"], 3)})
    md = (f"# SFT speed: affect-llm recipe vs plain TRL\n\nmodel: `{a.model}`, {a.steps} timed steps "
          f"(+{a.warmup} warm-up), batch {a.batch}, LoRA r=8 on q/k/v/o, max_length 512, 1 torch thread, "
          f"best of {a.repeats} alternating runs per side.\n\n"
          + md_table(rows, ["side", "s_per_step", "tokens_per_s", "peak_rss_mb"]))
    print(md)
    print(write_results("train_speed", {"model": a.model, "steps": a.steps, "batch": a.batch, "runs": runs,
                                        "best": best, "ratio": ratio}, md))


if __name__ == "__main__":
    main()
