"""scikit-learn's bundled 8x8 digits (1,797 images, 10 classes): always available offline.

Returned channels-first as (n, 1, 8, 8) with pixel values 0..16; there is no test split (every
image is a training example; evaluate on the measurement batch or pass your own split).
"""

from __future__ import annotations

import numpy as np

from earlyphase.empirical.data.dataset import RawData


def load_digits_raw() -> RawData:
    """All 1,797 digits as RawData (x: float64 (1797, 1, 8, 8), labels 0..9, no test split)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.asarray(bunch.images, dtype=np.float64)[:, None, :, :]
    return RawData(x, np.asarray(bunch.target, dtype=np.int64), None, None, 10, "sklearn.datasets.load_digits")
