"""asl_tcn_transformer: size, forward/backward, padding invariance, regulariser schedules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from signlip.callbacks import broadcast_progress
from signlip.models.asl_tcn_transformer import ASLTCNTransformer, MaskedBatchNorm1d, count_parameters
from signlip.models.regularizers import AdaptiveDropout, DropPath, LateDropout
from signlip.registry import MODELS


@pytest.fixture(scope="module")
def model() -> ASLTCNTransformer:
    torch.manual_seed(0)
    return ASLTCNTransformer(num_classes=25)


def test_registered_and_parameter_count(model):
    assert "asl_tcn_transformer" in MODELS
    n = count_parameters(model)
    assert abs(n - 1.97e6) / 1.97e6 < 0.05, n


def test_forward_backward(model):
    model.train()
    x = torch.randn(4, 40, 744)
    mask = torch.arange(40)[None] < torch.tensor([40, 31, 12, 1])[:, None]
    logits = model(x, mask)
    assert logits.shape == (4, 25) and torch.isfinite(logits).all()
    nn.functional.cross_entropy(logits, torch.arange(4)).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.zero_grad(set_to_none=True)


def _bn_state(model):
    return [(m.running_mean.clone(), m.running_var.clone()) for m in model.modules()
            if isinstance(m, MaskedBatchNorm1d)]


def test_padding_invariance_eval(model):
    model.eval()
    torch.manual_seed(1)
    x = torch.randn(2, 33, 744)
    mask = torch.arange(33)[None] < torch.tensor([33, 20])[:, None]
    garbage = torch.randn(2, 25, 744) * 1e4
    garbage[0, 3] = float("nan")
    xp = torch.cat([x, garbage], 1)
    maskp = torch.cat([mask, torch.zeros(2, 25, dtype=torch.bool)], 1)
    xp[1, 20:33] = 7e3  # also garbage in the batch's own padding
    with torch.no_grad():
        a = model(x, mask)
        b = model(xp, maskp)
        alone = model(x[1:, :20])  # the short sequence on its own, no mask at all
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a[1:], alone, atol=1e-5, rtol=1e-5)


def test_padding_invariance_train_batchnorm(model):
    """Train mode: batch statistics, outputs and running-stat updates ignore padding (dropout switched off)."""
    torch.manual_seed(2)
    x = torch.randn(3, 24, 744)
    mask = torch.arange(24)[None] < torch.tensor([24, 17, 9])[:, None]
    xp = torch.cat([x, torch.randn(3, 16, 744) * 1e3], 1)
    maskp = torch.cat([mask, torch.zeros(3, 16, dtype=torch.bool)], 1)

    def run(inp, m):
        model.train()
        for mod in model.modules():  # keep BatchNorm in train mode, silence every random regulariser
            if not isinstance(mod, (MaskedBatchNorm1d, nn.BatchNorm1d)) and mod is not model:
                mod.eval()
        before = [(a.clone(), b.clone()) for a, b in _bn_state(model)]
        out = model(inp, m)
        after = _bn_state(model)
        for mod in model.modules():  # restore the running stats so both runs start equal
            if isinstance(mod, MaskedBatchNorm1d):
                rm, rv = before.pop(0)
                mod.running_mean.copy_(rm)
                mod.running_var.copy_(rv)
        return out, after

    with torch.no_grad():
        a, sa = run(x, mask)
        b, sb = run(xp, maskp)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    for (ma, va), (mb, vb) in zip(sa, sb):
        torch.testing.assert_close(ma, mb, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(va, vb, atol=1e-5, rtol=1e-5)
    model.eval()


def test_masked_batchnorm_matches_plain_on_real_frames():
    torch.manual_seed(3)
    bn, ref = MaskedBatchNorm1d(8), nn.BatchNorm1d(8)
    x = torch.randn(2, 10, 8)
    mask = torch.arange(10)[None] < torch.tensor([10, 6])[:, None]
    y = bn(x, mask)
    real = torch.cat([x[0], x[1, :6]])  # (16, 8)
    torch.testing.assert_close(y[mask], ref(real), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    torch.testing.assert_close(bn.running_var, ref.running_var)


def test_regulariser_schedules():
    ad = AdaptiveDropout(0.1, 0.6, 30)
    assert ad.p == pytest.approx(0.1)
    ad.set_progress(15, 999)
    assert ad.p == pytest.approx(0.35)
    ad.set_progress(30, 0)
    assert ad.p == pytest.approx(0.6)
    ad.set_progress(100, 0)
    assert ad.p == pytest.approx(0.6)
    ad.set_progress(15, 0)  # a pure function of progress: going back (resume) gives the same state
    assert ad.p == pytest.approx(0.35)

    ld = LateDropout(0.8, start_step=100)
    x = torch.ones(1000)
    ld.train()
    ld.set_progress(0, 99)
    assert torch.equal(ld(x), x)
    ld.set_progress(3, 100)
    y = ld(x)
    assert 0.7 < (y == 0).float().mean() < 0.9
    ld.eval()
    assert torch.equal(ld(x), x)

    dp = DropPath(0.3, warmup_epochs=10).train()
    assert torch.equal(dp(torch.ones(8, 4)), torch.ones(8, 4))  # epoch 0: no drop yet
    dp.set_progress(5, 0)
    assert dp.p == pytest.approx(0.15)
    dp.set_progress(20, 0)
    out = dp(torch.ones(4000, 3))
    assert torch.all((out == 0).all(1) | (out[:, 0:1] == out).all(1))  # whole samples dropped
    assert 0.25 < (out[:, 0] == 0).float().mean() < 0.35


def test_trainer_progress_broadcast_reaches_regularisers(model):
    # The Trainer's generic hook (callbacks.broadcast_progress) calls set_progress(epoch=..., step=...) by keyword.
    hooked = [m for m in model.modules() if callable(getattr(m, "set_progress", None))]
    assert len(hooked) >= 3
    late = model.head[3]
    assert isinstance(late, LateDropout)
    broadcast_progress(model, epoch=30, step=late.start_step)
    assert model.top_dropout.p == pytest.approx(0.6) and late.active
    broadcast_progress(model, epoch=0, step=0)
    assert model.top_dropout.p == pytest.approx(0.1) and late.active == (late.start_step <= 0)
