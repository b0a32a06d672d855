"""``python -m nsf_optax.experiments.compare``: see :mod:`.compare`."""

import sys

from nsf_optax.experiments.compare import compare

if __name__ == "__main__":
    sys.exit(compare.main())
