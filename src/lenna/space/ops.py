"""Candidate operations of the DARTS search space and the named op sets built from them.

Every op maps a tensor of ``C`` channels to ``C`` channels; ``stride=2`` halves height and width.
The layouts follow the DARTS reference implementation so parameter counts match it exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

NONE = "none"


class ReLUConvBN(nn.Sequential):
    """ReLU, conv k x k, batch norm: the 1x1 preprocessing of a cell's inputs."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise k x k with dilation, pointwise 1x1, batch norm."""

    def __init__(self, c_in, c_out, kernel, stride, padding, dilation, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two dilation-1 DilConv blocks; only the first one strides."""

    def __init__(self, c_in, c_out, kernel, stride, padding, affine=True):
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine),
        )


class FactorizedReduce(nn.Module):
    """Halves height and width with two strided 1x1 convs on offset inputs, concatenated."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even channel count, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        # The offset branch pads odd sizes so both halves have ceil(H/2) x ceil(W/2) pixels.
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, x.shape[3] % 2, 0, x.shape[2] % 2))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class Zero(nn.Module):
    """The ``none`` op: a zero tensor of the output shape (used by the search supernet)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


OpFactory = Callable[[int, int, bool], nn.Module]


OPS: dict[str, OpFactory] = {
    NONE: lambda c, stride, affine: Zero(stride),
    "max_pool_3x3": lambda c, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "avg_pool_3x3": lambda c, stride, affine: nn.AvgPool2d(
        3, stride=stride, padding=1, count_include_pad=False
    ),
    "skip_connect": lambda c, stride, affine: (
        nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine)
    ),
    "sep_conv_3x3": lambda c, stride, affine: SepConv(c, c, 3, stride, 1, affine),
    "sep_conv_5x5": lambda c, stride, affine: SepConv(c, c, 5, stride, 2, affine),
    "dil_conv_3x3": lambda c, stride, affine: DilConv(c, c, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda c, stride, affine: DilConv(c, c, 5, stride, 4, 2, affine),
    # NAS-Bench-201's convolutions: ReLU, conv, batch norm (its pool and skip are the ones above).
    "nor_conv_1x1": lambda c, stride, affine: ReLUConvBN(c, c, 1, stride, 0, affine),
    "nor_conv_3x3": lambda c, stride, affine: ReLUConvBN(c, c, 3, stride, 1, affine),
}


# Named op sets. The order fixes the feature columns of a spec, so a set is never reordered;
# a new space is added as a new name (its ops registered in OPS, or built by its own module).
OP_SETS: dict[str, tuple[str, ...]] = {
    "darts": (
        NONE,
        "max_pool_3x3",
        "avg_pool_3x3",
        "skip_connect",
        "sep_conv_3x3",
        "sep_conv_5x5",
        "dil_conv_3x3",
        "dil_conv_5x5",
    ),
    # NAS-Bench-201 (lenna.space.nb201), in the benchmark's own order.
    "nb201": (NONE, "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"),
    # LENNA's blocks (lenna.space.lenna_block, which builds these ops), in its normal_ops order.
    "lenna": (
        "3x3_Conv",
        "5x5_Conv",
        "3x3_ConvDW",
        "5x5_ConvDW",
        "3x3_dConv",
        "5x5_dConv",
        "3x3_dConvDW",
        "5x5_dConvDW",
        "3x3_maxpool",
        "3x3_avgpool",
        "Identity",
    ),
}


def op_set(name: str) -> tuple[str, ...]:
    """The ordered op names of a named op set; raises KeyError naming the known sets."""
    try:
        return OP_SETS[name]
    except KeyError:
        raise KeyError(f"unknown op set {name!r}; known: {sorted(OP_SETS)}") from None


def make_op(name: str, channels: int, stride: int, affine: bool = True) -> nn.Module:
    """Instantiate op ``name`` on ``channels`` channels with the given stride."""
    try:
        factory = OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known: {sorted(OPS)}") from None
    return factory(channels, stride, affine)
