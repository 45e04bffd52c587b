# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""The built-in pruning methods, one module per method; importing a module registers its `MethodSpec`.

`optimum_sinkprune.registry` imports every module here (see docs/methods.md, "Adding a method").
"""
