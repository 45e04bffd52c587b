# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""`DictRecord`: the `to_dict` of the settings and result dataclasses whose JSON form is their fields as they are."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any


class DictRecord:
    """Mixin for a dataclass: `to_dict()` is `dataclasses.asdict(self)` (nested dataclasses become dicts too)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["DictRecord"]
