# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Masked diffusion: the forward (noising) process, LLaDA's sampler, and the ELBO likelihood estimators (ours and
the official LLaDA / Dream lm-eval ones)."""

from .forward_process import forward_process, mask_probability
from .likelihood import (
    LIKELIHOOD_PROTOCOLS,
    ContinuationLikelihood,
    LikelihoodResult,
    elbo_log_likelihood,
    elbo_perplexity,
    guided_logits,
    official_continuation_loglikelihood,
)
from .sampler import REMASKING_STRATEGIES, GenerationOutput, generate, num_transfer_tokens

__all__ = [
    "LIKELIHOOD_PROTOCOLS",
    "ContinuationLikelihood",
    "REMASKING_STRATEGIES",
    "GenerationOutput",
    "LikelihoodResult",
    "elbo_log_likelihood",
    "elbo_perplexity",
    "forward_process",
    "generate",
    "guided_logits",
    "mask_probability",
    "num_transfer_tokens",
    "official_continuation_loglikelihood",
]
