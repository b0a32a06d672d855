"""The training configuration: a frozen, typed dataclass whose values are checked.

``Config`` holds every knob of
:func:`nsf_optax.experiments.resnet.train.train_and_evaluate`;
the modules next to this one (``digits``, ``mnist1d``, ``cifar10``, ``tiny``) return
dataset-specific copies through ``get_config()``. Override fields with
``dataclasses.replace`` or on the command line (``--learning_rate 0.05``): the
command line is generated from the field types (``Literal`` fields give the
choices), :data:`FIELD_BOUNDS` (the allowed ranges) and the ``Attributes`` section
below (the help texts), so the three cannot drift apart.

The p-schedule defaults are this project's choice: the paper's extracted text lost the
numbers of its pulse-tidal run, keeping only "a pulse phase, then alternating sign every
200 iterations".

This module imports only the standard library: ``--help`` reads it before jax loads.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import typing
from typing import Any, Literal

from nsf_optax.experiments.runner.errors import ConfigError, ConfigTypeError

Dataset = Literal["digits", "mnist1d", "cifar10"]
Model = Literal["resnet18", "resnet20", "resnet1d", "tiny"]
Optimizer = Literal["sgd", "adam", "padam", "nsf"]
NsfFlavour = Literal["sgd", "adam"]
Normalize = Literal["rms", "none"]
PSchedule = Literal["constant", "cosine_tidal", "pulse_tidal"]
LrSchedule = Literal["warmup_cosine", "piecewise"]

DATASETS = typing.get_args(Dataset)
MODELS = typing.get_args(Model)
OPTIMIZERS = typing.get_args(Optimizer)
NSF_FLAVOURS = typing.get_args(NsfFlavour)
NORMALIZE = typing.get_args(Normalize)
P_SCHEDULES = typing.get_args(PSchedule)
LR_SCHEDULES = typing.get_args(LrSchedule)

# Peak learning rates when Config.learning_rate is None.
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "nsf": 0.1, "padam": 0.1, "adam": 1e-3}
PADAM_P = 0.125  # Padam's partial exponent (Chen et al. 2020).


@dataclasses.dataclass(frozen=True)
class Bound:
    """An allowed interval for a numeric field; float fields must also be finite.

    Attributes:
      low: the lower end (None: unbounded).
      high: the upper end (None: unbounded).
      low_open: exclude ``low`` itself.
      high_open: exclude ``high`` itself.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        """The interval in words: "> 0", ">= 0", "in [0, 1)" or "finite"."""
        low, high = _number(self.low), _number(self.high)
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"in {left}{low}, {high}{right}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {low}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {high}"
        return "finite"

    def contains(self, value: float) -> bool:
        """Whether ``value`` is finite and inside the interval."""
        if not math.isfinite(value):
            return False
        if self.low is not None and (
            value < self.low or (self.low_open and value == self.low)
        ):
            return False
        return self.high is None or not (
            value > self.high or (self.high_open and value == self.high)
        )


