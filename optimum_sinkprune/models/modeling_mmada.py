# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""MMaDA's language backbone (Gen-Verse/MMaDA-8B-*): LLaDA's module tree with the embedding extended to image tokens.

Same weight names as LLaDA (`model.transformer.wte.weight`, `model.transformer.blocks.{i}...`,
`model.transformer.ln_f.weight`, `model.transformer.ff_out.weight`); the embedding and the untied output layer have
`config.embedding_rows` rows (text + special + image-codebook tokens). Only the text/token forward is implemented:
MMaDA's image tokenizer (MAGVIT-v2, a separate checkpoint) and its multimodal prompting / sampling code are not part
of this model (see docs/models.md).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_mmada import MMaDAConfig
from .modeling_llada import LLaDAModel, LLaDAModelLM, LLaDAPreTrainedModel


def bias_to_additive_mask(attention_bias: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """MMaDA's `attention_bias` ([batch, 1, q, k]; bool True = attend, or an additive float bias, as PyTorch's SDPA
    reads `attn_mask`) as an additive float mask of `dtype`."""
    if attention_bias.dim() != 4:
        raise ValueError(f"attention_bias must be [batch, 1, query, key], got shape {tuple(attention_bias.shape)}")
    if attention_bias.dtype == torch.bool:
        zeros = torch.zeros(attention_bias.shape, dtype=dtype, device=attention_bias.device)
        return zeros.masked_fill(~attention_bias, torch.finfo(dtype).min)
    return attention_bias.to(dtype)


class MMaDAModelLM(LLaDAModelLM):
    """MMaDA language backbone (`architectures: ["MMadaModelLM"]`, `model_type: "mmada"`).

    A [`LLaDAModelLM`] whose token embedding and output layer cover MMaDA's extended vocabulary. Logits are not
    shifted (position i predicts token i); ids at or above `config.llm_vocab_size` are image/special tokens.
    `forward` also accepts MMaDA's `attention_bias` ([batch, 1, seq, seq], bool True = attend), which its own
    multimodal code passes instead of a padding mask.
    """

    _remote_code_class = "modeling_mmada.MMaDAModelLM"
    _remote_config_class = "configuration_mmada.MMaDAConfig"

    config_class = MMaDAConfig
    config: MMaDAConfig

    def __init__(self, config: MMaDAConfig):
        # Built like LLaDAModelLM.__init__, but the vocabulary tables are sized before the weights are initialised.
        LLaDAPreTrainedModel.__init__(self, config)
        self.model = LLaDAModel(config)
        rows = config.embedding_rows
        transformer = self.model.transformer
        if transformer.wte.num_embeddings != rows:
            transformer.wte = nn.Embedding(rows, config.d_model)
            if not config.weight_tying:
                transformer.ff_out = nn.Linear(config.d_model, rows, bias=config.include_bias)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        *args,
        attention_bias: torch.Tensor | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        # the other arguments are LLaDAModelLM's, passed through as given
        if attention_bias is not None:
            if attention_mask is not None:
                raise ValueError("pass either attention_mask (padding, [batch, seq]) or attention_bias, not both")
            attention_mask = bias_to_additive_mask(attention_bias, self.model.transformer.wte.weight.dtype)
        return super().forward(input_ids, attention_mask, *args, **kwargs)


# The name MMaDA's own code and config.json (`architectures`) use.
MMadaModelLM = MMaDAModelLM

__all__ = ["MMaDAModelLM", "MMadaModelLM", "bias_to_additive_mask"]
