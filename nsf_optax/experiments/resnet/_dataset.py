"""The arrays of one data set (:class:`Dataset`), shared by every loader."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Arrays of one dataset, standardised, channels last.

    Attributes:
      x_train: float32 ``[N, *spatial, C]``.
      y_train: int32 ``[N]``.
      x_test: float32 ``[M, *spatial, C]``.
      y_test: int32 ``[M]``.
      num_classes: number of labels.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions (1 for sequences, 2 for images)."""
        return self.x_train.ndim - 2

    @property
    def in_features(self) -> int:
        """Number of input channels."""
        return self.x_train.shape[-1]
