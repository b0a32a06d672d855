"""``python -m nsf_optax.experiments.landscape``: see :mod:`.sweep`."""

import sys

from nsf_optax.experiments.landscape import sweep

if __name__ == "__main__":
    sys.exit(sweep.main())
