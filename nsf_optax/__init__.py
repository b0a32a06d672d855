"""nsf-optax: Natural Spectral Fusion for Optax.

Adam's second-moment exponent 1/2 becomes a free, schedulable exponent ``p``:

    u = mhat / ((vhat + eps_root) ** p + eps)

See :func:`nsf_optax.nsf` for the algorithm and :mod:`nsf_optax.p_schedule` for
the "tidal" and "pulse-tidal" schedules of ``p``.

The public names load on first use (PEP 562), so that ``import nsf_optax`` and the
command lines' ``--help`` do not import JAX.
"""

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_LAZY = {
    "p_schedule": "nsf_optax.p_schedule",
    "nsf": "nsf_optax._alias",
    "nsf_sgd": "nsf_optax._alias",
    "nsfw": "nsf_optax._alias",
    "gain_stats": "nsf_optax._monitoring",
    "pexp_gain": "nsf_optax._monitoring",
    "ScaleByPexpMomentumState": "nsf_optax._transform",
    "ScaleByPexpState": "nsf_optax._transform",
    "scale_by_pexp": "nsf_optax._transform",
    "scale_by_pexp_momentum": "nsf_optax._transform",
}

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

if TYPE_CHECKING:
    from nsf_optax import p_schedule
    from nsf_optax._alias import nsf, nsf_sgd, nsfw
    from nsf_optax._monitoring import gain_stats, pexp_gain
    from nsf_optax._transform import (
        ScaleByPexpMomentumState,
        ScaleByPexpState,
        scale_by_pexp,
        scale_by_pexp_momentum,
    )


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'nsf_optax' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    value = module if name == "p_schedule" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
