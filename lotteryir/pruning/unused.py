"""Which prunable tensors receive a gradient during round 0; those that never do are not pruned."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import bridge
from .selection import PrunableParam

log = logging.getLogger(__name__)


class GradientWatch:
    """Gradient hooks on the prunable tensors, recording the names of those that get one."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self._hooks: list[Any] = []

    def start(self, params: Iterable[PrunableParam]) -> None:
        for p in params:
            t = bridge.trainable_tensor(p)
            if t.requires_grad:
                self._hooks.append(t.register_hook(lambda g, name=p.name: self.seen.add(name)))

    def stop(self) -> bool:
        """Remove the hooks; True when it was watching."""
        watching = bool(self._hooks)
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
        return watching

    def split(self, active: Sequence[str]) -> tuple[list[str], list[str]] | None:
        """(tensors that got a gradient, those that did not); None when none got one (nothing is dropped)."""
        if not self.seen:
            log.warning("no prunable tensor received a gradient in round 0; keeping all %d as prunable", len(active))
            return None
        unused = [n for n in active if n not in self.seen]
        if unused:
            log.info("not pruning %d tensor(s) that received no gradient: %s", len(unused), ", ".join(unused))
        return [n for n in active if n in self.seen], unused

    # A resumed round 0 must keep what its first part saw.
    def state(self) -> dict[str, Any]:
        return {"grad_seen": sorted(self.seen)}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.seen.clear()
        self.seen.update(str(n) for n in state.get("grad_seen", []))
