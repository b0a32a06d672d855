"""MNIST-1D (4000/1000), the small 1-D ResNet, shift augmentation of 2 samples."""

from nsf_optax.experiments.resnet.configs.default import Config


def get_config() -> Config:
    """The default configuration (it already targets MNIST-1D)."""
    return Config(dataset="mnist1d", model="resnet1d", crop_padding=2, flip=False)
