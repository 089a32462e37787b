"""The candidate operations of the search spaces by name, and the named op sets built from them.

The modules that run them are in `lenna.space.layers` (DARTS and NAS-Bench-201 cells) and
`lenna.space.lenna_layers` (LENNA's blocks); this module imports no torch.
"""

from __future__ import annotations

NONE = "none"


# Named op sets. The order fixes the feature columns of a spec, so a set is never reordered;
# a new space is added as a new name (its ops registered in `CELL_OPS` and `layers.OPS`, or
# built by its own module).
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


# The ops a DARTS or NAS-Bench-201 cell can hold (`lenna.space.layers.OPS` builds each of them).
CELL_OPS = frozenset(OP_SETS["darts"] + OP_SETS["nb201"])


def op_set(name: str) -> tuple[str, ...]:
    """The ordered op names of a named op set; raises KeyError naming the known sets."""
    try:
        return OP_SETS[name]
    except KeyError:
        raise KeyError(f"unknown op set {name!r}; known: {sorted(OP_SETS)}") from None
