"""ResNets in Flax NNX: CIFAR-style ResNet-18 and ResNet-20, a 1-D ResNet, a tiny one.

The presets are built by name through :mod:`.models` (the table).

One :class:`ResNet` class covers images (``ndim=2``, inputs ``[B, H, W, C]``) and
sequences (``ndim=1``, inputs ``[B, L, C]``); the presets are partials of it, as in
flax's imagenet example. Every net starts with a 3x3 (or 3-tap) stride-1 stem and no
max-pool, which is the CIFAR-style stem suited to small inputs.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx


class BasicBlock(nnx.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1) shortcut."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        stride: int,
        ndim: int,
        rngs: nnx.Rngs,
    ):
        kernel = (3,) * ndim
        strides = (stride,) * ndim
        self.conv1 = nnx.Conv(
            in_features,
            out_features,
            kernel,
            strides=strides,
            use_bias=False,
            rngs=rngs,
        )
        self.bn1 = nnx.BatchNorm(out_features, momentum=0.9, rngs=rngs)
        self.conv2 = nnx.Conv(
            out_features, out_features, kernel, use_bias=False, rngs=rngs
        )
        # Zero-init the last scale of each residual branch (Goyal et al. 2017).
        self.bn2 = nnx.BatchNorm(
            out_features, momentum=0.9, scale_init=nnx.initializers.zeros, rngs=rngs
        )
        if stride != 1 or in_features != out_features:
            self.proj = nnx.Conv(
                in_features,
                out_features,
                (1,) * ndim,
                strides=strides,
                use_bias=False,
                rngs=rngs,
            )
            self.proj_bn = nnx.BatchNorm(out_features, momentum=0.9, rngs=rngs)
        else:
            self.proj = None
            self.proj_bn = None

    def __call__(self, x: jax.Array) -> jax.Array:
        residual = x
        y = nnx.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.proj is not None and self.proj_bn is not None:
            residual = self.proj_bn(self.proj(residual))
        return nnx.relu(y + residual)


class ResNet(nnx.Module):
    """A ResNet of :class:`BasicBlock` stages for 1-D or 2-D inputs.

    Args:
      stage_sizes: number of blocks in each stage; every stage after the first halves
        the spatial size and doubles the width.
      num_filters: width of the stem and of the first stage (> 0).
      num_classes: number of output logits.
      in_features: input channels (1 for digits and MNIST-1D, 3 for CIFAR-10).
      ndim: 1 for sequences ``[B, L, C]``, 2 for images ``[B, H, W, C]``.
      rngs: the parameter initialisation key stream.
    """

    def __init__(
        self,
        stage_sizes: Sequence[int],
        num_filters: int,
        *,
        num_classes: int,
        in_features: int,
        ndim: int = 2,
        rngs: nnx.Rngs,
    ):
        if ndim not in (1, 2):
            raise ValueError(f"ndim must be 1 or 2, got {ndim}.")
        if num_filters <= 0 or not stage_sizes or min(stage_sizes) <= 0:
            raise ValueError(
                "num_filters and every stage size must be positive, got "
                f"num_filters={num_filters}, stage_sizes={tuple(stage_sizes)}."
            )
        self.ndim = ndim
        self.stem = nnx.Conv(
            in_features, num_filters, (3,) * ndim, use_bias=False, rngs=rngs
        )
        self.stem_bn = nnx.BatchNorm(num_filters, momentum=0.9, rngs=rngs)
        blocks = []
        features = num_filters
        for i, size in enumerate(stage_sizes):
            out = num_filters * 2**i
            for j in range(size):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(
                    BasicBlock(features, out, stride=stride, ndim=ndim, rngs=rngs)
                )
                features = out
        self.blocks = nnx.List(blocks)
        self.head = nnx.Linear(features, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Logits ``[B, num_classes]`` for inputs ``[B, *spatial, C]``."""
        x = nnx.relu(self.stem_bn(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        x = jnp.mean(x, axis=tuple(range(1, 1 + self.ndim)))
        return self.head(x)


# He et al. (2016) Sec. 4.2: 3 stages of 3 blocks, widths 16/32/64 (0.27M parameters).
ResNet20 = functools.partial(ResNet, stage_sizes=(3, 3, 3), num_filters=16)
# The CIFAR variant of ResNet-18: 3x3 stem, no max-pool, widths 64..512 (11M).
ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2), num_filters=64)
# A small 1-D ResNet for MNIST-1D sequences of length 40 (about 0.1M parameters).
ResNet1D = functools.partial(ResNet, stage_sizes=(2, 2, 2), num_filters=32, ndim=1)
# Test-only: one block of width 4 (works for 1-D and 2-D inputs).
ResNetTiny = functools.partial(ResNet, stage_sizes=(1,), num_filters=4)
