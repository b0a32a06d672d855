"""scikit-learn digits (8x8, 1437/360), ResNet-20, crops of 1 pixel, no flips.

Digits have a handedness, so no flips; 1000 steps is about 90 epochs.
"""

from nsf_optax.experiments.resnet.configs.default import Config


def get_config() -> Config:
    """ResNet-20 on digits."""
    return Config(
        dataset="digits",
        model="resnet20",
        crop_padding=1,
        flip=False,
        num_steps=1000,
        warmup_steps=50,
        eval_every_steps=50,
        eval_batch_size=360,
    )
