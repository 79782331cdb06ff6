"""Fine-tune the label model's sentence encoder on a labelled corpus (optional step of the label-model recipe).

Why: a linear head over *frozen* MiniLM vectors is the label model's ceiling (MELD dev weighted F1 0.553 with
TF-IDF); a few epochs of the 22M-parameter encoder on the corpus's own labels move its vectors towards the
emotions the corpus tells apart. The encoder is trained as it is used: mean pooling over real tokens, then
a linear layer over the labels (cross-entropy), with transformers' `Trainer`. The result is saved as a
sentence-transformers folder (the base folder's tokenizer, pooling and normalisation, the new weights), so
the label model embeds with it exactly as with the bundled MiniLM, on ONNX Runtime at run time.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from affect_llm.errors import AffectError

BASE_FILE = "encoder_base.json"  # beside LoRA adapters: which encoder they adapt (an asset name or a folder)


def _copy_sentence_folder(base: Path, out: Path) -> None:
    """The base folder's tokenizer, pooling and normalisation files, without its weights."""
    shutil.copytree(base, out, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.onnx", "onnx",
                                                             "openvino", ".affect_llm_asset.json"))


def encoder_folder(folder: str | Path) -> Path:
    """A sentence-transformers folder to embed with: `folder` itself, or for LoRA adapters the base encoder
    with them merged in, written once to the cache (needs torch and PEFT the first time)."""
    folder = Path(folder)
    if not (folder / BASE_FILE).is_file():
        return folder
    import hashlib

    from affect_llm.assets import cache_dir
    from affect_llm.fileio import replace_dir
    from affect_llm.retrieval import resolve_embedder

    base_name = json.loads((folder / BASE_FILE).read_text(encoding="utf-8"))["base"]
    base = Path(resolve_embedder(base_name)[1])
    h = hashlib.sha256(base_name.encode())
    for f in sorted(folder.iterdir()):
        if f.is_file():
            h.update(f.name.encode() + f.read_bytes())
    out = cache_dir() / "merged" / f"encoder-{h.hexdigest()[:20]}"
    if (out / "model.safetensors").is_file():
        return out
    try:
        from peft import PeftModel
        from transformers import AutoModel
    except ImportError as err:
        from affect_llm.extras import install_hint

        raise AffectError(f"merging the label model's encoder adapters needs {err.name} (once): "
                          f"{install_hint('retrieval')}") from None
    import tempfile

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a weight-loading bar is noise before a one-line CLI answer
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".encoder-", dir=out.parent) as tmp:
        staged = Path(tmp) / "merged"
        _copy_sentence_folder(base, staged)
        try:
            model = PeftModel.from_pretrained(AutoModel.from_pretrained(str(base)), str(folder)).merge_and_unload()
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            raise AffectError(f"the encoder adapters in {folder} are damaged: {str(err).splitlines()[0]}") from None
        model.save_pretrained(str(staged), safe_serialization=True)
        replace_dir(staged, out)
    return out


