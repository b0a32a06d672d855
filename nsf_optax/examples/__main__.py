"""Moved: ``python -m nsf_optax.examples`` runs
``python -m nsf_optax.experiments.resnet`` (this release only)."""

from nsf_optax._moved import forward

__all__: list[str] = []

if __name__ == "__main__":
    forward("nsf_optax.examples")
