"""``python -m nsf_optax.experiments.compare``: see :mod:`.command`."""

import sys

from nsf_optax.experiments.compare import command

if __name__ == "__main__":
    sys.exit(command.main())
