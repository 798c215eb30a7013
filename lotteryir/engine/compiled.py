"""``TrainConfig.compile``: the training forward under torch.compile, compiled once per model object.

The pruning masks are buffers that the forward pre-hooks multiply in; a pruning round changes their
values in place, never their shapes or the module structure, so the graphs compiled in round 0 serve
every later round (``tests/engine/test_compiled.py`` counts them). pruning/bridge.py keeps the mask
hooks from becoming graphs of their own when a network has a graph break.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn


class CompiledNets:
    """A cache of ``torch.compile(net)`` by network object, for the life of one trainer."""

    def __init__(self) -> None:
        self._nets: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()

    def __call__(self, net: nn.Module, backend: bool | str | None) -> nn.Module:
        """``net`` compiled with ``backend`` (True: torch's default, inductor), or ``net`` itself when falsy."""
        if not backend:
            return net
        if net not in self._nets:
            compiled = torch.compile(net) if backend is True else torch.compile(net, backend=backend)
            self._nets[net] = compiled  # type: ignore[assignment]
        return self._nets[net]
