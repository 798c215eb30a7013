"""How a network starts: as its builder draws it, or as the identity.

MIR-L (PromptIR) and Restormer add their input to the output of a last 3x3 convolution
(``output``). Drawn as published, that convolution turns random features into a residual of
about 0.1 per pixel, so the untrained network scores far below the degraded image it was given
(web JPEG 22.1 dB against 31.2 on the sample test photographs). With ``output`` at zero the
network starts as the identity: every round of a short training then starts from the input's
score and can only be pushed away from it by what it learns. IMP keeps this: rewinding to
init returns the layer to zero.

A layer that starts at zero ends training with small weights, so one global magnitude threshold
would remove it first and the pruned network would collapse to the identity. Runs with this
init therefore prune ``output`` at the pruning rate on its own (:func:`identity_layer_rates`);
every other tensor shares the global threshold.
"""

from __future__ import annotations

import torch
from torch import nn

INITS: tuple[str, ...] = ("default", "identity")
"""The initializations ``--init`` accepts: ``default`` (the network's own), ``identity`` (last conv at zero)."""


def apply_init(model: nn.Module, init: str) -> nn.Module:
    """``"default"``: leave ``model`` as built. ``"identity"``: zero its ``output`` convolution.

    Raises ValueError when ``model`` has no ``output`` convolution, or when zeroing it does not
    make the network return its input (no global residual). Returns ``model``.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if init == "default":
        return model
    last = getattr(model, "output", None)
    if not isinstance(last, nn.Conv2d):
        raise ValueError(
            f"init 'identity' zeroes the network's last convolution, `output`; "
            f"{type(model).__name__} has none (use init 'default')"
        )
    with torch.no_grad():
        last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()
        probe = torch.rand(
            1, last.out_channels, 16, 16, generator=torch.Generator().manual_seed(0), device=last.weight.device
        )
        was_training = model.training
        model.eval()
        same = torch.equal(model(probe), probe)
        model.train(was_training)
    if not same:
        raise ValueError(
            f"init 'identity': {type(model).__name__} does not return its input with `output` "
            "at zero (no global residual); use init 'default'"
        )
    return model


def identity_layer_rates(init: str, rate: float) -> dict[str, float] | None:
    """``layer_rates`` for a pruner: ``output`` at ``rate`` on its own when it started at zero."""
    return {"output.weight": rate} if init == "identity" else None
