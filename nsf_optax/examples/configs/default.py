"""The training configuration: a frozen dataclass with checked values.

``Config`` holds every knob of :func:`nsf_optax.examples.train.train_and_evaluate`;
the modules next to this one (``digits``, ``mnist1d``, ``cifar10``, ``tiny``) return
dataset-specific copies through ``get_config()``. Override fields with
``dataclasses.replace`` or on the command line (``--learning_rate 0.05``).

The p-schedule defaults are this project's choice: the paper's extracted text lost the
numbers of its pulse-tidal run, keeping only "a pulse phase, then alternating sign every
200 iterations" (see ``NSF_METHOD.md``).
"""

from __future__ import annotations

import dataclasses

OPTIMIZERS = ("sgd", "adam", "padam", "nsf")
NSF_FLAVOURS = ("sgd", "adam")
P_SCHEDULES = ("constant", "cosine_tidal", "pulse_tidal")
LR_SCHEDULES = ("warmup_cosine", "piecewise")
NORMALIZE = ("rms", "none")
DATASETS = ("digits", "mnist1d", "cifar10")
MODELS = ("resnet18", "resnet20", "resnet1d", "tiny")

# Peak learning rates when Config.learning_rate is None.
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "nsf": 0.1, "padam": 0.1, "adam": 1e-3}
PADAM_P = 0.125  # Padam's partial exponent (Chen et al. 2020).


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything one training run depends on.

    Attributes:
      dataset: "digits", "mnist1d" or "cifar10".
      data_dir: local CIFAR-10 directory (python-pickle batches); cifar10 only.
      model: "resnet18", "resnet20", "resnet1d" or "tiny" (test-only).
      num_filters: the model's base width; None keeps the preset's (64, 16, 32, 4).
      optimizer: "sgd" (momentum 0.9: the paper's p = 0 baseline), "adam", "padam"
        (Adam-flavoured, p = 1/8) or "nsf" (p from ``p_schedule``).
      nsf_flavour: "sgd" (``nsf_optax.nsf_sgd``: momentum times the p-gain, the
        paper's ResNet setting) or "adam" (``nsf_optax.nsfw``).
      normalize: "rms" (each leaf's update keeps the RMS of the p = 0 direction, so p
        changes only the relative weighting across coordinates) or "none" (the raw
        gain ``vhat**-p``, which also changes the step size by orders of magnitude).
      p_schedule: "constant", "cosine_tidal" or "pulse_tidal" (nsf only).
      p_value: the constant p.
      p_min, p_max, p_period_steps: cosine tidal p(t) sweeping [p_min, p_max] with
        period p_period_steps, starting at p_max.
      pulse_value, pulse_steps: the pulse phase of pulse_tidal.
      tidal_high_value, tidal_low_value, tidal_every_steps: after the pulse, p
        alternates between the two values every tidal_every_steps steps.
      learning_rate: peak learning rate; None uses ``DEFAULT_LEARNING_RATES``.
      lr_schedule: "warmup_cosine" (linear warmup, cosine decay to 0) or "piecewise"
        (constant, divided by 10 at 50 % and 75 % of num_steps).
      warmup_steps: warmup length of warmup_cosine.
      momentum: heavy-ball momentum of the SGD flavour; b1 of the Adam flavour.
      b2: second-moment EMA decay.
      eps: denominator guard.
      weight_decay: coupled L2 (added to the gradient, as torch SGD) for sgd and
        nsf/sgd; decoupled (AdamW) for adam, padam and nsf/adam. Kernels only.
      batch_size: global batch size (a multiple of the device count).
      eval_batch_size: evaluation batch size (a multiple of the device count).
      num_steps: training steps.
      eval_every_steps: evaluate on the test set (and log) every this many steps.
      checkpoint_every_steps: save a checkpoint every this many steps (0: only at
        the end).
      crop_padding: random-crop padding in pixels (0 disables).
      flip: random horizontal flips (images without a handedness only).
      seed: seeds parameters, data order and augmentation.
      resume: continue from the latest checkpoint in the workdir (an error when
        there is none); when False, a workdir that holds checkpoints is an error.
      progress: show a tqdm progress bar.
    """

    dataset: str = "mnist1d"
    data_dir: str | None = None
    model: str = "resnet1d"
    num_filters: int | None = None
    optimizer: str = "nsf"
    nsf_flavour: str = "sgd"
    normalize: str = "rms"
    p_schedule: str = "pulse_tidal"
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
    lr_schedule: str = "warmup_cosine"
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
    seed: int = 0
    resume: bool = False
    progress: bool = True

    def __post_init__(self):
        choices = {
            "dataset": DATASETS,
            "model": MODELS,
            "optimizer": OPTIMIZERS,
            "nsf_flavour": NSF_FLAVOURS,
            "p_schedule": P_SCHEDULES,
            "lr_schedule": LR_SCHEDULES,
            "normalize": NORMALIZE,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(
                    f"Unknown {name} {value!r}; choose one of {list(allowed)}."
                )
        for name in (
            "num_steps",
            "batch_size",
            "eval_batch_size",
            "eval_every_steps",
            "p_period_steps",
            "tidal_every_steps",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        for name in ("warmup_steps", "checkpoint_every_steps", "pulse_steps"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"{name} must be non-negative, got {getattr(self, name)}."
                )
        if self.num_filters is not None and self.num_filters <= 0:
            raise ValueError(f"num_filters must be positive, got {self.num_filters}.")
        if self.crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0, got {self.crop_padding}.")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError(
                f"learning_rate must be positive, got {self.learning_rate}."
            )
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}.")
        if not 0 <= self.momentum < 1 or not 0 <= self.b2 < 1:
            raise ValueError(
                f"momentum and b2 must be in [0, 1), got {self.momentum}, {self.b2}."
            )
        if self.eps < 0:
            raise ValueError(f"eps must be >= 0, got {self.eps}.")
        if self.p_min > self.p_max:
            raise ValueError(
                f"p_min ({self.p_min}) must not exceed p_max ({self.p_max})."
            )
        if self.lr_schedule == "warmup_cosine" and self.warmup_steps >= self.num_steps:
            raise ValueError(
                f"warmup_steps ({self.warmup_steps}) must be below num_steps "
                f"({self.num_steps})."
            )
        if self.dataset == "cifar10" and not self.data_dir:
            raise ValueError(
                "dataset 'cifar10' needs data_dir (--data_dir): a local directory with "
                "the python-pickle batches of cifar-10-python.tar.gz."
            )
        if self.model == "resnet1d" and self.dataset != "mnist1d":
            raise ValueError("model 'resnet1d' needs dataset 'mnist1d'.")

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


def get_config() -> Config:
    """The default: NSF pulse-tidal ResNet-1D on MNIST-1D, 2000 steps (CPU minutes)."""
    return Config()
