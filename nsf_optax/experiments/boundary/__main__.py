"""``python -m nsf_optax.experiments.boundary``: see :mod:`.experiment`."""

import sys

from nsf_optax.experiments.boundary import experiment

if __name__ == "__main__":
    sys.exit(experiment.main())
