"""Moved: ``python -m nsf_optax.spectral.bias`` runs
``python -m nsf_optax.experiments.bias`` (this release only)."""

from nsf_optax._moved import forward

__all__: list[str] = []

if __name__ == "__main__":
    forward("nsf_optax.spectral.bias")
