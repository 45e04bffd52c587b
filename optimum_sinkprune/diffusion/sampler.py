# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""LLaDA's diffusion sampler: semi-autoregressive blocks, low-confidence (or random) remasking, Gumbel temperature,
optional classifier-free guidance, and an optional recorded trajectory.

Families that frame their inputs (`adapter.sequence_framing`; BERT family: [CLS] … [SEP]) see the canvas framed as
in training: [CLS] opens it (added when the prompt does not begin with it) and [SEP] closes it after the generated
tokens; both stay clean, and the returned sequences leave out what the sampler added unless asked."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from ..offload import input_device

logger = logging.getLogger(__name__)

REMASKING_STRATEGIES = ("low_confidence", "random")


@dataclass
class GenerationOutput:
    """Result of `generate`.

    Attributes:
        sequences: [batch, prompt_len + gen_length] final canvas (prompt included); with `keep_framing`, also the
            framing tokens the sampler added (an opening [CLS] the prompt lacked, the closing [SEP]).
        trajectory: canvases after every step (each as wide as `sequences`), with the all-mask canvas first, when
            asked.
        steps_taken: denoising steps actually run.
        attention_mask: [batch, width of `sequences`] padding mask of `sequences` (None when no `attention_mask`
            was given).
    """

    sequences: torch.LongTensor
    trajectory: list[torch.LongTensor] = field(default_factory=list)
    steps_taken: int = 0
    attention_mask: torch.Tensor | None = None


def add_gumbel_noise(logits: torch.Tensor, temperature: float, generator: torch.Generator | None = None):
    """Gumbel-max sampling in LLaDA's form (float64: low precision Gumbel noise degrades quality)."""
    if temperature == 0:
        return logits
    logits = logits.to(torch.float64)
    noise = torch.rand(logits.shape, dtype=torch.float64, device=logits.device, generator=generator)
    gumbel = (-torch.log(noise)) ** temperature
    return logits.exp() / gumbel


def num_transfer_tokens(mask_index: torch.BoolTensor, steps: int) -> torch.LongTensor:
    """How many masked tokens to reveal at each of `steps` steps so that a block ends fully revealed: [batch, steps]."""
    mask_num = mask_index.sum(dim=1, keepdim=True)
    base = mask_num // steps
    remainder = mask_num % steps
    out = base.expand(-1, steps).clone()
    cols = torch.arange(steps, device=mask_index.device)[None]
    out += (cols < remainder).long()
    return out


def first_valid_positions(prompt: torch.Tensor, attention_mask: torch.Tensor | None) -> list[int]:
    """Per row, the first position of a left-padded prompt batch that holds a token (the prompt width for a row of
    padding only; 0 for every row without a mask). Pure."""
    if attention_mask is None:
        return [0] * prompt.shape[0]
    width = prompt.shape[1]
    return [int(row.nonzero()[0]) if bool(row.any()) else width for row in attention_mask.ne(0).cpu()]


def open_prompt(
    prompt: torch.LongTensor, attention_mask: torch.Tensor | None, opening: list[int]
) -> tuple[torch.LongTensor, torch.Tensor | None, bool]:
    """`prompt` with the `opening` ids before each row's first token (after its left padding), unless every row
    already begins with them. Pure.

    Returns:
        `(prompt, attention_mask, added)`: the (possibly wider) prompt and mask, and whether `opening` was added.

    Raises:
        `ValueError`: some rows begin with `opening` and others do not.
    """
    k = len(opening)
    if not k:
        return prompt, attention_mask, False
    first = first_valid_positions(prompt, attention_mask)
    head = torch.tensor(opening, dtype=prompt.dtype, device=prompt.device)
    opened = [f + k <= prompt.shape[1] and torch.equal(row[f:f + k], head) for row, f in zip(prompt, first)]
    if all(opened):
        return prompt, attention_mask, False
    if any(opened):
        raise ValueError(
            f"prompt rows {[i for i, o in enumerate(opened) if o]} begin with the framing ids {opening} and rows "
            f"{[i for i, o in enumerate(opened) if not o]} do not; give all rows with them or none"
        )
    prompt = torch.stack([torch.cat([row[:f], head, row[f:]]) for row, f in zip(prompt, first)])
    if attention_mask is not None:
        ones = torch.ones(k, dtype=attention_mask.dtype, device=attention_mask.device)
        attention_mask = torch.stack([torch.cat([row[:f], ones, row[f:]]) for row, f in zip(attention_mask, first)])
    return prompt, attention_mask, True


