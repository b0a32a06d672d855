"""Moved: ``python -m nsf_optax.spectral.decay`` runs
``python -m nsf_optax.experiments.decay`` (this release only)."""

from nsf_optax._moved import forward

__all__: list[str] = []

if __name__ == "__main__":
    forward("nsf_optax.spectral.decay")
