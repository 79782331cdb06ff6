"""vLLM (V1) logits processor that applies the label model's prior while an answer writes its labels.

Loaded by the engine: `LLM(logits_processors=[LabelPriorLogitsProcessor])` in process, or
`--logits-processors affect_llm.backends.vllm_label_prior:LabelPriorLogitsProcessor` for the OpenAI-compatible
server. A request opts in with per-request arguments (`SamplingParams.extra_args`, `vllm_xargs` over HTTP)
made by `label_prior.prior_xargs`; requests without them decode untouched. vLLM applies the grammar mask
before custom processors and computes the returned log-probabilities from the raw logits, so the schema
still holds and the answer's token probabilities stay the LLM's own.
"""

from __future__ import annotations

from typing import Any

import torch
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

from affect_llm.backends.label_prior import TextLabelPrior, read_xargs

class LabelPriorLogitsProcessor(AdapterLogitsProcessor):
    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        super().__init__(vllm_config, device, is_pin_memory)
        from transformers import AutoTokenizer

        from affect_llm.backends.json_constraint import token_texts

        cfg = vllm_config.model_config
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.tokenizer)
        self.prior = TextLabelPrior(token_texts(self.tokenizer))

    def is_argmax_invariant(self) -> bool:
        return False  # it changes which label greedy decoding picks

    def new_req_logits_processor(self, params: Any):
        found = read_xargs(getattr(params, "extra_args", None))
        if found is None:
            return None
        prior, weight = found
        done = False

        def apply(output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
            nonlocal done
            if done:
                return logits
            text = self.tokenizer.decode(output_ids, skip_special_tokens=True)
            bias = self.prior.bias(text, prior, weight)
            if bias is None:
                # The labels come first: once their array has closed, nothing is left to bias.
                done = '"labels"' in text and self.prior.position(text) is None and "[" in text
                return logits
            ids = torch.tensor(list(bias), dtype=torch.long, device=logits.device)
            vals = torch.tensor(list(bias.values()), dtype=logits.dtype, device=logits.device)
            logits[ids] += vals
            return logits

        return apply