def _validate(steps: int, gen_length: int, block_length: int, temperature: float, cfg_scale: float, remasking: str):
    if gen_length <= 0:
        raise ValueError(f"gen_length must be > 0, got {gen_length}")
    if block_length <= 0 or gen_length % block_length != 0:
        raise ValueError(f"block_length={block_length} must be > 0 and divide gen_length={gen_length}")
    num_blocks = gen_length // block_length
    if steps <= 0 or steps % num_blocks != 0:
        raise ValueError(
            f"steps={steps} must be a positive multiple of the number of blocks ({num_blocks} = gen_length "
            f"{gen_length} / block_length {block_length})"
        )
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if cfg_scale < 0:
        raise ValueError(f"cfg_scale must be >= 0, got {cfg_scale}")
    if remasking not in REMASKING_STRATEGIES:
        raise ValueError(f"remasking={remasking!r} is not one of {REMASKING_STRATEGIES}")


@torch.no_grad()
def generate(
    model: nn.Module,
    prompt: torch.LongTensor,
    *,
    steps: int = 64,
    gen_length: int = 64,
    block_length: int = 32,
    temperature: float = 0.0,
    cfg_scale: float = 0.0,
    remasking: str = "low_confidence",
    mask_token_id: int | None = None,
    attention_mask: torch.Tensor | None = None,
    return_trajectory: bool = False,
    generator: torch.Generator | None = None,
    progress: bool = False,
    tokenizer=None,
    keep_framing: bool = False,
) -> GenerationOutput:
    """Generate `gen_length` tokens after `prompt` by iterative unmasking (LLaDA's sampler).

    Args:
        model: a supported DLM (LLaDA, Dream, ...); Dream's logit shift is applied through its adapter.
        prompt: [batch, prompt_len] token ids (may be empty along seq).
        steps: total denoising steps, split evenly over `gen_length // block_length` blocks.
        gen_length: number of tokens to generate.
        block_length: semi-autoregressive block size (== gen_length for fully parallel decoding).
        temperature: Gumbel noise temperature (0 = greedy).
        cfg_scale: classifier-free guidance scale (0 disables; the unconditional pass masks the prompt).
        remasking: "low_confidence" (reveal the most confident predictions) or "random".
        mask_token_id: defaults to the adapter's mask token (config, then `tokenizer`, then error).
        attention_mask: optional [batch, prompt_len] padding mask for a left-padded prompt batch.
        return_trajectory: keep the canvas after every step (the sink analysis uses it).
        generator: random generator for temperature > 0 / random remasking.
        progress: show a tqdm bar over steps.
        tokenizer: the model's tokenizer, asked for the mask token and the framing ids the config does not name.
        keep_framing: return the canvas as the model saw it, with the framing tokens the sampler added (an opening
            [CLS] the prompt lacked, the closing [SEP]); by default they are left out, so `sequences` is the prompt
            and the generated tokens. Families without framing (LLaDA, Dream, ...) add nothing either way.

    Returns:
        `GenerationOutput`.

    Raises:
        `ValueError`: a bad argument, a canvas longer than the model's maximum length, or a framing family whose
            [CLS] / [SEP] ids neither the config nor `tokenizer` names.
    """
    from ..adapters import get_adapter

    adapter = get_adapter(model)
    _validate(steps, gen_length, block_length, temperature, cfg_scale, remasking)
    if not isinstance(keep_framing, bool):
        raise ValueError(f"keep_framing must be True or False, got {keep_framing!r}")
    if mask_token_id is None:
        mask_token_id = adapter.mask_token_id(model, tokenizer)
    if prompt.dim() != 2:
        raise ValueError(f"prompt must be [batch, prompt_len], got shape {tuple(prompt.shape)}")
    if attention_mask is not None and tuple(attention_mask.shape) != tuple(prompt.shape):
        raise ValueError(f"attention_mask must have the prompt's shape {tuple(prompt.shape)}, got "
                         f"{tuple(attention_mask.shape)}")
    framing = adapter.sequence_framing(model, tokenizer)
    opening, closing = ([], []) if framing is None else (list(framing[0]), list(framing[1]))
    device = input_device(model)
    prompt = prompt.to(device)
    attention_mask = None if attention_mask is None else attention_mask.to(device)
    prompt, attention_mask, opened = open_prompt(prompt, attention_mask, opening)
    batch, prompt_len = prompt.shape
    total = prompt_len + gen_length + len(closing)
    if total > adapter.max_length(model):
        framed = f" + {len(closing)} closing framing token(s)" if closing else ""
        raise ValueError(
            f"prompt_len + gen_length{framed} = {total} exceeds the model's maximum sequence length "
            f"{adapter.max_length(model)}"
        )
    x = torch.full((batch, total), mask_token_id, dtype=torch.long, device=device)
    x[:, :prompt_len] = prompt
    if closing:
        x[:, prompt_len + gen_length:] = torch.tensor(closing, dtype=torch.long, device=device)
    full_mask = None
    if attention_mask is not None:
        full_mask = torch.cat([attention_mask, torch.ones(batch, total - prompt_len, dtype=attention_mask.dtype,
                                                          device=device)], 1)
    prompt_index = torch.zeros_like(x, dtype=torch.bool)
    prompt_index[:, :prompt_len] = True
    first = first_valid_positions(prompt, attention_mask) if opening else []
    for row, f in enumerate(first):  # the framing stays clean in the unconditional pass too
        prompt_index[row, f:f + len(opening)] = False
    num_blocks = gen_length // block_length
    steps_per_block = steps // num_blocks
    trajectory = [x.clone().cpu()] if return_trajectory else []
    bar = tqdm(total=steps, desc="diffusion sampling", disable=not progress)
    taken = 0
    for b in range(num_blocks):
        start, end = prompt_len + b * block_length, prompt_len + (b + 1) * block_length
        transfer = num_transfer_tokens(x[:, start:end] == mask_token_id, steps_per_block)
        for i in range(steps_per_block):
            mask_index = x == mask_token_id
            if cfg_scale > 0:
                un_x = x.clone()
                un_x[prompt_index] = mask_token_id
                both_mask = None if full_mask is None else torch.cat([full_mask, full_mask])
                logits = adapter.logits(model, torch.cat([x, un_x]), both_mask)
                cond, uncond = logits.chunk(2)
                logits = uncond + (cfg_scale + 1) * (cond - uncond)
            else:
                logits = adapter.logits(model, x, full_mask)
            x0 = torch.argmax(add_gumbel_noise(logits, temperature, generator), dim=-1)
            if remasking == "low_confidence":
                probs = torch.softmax(logits.to(torch.float64), dim=-1)
                x0_p = torch.gather(probs, -1, x0[..., None]).squeeze(-1)
            else:
                x0_p = torch.rand(x0.shape, device=device, generator=generator, dtype=torch.float64)
            x0_p[:, end:] = -float("inf")
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, torch.full_like(x0_p, -float("inf")))
            reveal = torch.zeros_like(x0, dtype=torch.bool)
            for j in range(batch):
                k = int(transfer[j, i])
                if k > 0:
                    reveal[j, torch.topk(confidence[j], k=k).indices] = True
            x[reveal] = x0[reveal]
            taken += 1
            if return_trajectory:
                trajectory.append(x.clone().cpu())
            bar.update(1)
    bar.close()
    if keep_framing or not (opened or closing):
        return GenerationOutput(sequences=x, trajectory=trajectory, steps_taken=taken, attention_mask=full_mask)

    def unframed(canvas: torch.Tensor) -> torch.Tensor:  # the prompt and the generated tokens only
        canvas = canvas[:, : prompt_len + gen_length]
        if opened:
            k = len(opening)
            canvas = torch.stack([torch.cat([row[:f], row[f + k:]]) for row, f in zip(canvas, first)])
        return canvas

    return GenerationOutput(sequences=unframed(x), trajectory=[unframed(c) for c in trajectory], steps_taken=taken,
                            attention_mask=None if full_mask is None else unframed(full_mask))
