"""Flax NNX ResNet training with NSF and optax baselines.

Run ``python -m nsf_optax.experiments.resnet --help`` for one training run,
``python -m nsf_optax.experiments.compare --help`` for the multi-seed comparison and
``python -m nsf_optax.experiments.landscape --help`` for the p-landscape (p x seeds as
one compiled population, under label noise). The pieces follow flax's imagenet
example: :mod:`.models`, :mod:`.input_pipeline`, :mod:`.configs`, :mod:`.train`
(``train_and_evaluate(config, workdir)``), :mod:`.evaluation`, :mod:`.population`
(``train_population``); the reusable run machinery (``nsf_optax.experiments.runner``)
is :mod:`.lifecycle` (the life one run and a population share, its cadence as
:mod:`.hooks`), :mod:`.checkpointing` (verified checkpoints of named pytrees),
:mod:`.workdirs` (one run per workdir), :mod:`.cli` (flags from the typed config,
one-line errors) and :mod:`.errors`.
This subpackage needs the ``examples`` extra (``pip install "nsf-optax[examples]"``);
the core ``nsf_optax`` never imports it.
"""

from nsf_optax._extras import require as _require

_require(
    "examples",
    ("flax", "orbax.checkpoint", "matplotlib", "tqdm", "sklearn", "scipy", "mnist1d"),
    feature="nsf_optax.experiments.resnet",
)
