"""From a configuration to what trains: data, network, trainer, pruner (``build_run``).

The command line's runs and the benchmarks build through here, so a benchmark trains exactly as
``lotteryir prune`` trains. Nothing here writes a file; only the run (:mod:`.run`) does.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sized
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch.utils.data import Dataset

from ..checkpoints import load_weights_file
from ..data.options import CHANNELS
from ..engine import RestorationTrainer, TrainConfig, TrainProgress, evaluate
from ..engine import distributed as ddp
from ..engine.batchnorm import gradient_probe, recalibrate_batchnorm, training_batches
from ..engine.threads import ThreadChoice, apply_threads
from ..models import CheckpointError, apply_init, build_model
from ..models.channels import image_channels
from ..models.init import identity_layer_rates
from ..pruning import IterativeMagnitudePruner, Rewind, RoundContext
from .config import open_recipe
from .errors import RunError
from .history import mean_scores
from .methods import build_method
from .resolved import ResolvedRunConfig

Closure = Callable[[torch.nn.Module, RoundContext], dict[str, Any]]


@dataclass
class BuiltRun:
    """Everything a run trains with, built from its configuration (on every rank alike)."""

    config: ResolvedRunConfig
    tasks: list[str]
    train_set: Any
    test_sets: Mapping[str, Dataset]
    device: torch.device
    threads: ThreadChoice
    model: torch.nn.Module
    trainer: RestorationTrainer
    pruner: IterativeMagnitudePruner

    def fresh_model(self) -> torch.nn.Module:
        """The run's network as it starts (builder + ``init``), under whatever RNG state is current."""
        return fresh_model(self.config)

    @property
    def channels(self) -> int:
        """The channels of the images the run reads (the network's input channels)."""
        return int(next(iter(self.test_sets.values()))[0]["input"].shape[0])

    def train(self, model: torch.nn.Module, ctx: RoundContext) -> dict[str, Any]:
        """Train one round, or, for a round that does not train (round 0 from --from weights), say so.

        A round 0 that does not train still shows the pruner which tensors take part (one backward pass
        on a training batch, weights and BatchNorm statistics untouched): never-called layers stay unpruned.
        """
        if self.config.trains(ctx.round):
            return self.trainer(model, ctx)
        if ctx.round == 0:
            c = self.config
            gradient_probe(model, self.train_set, c.batch_size, c.loss, c.seed + 4099, self.device)
        return {"steps": 0, "seconds": 0.0, "trained": False}

    def evaluate(self, model: torch.nn.Module) -> dict[str, Any]:
        """Scores of ``model`` on the test sets: per set, and the means of the restored and the input images.

        With ``bn_recalibrate`` the BatchNorm statistics are first recomputed on that many training batches.
        """
        if self.config.bn_recalibrate:
            c = self.config
            pairs = training_batches(self.train_set, c.bn_recalibrate, c.batch_size, c.seed + 4099, self.device)
            recalibrate_batchnorm(model, (inputs for inputs, _ in pairs))
        result = evaluate(model, self.test_sets, device=self.device, tile=self.config.eval_tile)
        summary = result.summary()
        psnr, ssim = mean_scores(summary)
        input_psnr, input_ssim = mean_scores(summary, of="input")
        return {
            "eval": summary,
            "mean_psnr": psnr,
            "mean_ssim": ssim,
            "mean_input_psnr": input_psnr,
            "mean_input_ssim": input_ssim,
            "protocol": result.protocol(),  # how the inputs were made and scored (noise protocol, crop, Y)
        }

    def train_and_evaluate(self, model: torch.nn.Module, ctx: RoundContext) -> dict[str, Any]:
        """The plain closure: train one round, then (rank 0) evaluate; every rank gets rank 0's record."""
        train = self.train(model, ctx)
        metrics = {"train": train, **self.evaluate(model)} if ddp.is_main() else None
        return ddp.broadcast_object(metrics)

    def estimate_seconds(self, trainings: int, evaluations: int | None = None) -> float:
        """Seconds for ``trainings`` trainings and ``evaluations`` evaluations (default one per training),
        from a few timed steps on a copy."""
        step, per_eval = self.measure()
        evaluations = trainings if evaluations is None else evaluations
        return trainings * self.trainer.plan()[1] * step + evaluations * per_eval * 1.5

    def measure(self, steps: int = 3) -> tuple[float, float]:
        """(seconds per optimizer step, seconds per evaluation of every test set), timed on a copy.

        The first step is a warm-up; one image's restoration stands for each of the test images.
        The run's own RNG state is left as it was.
        """
        c = self.config
        model = copy.deepcopy(self.model).train()
        patch = c.patch_size
        opt = torch.optim.AdamW(model.parameters(), lr=c.lr)
        x = torch.rand(self.trainer.batch_split()[1], self.channels, patch, patch, device=self.device)
        with torch.random.fork_rng(devices=[]):
            times = []
            for _ in range(max(2, steps)):
                t0 = time.perf_counter()
                opt.zero_grad()
                (model(x) - x).abs().mean().backward()
                opt.step()
                times.append(time.perf_counter() - t0)
            model.eval()
            first = next(iter(self.test_sets.values()))[0]["input"]
            t0 = time.perf_counter()
            with torch.no_grad():
                model(first.unsqueeze(0).to(self.device))
            per_image = time.perf_counter() - t0
        # The recipes' test sets are map-style datasets: they have a length (Dataset does not declare it).
        n_images = sum(len(cast(Sized, s)) for s in self.test_sets.values())
        return min(times[1:]), n_images * per_image


