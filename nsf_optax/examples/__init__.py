"""Flax NNX ResNet training with NSF and optax baselines.

Run ``python -m nsf_optax.examples --help`` for one training run and
``python -m nsf_optax.examples.compare --help`` for the multi-seed comparison. The
pieces follow flax's imagenet example: :mod:`.models`, :mod:`.input_pipeline`,
:mod:`.configs`, :mod:`.train` (``train_and_evaluate(config, workdir)``) and
:mod:`.compare`. This subpackage needs the ``examples`` extra
(``pip install "nsf-optax[examples]"``); the core ``nsf_optax`` never imports it.
"""
