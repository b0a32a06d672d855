"""The models by name: one table (:data:`MODELS`), read before flax loads.

Each entry names a preset of :mod:`.networks` (a builder) and the constraint it
puts on the data: the 1-D ResNet needs 1-D data (MNIST-1D). ``Config.model``'s
choices and its check against ``Config.dataset`` come from here; flax loads only
when a model is built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nsf_optax.experiments.resnet.networks import BasicBlock, ResNet

__all__ = ["MODELS", "BasicBlock", "Model", "ResNet", "create_model", "get_model"]


def _resnet18(**kwargs: Any) -> ResNet:
    from nsf_optax.experiments.resnet import networks

    return networks.ResNet18(**kwargs)


def _resnet20(**kwargs: Any) -> ResNet:
    from nsf_optax.experiments.resnet import networks

    return networks.ResNet20(**kwargs)


def _resnet1d(**kwargs: Any) -> ResNet:
    from nsf_optax.experiments.resnet import networks

    return networks.ResNet1D(**kwargs)


def _tiny(**kwargs: Any) -> ResNet:
    from nsf_optax.experiments.resnet import networks

    return networks.ResNetTiny(**kwargs)


@dataclasses.dataclass(frozen=True)
class Model:
    """One model of :data:`MODELS`.

    Attributes:
      build: the preset: called with ``num_classes``, ``in_features``, ``ndim``,
        ``rngs`` and optionally ``num_filters``; returns the :class:`ResNet`.
      ndim: the spatial dimensions of the data it needs (None: 1 or 2).
      help: one line for ``--help``.
    """

    build: Callable[..., ResNet]
    ndim: int | None
    help: str


MODELS: dict[str, Model] = {
    "resnet18": Model(_resnet18, None, "the CIFAR ResNet-18 (11M parameters)"),
    "resnet20": Model(_resnet20, None, "ResNet-20 (0.27M)"),
    "resnet1d": Model(_resnet1d, 1, "a small 1-D ResNet for MNIST-1D (0.1M)"),
    "tiny": Model(_tiny, None, "one block of width 4, for tests"),
}


def get_model(name: str) -> Model:
    """The :data:`MODELS` entry ``name``.

    Raises:
      ValueError: for an unknown name, naming the choices.
    """
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; choose one of {sorted(MODELS)}.")
    return MODELS[name]


def create_model(
    name: str,
    *,
    num_classes: int,
    in_features: int,
    ndim: int,
    seed: int,
    num_filters: int | None = None,
) -> ResNet:
    """Builds a model preset by name.

    Args:
      name: one of ``MODELS`` ("resnet18", "resnet20", "resnet1d", "tiny").
      num_classes: number of output logits.
      in_features: input channels.
      ndim: spatial dimensions of the data (1 or 2); "resnet1d" needs 1.
      seed: parameter initialisation seed.
      num_filters: overrides the preset's base width when given.

    Returns:
      The initialised model, in training mode.

    Raises:
      ValueError: an unknown name (naming the choices), or data of the wrong
        dimension for the model.
    """
    from flax import nnx

    model = get_model(name)
    if model.ndim is not None and ndim != model.ndim:
        raise ValueError(f"model {name!r} needs {model.ndim}-D data, got {ndim}-D.")
    kwargs: dict[str, Any] = dict(
        num_classes=num_classes, in_features=in_features, ndim=ndim
    )
    if num_filters is not None:
        kwargs["num_filters"] = num_filters
    return model.build(rngs=nnx.Rngs(seed), **kwargs)


_NETWORK_NAMES = (
    "BasicBlock",
    "ResNet",
    "ResNet18",
    "ResNet20",
    "ResNet1D",
    "ResNetTiny",
)


def __getattr__(name: str) -> Any:
    # The network classes and presets, from .networks (flax) on first use.
    if name in _NETWORK_NAMES:
        from nsf_optax.experiments.resnet import networks

        return getattr(networks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
