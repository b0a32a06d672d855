"""``python -m nsf_optax.experiments.bias``: see :mod:`.experiment`."""

import sys

from nsf_optax.experiments.bias import experiment

if __name__ == "__main__":
    sys.exit(experiment.main())
