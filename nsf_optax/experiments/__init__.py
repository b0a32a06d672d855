"""The experiments: what this project measures with the library, one folder each.

Nothing in :mod:`nsf_optax` or :mod:`nsf_optax.spectral` imports this package; it
needs the ``examples`` extra (``pip install "nsf-optax[examples]"``).

Every family is a command, ``python -m nsf_optax.experiments.<family> --help``:

* ``resnet``: one Flax ResNet training run with NSF or an optax baseline;
* ``compare``: several methods over seeds (and step budgets) on one preset;
* ``landscape``: the p-landscape, p x seeds as one compiled population;
* ``decay``, ``density``, ``boundary``, ``bias``: the paper's low-dimensional
  experiments (Sec. 4.1, 4.2.1, 4.2.2 and the spectral-bias thesis of Sec. 3.2).

The run machinery the training families share (workdirs, verified checkpoints,
preemption, several hosts, the command-line prologue) is :mod:`.runner`.
"""

from nsf_optax._extras import require as _require

_require(
    "examples",
    ("flax", "orbax.checkpoint", "matplotlib", "tqdm", "sklearn", "scipy", "mnist1d"),
    feature="nsf_optax.experiments",
)
