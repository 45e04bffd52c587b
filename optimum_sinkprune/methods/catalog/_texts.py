# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""What several built-in methods share: the card symbols of the sink weight σ, of the structured and of the expert
scores, and the report entries of the activation-based head scorers."""

from __future__ import annotations

from typing import Any

# The symbols of the sink weight σ (sink_wanda, sink_sparsegpt).
SINK_SYMBOLS = (
    r"$m$ is the attention mass a token receives (summed over heads and layers) at a sampled denoising step, "
    r"$\bar m$ and $s_m$ its mean and standard deviation over positions, $\alpha$ = `sink_alpha`, $k$ = `sink_std`, "
    r"and the sum runs over calibration samples $x$ and sampled steps $t$"
)

# The symbols of the structured sink-aware scores (sink_heads).
STRUCTURED_SYMBOLS = (
    r"$z$ standardises over the heads still present, $X_h$ is head $h$'s output, $p_h(t)$ its dominant sink "
    r"position at denoising step $t$, $\lambda$ = `instability_weight`, $a_c$ the activation of MLP channel $c$ and "
    r"$\sigma$ the sink weight of each token"
)

# The symbols of the expert scores (reap_experts, sink_experts).
EXPERT_SYMBOLS = (
    r"$t \to e$ runs over the calibration tokens the router sends to expert $e$ (canvas tokens of the model's own "
    r"noised windows, every sampled denoising step), $g_e(t)$ is the gate weight the layer applies to the expert's "
    r"output (after top-k renormalisation and the per-expert scale) and $E_e(x_t)$ the expert's output"
)


def activation_summary(importance, stats) -> dict[str, Any]:
    """The report entries of the activation-based head scorers (`sink_heads`, `activation_heads`)."""
    return {"importance": importance.tolist(), "mean_sink_weight": stats.mean_sink_weight,
            "calibration_forwards": stats.forwards}


__all__ = ["EXPERT_SYMBOLS", "SINK_SYMBOLS", "STRUCTURED_SYMBOLS", "activation_summary"]
