"""`asl_tcn_transformer`: isolated-sign classifier over holistic motion features (reference system 003).

    x (B, T, 744), mask (B, T) True = real frame
      → stem Linear(744→192) + masked BatchNorm + AdaptiveDropout
      → 3 × TemporalConvBlock (depthwise gated conv k=17, dilations 1/2/4, masked BN, SiLU, dropout, DropPath)
      → 2-layer BiLSTM (96 per direction, packed so padding is never read) + projection
      → temporal self-attention (8 heads, learned positions, key padding mask)
      → 3 × Conv1DBlock (depthwise k=17 + pointwise, masked BN, SiLU, dropout, DropPath)
      → TransformerBlock (8 heads, FFN ×2, masked BN post-norm)
      → Linear + masked BN + AdaptiveDropout
      → masked mean ‖ masked max ‖ attention pooling (4 heads)  (B, 576)
      → Linear(576→192) + BN + SiLU + LateDropout(0.8) + Linear(192→num_classes)

1,968,601 parameters for 25 classes, as the reference's 1.97M.

Masking contract: the output for a sequence is the same whatever (and however much) padding follows it. Every
convolution input is zeroed at padded frames (with `torch.where`, so even NaN/inf garbage cannot leak), BatchNorm
statistics and running statistics use real frames only, the LSTM runs on packed sequences, attention masks padded
keys, and pooling ignores padded frames. Padding must come after the real frames (a prefix mask); a sequence
without any real frame is treated as one zero frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from signlip.models.regularizers import AdaptiveDropout, DropPath, LateDropout
from signlip.registry import MODELS

Mask = torch.Tensor | None


def _zero_padding(x: torch.Tensor, mask: Mask) -> torch.Tensor:
    """x (B, T, C): padded frames set to exactly 0 (where, not multiply: garbage may be NaN)."""
    return x if mask is None else torch.where(mask[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over channels of (B, T, C) whose batch statistics (and running-statistics updates) use only
    the real frames. Same parameters and buffers as `nn.BatchNorm1d`, so state dicts interchange."""

    def forward(self, x: torch.Tensor, mask: Mask = None) -> torch.Tensor:  # type: ignore[override]
        # x: (B, T, C), mask: (B, T)
        if mask is None or not (self.training or not self.track_running_stats):
            return F.batch_norm(x.transpose(1, 2), self.running_mean, self.running_var, self.weight, self.bias,
                                self.training or not self.track_running_stats, self._momentum(),
                                self.eps).transpose(1, 2)
        m = mask[..., None].to(x.dtype)  # (B, T, 1)
        xz = _zero_padding(x, mask)
        n = m.sum().clamp_min(1.0)
        mean = xz.sum((0, 1)) / n  # (C,)
        centred = _zero_padding(x - mean, mask)
        var = (centred * centred).sum((0, 1)) / n  # biased, used to normalise (as nn.BatchNorm1d)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                mom = self._momentum()
                unbiased = var * (n / (n - 1).clamp_min(1.0))
                self.running_mean.mul_(1 - mom).add_(mom * mean.detach())
                self.running_var.mul_(1 - mom).add_(mom * unbiased.detach())
        y = (x - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            y = y * self.weight + self.bias
        return y

    def _momentum(self) -> float:
        if self.momentum is None:  # cumulative moving average
            return 1.0 / max(int(self.num_batches_tracked), 1)
        return float(self.momentum)


class TemporalConvBlock(nn.Module):
    """Gated dilated depthwise-separable temporal convolution with residual and stochastic depth."""

    def __init__(self, dim: int, kernel_size: int = 17, dilation: int = 1, drop_rate: float = 0.2,
                 drop_path: float = 0.0, bn_momentum: float = 0.1) -> None:
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2  # "same", centred: isolated signs are classified offline
        self.conv_dw = nn.Conv1d(dim, dim, kernel_size, padding=pad, dilation=dilation, groups=dim)
        self.conv_pw = nn.Conv1d(dim, dim, 1)
        self.gate_dw = nn.Conv1d(dim, dim, kernel_size, padding=pad, dilation=dilation, groups=dim)
        self.gate_pw = nn.Conv1d(dim, dim, 1)
        self.bn = MaskedBatchNorm1d(dim, momentum=bn_momentum)
        self.dropout = nn.Dropout(drop_rate)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, mask: Mask) -> torch.Tensor:
        h = _zero_padding(x, mask).transpose(1, 2)  # (B, C, T)
        h = self.conv_pw(self.conv_dw(h)) * torch.sigmoid(self.gate_pw(self.gate_dw(h)))
        h = F.silu(self.bn(h.transpose(1, 2), mask))  # (B, T, C)
        return x + self.drop_path(self.dropout(h))


