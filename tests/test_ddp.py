"""DDP: `torchrun --nproc_per_node=2 -m signlip train ...` on CPU with the gloo backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import SMALL_HANDS
from signlip.checkpoint import load_checkpoint


def test_torchrun_two_processes_gloo(tmp_path, hands_root):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "signlip",
           "train", f"data.synthetic.root={hands_root}", *SMALL_HANDS, "trainer.max_epochs=2",
           "logger.tensorboard=false", "hydra.run.dir=outputs/ddp"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((tmp_path / "outputs" / "ddp" / "run.json").read_text())
    assert run["world_size"] == 2
    ckpt = load_checkpoint(tmp_path / "outputs" / "ddp" / "checkpoints" / "last.pt")
    # Each rank sees half of the 520 training samples per epoch: 2 epochs × ceil(260 / 32) updates.
    assert ckpt["epoch"] == 2 and ckpt["step"] == 2 * 9
    # Validation metrics are gathered over both ranks: every val sample counted once.
    assert run["results"]["test"]["n_samples"] == 2 * 26 * 2
    assert run["results"]["test"]["accuracy"] > 3 / 26  # learning on top of correct reduction
    assert not list(tmp_path.glob("outputs/*/*/rank*"))
