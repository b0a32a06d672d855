"""``python -m nsf_optax.experiments.decay``: see :mod:`.experiment`."""

import sys

from nsf_optax.experiments.decay import experiment

if __name__ == "__main__":
    sys.exit(experiment.main())
