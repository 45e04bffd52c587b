# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""lm-evaluation-harness model for diffusion LMs: `--model sinkprune-dlm`.

Importing this module registers the model with lm-eval:

```python
>>> import lm_eval
>>> import optimum_sinkprune.evaluation.lm_eval_model  # registers "sinkprune-dlm"
>>> lm_eval.simple_evaluate(model="sinkprune-dlm", model_args="pretrained=path/to/model,paper_task=arc_challenge",
...                         tasks=["arc_challenge"], num_fewshot=0)
```

* `loglikelihood`: the ELBO of the continuation with the context unmasked, by default with the family's official
  estimator (LLaDA's exact-count stratified masking with classifier-free guidance, or Dream's; `estimator=bernoulli`
  for ours), `is_greedy` from the greedy check (one token revealed per step, guided like the scores);
* `loglikelihood_rolling`: disjoint windows of the model's length, each scored by our Bernoulli estimator (the
  official evaluations have none);
* `generate_until`: the diffusion sampler, then the text cut at the first stop sequence.
"""

from __future__ import annotations

import logging
import math
from types import MappingProxyType

import torch
from torch import nn
from tqdm.auto import tqdm

from ..diffusion.likelihood import check_cfg_scale, official_continuation_loglikelihood
from ..offload import input_device
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


ESTIMATORS = ("official", "bernoulli")
# defaults of the official estimators when model_args leave them out: LLaDA's eval_llada.py / Dream's eval.py
_OFFICIAL_DEFAULTS = MappingProxyType({
    "llada": MappingProxyType({"mc_num": 128, "batch_size": 32, "is_check_greedy": True}),
    "dream": MappingProxyType({"mc_num": 128, "batch_size": 32, "is_check_greedy": False}),
})  # fmt: skip
_BERNOULLI_DEFAULTS = MappingProxyType({"mc_num": 32, "batch_size": 16, "is_check_greedy": True})


def _positive_int(name: str, value, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}") from None
    if number < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return number


def _flag(name: str, value) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{name} must be true or false, got {value!r}")


def _pick(name: str, value, alias_name: str, alias_value):
    """`value`, or `alias_value` given under the other spelling (both given and different is an error)."""
    if alias_value is None:
        return value
    if value is not None and value != alias_value:
        raise ValueError(f"{name}={value!r} and its alias {alias_name}={alias_value!r} disagree; give one")
    return alias_value


@register_model(MODEL_NAME)
class SinkPruneDLM(LM):
    """A diffusion LM (LLaDA, Dream, MMaDA backbone, pruned or not) inside lm-evaluation-harness.

    By default `loglikelihood` uses the family's official estimator, chosen by the model's adapter: LLaDA's (also
    for MMaDA) masks an exact, stratified number of answer tokens per draw, with optional classifier-free guidance;
    Dream's draws stratified times with Bernoulli masks and appends EOS (see
    `optimum_sinkprune.diffusion.official_continuation_loglikelihood`). `estimator=bernoulli` selects ours
    (independent t ~ U(0, 1] per draw, Bernoulli masks).

    Args:
        pretrained (`str`, *optional*): folder or Hub id to load (with its tokenizer) when `model` is not given.
        model (`nn.Module`, *optional*): an already loaded model (then `tokenizer` is required).
        tokenizer (*optional*): its tokenizer (loaded from `pretrained` otherwise).
        estimator (`str`, *optional*): "official" (default) or "bernoulli".
        mc_num (`int`, *optional*): Monte-Carlo draws per loglikelihood request (official: 128; bernoulli: 32).
        batch_size (`int`, *optional*): draws per forward pass ("auto" reads as the default). The official LLaDA
            estimator stratifies over a batch and needs `mc_num` to be a multiple of it; left out, it is
            gcd(mc_num, 32). Bernoulli default: 16.
        cfg_scale (`float`): classifier-free guidance scale, >= 0 (0: none); also for `generate_until` and the
            greedy check. `cfg` is accepted as the official spelling.
        is_check_greedy (`bool`, *optional*): run the greedy check for `is_greedy` (one forward per continuation
            token); defaults to True, False for Dream's protocol (its evaluation has none). `compute_greedy` is
            accepted as an alias.
        paper_task (`str`, *optional*): apply the paper's settings of this lm-eval task
            (`optimum_sinkprune.evaluation.paper_tasks`); explicit arguments override them.
        seed (`int`): seed of the mask draws (the same for every request and every model).
        steps / gen_length / block_length (`int`): sampler settings for `generate_until`.
        use_max_gen_toks (`bool`): a request's `max_gen_toks` overrides `gen_length` (the official LLaDA
            evaluation always generates `gen_length` tokens: False).
        max_length (`int`, *optional*): longest input; defaults to the model's.
        add_bos_token (`bool`): prepend the tokenizer's BOS to every input; for a family that frames its inputs
            (BERT family), frame every input [CLS] … [SEP] instead (`calibration.data.input_framing`). False: neither.
        device (`str`, *optional*): where to put a model loaded from `pretrained`.
        dtype (`str`, *optional*): torch dtype name for a model loaded from `pretrained`.
        progress (`bool`): show tqdm bars.

    Raises:
        ValueError: for an unknown estimator, mc_num / batch_size / steps / gen_length / block_length / max_length
            < 1, a negative or non-finite cfg_scale, mc_num not a multiple of batch_size (official LLaDA), an unknown
            paper task (the message lists the tasks with settings), or a missing model / tokenizer; all raised
            before a model is loaded, except those that depend on the model's family.
    """

    def __init__(
        self,
        pretrained: str | None = None,
        model: nn.Module | None = None,
        tokenizer=None,
        estimator: str | None = None,
        mc_num: int | None = None,
        batch_size: int | str | None = None,
        cfg_scale: float | None = None,
        cfg: float | None = None,
        is_check_greedy: bool | None = None,
        compute_greedy: bool | None = None,
        paper_task: str | None = None,
        seed: int = 0,
        steps: int | None = None,
        gen_length: int | None = None,
        block_length: int | None = None,
        use_max_gen_toks: bool | None = None,
        max_length: int | None = None,
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
        # checks that do not depend on the model come first, so a typo fails before any loading
        explicit = {
            "estimator": estimator,
            "mc_num": _positive_int("mc_num", mc_num, allow_none=True),
            "batch_size": None
            if batch_size is None or str(batch_size).startswith("auto")
            else _positive_int("batch_size", batch_size),
            "cfg_scale": _pick("cfg_scale", cfg_scale, "cfg", cfg),
            "is_check_greedy": _pick(
                "is_check_greedy", _flag("is_check_greedy", is_check_greedy),
                "compute_greedy", _flag("compute_greedy", compute_greedy),
            ),  # fmt: skip
            "steps": _positive_int("steps", steps, allow_none=True),
            "gen_length": _positive_int("gen_length", gen_length, allow_none=True),
            "block_length": _positive_int("block_length", block_length, allow_none=True),
            "use_max_gen_toks": _flag("use_max_gen_toks", use_max_gen_toks),
        }
        if estimator is not None and estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
        if explicit["cfg_scale"] is not None:
            check_cfg_scale(explicit["cfg_scale"])
        max_length = _positive_int("max_length", max_length, allow_none=True)
        seed = int(seed)
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
        self.protocol = getattr(self.adapter, "likelihood_protocol", "llada")
        settings = self._resolve(explicit, paper_task)
        self.estimator = settings["estimator"]
        self.mc_num = settings["mc_num"]
        self.batch_size = settings["batch_size"]
        self.cfg_scale = float(settings["cfg_scale"])
        self.is_check_greedy = settings["is_check_greedy"]
        self.steps = settings["steps"]
        self.gen_length = settings["gen_length"]
        self.block_length = settings["block_length"]
        self.use_max_gen_toks = settings["use_max_gen_toks"]
        self.paper_task = paper_task
        self.mask_token_id = self.adapter.mask_token_id(model, tokenizer)
        self.seed = seed
        self.max_length = int(max_length or self.adapter.max_length(model))
        self.progress = bool(progress)
        bos = getattr(tokenizer, "bos_token_id", None)
        if bos is None:
            bos = getattr(model.config, "bos_token_id", None)
        from ..calibration.data import input_framing

        # the inputs' framing, as everywhere text becomes model input: BOS first, or the family's [CLS] … [SEP]
        self.prefix, self.closing = input_framing(model, tokenizer, bos_token_id=bos) if add_bos_token else ([], [])
        eos = getattr(tokenizer, "eos_token_id", None)
        self.eos_token_id = int(eos) if eos is not None else getattr(model.config, "eos_token_id", None)
        # Dream's evaluation appends EOS to every continuation (kept clean, not scored)
        append_eos = self.estimator == "official" and self.protocol == "dream" and self.eos_token_id is not None
        self.suffix = ([int(self.eos_token_id)] if append_eos else []) + list(self.closing)
        self._device = input_device(model)

    @property
    def compute_greedy(self) -> bool:
        """Alias of `is_check_greedy`."""
        return self.is_check_greedy

    def _resolve(self, explicit: dict, paper_task: str | None) -> dict:
        """Explicit arguments over the paper task's settings over the estimator's defaults; checks the result."""
        from .paper_tasks import paper_task_settings

        paper = {}
        if paper_task is not None:
            paper = dict(paper_task_settings(paper_task, self.protocol).model_args)
        given = {k: v for k, v in explicit.items() if v is not None}
        merged = {**paper, **given}
        estimator = merged.get("estimator", "official")
        if estimator == "official":
            defaults = dict(_OFFICIAL_DEFAULTS.get(self.protocol, _OFFICIAL_DEFAULTS["llada"]))
        else:
            defaults = dict(_BERNOULLI_DEFAULTS)
        mc_num = merged.get("mc_num", defaults["mc_num"])
        if "batch_size" in merged:
            batch_size = merged["batch_size"]
        elif estimator == "official" and self.protocol == "llada":
            batch_size = math.gcd(mc_num, defaults["batch_size"])
        else:
            batch_size = defaults["batch_size"]
        if estimator == "official" and self.protocol == "llada" and mc_num % batch_size:
            raise ValueError(
                f"mc_num={mc_num} must be a multiple of batch_size={batch_size} for LLaDA's estimator "
                "(each batch is one stratified set of draws)"
            )
        cfg_scale = merged.get("cfg_scale", 0.0)
        check_cfg_scale(cfg_scale)
        return {
            "estimator": estimator,
            "mc_num": mc_num,
            "batch_size": batch_size,
            "cfg_scale": cfg_scale,
            "is_check_greedy": merged.get("is_check_greedy", defaults["is_check_greedy"]),
            "steps": merged.get("steps", 32),
            "gen_length": merged.get("gen_length", 32),
            "block_length": merged.get("block_length"),
            "use_max_gen_toks": merged.get("use_max_gen_toks", True),
        }

    @property
    def tokenizer_name(self) -> str:
        return getattr(self.tokenizer, "name_or_path", type(self.tokenizer).__name__)

    # ---- helpers --------------------------------------------------------------------------------------------------
    def _fit(self, context: list[int], continuation: list[int]) -> tuple[list[int], list[int]]:
        """Left-truncate so that prefix + context + continuation fits `max_length` (the continuation is kept)."""
        room = self.max_length - len(self.prefix) - len(continuation) - len(self.suffix)
        if room < 0:
            raise ValueError(
                f"a continuation of {len(continuation)} tokens does not fit max_length={self.max_length}"
            )
        context = context[len(context) - room :] if len(context) > room else context
        return self.prefix + context, continuation

    def _score(self, context: list[int], continuation: list[int]) -> tuple[float, bool]:
        context, continuation = self._fit(context, continuation)
        if self.estimator == "official":
            logprob = official_continuation_loglikelihood(
                self.model, context, continuation, protocol=self.protocol, mc_num=self.mc_num,
                batch_size=self.batch_size, cfg_scale=self.cfg_scale, seed=self.seed, suffix_ids=self.suffix,
                mask_token_id=self.mask_token_id,
            ).logprob  # fmt: skip
        else:
            logprob = score_continuation(
                self.model, context, continuation, mc_num=self.mc_num, batch_size=self.batch_size, seed=self.seed,
                mask_token_id=self.mask_token_id, cfg_scale=self.cfg_scale, suffix_ids=self.suffix,
            ).logprob  # fmt: skip
        greedy = False
        if self.is_check_greedy:
            greedy = greedy_matches(
                self.model, context, continuation, mask_token_id=self.mask_token_id, cfg_scale=self.cfg_scale,
                tokenizer=self.tokenizer,
            )
        return logprob, greedy

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
            # a family that frames its inputs ([CLS] … [SEP]) frames every window, the later ones too
            width = self.max_length - 1 - (len(self.prefix) + len(self.closing) if self.closing else 0)
            windows = get_rolling_token_windows(tokens, prefix_token, width, 1)
            for ctx, pred in map(make_disjoint_window, windows):
                # the window's context already starts with the prefix token (or is text from before the window)
                if self.closing and list(ctx[: len(self.prefix)]) != self.prefix:
                    ctx = self.prefix + list(ctx)
                score = score_continuation(
                    self.model, ctx, pred, mc_num=self.mc_num, batch_size=self.batch_size, seed=self.seed,
                    mask_token_id=self.mask_token_id, suffix_ids=self.closing,
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
            max_gen_toks = gen_kwargs.pop("max_gen_toks", None)
            length = int(max_gen_toks) if (self.use_max_gen_toks and max_gen_toks is not None) else self.gen_length
            block = self.block_length or length
            length = block * math.ceil(length / block)  # the sampler needs whole blocks
            num_blocks = length // block
            steps = max(num_blocks, (min(self.steps, length) // num_blocks) * num_blocks)
            ctx = self.tokenizer(context, add_special_tokens=False)["input_ids"] if context else []
            ctx, _ = self._fit(ctx, [0] * length)
            prompt = torch.tensor([ctx], dtype=torch.long, device=self._device)
            seq = generate(
                self.model, prompt, steps=steps, gen_length=length, block_length=block,
                mask_token_id=self.mask_token_id, cfg_scale=self.cfg_scale, tokenizer=self.tokenizer,
            ).sequences[0, len(ctx) :].tolist()
            if self.eos_token_id is not None and self.eos_token_id in seq:
                seq = seq[: seq.index(self.eos_token_id)]
            text = cut_at_stop_sequences(self.tokenizer.decode(seq, skip_special_tokens=True), until)
            self.cache_hook.add_partial("generate_until", (context, req.args[1]), text)
            out.append(text)
        return out
