"""The part of a transformers fast tokenizer that the llama.cpp backend uses, on `tokenizers` + jinja2.

Why: `from transformers import PreTrainedTokenizerFast` costs ~2 s of a cold `affect-llm explain` (its
package import checks every dependency's version), and the llama.cpp backend needs nothing of
transformers but the tokenizer. This class reads the same files (`tokenizer.json`, `tokenizer_config.json`,
`chat_template.jinja`) and renders the chat template the way transformers does (a sandboxed jinja2
environment with `trim_blocks` and `lstrip_blocks`). `tests/test_chat_tokenizer.py` checks it against
transformers on the prompts, every token's text and the chat template.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from affect_llm.errors import AffectError


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):  # {"content": "<|im_end|>", ...}
        value = value.get("content")
    return value if isinstance(value, str) else None


class ChatTokenizer:
    def __init__(self, folder: str | Path) -> None:
        from tokenizers import Tokenizer

        folder = Path(folder)
        try:
            self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
            config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        except Exception as err:  # noqa: BLE001 - OSError, bad JSON, or tokenizers' own Exception subclass
            raise AffectError(f"cannot read the tokenizer in {folder}: {err}") from None
        self._tok.no_padding()
        self._tok.no_truncation()
        template_file = folder / "chat_template.jinja"
        template = template_file.read_text(encoding="utf-8") if template_file.is_file() else config.get("chat_template")
        if not isinstance(template, str):
            raise AffectError(f"the tokenizer in {folder} has no (single) chat template")
        self.chat_template = template
        self._template = None
        for name in ("bos", "eos", "pad", "unk"):
            text = _token_text(config.get(f"{name}_token"))
            setattr(self, f"{name}_token", text)
            setattr(self, f"{name}_token_id", self._tok.token_to_id(text) if text is not None else None)
        # As transformers: the named special tokens and the listed extra ones (not every added token).
        extra = config.get("additional_special_tokens") or config.get("extra_special_tokens") or []
        names = [getattr(self, f"{n}_token") for n in ("bos", "eos", "unk", "pad")] + [_token_text(t) for t in extra]
        self.all_special_ids = sorted({self._tok.token_to_id(t) for t in names if t} - {None})

    # -- the transformers surface we use ------------------------------------------------------------
    def __len__(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self._tok.get_vocab(with_added_tokens=True)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self._tok.encode(text, add_special_tokens=add_special_tokens).ids

    def __call__(self, text: str | list[str], add_special_tokens: bool = False) -> dict[str, Any]:
        if isinstance(text, str):
            return {"input_ids": self.encode(text, add_special_tokens)}
        return {"input_ids": [e.ids for e in self._tok.encode_batch(text, add_special_tokens=add_special_tokens)]}

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def batch_decode(self, seqs: list[list[int]], skip_special_tokens: bool = False) -> list[str]:
        return self._tok.decode_batch([list(s) for s in seqs], skip_special_tokens=skip_special_tokens)

    def apply_chat_template(self, messages: list[dict[str, Any]], tokenize: bool = False,
                            add_generation_prompt: bool = True) -> str | list[int]:
        if self._template is None:
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            def raise_exception(message: str) -> None:
                raise AffectError(f"chat template: {message}")

            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
            env.globals["raise_exception"] = raise_exception
            self._template = env.from_string(self.chat_template)
        text = self._template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                     bos_token=self.bos_token, eos_token=self.eos_token)
        return self.encode(text) if tokenize else text
