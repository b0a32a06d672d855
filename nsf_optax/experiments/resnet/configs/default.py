"""The training configuration: a frozen, typed dataclass whose values are checked.

``Config`` holds every knob of
:func:`nsf_optax.experiments.resnet.train.train_and_evaluate`;
the modules next to this one (``digits``, ``mnist1d``, ``cifar10``, ``tiny``) return
dataset-specific copies through ``get_config()``. Override fields with
``dataclasses.replace`` or on the command line (``--learning_rate 0.05``): the
command line is generated from :func:`field_specs`, that is from the field types
(``Literal`` fields give the choices) and each field's ``metadata`` (its help text,
its :class:`Bound`, its choices), and from the parameters that every registered p
schedule declares (:data:`nsf_optax.p_schedule.SCHEDULES`), so that flags, checks
and help cannot drift apart.

The choices of ``dataset``, ``model``, ``optimizer`` and ``p_schedule`` are the
keys of their tables (:data:`.input_pipeline.DATASETS`, :data:`.models.MODELS`,
:data:`.methods.OPTIMIZERS`, :data:`nsf_optax.p_schedule.SCHEDULES`), and the
checks that tie fields together (a model's data, a data set's ``data_dir``, a
schedule's ordered parameters) read what those tables declare.

This module and those tables import neither jax nor flax: ``--help`` and every
check answer before jax loads.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NoReturn

from nsf_optax import p_schedule
from nsf_optax.experiments.resnet import input_pipeline, methods, models
from nsf_optax.experiments.runner.errors import ConfigError
from nsf_optax.experiments.runner.fields import (
    NON_NEGATIVE,
    POSITIVE,
    SEED,
    UNIT,
    Bound,
    FieldSpec,
    check_value,
    field_spec,
)
from nsf_optax.experiments.runner.fields import meta as _meta

NsfFlavour = Literal["sgd", "adam"]
Normalize = Literal["rms", "none"]
LrSchedule = Literal["warmup_cosine", "piecewise"]

HALF = Bound(low=0, high=0.5, high_open=True)

NSF_FLAVOURS = typing.get_args(NsfFlavour)
NORMALIZE = typing.get_args(Normalize)
LR_SCHEDULES = typing.get_args(LrSchedule)


def _datasets() -> Sequence[str]:
    return tuple(input_pipeline.DATASETS)


def _models() -> Sequence[str]:
    return tuple(models.MODELS)


def _schedules() -> Sequence[str]:
    return tuple(p_schedule.SCHEDULES)


def _optimizers() -> Sequence[str]:
    return tuple(methods.OPTIMIZERS)


class Params(dict):
    """A frozen, hashable ``dict``: the p-schedule parameters of a :class:`Config`.

    A ``dict`` so that ``dataclasses.asdict`` and ``json`` read it as one.
    """

    def __hash__(self) -> int:  # pyright: ignore[reportIncompatibleVariableOverride]
        return hash(tuple(sorted(self.items())))

    def __reduce__(self) -> tuple[type, tuple[dict[str, Any]]]:
        # pickle and copy rebuild it whole (item by item would be refused).
        return Params, (dict(self),)

    def _frozen(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("Config.p_params is frozen; use dataclasses.replace.")

    __setitem__ = __delitem__ = clear = pop = popitem = _frozen
    setdefault = update = __ior__ = _frozen  # pyright: ignore[reportAssignmentType]


@dataclasses.dataclass(frozen=True, init=False)
class Config:
    """Everything one training run depends on.

    Each field's help text, bound and choices are its ``metadata`` (the command
    line shows them). The parameters of the p schedules are ``p_params``, one
    entry per parameter of every registered schedule
    (:data:`nsf_optax.p_schedule.SCHEDULES`); each is also a keyword of the
    constructor and of ``dataclasses.replace`` and an attribute
    (``Config(p_value=0.5).p_value``), and a flag (``--p_value``).
    """

    dataset: str = dataclasses.field(
        default="mnist1d",
        metadata=_meta(
            "the offline dataset (input_pipeline.DATASETS): scikit-learn's 8x8 "
            "digits, MNIST-1D generated procedurally, or CIFAR-10 read from "
            "data_dir.",
            choices=_datasets,
        ),
    )
    data_dir: str | None = dataclasses.field(
        default=None,
        metadata=_meta(
            "local CIFAR-10 directory (python-pickle batches); cifar10 only."
        ),
    )
    model: str = dataclasses.field(
        default="resnet1d",
        metadata=_meta(
            'the ResNet preset (models.MODELS; "tiny" is for tests).',
            choices=_models,
        ),
    )
    num_filters: int | None = dataclasses.field(
        default=None,
        metadata=_meta(
            "the model's base width; None keeps the preset's (64, 16, 32, 4).",
            bound=POSITIVE,
        ),
    )
    optimizer: str = dataclasses.field(
        default="nsf",
        metadata=_meta(
            "; ".join(f"{n}: {o.help}" for n, o in methods.OPTIMIZERS.items()) + ".",
            choices=_optimizers,
        ),
    )
    nsf_flavour: NsfFlavour = dataclasses.field(
        default="sgd",
        metadata=_meta(
            '"sgd" (nsf_optax.nsf_sgd: momentum times the p-gain, the paper\'s ResNet '
            'setting) or "adam" (nsf_optax.nsfw).'
        ),
    )
    normalize: Normalize = dataclasses.field(
        default="rms",
        metadata=_meta(
            '"rms" (each leaf\'s update keeps the RMS of the p = 0 direction, so p '
            'changes only the relative weighting across coordinates) or "none" (the '
            "raw gain vhat**-p, which also changes the step size by orders of "
            "magnitude)."
        ),
    )
    p_schedule: str = dataclasses.field(
        default="pulse_tidal",
        metadata=_meta(
            'the p(t) of optimizer "nsf", a schedule registered in '
            "nsf_optax.p_schedule.SCHEDULES: "
            + "; ".join(f"{n}: {e.help}" for n, e in p_schedule.SCHEDULES.items())
            + ".",
            choices=_schedules,
        ),
    )
    p_params: Mapping[str, float | int] = dataclasses.field(
        default_factory=Params,
        metadata=_meta(
            "the parameters of every registered p schedule (each also a flag)."
        ),
    )
    learning_rate: float | None = dataclasses.field(
        default=None,
        metadata=_meta(
            "peak learning rate; None uses the optimizer's default ("
            + ", ".join(
                f"{o.learning_rate:g} for {n}" for n, o in methods.OPTIMIZERS.items()
            )
            + ").",
            bound=POSITIVE,
        ),
    )
    lr_schedule: LrSchedule = dataclasses.field(
        default="warmup_cosine",
        metadata=_meta(
            '"warmup_cosine" (linear warmup, cosine decay to 0) or "piecewise" '
            "(constant, divided by 10 at 50 % and 75 % of num_steps)."
        ),
    )
    warmup_steps: int = dataclasses.field(
        default=100,
        metadata=_meta(
            "warmup length of warmup_cosine (below num_steps).", bound=NON_NEGATIVE
        ),
    )
    momentum: float = dataclasses.field(
        default=0.9,
        metadata=_meta(
            "heavy-ball momentum of the SGD flavour; b1 of the Adam flavour.",
            bound=UNIT,
        ),
    )
    b2: float = dataclasses.field(
        default=0.999, metadata=_meta("second-moment EMA decay.", bound=UNIT)
    )
    eps: float = dataclasses.field(
        default=1e-8, metadata=_meta("denominator guard.", bound=NON_NEGATIVE)
    )
    weight_decay: float = dataclasses.field(
        default=5e-4,
        metadata=_meta(
            "coupled L2 (added to the gradient, as torch SGD) for the sgds, adam, "
            "the cyclic ones and nsf/sgd; decoupled (AdamW) for adamw, padam, lion, "
            "schedule-free-adamw and nsf/adam. Kernels only.",
            bound=NON_NEGATIVE,
        ),
    )
    batch_size: int = dataclasses.field(
        default=128,
        metadata=_meta(
            "global batch size (a multiple of the device count).", bound=POSITIVE
        ),
    )
    eval_batch_size: int = dataclasses.field(
        default=500,
        metadata=_meta(
            "evaluation batch size (a multiple of the device count).", bound=POSITIVE
        ),
    )
    num_steps: int = dataclasses.field(
        default=2000, metadata=_meta("training steps.", bound=POSITIVE)
    )
    eval_every_steps: int = dataclasses.field(
        default=100,
        metadata=_meta(
            "evaluate on the test set (and log) every this many steps.", bound=POSITIVE
        ),
    )
    checkpoint_every_steps: int = dataclasses.field(
        default=500,
        metadata=_meta(
            "save a verified checkpoint every this many steps (0: only at the end).",
            bound=NON_NEGATIVE,
        ),
    )
    crop_padding: int = dataclasses.field(
        default=2,
        metadata=_meta(
            "random-crop padding in pixels (0 disables).", bound=NON_NEGATIVE
        ),
    )
    flip: bool = dataclasses.field(
        default=False,
        metadata=_meta("random horizontal flips (images without a handedness only)."),
    )
    label_noise: float = dataclasses.field(
        default=0.0,
        metadata=_meta(
            "the fraction of training labels replaced by a uniformly drawn other class "
            "(test labels stay clean); 0 disables.",
            bound=UNIT,
        ),
    )
    train_size: int | None = dataclasses.field(
        default=None,
        metadata=_meta(
            "train on this many examples, a seeded subset of the training set (None: "
            "all of it).",
            bound=POSITIVE,
        ),
    )
    val_fraction: float = dataclasses.field(
        default=0.0,
        metadata=_meta(
            "hold out this fraction of the training set (after train_size and "
            "label noise, chosen by data_seed) and evaluate on it instead of the "
            "test set (the test_* metrics then hold validation numbers); 0 "
            "disables.",
            bound=HALF,
        ),
    )
    data_seed: int = dataclasses.field(
        default=0,
        metadata=_meta(
            "seeds the training subset and the label noise, so that runs with "
            "different seeds see the same (noisy) training set.",
            bound=SEED,
        ),
    )
    seed: int = dataclasses.field(
        default=0,
        metadata=_meta("seeds parameters, data order and augmentation.", bound=SEED),
    )
    resume: bool = dataclasses.field(
        default=False,
        metadata=_meta(
            "continue from the newest verified checkpoint in the workdir (an error "
            "when there is none); without it a workdir holding checkpoints is "
            "refused."
        ),
    )
    progress: bool = dataclasses.field(
        default=True, metadata=_meta("show a tqdm progress bar.")
    )
    cyclic_amplitude: float = dataclasses.field(
        # The raw gain's measured step-size swing (resnet.step_swing; about 13
        # on MNIST-1D for both tidal schedules). See docs/compare.md, Methods.
        default=13.0,
        metadata=_meta(
            "sgd-cyclic / adam-cyclic: the learning rate is multiplied by "
            "cyclic_amplitude at the highest p of p_schedule and divided by it at "
            "the lowest (optimizers.create_lr_cycle); the default is the step-size "
            "swing measured for the raw gain.",
            bound=POSITIVE,
        ),
    )

    def __init__(self, **values: Any):
        # Written by hand (the dataclass keeps fields, repr, eq, hash and replace)
        # so that every p-schedule parameter is a keyword: ``Config(p_value=0.5)``
        # and ``dataclasses.replace(config, p_min=-1.0)`` read as they always have.
        fields = {f.name: f for f in dataclasses.fields(Config)}
        params = {name: p.default for name, p in p_schedule.params().items()}
        given = dict(values.pop("p_params", None) or {})
        given.update({k: values.pop(k) for k in list(values) if k in params})
        unknown = [k for k in (*values, *given) if k not in (*fields, *params)]
        if unknown:
            raise ConfigError(
                f"Unknown config field {unknown[0]!r}; choose one of "
                f"{[*fields, *params]}.",
                (unknown[0],),
            )
        params.update(given)
        for name, field in fields.items():
            value = values.get(name, field.default)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "p_params", Params(params))
        self.__post_init__()

    def __getattr__(self, name: str) -> Any:
        # Only called when the normal lookup fails: the p-schedule parameters.
        params = self.__dict__.get("p_params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"'Config' object has no attribute {name!r}")

    def __post_init__(self):
        for name, kind in field_types().items():
            if name != "p_params":
                object.__setattr__(
                    self, name, check_field(name, kind, getattr(self, name))
                )
        params = p_schedule.params()
        checked = {
            name: check_value(
                name, type(params[name].default), value, param_bound(params[name])
            )
            for name, value in self.p_params.items()
        }
        object.__setattr__(self, "p_params", Params(checked))
        self._check_combinations()

    def _check_combinations(self) -> None:
        for entry in p_schedule.SCHEDULES.values():
            for low, high in entry.ordered:
                if self.p_params[low] > self.p_params[high]:
                    raise ConfigError(
                        f"{low} ({self.p_params[low]}) must not exceed {high} "
                        f"({self.p_params[high]}).",
                        (low, high),
                    )
        if self.lr_schedule == "warmup_cosine" and self.warmup_steps >= self.num_steps:
            raise ConfigError(
                f"warmup_steps ({self.warmup_steps}) must be below num_steps "
                f"({self.num_steps}).",
                ("warmup_steps", "num_steps"),
            )
        needs = input_pipeline.DATASETS[self.dataset].data_dir
        if needs and not self.data_dir:
            raise ConfigError(
                f"dataset {self.dataset!r} needs data_dir: {needs}.", ("data_dir",)
            )
        known = self.train_size or input_pipeline.DATASETS[self.dataset].train_examples
        if self.val_fraction > 0 and known is not None:
            input_pipeline.check_split(known, self.val_fraction, self.batch_size)
        ndim = models.MODELS[self.model].ndim
        if ndim is not None and input_pipeline.DATASETS[self.dataset].ndim != ndim:
            fitting = [n for n, s in input_pipeline.DATASETS.items() if s.ndim == ndim]
            raise ConfigError(
                f"model {self.model!r} needs dataset "
                f"{' or '.join(repr(n) for n in fitting)}.",
                ("model", "dataset"),
            )

    @property
    def peak_learning_rate(self) -> float:
        """``learning_rate``, or the optimizer's default when it is None."""
        if self.learning_rate is not None:
            return self.learning_rate
        return methods.get_optimizer(self.optimizer).learning_rate

    @property
    def method(self) -> str:
        """A short label: "sgd", "adam", "padam" or e.g. "nsf-pulse" (see
        :func:`.methods.label`)."""
        return methods.label(
            self.optimizer, self.p_schedule, self.nsf_flavour, self.normalize
        )

    def asdict(self) -> dict[str, Any]:
        """The fields as a flat dict: each p-schedule parameter in ``p_params``'s
        place (the JSON of ``config.json`` and of checkpoint metas)."""
        flat: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            if field.name == "p_params":
                flat.update(self.p_params)
            else:
                flat[field.name] = getattr(self, field.name)
        return flat