def fresh_model(config: ResolvedRunConfig) -> torch.nn.Module:
    """The network ``config`` names as it starts (builder + ``init``), under whatever RNG state is current."""
    return apply_init(build_model(config.model, config.size), config.init)


def build_run(
    config: ResolvedRunConfig,
    closure: Closure | None = None,
    *,
    progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_rewind_point: Callable[[int], None] | None = None,
) -> BuiltRun:
    """Build the data, network, trainer and pruner of a resolved ``config`` (``RunConfig(...).resolved()``).

    ``closure`` is what the pruner calls each round (default :meth:`BuiltRun.train_and_evaluate`).
    The recipe's folders are checked first; then the network is built (and given its --from weights),
    and its input channels decide how the recipe reads images (1: grayscale, 3: RGB). Problems a user
    can fix (missing data, a patch larger than every image, a network taking another channel count)
    raise before any training, naming the option.
    """
    c = config
    tasks = list(c.tasks)
    recipe = open_recipe(c.recipe, c.data, c.data_paths, tasks=tasks)  # its folders first: no network is built yet
    device = ddp.init_from_env(c.device)
    threads = ThreadChoice(c.threads, c.threads_reason)
    if device.type == "cpu":
        apply_threads(threads)  # before the duration estimate and the first training step
    torch.manual_seed(c.seed)  # the dense initialization is part of the run's identity
    model = fresh_model(c)
    if c.from_weights is not None:
        try:
            load_weights_file(model, c.from_weights)
        except CheckpointError as e:
            raise RunError(f"--from {c.from_weights}: {e}") from e
    # The network's input channels decide how images are read (1: grayscale, 3: RGB), before any is.
    channels = image_channels(model, CHANNELS, f"--model {c.model}")
    recipe = recipe.reading(channels)
    train_set = recipe.train_dataset(patch_size=c.patch_size, seed=c.seed, tasks=tasks)
    test_sets = recipe.test_sets(tasks=tasks)
    model = model.to(device)
    check_patch_size(train_set, c.patch_size)  # first: the channel probe runs on a patch of this size
    check_channels(model, test_sets, c, device)
    trainer = RestorationTrainer(
        train_set,
        TrainConfig(
            epochs=c.length.epochs,
            # --steps 0 (from trained weights): no round trains, the trainer is never called.
            steps=c.length.steps if c.length.count else 1,
            warmup_epochs=c.warmup_epochs,
            batch_size=c.batch_size,
            lr=c.lr,
            device=device,
            num_workers=c.num_workers,
            checkpoint_every=c.checkpoint_every,
            seed=c.seed,
            threads=c.threads,
            loss=c.loss,
            compile=c.compile,
            should_stop=should_stop,
        ),
        progress=progress,
    )
    check_rewind_step(c, trainer.plan()[1])
    built = BuiltRun(c, tasks, train_set, test_sets, device, threads, model, trainer, None)  # type: ignore[arg-type]
    method = build_method(
        c.method,
        c.method_options,
        c.shuffle_within_layers,
        train_set=train_set,
        channels=channels,
        patch_size=c.patch_size,
        batch_size=c.batch_size,
        loss=c.loss,
        seed=c.seed,
        device=device,
    )
    built.pruner = IterativeMagnitudePruner(
        model,
        closure or built.train_and_evaluate,
        rate=c.rate,
        rounds=c.rounds,
        # imp's rounds come from the target (resolved()); the other methods prune to the target itself.
        target_density=c.target_density if method.fixed_rounds is not None else None,
        method=method,
        scope=c.scope,
        rewind=c.pruner_rewind,
        controls=tuple(c.controls),
        layer_rates=identity_layer_rates(c.init, c.rate),  # as fresh_model reads it
        model_factory=built.fresh_model,  # random_reinit re-draws everything the constructor draws
        seed=c.seed,
        on_rewind_point=on_rewind_point,
    )
    return built


