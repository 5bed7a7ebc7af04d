"""Datasets for the empirical engine: ``load_dataset(name, ...) -> Dataset``.

Names: "digits" (scikit-learn, offline), "mnist", "fashion_mnist" (IDX files), "cifar10"
(official python batches, or an image-folder tree / tar archive), "synthetic" (Gaussian
teacher). Inputs are standardised per sample, targets are one-hot, images are channels-first.
Where files are searched, the options, and the error messages: docs/DATA.md.
"""

from earlyphase.empirical.data.dataset import SUBSET_SEED, Dataset
from earlyphase.empirical.data.errors import DataFileError, DatasetNotFoundError
from earlyphase.empirical.data.load import DATASET_NAMES, load_dataset

__all__ = ["DATASET_NAMES", "SUBSET_SEED", "DataFileError", "Dataset", "DatasetNotFoundError", "load_dataset"]
