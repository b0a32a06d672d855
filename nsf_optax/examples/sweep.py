"""Moved: ``python -m nsf_optax.examples.sweep`` runs
``python -m nsf_optax.experiments.landscape`` (this release only)."""

from nsf_optax._moved import forward

__all__: list[str] = []

if __name__ == "__main__":
    forward("nsf_optax.examples.sweep")
