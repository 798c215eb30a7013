"""DistributedDataParallel under torchrun: 2 CPU processes (gloo) on the tiny run config.

One torchrun run is SIGKILLed (agent and workers) mid-round and relaunched; the
finished run is checked for identical masks on both ranks, masks equal to a
single-process computation from the same trained weights, files written by rank
0 only, the documented global batch and learning rate, bit-identity with an
uninterrupted 2-process run, and agreement with the single-process run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from lotteryir.models import build_model
from lotteryir.models.init import identity_layer_rates
from lotteryir.pruning import IterativeMagnitudePruner, Mask
from lotteryir.pruning.ticket import load_compact
from lotteryir.runs import read_history

from .test_cli import _same_run
from .tiny_run import TINY_ARGS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc to find torchrun's workers")

# Installed (through PYTHONPATH) in every process torchrun starts: on ranks other than 0,
# any write, rename, mkdir or delete under the watched run directory is recorded.
WATCH = """
import os, sys
_dir = os.environ.get("LOTTERYIR_TEST_WATCH")
_log = os.environ.get("LOTTERYIR_TEST_WATCH_LOG")
if _dir and _log and os.environ.get("RANK", "0") != "0":
    _root = os.path.realpath(_dir)
    _busy = []
    _WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def _inside(p):
        try:
            p = os.path.realpath(os.fsdecode(os.fspath(p)))
        except TypeError:
            return False
        return p == _root or p.startswith(_root + os.sep)

    def _hook(event, args):
        if _busy:
            return
        paths = []
        if event == "open" and args and args[0] is not None and not isinstance(args[0], int):
            mode, flags = args[1], args[2]
            if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (mode is None and flags & _WRITE):
                paths = [args[0]]
        elif event in ("os.rename", "os.link", "os.symlink"):
            paths = [args[0], args[1]]
        elif event in ("os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.truncate", "os.chmod"):
            paths = [args[0]]
        hits = [p for p in paths if not isinstance(p, int) and _inside(p)]
        if hits:
            _busy.append(1)
            try:
                with open(_log, "a") as fh:
                    fh.write(f"rank {os.environ.get('RANK')}: {event} {hits}\\n")
            finally:
                _busy.pop()

    sys.addaudithook(_hook)
