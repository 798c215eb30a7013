"""A tiny LightningModule and Trainer settings shared by the Lightning tests and their DDP script."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

QUIET: dict[str, Any] = {
    "accelerator": "cpu",
    "logger": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
}


class TinyLit(L.LightningModule):
    """Two convolutions predicting a residual; AdamW with weight decay (it must not revive pruned entries)."""

    def __init__(self, width: int = 6, lr: float = 1e-2) -> None:
        super().__init__()
        self.lr = lr
        self.a = nn.Conv2d(3, width, 3, padding=1)
        self.b = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(torch.relu(self.a(x)))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.l1_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=0.1)


def loader(n: int = 8, batch: int = 2, same: bool = False, seed: int = 0) -> DataLoader:
    """Random pairs; ``same``: every item the same pair, so any batch order gives the same steps."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(n, 3, 8, 8, generator=g), torch.rand(n, 3, 8, 8, generator=g)
    if same:
        x, y = x[:1].expand(n, -1, -1, -1).clone(), y[:1].expand(n, -1, -1, -1).clone()
    return DataLoader(TensorDataset(x, y), batch_size=batch)


class ManualLit(TinyLit):
    """Manual optimization: optimizer i (one per entry of ``every``) steps after every ``every[i]``-th batch.

    ``every=(2,)``: one optimizer, gradients accumulated by hand over 2 batches; ``every=(1, 1)``: one
    optimizer per convolution, both stepping on every batch (Lightning's global_step moves by 2 a batch).
    """

    def __init__(self, every: tuple[int, ...] = (1,)) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.every = every

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.l1_loss(self(x), y)
        self.manual_backward(loss)
        optimizers = self.optimizers()
        for opt, n in zip(optimizers if isinstance(optimizers, list) else [optimizers], self.every, strict=True):
            if (batch_idx + 1) % n == 0:
                opt.step()
                opt.zero_grad()
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> Any:
        if len(self.every) == 1:
            return torch.optim.AdamW(self.parameters(), lr=self.lr)
        return [torch.optim.AdamW(self.a.parameters(), lr=self.lr), torch.optim.AdamW(self.b.parameters(), lr=self.lr)]


def published_net(width: int = 6) -> nn.Sequential:
    """The network a project publishes on its own (what ``NetLit.net`` is)."""
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3, 3, padding=1))


class NetLit(TinyLit):
    """A LightningModule that holds its restorer as ``self.net``, as MIR-L's and PromptIR's do."""

    def __init__(self, width: int = 6) -> None:
        super().__init__(width)
        del self.a, self.b
        self.net = published_net(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)