def check_channels(
    model: torch.nn.Module, test_sets: Mapping[str, Dataset], config: ResolvedRunConfig, device: torch.device
) -> None:
    """One forward pass on a patch of the recipe's images: a network that cannot take them is named here.

    Without it the first sign would be a raw torch message from deep inside the training. (The channel
    count itself was read from the network before the recipe was opened, see ``image_channels``.)
    """
    channels = int(next(iter(test_sets.values()))[0]["input"].shape[0])
    size = config.patch_size
    first: list[torch.nn.Module] = []
    hooks = [
        m.register_forward_pre_hook(lambda m, _: first.append(m) if not first else None)
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    x = torch.zeros(1, channels, size, size, device=device)
    was_training = model.training
    name = f"--model {config.model}"
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            y = model.eval()(x)
    except Exception as e:  # noqa: BLE001 - whatever the user's network raises, say where it came from
        if first and isinstance(first[0], torch.nn.Conv2d) and first[0].in_channels != channels:
            raise RunError(
                f"{name} takes {first[0].in_channels}-channel images but recipe {config.recipe!r} gives "
                f"{channels}-channel images (its in_channels attribute says {channels}); make them agree"
            ) from e
        raise RunError(f"{name} fails on a {channels}x{size}x{size} patch of recipe {config.recipe!r}: {e}") from e
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != tuple(x.shape):
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise RunError(
            f"{name} returns {got} for a {tuple(x.shape)} batch of recipe {config.recipe!r}; a restorer returns "
            f"an image of its input's shape ({channels} channels)"
        )


def check_patch_size(train_set: Any, size: int) -> None:
    """A patch larger than every image would be almost all padding (and, large enough, exhaust memory)."""
    seen: set[int] = set()
    for task, part in train_set.parts.items():
        if id(part.source) in seen:
            continue
        seen.add(id(part.source))
        largest = part.source.largest_short_side(at_least=size)
        if largest < size:
            raise RunError(
                f"--patch-size {size} is larger than every training image of {task} (the largest is "
                f"{largest} px on its short side); use --patch-size {largest} or less"
            )


def check_rewind_step(config: ResolvedRunConfig, total: int) -> None:
    """``--rewind step:K`` needs K optimizer steps in round 0."""
    rewind = Rewind.parse(config.pruner_rewind)
    k = rewind.step if rewind.kind == "step" else None
    if k is not None and k > total:
        raise RunError(
            f"--rewind step:{k} needs at least {k} optimizer steps in round 0, but a round has {total} "
            f"({config.length.option()}); use --rewind step:K with K <= {total}, or longer rounds"
        )
