# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""lm-evaluation-harness model for diffusion LMs: `--model sinkprune-dlm`.

Importing this module registers the model with lm-eval:

```python
>>> import lm_eval
>>> import optimum_sinkprune.evaluation.lm_eval_model  # registers "sinkprune-dlm"
>>> lm_eval.simple_evaluate(model="sinkprune-dlm", model_args="pretrained=path/to/model,mc_num=32", tasks=[...])
```

* `loglikelihood`: the ELBO of the continuation with the context unmasked (Monte-Carlo over t, LLaDA's own
  evaluation), `is_greedy` from the greedy sampler (one token per step);
* `loglikelihood_rolling`: disjoint windows of the model's length, each scored the same way;
* `generate_until`: the diffusion sampler, then the text cut at the first stop sequence.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn
from tqdm.auto import tqdm

from .metrics import EVAL_EXTRA_HINT
from .scoring import greedy_matches, score_continuation

try:
    import lm_eval.models  # noqa: F401  (fills lm-eval's lazy registry before we add to it)
    from lm_eval.api.model import LM
    from lm_eval.api.registry import register_model
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"the lm-evaluation-harness model needs the `lm-eval` package; {EVAL_EXTRA_HINT}") from err

logger = logging.getLogger(__name__)

MODEL_NAME = "sinkprune-dlm"


def split_context_continuation(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Tokenise like lm-eval's HF model: trailing spaces of the context move to the continuation, and the
    continuation's tokens are those of `context + continuation` after the context's tokens."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"] if context else []
    return list(whole[: len(ctx)]), list(whole[len(ctx) :])


def cut_at_stop_sequences(text: str, stops: list[str]) -> str:
    """`text` up to the earliest occurrence of any stop sequence."""
    cut = len(text)
    for stop in stops:
        if stop:
            i = text.find(stop)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]


