# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The built-in pruning methods, one module per method, each holding its `MethodSpec` as `SPEC` (data: importing a
module registers nothing).

`BUILTIN_METHODS` lists them in their listing order (`method_names()`, the CLI's choices); `optimum_sinkprune.registry`
registers them on import (see docs/methods.md, "Adding a method").
"""

from . import (
    activation_heads,
    magnitude,
    magnitude_heads,
    random_heads,
    reap_experts,
    sink_experts,
    sink_heads,
    sink_sparsegpt,
    sink_wanda,
    sparsegpt,
    wanda,
    wanda_diffusion,
)

BUILTIN_METHODS = tuple(module.SPEC for module in (
    magnitude,
    wanda,
    sparsegpt,
    sink_wanda,
    sink_sparsegpt,
    wanda_diffusion,
    sink_heads,
    magnitude_heads,
    random_heads,
    activation_heads,
    reap_experts,
    sink_experts,
))

__all__ = ["BUILTIN_METHODS"]
