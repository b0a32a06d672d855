"""A small CIFAR-style ResNet-18 in Flax NNX, for the train-step benchmark only.

The usual CIFAR variant (He et al. 2016, as in most CIFAR-10 baselines): a 3x3
stem without max-pooling, four stages of two basic blocks (64, 128, 256, 512
channels), global average pooling and a dense head. 11.17 M parameters for 10
classes. Kept here, not imported from ``nsf_optax.examples``, so that the
benchmark depends only on the optimizer code it measures.
"""

from __future__ import annotations

import jax
from flax import nnx


class BasicBlock(nnx.Module):
    """Two 3x3 conv-BN layers with an identity or 1x1-conv shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(
            in_ch, out_ch, (3, 3), strides=stride, use_bias=False, rngs=rngs
        )
        self.bn1 = nnx.BatchNorm(out_ch, rngs=rngs)
        self.conv2 = nnx.Conv(out_ch, out_ch, (3, 3), use_bias=False, rngs=rngs)
        self.bn2 = nnx.BatchNorm(out_ch, rngs=rngs)
        if stride != 1 or in_ch != out_ch:
            self.shortcut_conv = nnx.Conv(
                in_ch, out_ch, (1, 1), strides=stride, use_bias=False, rngs=rngs
            )
            self.shortcut_bn = nnx.BatchNorm(out_ch, rngs=rngs)
        else:
            self.shortcut_conv = None
            self.shortcut_bn = None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = nnx.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.shortcut_conv is not None:
            x = self.shortcut_bn(self.shortcut_conv(x))
        return nnx.relu(x + y)


class ResNet18(nnx.Module):
    """ResNet-18 for 32x32 inputs (NHWC)."""

    def __init__(self, num_classes: int = 10, *, rngs: nnx.Rngs):
        self.stem = nnx.Conv(3, 64, (3, 3), use_bias=False, rngs=rngs)
        self.stem_bn = nnx.BatchNorm(64, rngs=rngs)
        blocks = []
        in_ch = 64
        for out_ch, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks.append(BasicBlock(in_ch, out_ch, stride, rngs=rngs))
            blocks.append(BasicBlock(out_ch, out_ch, 1, rngs=rngs))
            in_ch = out_ch
        self.blocks = nnx.List(blocks)
        self.head = nnx.Linear(512, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = nnx.relu(self.stem_bn(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(axis=(1, 2)))
