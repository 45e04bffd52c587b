# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Masked diffusion: the forward (noising) process, LLaDA's sampler, and the ELBO likelihood estimator."""

from .forward_process import forward_process, mask_probability
from .likelihood import LikelihoodResult, elbo_log_likelihood, elbo_perplexity
from .sampler import REMASKING_STRATEGIES, GenerationOutput, generate, num_transfer_tokens

__all__ = [
    "REMASKING_STRATEGIES",
    "GenerationOutput",
    "LikelihoodResult",
    "elbo_log_likelihood",
    "elbo_perplexity",
    "forward_process",
    "generate",
    "mask_probability",
    "num_transfer_tokens",
]
