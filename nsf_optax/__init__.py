"""nsf-optax: Natural Spectral Fusion for Optax.

Adam's second-moment exponent 1/2 becomes a free, schedulable exponent ``p``:

    u = mhat / ((vhat + eps_root) ** p + eps)

See :func:`nsf_optax.nsf` for the algorithm and :mod:`nsf_optax.p_schedule` for
the "tidal" and "pulse-tidal" schedules of ``p``.
"""

from nsf_optax import p_schedule
from nsf_optax._alias import nsf, nsf_sgd, nsfw
from nsf_optax._monitoring import gain_stats, pexp_gain
from nsf_optax._transform import (
    ScaleByPexpMomentumState,
    ScaleByPexpState,
    scale_by_pexp,
    scale_by_pexp_momentum,
)

__version__ = "0.1.0"

__all__ = [
    "ScaleByPexpMomentumState",
    "ScaleByPexpState",
    "__version__",
    "gain_stats",
    "nsf",
    "nsf_sgd",
    "nsfw",
    "p_schedule",
    "pexp_gain",
    "scale_by_pexp",
    "scale_by_pexp_momentum",
]