"""


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _torchrun(out: Path, env: dict[str, str], **kw) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "lotteryir",
        "prune",
        *TINY_ARGS,
        "--out",
        str(out),
    ]
    return subprocess.Popen(cmd, env=env, text=True, start_new_session=True, **kw)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """A 2-process run, SIGKILLed in round 1 after step 2, then relaunched with the same command."""
    base = tmp_path_factory.mktemp("ddp")
    out, masks, watch_log = base / "run", base / "masks", base / "rank1-writes.log"
    (base / "site").mkdir()
    (base / "site" / "sitecustomize.py").write_text(textwrap.dedent(WATCH))
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(base / "site"), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "LOTTERYIR_DEBUG_MASKS_DIR": str(masks),
        "LOTTERYIR_TEST_WATCH": str(out),
        "LOTTERYIR_TEST_WATCH_LOG": str(watch_log),
    }
    proc = _torchrun(out, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "rounds" / "r01" / "ckpt" / "train_state.json"
    deadline = time.time() + 90
    try:
        while time.time() < deadline and proc.poll() is None:
            try:
                if state.is_file() and json.loads(state.read_text()).get("step", 0) >= 2:
                    break
            except json.JSONDecodeError:
                pass
            time.sleep(0.02)
        else:
            pytest.fail("the distributed run never reached step 2 of round 1")
    finally:
        # The whole group dies at once, as on a crashed machine: the agent, then its workers.
        victims = [proc.pid, *_descendants(proc.pid)]
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
    killed_step = json.loads(state.read_text())["step"]
    finished_before_kill = (out / "rounds" / "r01" / "metrics.json").exists()
    again = _torchrun(out, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = again.communicate(timeout=120)
    return {
        "out": out,
        "masks": masks,
        "watch_log": watch_log,
        "returncode": again.returncode,
        "stdout": stdout,
        "stderr": stderr,
        "killed_step": killed_step,
        "finished_before_kill": finished_before_kill,
    }


def test_sigkill_of_the_group_then_relaunch_finishes(ddp_run):
    assert ddp_run["returncode"] == 0, ddp_run["stderr"][-3000:]
    assert not ddp_run["finished_before_kill"], "killed too late to test a mid-round resume"
    lines = ddp_run["stdout"].splitlines()
    assert "resuming after round 0" in lines[0], lines[0]
    history = read_history(ddp_run["out"])
    assert [h["round"] for h in history] == [0, 1, 2]
    assert history[1]["train"]["resumed_from"] == ddp_run["killed_step"] >= 2
    assert not list(ddp_run["out"].glob("rounds/*/ckpt*")), "finished rounds keep no training checkpoints"


def test_resumed_run_is_identical_to_an_uninterrupted_one(ddp_run, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = _torchrun(tmp_path / "straight", env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-3000:]
    _same_run(tmp_path / "straight", ddp_run["out"])


def test_global_batch_and_learning_rate_are_as_documented(ddp_run, finished_run):  # noqa: F811
    text = ddp_run["stdout"]
    assert "DistributedDataParallel: 2 processes (gloo); global batch 2 = 2 ranks x 1; lr 0.004" in text, text
    assert text.count("lotteryir prune:") == 1, "only rank 0 draws"
    # Same steps, same schedule, same data per step as one process with batch 2: the same numbers,
    # up to the order in which the two halves of each batch's gradient are summed.
    single, ddp = read_history(finished_run), read_history(ddp_run["out"])
    for s, d in zip(single, ddp):
        assert d["train"]["steps"] == s["train"]["steps"] == 4
        assert d["train"]["lr_final"] == s["train"]["lr_final"]
        assert d["train"]["loss"] == pytest.approx(s["train"]["loss"], rel=1e-4)
        assert d["density"] == s["density"] and d["remaining"] == s["remaining"]
        assert d["mean_psnr"] == pytest.approx(s["mean_psnr"], abs=1e-3)


def test_masks_identical_on_every_rank_and_equal_to_a_single_process_computation(ddp_run):
    out, dumps = ddp_run["out"], ddp_run["masks"]
    saved = {r: Mask.load(out / "rounds" / f"r{r:02d}" / "mask.safetensors") for r in range(3)}
    for r in range(3):
        assert Mask.load(dumps / "rank0" / f"r{r:02d}.safetensors") == saved[r]
        assert Mask.load(dumps / "rank1" / f"r{r:02d}.safetensors") == saved[r]
    active = json.loads((out / "pruner" / "pruner.json").read_text())["active"]
    for r in (0, 1):
        # One process, the trained weights of round r: the pruner's next mask must be round r+1's.
        weights, mask, _ = load_compact(out / "rounds" / f"r{r:02d}" / "ticket.safetensors")
        model = build_model("mirl", "tiny")
        model.load_state_dict(weights)
        # The sample recipe starts mirl at the identity, so `output` is pruned at the rate on its own.
        pruner = IterativeMagnitudePruner(
            model, rate=0.2, scope="global", layer_rates=identity_layer_rates("identity", 0.2)
        )
        pruner.active = list(active)
        pruner.apply_mask(saved[r])
        pruner.level = r
        assert pruner.next_mask() == saved[r + 1]
    assert saved[2].density == pytest.approx(0.64, abs=1e-4)


def test_only_rank_0_wrote_the_run_directory(ddp_run):
    log = ddp_run["watch_log"]
    assert not log.exists(), log.read_text()
    assert (ddp_run["masks"] / "rank1").is_dir(), "rank 1 ran (its test-only mask dumps are there)"
    names = sorted(str(p.relative_to(ddp_run["out"])) for p in ddp_run["out"].rglob("*") if p.is_file())
    assert not [n for n in names if ".tmp" in n or "rank" in n], names


# -- in-process collectives (torch.multiprocessing, gloo) ----------------------------------------
def _worker(rank: int, world: int, init: str) -> None:
    import torch.distributed as dist

    from lotteryir.engine import RestorationTrainer, TrainConfig
    from lotteryir.pruning import MaskMismatchError, verify_masks_agree

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        g = torch.Generator().manual_seed(0)
        mask = Mask({"a.weight": torch.rand(4, 5, generator=g) > 0.5, "b.weight": torch.rand(7, generator=g) > 0.3})
        verify_masks_agree(mask, level=1)  # identical: passes on both ranks
        if rank == 1:
            mask["b.weight"][3] = ~mask["b.weight"][3]
        with pytest.raises(MaskMismatchError, match="b.weight"):
            verify_masks_agree(mask, level=1)  # every rank learns of the mismatch, none hangs
        with pytest.raises(MaskMismatchError):
            verify_masks_agree(Mask({"a.weight": mask["a.weight"]}), level=1 + rank)

        # Each step's global batch is the single-process batch, split in rank order.
        items = [(torch.full((1, 2, 2), float(i)), torch.zeros(1, 2, 2)) for i in range(10)]
        trainer = RestorationTrainer(items, TrainConfig(steps=3, batch_size=4))
        assert trainer.batch_split() == (2, 2)
        mine = list(trainer._loader(5, 1, 0, 0, torch.device("cpu")).batch_sampler)
        everyone = [None] * world
        dist.all_gather_object(everyone, mine)
        from lotteryir.engine.train import derive_seed

        order = torch.randperm(10, generator=torch.Generator().manual_seed(derive_seed(5, 1, 0, 1)))
        single = order[:8].view(2, 4).tolist()
        assert [everyone[0][k] + everyone[1][k] for k in range(2)] == single
        with pytest.raises(ValueError, match="must divide evenly among the 2 processes"):
            RestorationTrainer(items, TrainConfig(steps=3, batch_size=3)).batch_split()

        # One DDP wrapper per model object, for the model's lifetime; a copy (a control) gets its own.
        import copy

        from lotteryir.engine.distributed import ddp_wrap

        net = torch.nn.Conv2d(1, 1, 3)
        wrapped = ddp_wrap(net, torch.device("cpu"))
        assert isinstance(wrapped, torch.nn.parallel.DistributedDataParallel)
        assert ddp_wrap(net, torch.device("cpu")) is wrapped
        twin = copy.deepcopy(net)
        assert ddp_wrap(twin, torch.device("cpu")) is not wrapped
        assert list(net.state_dict()) == ["weight", "bias"]
    finally:
        dist.destroy_process_group()


def test_mask_mismatch_is_an_error_on_every_rank_and_batches_split_by_rank(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(2, f"file://{tmp_path / 'rendezvous'}"), nprocs=2, join=True)


# -- your own DDP loop: no mask traffic, identical starting weights ------------------------------
def _own_loop_worker(rank: int, world: int, init: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from lotteryir.pruning import WeightMismatchError, ddp_ignore_masks

    from .pruning.nets import Awkward, fixed_batch

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    sent: list[torch.Tensor] = []
    real = dist._broadcast_coalesced

    def counting(group, tensors, size, src=0):  # DDP's buffer broadcast goes through here
        sent.extend(tensors)
        return real(group, tensors, size, src)

    dist._broadcast_coalesced = counting
    try:

        def broadcast_per_step(model: torch.nn.Module) -> tuple[float, list[torch.Tensor]]:
            ddp = DistributedDataParallel(model, find_unused_parameters=True)  # as README says: plain DDP
            x, y = fixed_batch()
            sent.clear()
            for _ in range(2):
                (ddp(x) - y).abs().mean().backward()
            return sum(t.numel() * t.element_size() for t in sent) / 2, list(sent)

        def size(model: torch.nn.Module, masks: bool) -> int:
            return sum(b.numel() * b.element_size() for n, b in model.named_buffers() if n.endswith("_mask") == masks)

        torch.manual_seed(0)
        model = Awkward()
        IterativeMagnitudePruner(model, rate=0.5).prune()
        per_step, tensors = broadcast_per_step(model)
        mask_ids = {id(b) for n, b in model.named_buffers() if n.endswith("_mask")}
        assert not any(id(t) in mask_ids for t in tensors)
        assert per_step == size(model, masks=False) > 0  # BatchNorm statistics still travel

        # What the documented recipe cost before: every mask at every forward.
        torch.manual_seed(0)
        plain = Awkward()
        IterativeMagnitudePruner(plain, rate=0.5)
        del plain._ddp_params_and_buffers_to_ignore
        assert broadcast_per_step(plain)[0] == size(plain, masks=False) + size(plain, masks=True)

        # A parent module wrapped instead: the public helper puts the child's masks on the list.
        torch.manual_seed(0)
        parent = torch.nn.Sequential(Awkward())
        IterativeMagnitudePruner(parent[0], rate=0.5)
        names = ddp_ignore_masks(parent)  # every name of the tied weight's shared mask too
        assert set(names) == {n for n, _ in parent.named_buffers(remove_duplicate=False) if n.endswith("_mask")}
        assert broadcast_per_step(parent)[0] == size(parent, masks=False)

        # Ranks seeded differently: refused when the pruner is created, naming the first tensor.
        torch.manual_seed(rank)
        with pytest.raises(WeightMismatchError, match=r"first differing tensor: stem\.weight"):
            IterativeMagnitudePruner(Awkward(), rate=0.5)
    finally:
        dist._broadcast_coalesced = real
        dist.destroy_process_group()


def test_own_ddp_loop_sends_no_masks_and_refuses_different_starting_weights(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_own_loop_worker, args=(2, f"file://{tmp_path / 'rendezvous'}"), nprocs=2, join=True)
