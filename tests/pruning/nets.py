"""Small networks that exercise every awkward case the pruner must handle."""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c)  # depthwise
        self.pw = nn.Conv2d(c, c, 1)
        self.norm = nn.BatchNorm2d(c)

    def forward(self, x):
        return x + self.pw(torch.relu(self.norm(self.dw(x))))


class Awkward(nn.Module):
    """Nested blocks, depthwise conv, ConvTranspose, Linear, an unused conv and a tied weight."""

    def __init__(self, c: int = 8):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.body = nn.Sequential(Block(c), Block(c))
        self.down = nn.Conv2d(c, c, 2, stride=2)
        self.up = nn.ConvTranspose2d(c, c, 2, stride=2)
        self.unused = nn.Conv2d(c, c, 1)  # built, never called: gets no gradient
        self.enc = nn.Linear(c, c, bias=False)
        self.dec = nn.Linear(c, c, bias=False)
        self.dec.weight = self.enc.weight  # tied
        self.head = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, x):
        h = self.body(self.stem(x))
        h = self.up(self.down(h))
        g = h.mean(dim=(2, 3))
        g = self.dec(torch.tanh(self.enc(g)))
        return x + self.head(h * torch.sigmoid(g)[:, :, None, None])


def fixed_batch(seed: int = 0, n: int = 4, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g)
    return x, (x * 0.5).clamp(0, 1)


def make_closure(steps: int = 3, lr: float = 1e-2, weight_decay: float = 0.1):
    """A plain closure: AdamW with weight decay, reports steps to the context."""
    x, y = fixed_batch()

    def train(model, ctx):
        torch.manual_seed(ctx.seed + ctx.round)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        loss = None
        for k in range(1, steps + 1):
            opt.zero_grad()
            loss = (model(x) - y).abs().mean()
            loss.backward()
            opt.step()
            ctx.step(k)
        return {"loss": float(loss.detach())}

    return train