def finetune_encoder(
    base_folder: str | Path,
    texts: Sequence[str],
    labels: Sequence[int],
    weights: Sequence[float],
    n_labels: int,
    out_dir: str | Path,
    *,
    epochs: float = 2.0,
    learning_rate: float | None = None,
    batch_size: int = 32,
    max_length: int = 64,
    seed: int = 0,
    lora_rank: int = 0,
    base_name: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train `base_folder`'s transformer (mean-pooled, + a linear head) on (text, label, weight) rows.

    `lora_rank` 0: all weights train and `out_dir` is a whole sentence-transformers folder (90 MB for MiniLM).
    > 0: low-rank adapters (PEFT LoRA on every linear layer) train and `out_dir` holds only them (~1 MB, small
    enough to ship as package data) plus `base_name`; `encoder_folder` merges them at first use.
    `learning_rate` defaults to 5e-5 for all weights and 5e-4 for LoRA adapters. Returns what the run card
    records."""
    import torch
    from torch import nn
    from transformers import AutoModel, AutoTokenizer, Trainer, TrainingArguments, set_seed
    from transformers.utils import logging as hf_logging

    from affect_llm.fileio import replace_dir

    base = Path(base_folder)
    if not (base / "modules.json").is_file():
        raise AffectError(f"encoder fine-tuning needs a sentence-transformers folder; {base} has no modules.json")
    if not texts:
        raise AffectError("encoder fine-tuning got no training texts")
    if learning_rate is None:
        learning_rate = 5e-4 if lora_rank > 0 else 5e-5
    start = time.perf_counter()
    set_seed(seed)
    hf_logging.disable_progress_bar()
    tok = AutoTokenizer.from_pretrained(str(base))
    encoder = AutoModel.from_pretrained(str(base))
    if lora_rank > 0:
        from peft import LoraConfig, get_peft_model

        encoder = get_peft_model(encoder, LoraConfig(r=lora_rank, lora_alpha=2 * lora_rank, lora_dropout=0.05,
                                                     target_modules=["query", "key", "value", "dense"]))

    class MeanPoolClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.head = nn.Linear(encoder.config.hidden_size, n_labels)

        def forward(self, input_ids, attention_mask, labels=None, weights=None, **_: Any) -> dict[str, Any]:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            # The label model L2-normalises its vectors: train the head on the same unit sphere (scaled, so
            # the logits can be sharp).
            logits = self.head(20.0 * nn.functional.normalize(pooled, dim=-1))
            out: dict[str, Any] = {"logits": logits}
            if labels is not None:
                loss = nn.functional.cross_entropy(logits, labels, reduction="none")
                out["loss"] = (loss * weights).sum() / weights.sum()
            return out

    enc = tok(list(texts), truncation=True, max_length=max_length)
    rows = [{"input_ids": ids, "attention_mask": am, "labels": int(y), "weights": float(w)}
            for ids, am, y, w in zip(enc["input_ids"], enc["attention_mask"], labels, weights)]

    def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        padded = tok.pad([{"input_ids": b["input_ids"], "attention_mask": b["attention_mask"]} for b in batch],
                         return_tensors="pt")
        padded["labels"] = torch.tensor([b["labels"] for b in batch])
        padded["weights"] = torch.tensor([b["weights"] for b in batch], dtype=torch.float32)
        return padded

    import tempfile

    with tempfile.TemporaryDirectory(prefix="affect-encoder-") as tmp:
        args = TrainingArguments(
            # warmup_steps < 1 is a share of the steps
            output_dir=tmp, num_train_epochs=epochs, learning_rate=learning_rate, warmup_steps=0.06,
            per_device_train_batch_size=batch_size, weight_decay=0.01, lr_scheduler_type="linear",
            logging_steps=50, save_strategy="no", report_to=[], use_cpu=not torch.cuda.is_available(),
            seed=seed, disable_tqdm=not progress, remove_unused_columns=False, dataloader_num_workers=0,
        )
        trainer = Trainer(model=MeanPoolClassifier(), args=args, train_dataset=rows, data_collator=collate)
        result = trainer.train()

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".encoder-", dir=out.parent) as tmp:
        staged = Path(tmp) / "encoder"
        if lora_rank > 0:
            encoder.save_pretrained(str(staged))
            (staged / "README.md").unlink(missing_ok=True)  # PEFT's blank model card
            cfg_path = staged / "adapter_config.json"  # PEFT records the training machine's folder: name it instead
            cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
            cfg["base_model_name_or_path"] = base_name or base.name
            cfg_path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
            (staged / BASE_FILE).write_text(json.dumps({"base": base_name or str(base)}), encoding="utf-8")
        else:
            _copy_sentence_folder(base, staged)  # the base's tokenizer, pooling and normalisation
            encoder.save_pretrained(str(staged), safe_serialization=True)
        replace_dir(staged, out)
    return {"base": base_name or str(base), "lora_rank": lora_rank, "epochs": epochs, "learning_rate": learning_rate,
            "batch_size": batch_size, "max_length": max_length, "rows": len(rows), "train_loss": round(float(result.training_loss), 4),
            "seconds": round(time.perf_counter() - start, 1)}
