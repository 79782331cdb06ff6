"""The bundled MiniLM sentence encoder on ONNX Runtime: the same vectors as sentence-transformers, without
its import.

Why: `import sentence_transformers` pulls transformers' model registry, PEFT, bitsandbytes and
scikit-learn: ~10 s of a cold `affect-llm explain` on this CPU, for a 22M-parameter encoder that the label
model runs once per query. ONNX Runtime (already installed by faster-whisper) and `tokenizers` load in a
fraction of a second.

The ONNX graph is exported once from the sentence-transformers model (torch's exporter, needs `onnx`) and
cached under `~/.cache/affect_llm/onnx/`, with the settings that make its vectors equal to
sentence-transformers': the same WordPiece tokenizer and maximum length, mean pooling over real tokens,
L2 normalisation (the model's own Normalize module), and the weights' fingerprint as sentence-transformers
computes it, so label models and indexes built with either engine are interchangeable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from affect_llm.errors import AffectError

EXPORT_VERSION = 2  # 2: the fingerprint reads every weight tensor


class UnsupportedModel(AffectError):
    """A sentence-transformers model this exporter does not handle (not Transformer + mean Pooling)."""


def export_dir(folder: Path) -> Path:
    """Cache folder of `folder`'s export, keyed by its weights and configuration files."""
    import hashlib

    from affect_llm.assets import cache_dir

    h = hashlib.sha256(f"v{EXPORT_VERSION}".encode())
    for f in sorted(folder.rglob("*.json")) + sorted(folder.glob("*.safetensors")):
        st = f.stat()
        h.update(f"{f.relative_to(folder)}:{st.st_size}:{int(st.st_mtime)}".encode())
    return cache_dir() / "onnx" / h.hexdigest()[:24]


def export(folder: Path, out: Path) -> None:
    """Export `folder`'s sentence-transformers model to `out`/model.onnx + meta.json (atomically)."""
    import tempfile
    import warnings

    import torch
    from sentence_transformers import SentenceTransformer

    from affect_llm.fileio import replace_dir
    from affect_llm.retrieval import _weights_fingerprint

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a weight-loading bar is noise before a one-line CLI answer
    st = SentenceTransformer(str(folder), device="cpu")
    modules = [type(m).__name__ for m in st]
    pooling = st[1] if len(st) > 1 else None
    mean = getattr(pooling, "pooling_mode", None) == "mean" or getattr(pooling, "pooling_mode_mean_tokens", False)
    if modules[:2] != ["Transformer", "Pooling"] or not mean:
        raise UnsupportedModel(f"ONNX export supports Transformer + mean Pooling models, not {modules}")
    bert = st[0].auto_model.eval()
    bert.config._attn_implementation = "eager"  # the TorchScript exporter traces eager attention only

    class Encoder(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        ids = torch.ones((2, 8), dtype=torch.long)
        axes = {0: "batch", 1: "tokens"}
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on constant masks; tested for equal vectors
            torch.onnx.export(Encoder(bert), (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                              str(tmp / "model.onnx"), dynamo=False, opset_version=17,
                              input_names=["input_ids", "attention_mask", "token_type_ids"],
                              output_names=["last_hidden_state"],
                              dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                            "last_hidden_state": axes})
        dim = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
        meta = {"max_seq_length": int(st.max_seq_length), "dim": int(dim()),
                "normalize": "Normalize" in modules, "fingerprint": _weights_fingerprint(st),
                "source": str(folder), "version": EXPORT_VERSION}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        replace_dir(tmp, out)
    finally:
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


class OnnxSentenceEncoder:
    """`encode(texts)` of a sentence-transformers MiniLM folder, computed by ONNX Runtime."""

    def __init__(self, folder: str | Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from affect_llm.threads import default_threads

        folder = Path(folder)
        out = export_dir(folder)
        if not (out / "meta.json").is_file():
            try:
                export(folder, out)
            except ImportError as err:
                from affect_llm.extras import install_hint

                raise AffectError(f"exporting the sentence encoder to ONNX needs {err.name}: "
                                  f"{install_hint('retrieval')}") from None
        meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
        self.dim, self.fingerprint, self.normalize = int(meta["dim"]), str(meta["fingerprint"]), bool(meta["normalize"])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(out / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=int(meta["max_seq_length"]))
        self.tokenizer.no_padding()

    def encode(self, texts: list[str], *, batch_size: int = 32, progress: bool = False) -> Any:
        import numpy as np

        chunks = []
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), desc="embed", unit="text")
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            enc = self.tokenizer.encode_batch([texts[j] for j in idx])
            width = max(len(e.ids) for e in enc)
            ids = np.zeros((len(enc), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            types = np.zeros_like(ids)
            for r, e in enumerate(enc):
                ids[r, : len(e.ids)] = e.ids
                mask[r, : len(e.ids)] = 1
                types[r, : len(e.ids)] = e.type_ids
            hidden = self.session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask,
                                                              "token_type_ids": types})[0]
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
            if self.normalize:
                pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            chunks.append((idx, pooled))
            if bar:
                bar.update(len(idx))
        if bar:
            bar.close()
        result = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx, pooled in chunks:
            result[idx] = pooled
        return result
