"""Commands that moved keep working for one release, with a one-line notice."""

import runpy
import sys

# The old command -> the new one.
MOVED = {
    "nsf_optax.examples": "nsf_optax.experiments.resnet",
    "nsf_optax.examples.compare": "nsf_optax.experiments.compare",
    "nsf_optax.examples.sweep": "nsf_optax.experiments.landscape",
    "nsf_optax.spectral.decay": "nsf_optax.experiments.decay",
    "nsf_optax.spectral.density": "nsf_optax.experiments.density",
    "nsf_optax.spectral.boundary": "nsf_optax.experiments.boundary",
    "nsf_optax.spectral.bias": "nsf_optax.experiments.bias",
}


def forward(old: str) -> None:
    """Runs the new command in place of ``python -m old``, after a notice on stderr.

    The new module is named, not imported, so the old place (the library) does not
    depend on the experiments.

    Args:
      old: the module that was run, a key of :data:`MOVED`, e.g.
        "nsf_optax.spectral.decay".
    """
    new = MOVED[old]
    print(
        f"note: `python -m {old}` is now `python -m {new}`; "
        "the old name goes away in the next release",
        file=sys.stderr,
    )
    runpy.run_module(new, run_name="__main__", alter_sys=True)
