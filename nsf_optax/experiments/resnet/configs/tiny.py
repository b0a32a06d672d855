"""Test-only: the tiny ResNet on digits for a handful of steps."""

from nsf_optax.experiments.resnet.configs.default import Config


def get_config() -> Config:
    """A seconds-long run for tests and smoke checks."""
    return Config(
        dataset="digits",
        model="tiny",
        crop_padding=1,
        batch_size=32,
        eval_batch_size=120,
        num_steps=6,
        warmup_steps=2,
        eval_every_steps=3,
        checkpoint_every_steps=3,
        p_period_steps=4,
        pulse_steps=2,
        tidal_every_steps=2,
        progress=False,
    )
