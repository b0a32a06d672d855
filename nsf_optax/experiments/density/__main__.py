"""``python -m nsf_optax.experiments.density``: see :mod:`.experiment`."""

import sys

from nsf_optax.experiments.density import experiment

if __name__ == "__main__":
    sys.exit(experiment.main())
