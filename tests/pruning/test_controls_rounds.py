"""Controls are drawn afresh every round: new random masks, new random initializations."""

from __future__ import annotations

import torch

from lotteryir.pruning import IterativeMagnitudePruner

from .nets import Awkward, make_closure


def _masks(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n.removesuffix("_mask"): b.detach().clone().bool() for n, b in model.named_buffers() if n.endswith("_mask")}


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    # The weights a forward pass uses (orig * mask for masked tensors), as the closure receives them.
    return {
        f"{name}.weight": module.weight.detach().clone()
        for name, module in model.named_modules()
        if isinstance(getattr(module, "weight", None), torch.Tensor)
    }


def test_controls_are_drawn_afresh_every_round():
    torch.manual_seed(0)
    seen: dict[tuple[int, str], tuple[dict, dict]] = {}
    inner = make_closure(steps=2)

    def closure(model, ctx):
        seen[(ctx.round, ctx.kind)] = (_masks(model), _weights(model))
        return inner(model, ctx)

    pruner = IterativeMagnitudePruner(
        Awkward(), rounds=2, rewind="init", controls=("random_reinit", "random_prune"), model_factory=Awkward
    )
    pruner.run(closure)
    assert {k for k in seen if k[0] >= 1} == {
        (r, k) for r in (1, 2) for k in ("ticket", "random_reinit", "random_prune")
    }
    name = "stem.weight"
    for r in (1, 2):
        ticket_mask, ticket_w = seen[(r, "ticket")]
        prune_mask, _ = seen[(r, "random_prune")]
        reinit_mask, reinit_w = seen[(r, "random_reinit")]
        # random_prune: the ticket's survivor count per tensor, at other places.
        assert prune_mask.keys() == ticket_mask.keys()
        assert all(prune_mask[n].sum() == ticket_mask[n].sum() for n in ticket_mask)
        assert not torch.equal(prune_mask[name], ticket_mask[name])
        # random_reinit: the ticket's mask, weights that are not the rewind point the ticket starts from.
        assert all(torch.equal(reinit_mask[n], ticket_mask[n]) for n in ticket_mask)
        keep = ticket_mask[name]
        assert not torch.isclose(reinit_w[name][keep], ticket_w[name][keep]).any(), r
    # Round 2's random mask is a new draw, not round 1's thinned (a reused seed would nest them).
    m1, m2 = seen[(1, "random_prune")][0][name], seen[(2, "random_prune")][0][name]
    assert (m2 & ~m1).any()
    # Round 2's random initialization is a new draw too.
    both = seen[(1, "ticket")][0][name] & seen[(2, "ticket")][0][name]
    w1, w2 = seen[(1, "random_reinit")][1][name], seen[(2, "random_reinit")][1][name]
    assert not torch.isclose(w1[both], w2[both]).any()