def _number(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


_POSITIVE = Bound(low=0, low_open=True)
_NON_NEGATIVE = Bound(low=0)
_FINITE = Bound()
_UNIT = Bound(low=0, high=1, high_open=True)

# The allowed range of every numeric field (float fields are also finite).
FIELD_BOUNDS: dict[str, Bound] = {
    "num_filters": _POSITIVE,
    "p_value": _FINITE,
    "p_min": _FINITE,
    "p_max": _FINITE,
    "p_period_steps": _POSITIVE,
    "pulse_value": _FINITE,
    "pulse_steps": _NON_NEGATIVE,
    "tidal_high_value": _FINITE,
    "tidal_low_value": _FINITE,
    "tidal_every_steps": _POSITIVE,
    "learning_rate": _POSITIVE,
    "warmup_steps": _NON_NEGATIVE,
    "momentum": _UNIT,
    "b2": _UNIT,
    "eps": _NON_NEGATIVE,
    "weight_decay": _NON_NEGATIVE,
    "batch_size": _POSITIVE,
    "eval_batch_size": _POSITIVE,
    "num_steps": _POSITIVE,
    "eval_every_steps": _POSITIVE,
    "checkpoint_every_steps": _NON_NEGATIVE,
    "crop_padding": _NON_NEGATIVE,
    "label_noise": _UNIT,
    "train_size": _POSITIVE,
    "data_seed": Bound(low=0, high=2**32, high_open=True),
    # jax.random.key and numpy's default_rng both take any 32-bit unsigned seed.
    "seed": Bound(low=0, high=2**32, high_open=True),
}


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything one training run depends on.

    Attributes:
      dataset: the offline dataset: scikit-learn's 8x8 digits, MNIST-1D generated
        procedurally, or CIFAR-10 read from data_dir.
      data_dir: local CIFAR-10 directory (python-pickle batches); cifar10 only.
      model: the ResNet preset ("tiny" is for tests).
      num_filters: the model's base width; None keeps the preset's (64, 16, 32, 4).
      optimizer: "sgd" (momentum: the paper's p = 0 baseline), "adam", "padam"
        (Adam-flavoured, p = 1/8) or "nsf" (p from p_schedule).
      nsf_flavour: "sgd" (nsf_optax.nsf_sgd: momentum times the p-gain, the
        paper's ResNet setting) or "adam" (nsf_optax.nsfw).
      normalize: "rms" (each leaf's update keeps the RMS of the p = 0 direction, so
        p changes only the relative weighting across coordinates) or "none" (the
        raw gain vhat**-p, which also changes the step size by orders of magnitude).
      p_schedule: the p(t) of optimizer "nsf".
      p_value: the constant p of p_schedule "constant".
      p_min, p_max: cosine_tidal sweeps p over [p_min, p_max], starting at p_max.
      p_period_steps: the period of cosine_tidal, in steps.
      pulse_value: p during the pulse phase of pulse_tidal.
      pulse_steps: the length of the pulse phase of pulse_tidal.
      tidal_high_value, tidal_low_value: after the pulse, p alternates between these.
      tidal_every_steps: steps between the alternations of pulse_tidal.
      learning_rate: peak learning rate; None uses the optimizer's default (0.1 for
        sgd, padam and nsf; 1e-3 for adam).
      lr_schedule: "warmup_cosine" (linear warmup, cosine decay to 0) or
        "piecewise" (constant, divided by 10 at 50 % and 75 % of num_steps).
      warmup_steps: warmup length of warmup_cosine (below num_steps).
      momentum: heavy-ball momentum of the SGD flavour; b1 of the Adam flavour.
      b2: second-moment EMA decay.
      eps: denominator guard.
      weight_decay: coupled L2 (added to the gradient, as torch SGD) for sgd and
        nsf/sgd; decoupled (AdamW) for adam, padam and nsf/adam. Kernels only.
      batch_size: global batch size (a multiple of the device count).
      eval_batch_size: evaluation batch size (a multiple of the device count).
      num_steps: training steps.
      eval_every_steps: evaluate on the test set (and log) every this many steps.
      checkpoint_every_steps: save a verified checkpoint every this many steps (0:
        only at the end).
      crop_padding: random-crop padding in pixels (0 disables).
      flip: random horizontal flips (images without a handedness only).
      label_noise: the fraction of training labels replaced by a uniformly drawn
        other class (test labels stay clean); 0 disables.
      train_size: train on this many examples, a seeded subset of the training
        set (None: all of it).
      data_seed: seeds the training subset and the label noise, so that runs with
        different seeds see the same (noisy) training set.
      seed: seeds parameters, data order and augmentation.
      resume: continue from the newest verified checkpoint in the workdir (an error
        when there is none); without it a workdir holding checkpoints is refused.
      progress: show a tqdm progress bar.
    """

    dataset: Dataset = "mnist1d"
    data_dir: str | None = None
    model: Model = "resnet1d"
    num_filters: int | None = None
    optimizer: Optimizer = "nsf"
    nsf_flavour: NsfFlavour = "sgd"
    normalize: Normalize = "rms"
    p_schedule: PSchedule = "pulse_tidal"
    p_value: float = -0.125
    p_min: float = -0.25
    p_max: float = 0.25
    p_period_steps: int = 400
    pulse_value: float = -0.25
    pulse_steps: int = 200
    tidal_high_value: float = 0.25
    tidal_low_value: float = -0.25
    tidal_every_steps: int = 200
    learning_rate: float | None = None
    lr_schedule: LrSchedule = "warmup_cosine"
    warmup_steps: int = 100
    momentum: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 5e-4
    batch_size: int = 128
    eval_batch_size: int = 500
    num_steps: int = 2000
    eval_every_steps: int = 100
    checkpoint_every_steps: int = 500
    crop_padding: int = 2
    flip: bool = False
    label_noise: float = 0.0
    train_size: int | None = None
    data_seed: int = 0
    seed: int = 0
    resume: bool = False
    progress: bool = True

    def __post_init__(self):
        for name, kind in field_types().items():
            value = check_field(name, kind, getattr(self, name))
            object.__setattr__(self, name, value)  # numpy/jax scalars -> Python
        if self.p_min > self.p_max:
            raise ConfigError(
                f"p_min ({self.p_min}) must not exceed p_max ({self.p_max}).",
                ("p_min", "p_max"),
            )
        if self.lr_schedule == "warmup_cosine" and self.warmup_steps >= self.num_steps:
            raise ConfigError(
                f"warmup_steps ({self.warmup_steps}) must be below num_steps "
                f"({self.num_steps}).",
                ("warmup_steps", "num_steps"),
            )
        if self.dataset == "cifar10" and not self.data_dir:
            raise ConfigError(
                "dataset 'cifar10' needs data_dir: a local directory with the "
                "python-pickle batches of cifar-10-python.tar.gz.",
                ("data_dir",),
            )
        if self.model == "resnet1d" and self.dataset != "mnist1d":
            raise ConfigError(
                "model 'resnet1d' needs dataset 'mnist1d'.", ("model", "dataset")
            )

    @property
    def peak_learning_rate(self) -> float:
        """``learning_rate``, or the optimizer's default when it is None."""
        if self.learning_rate is not None:
            return self.learning_rate
        return DEFAULT_LEARNING_RATES[self.optimizer]

    @property
    def method(self) -> str:
        """A short label: "sgd", "adam", "padam" or e.g. "nsf-pulse".

        nsf labels name the p schedule ("const", "cosine", "pulse"), then "-adam" for
        the Adam flavour and "-raw" for ``normalize="none"``.
        """
        if self.optimizer != "nsf":
            return self.optimizer
        short = {"constant": "const", "cosine_tidal": "cosine", "pulse_tidal": "pulse"}
        label = f"nsf-{short[self.p_schedule]}"
        if self.nsf_flavour == "adam":
            label += "-adam"
        if self.normalize == "none":
            label += "-raw"
        return label


@functools.cache
def field_types() -> dict[str, Any]:
    """Field name -> its resolved type (``int``, ``float | None``, a ``Literal``...)."""
    return typing.get_type_hints(Config)


def _is_bool(value: Any) -> bool:
    # Python and numpy/jax booleans (numpy's bool_ is not a bool subclass).
    return (
        isinstance(value, bool)
        or getattr(getattr(value, "dtype", None), "kind", None) == "b"
    )


def check_field(name: str, kind: Any, value: Any) -> Any:
    """Checks one field's value against its type and bound; returns it as Python.

    Integers and floats may be Python, numpy or 0-d jax values; they come back as
    ``int`` / ``float``. Booleans are not numbers here.

    Args:
      name: the field name (for the message).
      kind: its type from :func:`field_types`.
      value: the value to check.

    Returns:
      The value, converted to the Python type of the field.

    Raises:
      ConfigTypeError: for a value of the wrong type.
      ConfigError: for a value outside the field's choices or bound.
    """
    args = typing.get_args(kind)
    if type(None) in args:  # Optional[X]
        if value is None:
            return None
        kind = next(a for a in args if a is not type(None))
        args = typing.get_args(kind)
    if typing.get_origin(kind) is Literal:
        if value not in args or not isinstance(value, str):
            raise ConfigError(
                f"Unknown {name} {value!r}; choose one of {list(args)}.", (name,)
            )
        return value
    if kind is bool:
        if not _is_bool(value):
            raise ConfigTypeError(
                f"{name} must be a bool, got {type(value).__name__}.", (name,)
            )
        return bool(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigTypeError(
                f"{name} must be a str, got {type(value).__name__}.", (name,)
            )
        return value
    if _is_bool(value) or isinstance(value, str | bytes):
        raise ConfigTypeError(
            f"{name} must be a number, got {type(value).__name__} {value!r}.",
            (name,),
        )
    try:
        number = operator.index(value) if kind is int else float(value)
    except TypeError:
        raise ConfigTypeError(
            f"{name} must be {'an integer' if kind is int else 'a float'}, got "
            f"{type(value).__name__} {value!r}.",
            (name,),
        ) from None
    bound = FIELD_BOUNDS.get(name)
    if bound is not None and not bound.contains(number):
        raise ConfigError(
            f"{name} must be {bound.describe()}, got {number!r}.", (name,)
        )
    return number


def get_config() -> Config:
    """The default: NSF pulse-tidal ResNet-1D on MNIST-1D, 2000 steps (CPU minutes)."""
    return Config()