@register_model(MODEL_NAME)
class SinkPruneDLM(LM):
    """A diffusion LM (LLaDA, Dream, MMaDA backbone, pruned or not) inside lm-evaluation-harness.

    Args:
        pretrained (`str`, *optional*): folder or Hub id to load (with its tokenizer) when `model` is not given.
        model (`nn.Module`, *optional*): an already loaded model (then `tokenizer` is required).
        tokenizer (*optional*): its tokenizer (loaded from `pretrained` otherwise).
        mc_num (`int`): Monte-Carlo samples per loglikelihood request.
        batch_size (`int`): samples per forward pass ("auto" is read as 16).
        seed (`int`): seed of the mask draws (the same for every request and every model).
        steps / gen_length / block_length (`int`): sampler settings for `generate_until` (`max_gen_toks` of a
            request overrides `gen_length`).
        max_length (`int`, *optional*): longest input; defaults to the model's.
        compute_greedy (`bool`): run the greedy check for `is_greedy` (costs one forward per continuation token).
        add_bos_token (`bool`): prepend the tokenizer's BOS to every input.
        device (`str`, *optional*): where to put a model loaded from `pretrained`.
        dtype (`str`, *optional*): torch dtype name for a model loaded from `pretrained`.
    """

    def __init__(
        self,
        pretrained: str | None = None,
        model: nn.Module | None = None,
        tokenizer=None,
        mc_num: int = 32,
        batch_size: int | str | None = 16,
        seed: int = 0,
        steps: int = 32,
        gen_length: int = 32,
        block_length: int | None = None,
        max_length: int | None = None,
        compute_greedy: bool = True,
        add_bos_token: bool = True,
        device: str | None = None,
        dtype: str | None = None,
        progress: bool = True,
        **unused,
    ):
        super().__init__()
        if unused:
            logger.warning("ignoring model arguments %s", sorted(unused))
        if model is None and pretrained is None:
            raise ValueError("give `pretrained` (a folder or Hub id) or `model` (a loaded model)")
        if model is not None and tokenizer is None:
            raise ValueError("`model` was given without `tokenizer`; pass both")
        if int(mc_num) < 1:
            raise ValueError(f"mc_num must be >= 1, got {mc_num}")
        if model is None:
            import optimum_sinkprune  # noqa: F401  (registers the Auto classes)
            from transformers import AutoModel, AutoTokenizer

            kwargs = {} if dtype is None else {"dtype": getattr(torch, dtype)}
            model = AutoModel.from_pretrained(pretrained, **kwargs)
            if device is not None:
                model = model.to(device)
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(pretrained)
        from ..adapters import get_adapter

        self.model = model.eval()
        self.tokenizer = tokenizer
        self.adapter = get_adapter(model)
        self.mask_token_id = self.adapter.mask_token_id(model, tokenizer)
        self.mc_num = int(mc_num)
        self.batch_size = 16 if batch_size in (None, "auto") or str(batch_size).startswith("auto") else int(batch_size)
        self.seed = int(seed)
        self.steps = int(steps)
        self.gen_length = int(gen_length)
        self.block_length = None if block_length is None else int(block_length)
        self.max_length = int(max_length or self.adapter.max_length(model))
        self.compute_greedy = bool(compute_greedy)
        self.progress = bool(progress)
        bos = getattr(tokenizer, "bos_token_id", None)
        if bos is None:
            bos = getattr(model.config, "bos_token_id", None)
        self.prefix = [int(bos)] if (add_bos_token and bos is not None) else []
        eos = getattr(tokenizer, "eos_token_id", None)
        self.eos_token_id = int(eos) if eos is not None else getattr(model.config, "eos_token_id", None)
        self._device = next(model.parameters()).device

    @property
    def tokenizer_name(self) -> str:
        return getattr(self.tokenizer, "name_or_path", type(self.tokenizer).__name__)

    # ---- helpers --------------------------------------------------------------------------------------------------
    def _fit(self, context: list[int], continuation: list[int]) -> tuple[list[int], list[int]]:
        """Left-truncate so that prefix + context + continuation fits `max_length` (the continuation is kept)."""
        room = self.max_length - len(self.prefix) - len(continuation)
        if room < 0:
            raise ValueError(
                f"a continuation of {len(continuation)} tokens does not fit max_length={self.max_length}"
            )
        context = context[len(context) - room :] if len(context) > room else context
        return self.prefix + context, continuation

    def _score(self, context: list[int], continuation: list[int]) -> tuple[float, bool]:
        context, continuation = self._fit(context, continuation)
        score = score_continuation(
            self.model, context, continuation, mc_num=self.mc_num, batch_size=self.batch_size, seed=self.seed,
            mask_token_id=self.mask_token_id,
        )
        greedy = False
        if self.compute_greedy:
            greedy = greedy_matches(self.model, context, continuation, mask_token_id=self.mask_token_id)
        return score.logprob, greedy

    # ---- the LM interface -----------------------------------------------------------------------------------------
    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        out = []
        for req in tqdm(requests, desc="loglikelihood (ELBO)", disable=disable_tqdm or not self.progress):
            context, continuation = req.args
            ctx, cont = split_context_continuation(self.tokenizer, context, continuation)
            if not cont:
                raise ValueError(f"empty continuation after tokenisation for request {req.args!r}")
            result = self._score(ctx, cont)
            self.cache_hook.add_partial("loglikelihood", req.args, result)
            out.append(result)
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        prefix_token = self.prefix[0] if self.prefix else self.eos_token_id
        if prefix_token is None:
            raise ValueError("loglikelihood_rolling needs a BOS or EOS token to condition the first window on")
        out = []
        for req in tqdm(requests, desc="loglikelihood_rolling", disable=disable_tqdm or not self.progress):
            (text,) = req.args
            tokens = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            total = 0.0
            windows = get_rolling_token_windows(tokens, prefix_token, self.max_length - 1, 1)
            for ctx, pred in map(make_disjoint_window, windows):
                # the window's context already starts with the prefix token (or is text from before the window)
                score = score_continuation(
                    self.model, ctx, pred, mc_num=self.mc_num, batch_size=self.batch_size, seed=self.seed,
                    mask_token_id=self.mask_token_id,
                )
                total += score.logprob
            self.cache_hook.add_partial("loglikelihood_rolling", (text,), total)
            out.append(total)
        return out

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        from ..diffusion import generate

        out = []
        for req in tqdm(requests, desc="generate_until (diffusion)", disable=disable_tqdm or not self.progress):
            context, gen_kwargs = req.args
            gen_kwargs = dict(gen_kwargs or {})
            until = gen_kwargs.pop("until", None) or []
            until = [until] if isinstance(until, str) else list(until)
            length = int(gen_kwargs.pop("max_gen_toks", self.gen_length))
            block = self.block_length or length
            length = block * math.ceil(length / block)  # the sampler needs whole blocks
            num_blocks = length // block
            steps = max(num_blocks, (min(self.steps, length) // num_blocks) * num_blocks)
            ctx = self.tokenizer(context, add_special_tokens=False)["input_ids"] if context else []
            ctx, _ = self._fit(ctx, [0] * length)
            prompt = torch.tensor([ctx], dtype=torch.long, device=self._device)
            seq = generate(
                self.model, prompt, steps=steps, gen_length=length, block_length=block,
                mask_token_id=self.mask_token_id,
            ).sequences[0, len(ctx) :].tolist()
            if self.eos_token_id is not None and self.eos_token_id in seq:
                seq = seq[: seq.index(self.eos_token_id)]
            text = cut_at_stop_sequences(self.tokenizer.decode(seq, skip_special_tokens=True), until)
            self.cache_hook.add_partial("generate_until", (context, req.args[1]), text)
            out.append(text)
        return out
