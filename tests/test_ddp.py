"""DDP: `torchrun --nproc_per_node=2 -m signlip train ...` on CPU with the gloo backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import SMALL_HANDS
from signlip.checkpoint import load_checkpoint


@pytest.mark.slow  # torchrun with two processes: ~10 s
def test_torchrun_two_processes_gloo(tmp_path, hands_root):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "signlip",
           "train", f"data.synthetic.root={hands_root}", *SMALL_HANDS, "trainer.max_epochs=2",
           "logger.tensorboard=false", "hydra.run.dir=outputs/ddp"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("DDP: world size 2, backend gloo") == 1, proc.stdout  # said once, by rank 0
    run = json.loads((tmp_path / "outputs" / "ddp" / "run.json").read_text())
    assert run["world_size"] == 2
    ckpt = load_checkpoint(tmp_path / "outputs" / "ddp" / "checkpoints" / "last.pt")
    # Each rank sees half of the 520 training samples per epoch: 2 epochs × ceil(260 / 32) updates.
    assert ckpt["epoch"] == 2 and ckpt["step"] == 2 * 9
    # Validation metrics are gathered over both ranks: every val sample counted once.
    assert run["results"]["test"]["n_samples"] == 2 * 26 * 2
    assert run["results"]["test"]["accuracy"] > 3 / 26  # learning on top of correct reduction
    assert not list(tmp_path.glob("outputs/*/*/rank*"))


def _main_first_worker(rank: int, world: int, init: str, folder: str, fail: bool) -> None:
    import time
    from pathlib import Path

    import torch.distributed as tdist

    from signlip import distributed as dist
    from signlip.errors import SignlipError

    tdist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    marker, log = Path(folder) / "prepared", Path(folder) / f"rank{rank}.txt"
    try:
        with dist.main_process_first():
            if rank == 0:
                time.sleep(1.0)  # a slow preparation: the others must not start meanwhile
                if fail:
                    raise RuntimeError("no space left on device")
                marker.write_text("done")
            log.write_text("saw the prepared data" if marker.exists() else "started too early")
    except SignlipError as exc:
        log.write_text(f"stopped: {exc}")
    except RuntimeError:
        log.write_text("failed itself")
    finally:
        dist.teardown()  # its wait group too: a gloo group alive at interpreter exit can abort the process


@pytest.mark.parametrize("fail", [False, pytest.param(True, marks=pytest.mark.slow)])  # ~7 s each
def test_main_process_first_makes_the_others_wait_for_rank_0_and_stop_when_it_fails(tmp_path, fail):
    """Three gloo processes: ranks 1 and 2 enter the block only after rank 0 has finished it (they see its file);
    when rank 0 fails in it, they stop with one line pointing at its error instead of waiting or redoing it."""
    import torch.multiprocessing as mp

    world = 3
    mp.spawn(_main_first_worker, args=(world, f"file://{tmp_path / 'init'}", str(tmp_path), fail), nprocs=world)
    logs = [(tmp_path / f"rank{r}.txt").read_text() for r in range(world)]
    if fail:
        assert logs[0] == "failed itself" and all(log.startswith("stopped: rank 0 stopped") for log in logs[1:])
    else:
        assert logs == ["saw the prepared data"] * world, logs


@pytest.mark.slow  # torchrun with two processes, RGB videos prepared: ~20 s
def test_torchrun_prepares_the_clip_cache_once(tmp_path):
    """Under torchrun rank 0 generates and prepares the data while the other rank waits, then reads it: one
    "prepared … new" line, not one per rank racing on the same cache files."""
    from signlip.benchmarking import tiny_data_overrides

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "signlip",
           "train", "task=i3d", *tiny_data_overrides("i3d", tmp_path / "data"), "trainer.max_epochs=1",
           "logger.tensorboard=false", "hydra.run.dir=outputs/ddp"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    prepared = [line for line in proc.stdout.splitlines() if line.startswith("prepared ")]
    assert len(prepared) == 1 and "reused 0" in prepared[0], proc.stdout
    assert json.loads((tmp_path / "outputs" / "ddp" / "run.json").read_text())["world_size"] == 2


NO_SYNC_SCRIPT = r"""
import gc
import sys

import pytest
import torch
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from omegaconf import OmegaConf
from conftest import compose
from signlip import distributed as dist
from signlip.build import build_run, make_trainer

dist.setup(torch.device("cpu"))
counts = {}
for accum in (1, 2):
    cfg = compose("train", sys.argv[1:] + [f"trainer.grad_accum_steps={accum}", "trainer.limit_train_batches=4",
                                           "trainer.device=cpu"])
    run = build_run(OmegaConf.to_container(cfg, resolve=True), OmegaConf.to_object(cfg.trainer))
    trainer = make_trainer(run, "unused")
    calls = [0]

    def hook(state, bucket):  # counts gradient all-reduces, then does the usual one
        calls[0] += 1
        return allreduce_hook(None, bucket)

    trainer._ddp_module.register_comm_hook(None, hook)
    trainer.train_one_epoch()
    counts[accum] = (calls[0], trainer.step)
if dist.is_main():
    print("COUNTS", counts[1][0], counts[1][1], counts[2][0], counts[2][1])
del trainer, run, hook  # the DDP wrapper holds the process group: freed now, not while the interpreter shuts down
gc.collect()
dist.teardown()
"""


@pytest.mark.slow  # torchrun with two processes: ~10 s
def test_ddp_skips_gradient_all_reduce_on_accumulation_micro_steps(tmp_path, hands_root):
    """With grad_accum_steps=2 the gradients are all-reduced once per update (DDP no_sync on the first micro-step),
    i.e. half as often as without accumulation, over the same 4 batches."""
    script = tmp_path / "no_sync.py"
    script.write_text(NO_SYNC_SCRIPT)
    tests_dir = os.path.dirname(__file__)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           f"data.synthetic.root={hands_root}", *SMALL_HANDS, "logger.tensorboard=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": tests_dir + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("COUNTS"))
    calls1, steps1, calls2, steps2 = map(int, line.split()[1:])
    assert (steps1, steps2) == (4, 2)
    assert calls1 > 0 and calls2 * 2 == calls1, line


def test_teardown_lets_a_later_process_group_get_its_own_wait_group(tmp_path):
    """teardown drops the wait group with the process groups (none is left for interpreter exit to destroy), so a
    second run in the same process waits on a group of its own, not on the destroyed one."""
    import torch
    import torch.distributed as tdist

    from signlip import distributed as dist

    for attempt in range(2):
        tdist.init_process_group("gloo", init_method=f"file://{tmp_path / f'init{attempt}'}", rank=0, world_size=1)
        try:
            tdist.broadcast(torch.zeros(1), src=0, group=dist._wait_group())
        finally:
            dist.teardown()
        assert dist._WAIT_GROUP is None