class Conv1DBlock(nn.Module):
    """Depthwise-separable temporal convolution + masked BN + SiLU, residual with stochastic depth."""

    def __init__(self, dim: int, kernel_size: int = 17, drop_rate: float = 0.2, drop_path: float = 0.0,
                 bn_momentum: float = 0.1) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding=(kernel_size - 1) // 2, groups=dim)
        self.pointwise = nn.Conv1d(dim, dim, 1)
        self.bn = MaskedBatchNorm1d(dim, momentum=bn_momentum)
        self.dropout = nn.Dropout(drop_rate)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, mask: Mask) -> torch.Tensor:
        h = self.pointwise(self.depthwise(_zero_padding(x, mask).transpose(1, 2)))  # (B, C, T)
        h = F.silu(self.bn(h.transpose(1, 2), mask))
        return x + self.drop_path(self.dropout(h))


class BidirectionalLSTM(nn.Module):
    """2-layer BiLSTM (dim/2 per direction) on packed sequences, projected back to dim, residual."""

    def __init__(self, dim: int, num_layers: int = 2, drop_rate: float = 0.15) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim // 2, num_layers=num_layers, bidirectional=True, batch_first=True,
                            dropout=drop_rate if num_layers > 1 else 0.0)
        self.projection = nn.Linear(2 * (dim // 2), dim)
        self.dropout = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor, mask: Mask) -> torch.Tensor:
        if mask is None:
            out, _ = self.lstm(x)
        else:
            lengths = mask.sum(1).clamp_min(1).cpu()
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.lstm(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])  # padding → 0
        return x + self.dropout(self.projection(out))


class MultiHeadSelfAttention(nn.Module):
    """Self-attention (B, T, C) → (B, T, C) with a key padding mask, via scaled_dot_product_attention."""

    def __init__(self, dim: int, num_heads: int = 8, attn_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads, self.attn_drop = num_heads, attn_drop
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: Mask) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        attn_mask = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, T): True = may attend
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                           dropout_p=self.attn_drop if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, t, c))


class TemporalAttention(nn.Module):
    """Learned temporal positions + multi-head self-attention, residual."""

    def __init__(self, dim: int, num_heads: int = 8, drop_rate: float = 0.15, max_positions: int = 1000) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, max_positions, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.attn = MultiHeadSelfAttention(dim, num_heads, drop_rate)
        self.dropout = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor, mask: Mask) -> torch.Tensor:
        if x.shape[1] > self.pos.shape[1]:
            raise ValueError(f"sequence of {x.shape[1]} frames exceeds max_positions={self.pos.shape[1]}")
        h = x + self.pos[:, : x.shape[1]]
        return x + self.dropout(self.attn(h, mask))


class TransformerBlock(nn.Module):
    """Post-norm transformer block with masked BatchNorm (as the GISLR-winner family) and a SiLU FFN."""

    def __init__(self, dim: int, num_heads: int = 8, expand: int = 2, drop_rate: float = 0.15,
                 bn_momentum: float = 0.1) -> None:
        super().__init__()
        self.attn = MultiHeadSelfAttention(dim, num_heads, drop_rate)
        self.attn_drop = nn.Dropout(drop_rate)
        self.attn_norm = MaskedBatchNorm1d(dim, momentum=bn_momentum)
        self.ffn = nn.Sequential(nn.Linear(dim, dim * expand), nn.SiLU(), nn.Dropout(drop_rate),
                                 nn.Linear(dim * expand, dim), nn.Dropout(drop_rate))
        self.ffn_norm = MaskedBatchNorm1d(dim, momentum=bn_momentum)

    def forward(self, x: torch.Tensor, mask: Mask) -> torch.Tensor:
        x = self.attn_norm(x + self.attn_drop(self.attn(x, mask)), mask)
        return self.ffn_norm(x + self.ffn(x), mask)


class AttentionPool(nn.Module):
    """Projection + 4-head self-attention over real frames, then the masked mean of its outputs: (B, C)."""

    def __init__(self, dim: int, num_heads: int = 4, attn_drop: float = 0.1) -> None:
        super().__init__()
        self.projection = nn.Linear(dim, dim)
        self.attn = MultiHeadSelfAttention(dim, num_heads, attn_drop)

    def forward(self, x: torch.Tensor, mask: Mask) -> torch.Tensor:
        return masked_mean(self.attn(self.projection(x), mask), mask)


def masked_mean(x: torch.Tensor, mask: Mask) -> torch.Tensor:
    """(B, T, C) → (B, C) mean over real frames."""
    if mask is None:
        return x.mean(1)
    m = mask[..., None].to(x.dtype)
    return _zero_padding(x, mask).sum(1) / m.sum(1).clamp_min(1.0)


def masked_max(x: torch.Tensor, mask: Mask) -> torch.Tensor:
    """(B, T, C) → (B, C) max over real frames."""
    if mask is None:
        return x.amax(1)
    return torch.where(mask[..., None], x, torch.full((), -torch.inf, dtype=x.dtype, device=x.device)).amax(1)


