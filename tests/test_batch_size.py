"""The CUDA batch-size finder, on CPU: out-of-memory is simulated for batches above a limit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from signlip import batch_size as bsf
from signlip.errors import SignlipError
from signlip.objectives.classification import ClassifyObjective


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x, mask=None):
        return self.fc(self.bn(x))


def _batch(bs: int) -> dict[str, torch.Tensor]:
    return {"x": torch.randn(bs, 4), "y": torch.randint(0, 3, (bs,))}


def _oom_above(limit: int, monkeypatch) -> list[int]:
    """Make every step with more than `limit` samples raise CUDA's out-of-memory error; record the sizes tried."""
    tried = []
    real = bsf.try_step

    def fake(model, objective, batch, amp_dtype=None):
        tried.append(len(batch["y"]))
        if len(batch["y"]) > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        real(model, objective, batch, amp_dtype)

    monkeypatch.setattr(bsf, "try_step", fake)
    return tried


def test_backs_off_bisects_and_reports(monkeypatch):
    tried = _oom_above(40, monkeypatch)
    lines = []
    model = Tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    size = bsf.find_batch_size(model, ClassifyObjective(), _batch, "cpu", start=256, report=lines.append)
    # 256, 128, 64 fail; 32 fits; bisect 48 (fail), 40 (fits), 44 (fail) → 40 → 0.9 headroom → 36 → multiple of 8
    assert tried == [256, 128, 64, 32, 48, 40, 44]
    assert size == 32
    assert lines == ["batch size finder: 32 on cpu (out of memory at 256, 128, 64, 48, 44)"]
    # the probe leaves weights, BatchNorm statistics and gradients as they were
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())


def test_start_that_fits_is_kept(monkeypatch):
    tried = _oom_above(10_000, monkeypatch)
    assert bsf.find_batch_size(Tiny(), ClassifyObjective(), _batch, "cpu", start=64, report=None) == 64
    assert tried == [64]


def test_nothing_fits_is_a_clear_error(monkeypatch):
    _oom_above(0, monkeypatch)
    with pytest.raises(SignlipError, match="even batch size 2 runs out of memory"):
        bsf.find_batch_size(Tiny(), ClassifyObjective(), _batch, "cpu", start=16, minimum=2, report=None)


def test_other_errors_are_not_swallowed():
    def broken(bs):
        return {"x": torch.randn(bs, 5), "y": torch.zeros(bs, dtype=torch.long)}  # wrong feature size

    with pytest.raises(RuntimeError, match="running_mean|shapes"):
        bsf.find_batch_size(Tiny(), ClassifyObjective(), broken, "cpu", start=8, report=None)


def test_auto_batch_size_uses_the_longest_samples_and_falls_back_on_cpu(monkeypatch):
    import numpy as np

    from signlip.data.base import BatchTransform, DataBundle

    class Split:
        lengths = np.array([3, 9, 5])

        def __len__(self):
            return 3

        def __getitems__(self, idx):
            t = int(self.lengths[idx].max())
            return {"x": torch.randn(len(idx), 4), "y": torch.zeros(len(idx), dtype=torch.long),
                    "t": torch.full((len(idx),), t)}

    data = DataBundle(classes=["a", "b", "c"], splits={"train": Split()}, batch_transform=BatchTransform())
    batch = bsf.worst_case_batches(data, "cpu")(4)
    assert batch["t"].tolist() == [9, 9, 9, 9]  # the longest sample (index 1) comes first
    lines = []
    assert bsf.auto_batch_size(Tiny(), ClassifyObjective(), data, "cpu", None, report=lines.append) == 32
    assert "CUDA devices only" in lines[0]


def test_batch_size_auto_is_wired_into_training(tmp_path, hands_overrides):
    """`data.batch_size=auto` trains; off CUDA it falls back to 32 (here: 520 samples → 17 updates per epoch)."""
    from conftest import train_in_process
    from signlip.checkpoint import load_checkpoint

    result = train_in_process(tmp_path / "auto", [*hands_overrides, "data.batch_size=auto", "trainer.max_epochs=1",
                                                  "trainer.evaluate_test=false"])
    assert load_checkpoint(Path(result["checkpoint_dir"]) / "last.pt")["step"] == 17
