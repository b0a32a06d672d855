"""CIFAR-10 from --data_dir: ResNet-18 (3x3 stem), crop 4 + flip, 30 epochs.

A GPU job: about 11.7k steps of batch 128. Pass ``--data_dir`` pointing at the
unpacked ``cifar-10-batches-py`` directory.
"""

from nsf_optax.experiments.resnet.configs.default import Config


def get_config(data_dir: str | None = "cifar-10-batches-py") -> Config:
    """ResNet-18 on CIFAR-10 read from ``data_dir``."""
    return Config(
        dataset="cifar10",
        data_dir=data_dir,
        model="resnet18",
        crop_padding=4,
        flip=True,
        num_steps=11_700,
        warmup_steps=390,
        eval_every_steps=390,
        checkpoint_every_steps=1950,
        eval_batch_size=500,
    )