@functools.cache
def field_types() -> dict[str, Any]:
    """Field name -> its resolved type (``int``, ``float | None``, a ``Literal``...)."""
    return typing.get_type_hints(Config)


def param_bound(param: p_schedule.Param) -> Bound:
    """A p-schedule parameter's :class:`Bound` (floats: finite at least)."""
    return Bound(low=param.low, low_open=param.low_open)


def field_specs() -> dict[str, FieldSpec]:
    """Every settable name in flag order: the fields, with the parameters of the
    registered p schedules in ``p_params``'s place.

    Read afresh on each call, so that a p schedule registered later is included.
    """
    specs: dict[str, FieldSpec] = {}
    for field in dataclasses.fields(Config):
        if field.name != "p_params":
            specs[field.name] = field_spec(field, field_types()[field.name])
            continue
        for name, param in p_schedule.params().items():
            specs[name] = FieldSpec(
                name, type(param.default), param.help, param_bound(param), None
            )
    return specs


def _field_limits(name: str) -> tuple[Bound | None, Sequence[str] | None]:
    fields = {f.name: f for f in dataclasses.fields(Config)}
    if name in fields:
        choices = fields[name].metadata.get("choices")
        return fields[name].metadata.get("bound"), choices() if choices else None
    param = p_schedule.params().get(name)
    return (param_bound(param), None) if param is not None else (None, None)


def check_field(name: str, kind: Any, value: Any) -> Any:
    """Checks one field's value against its type, bound and choices; returns it
    as Python.

    Integers and floats may be Python, numpy or 0-d jax values; they come back as
    ``int`` / ``float``. Booleans are not numbers here.

    Args:
      name: the field (or p-schedule parameter) name: its metadata gives the
        bound and choices, and it names the value in messages.
      kind: its type from :func:`field_types`.
      value: the value to check.

    Returns:
      The value, converted to the Python type of the field.

    Raises:
      ConfigTypeError: for a value of the wrong type.
      ConfigError: for a value outside the field's choices or bound.
    """
    bound, choices = _field_limits(name)
    return check_value(name, kind, value, bound, choices)


def get_config() -> Config:
    """The default: NSF pulse-tidal ResNet-1D on MNIST-1D, 2000 steps (CPU minutes)."""
    return Config()
