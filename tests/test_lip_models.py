"""Lip-reading models: the reference systems' exact sizes, shapes, gradients and the clip augmentations."""

from __future__ import annotations

import pytest
import torch

from signlip.data.clips.augment import augment_clips
from signlip.registry import build_model


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_lip_cnnlstm_has_exactly_the_reference_parameter_count():
    model = build_model("lip_cnnlstm", num_classes=4)
    assert n_params(model) == 721_044
    assert model.lstm.input_size == 1152 and model.lstm.hidden_size == 128 and model.lstm.num_layers == 1


def test_lip_cnn3d_has_exactly_the_reference_parameter_count():
    assert n_params(build_model("lip_cnn3d", num_classes=5)) == 5_215_237


@pytest.mark.parametrize("name,shape", [("lip_cnnlstm", (2, 1, 32, 64, 96)), ("lip_cnn3d", (2, 1, 8, 32, 32))])
def test_forward_backward_on_clips(name, shape):
    torch.manual_seed(0)
    model = build_model(name, num_classes=4)
    logits = model(torch.rand(shape))
    assert logits.shape == (2, 4) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_lip_cnnlstm_reads_time_in_order():
    """The LSTM sees frames in order: reversing time changes the output (a bag-of-frames model would not)."""
    torch.manual_seed(0)
    model = build_model("lip_cnnlstm", num_classes=4).eval()
    x = torch.rand(2, 1, 8, 32, 48)
    with torch.no_grad():
        assert not torch.allclose(model(x), model(x.flip(2)), atol=1e-5)


def test_augment_is_consistent_across_frames_and_per_clip():
    g = torch.Generator().manual_seed(0)
    frame = torch.rand(1, 1, 1, 16, 24)
    x = frame.expand(64, 1, 6, 16, 24).contiguous()  # 64 clips of one still frame repeated 6 times
    out = augment_clips(x, p_hflip=0.5, brightness=0.15, p_brightness=0.7, contrast=(0.9, 1.1), p_contrast=0.5,
                        resized_crop={"scale": (0.6, 1.0), "ratio": (0.75, 1.33)}, p_resized_crop=0.5, generator=g)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    # Every frame of a clip got the same transform …
    torch.testing.assert_close(out, out[:, :, :1].expand_as(out))
    # … while clips differ from each other, and some are flipped copies.
    assert len({round(v, 4) for v in out.mean(dim=(1, 2, 3, 4)).tolist()}) > 32
    flipped = (augment_clips(x, p_hflip=1.0) - x.flip(-1)).abs().max()
    assert flipped == 0


def test_augment_rgb_colour_jitter_and_crop_keep_shape():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 5, 32, 40)
    out = augment_clips(x, saturation=(0.0, 0.0), generator=g)  # saturation 0 → gray: channels equal
    torch.testing.assert_close(out[:, 0], out[:, 1], atol=1e-6, rtol=0)
    crop = augment_clips(x, resized_crop={"scale": (0.25, 0.25), "ratio": (1.0, 1.0)}, generator=g)
    assert crop.shape == x.shape and not torch.allclose(crop, x)
    ident = augment_clips(x, resized_crop={"scale": (1.0, 1.0), "ratio": (1.25, 1.25)}, generator=g)
    torch.testing.assert_close(ident, x, atol=1e-5, rtol=0)  # full-frame crop at the frame's aspect = identity


@pytest.mark.parametrize("stored", [(2, 8, 16, 24), (2, 8, 16, 24, 3)])  # gray (B, T, H, W) and RGB (…, 3) batches
def test_channels_last_layout_is_applied_to_the_model_input(stored):
    """trainer.channels_last lays out the transformed (B, C, T, H, W) input — not the stored uint8 batch."""
    from signlip.data.clips.datamodule import ClipTransform
    from signlip.trainer import model_input

    channels = 1 if len(stored) == 4 else 3
    transform = ClipTransform([0.0] * channels, [1.0] * channels, augment=None)
    batch = {"x": torch.randint(0, 256, stored, dtype=torch.uint8), "y": torch.zeros(2, dtype=torch.long)}
    plain = model_input(batch, transform, torch.device("cpu"), channels_last=False, training=False)["x"]
    laid = model_input(batch, transform, torch.device("cpu"), channels_last=True, training=False)["x"]
    assert laid.shape == (2, channels, 8, 16, 24)
    assert laid.is_contiguous(memory_format=torch.channels_last_3d) and laid.stride(1) == 1
    assert torch.equal(laid, plain)


def test_channels_last_restrides_single_input_channel_conv_weights():
    """The first lip conv (1 input channel) must be laid out like the rest, or every step pays layout copies."""
    from signlip.trainer import to_channels_last

    model = build_model("lip_cnnlstm", num_classes=4)
    to_channels_last(model)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last_3d) and c.weight.stride(1) == 1
               for c in convs)