def example_input(batch: int = 2) -> tuple[dict, torch.Tensor, torch.Tensor | None]:
    """(kwargs, x, mask) of a small valid call: (B, 20, 744) motion features, every second sequence padded after 12
    frames (so the masked paths run)."""
    lengths = torch.full((batch,), 20)
    lengths[1::2] = 12
    return {"input_dim": 744}, torch.randn(batch, 20, 744), torch.arange(20)[None] < lengths[:, None]


@MODELS.register("asl_tcn_transformer", example=example_input)
class ASLTCNTransformer(nn.Module):
    """TCN + BiLSTM + attention + Conv1D/Transformer classifier for holistic motion features.

    forward(x (B, T, input_dim) float, mask (B, T) bool, True = real frame) → logits (B, num_classes).
    """

    def __init__(self, num_classes: int = 25, input_dim: int = 744, dim: int = 192, kernel_size: int = 17,
                 tcn_dilations: tuple[int, ...] | list[int] = (1, 2, 4),
                 tcn_drop_rates: tuple[float, ...] | list[float] = (0.15, 0.2, 0.25),
                 conv_drop_rates: tuple[float, ...] | list[float] = (0.15, 0.2, 0.25),
                 drop_path: float = 0.1, lstm_layers: int = 2, lstm_drop: float = 0.15, num_heads: int = 8,
                 attn_drop: float = 0.15, transformer_blocks: int = 1, transformer_expand: int = 2,
                 pool_heads: int = 4, max_positions: int = 1000,
                 stem_dropout: tuple[float, float, int] | list = (0.1, 0.3, 20),
                 top_dropout: tuple[float, float, int] | list = (0.1, 0.6, 30),
                 late_dropout: float = 0.8, late_dropout_step: int = 0, bn_momentum: float = 0.1) -> None:
        super().__init__()
        if len(tcn_dilations) != len(tcn_drop_rates):
            raise ValueError("tcn_dilations and tcn_drop_rates must have the same length")
        self.stem = nn.Linear(input_dim, dim, bias=False)
        self.stem_bn = MaskedBatchNorm1d(dim, momentum=bn_momentum)
        self.stem_dropout = AdaptiveDropout(*stem_dropout)
        self.tcn = nn.ModuleList(TemporalConvBlock(dim, kernel_size, d, r, drop_path, bn_momentum)
                                 for d, r in zip(tcn_dilations, tcn_drop_rates))
        self.lstm = BidirectionalLSTM(dim, lstm_layers, lstm_drop)
        self.temporal_attention = TemporalAttention(dim, num_heads, attn_drop, max_positions)
        self.convs = nn.ModuleList(Conv1DBlock(dim, kernel_size, r, drop_path, bn_momentum) for r in conv_drop_rates)
        self.transformers = nn.ModuleList(TransformerBlock(dim, num_heads, transformer_expand, attn_drop, bn_momentum)
                                          for _ in range(transformer_blocks))
        self.top = nn.Linear(dim, dim)
        self.top_bn = MaskedBatchNorm1d(dim, momentum=bn_momentum)
        self.top_dropout = AdaptiveDropout(*top_dropout)
        self.attention_pool = AttentionPool(dim, pool_heads, 0.1)
        self.head = nn.Sequential(nn.Linear(3 * dim, dim), nn.BatchNorm1d(dim), nn.SiLU(),
                                  LateDropout(late_dropout, late_dropout_step), nn.Linear(dim, num_classes))
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv1d):
                # fan_in: the depthwise convs have fan_out = kernel_size only, which would blow up activations
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="linear")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LSTM):
                for name, p in m.named_parameters():
                    if "weight" in name:
                        nn.init.orthogonal_(p)
                    else:
                        nn.init.zeros_(p)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, T, F) float, mask: (B, T) bool → logits (B, num_classes)
        if mask is not None:
            mask = mask.to(torch.bool)
            if bool(mask.all()):
                mask = None  # nothing padded: take the plain (faster) path
            else:
                mask = mask.clone()
                # An empty sequence counts as one zero frame. Not `|=`: ONNX (torch.onnx) has no in-place or.
                mask[:, 0] = mask[:, 0] | ~mask.any(1)
                x = _zero_padding(x, mask)
        x = self.stem_dropout(self.stem_bn(self.stem(x), mask))  # (B, T, dim)
        for block in self.tcn:
            x = block(x, mask)
        x = self.lstm(x, mask)
        x = self.temporal_attention(x, mask)
        for block in self.convs:
            x = block(x, mask)
        for block in self.transformers:
            x = block(x, mask)
        x = self.top_dropout(self.top_bn(self.top(x), mask))
        pooled = torch.cat([masked_mean(x, mask), masked_max(x, mask), self.attention_pool(x, mask)], dim=-1)
        return self.head(pooled)  # (B, num_classes)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameter count."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["ASLTCNTransformer", "MaskedBatchNorm1d", "count_parameters", "masked_max", "masked_mean"]
