"""Real data sets: every registered family by name (:data:`DATASETS`, :func:`load_dataset`), the generic
:class:`ArrayDataset`, the MNIST-family IDX loaders, data roots."""
from .arrays import ArrayDataset, stratified_subset
from .catalog import DATASETS, CarriedMask, DataSetFamily, carrying_masks, dataset_family
from .datasets import available_datasets, load_dataset
from .idx import read_idx, write_idx
from .mnist import STATS, load_mnist, locate
from .sources import ENV_VAR, SOURCES, DataNotFoundError, resolve_data_root

__all__ = [
    "ArrayDataset", "CarriedMask", "DATASETS", "DataNotFoundError", "DataSetFamily", "carrying_masks", "ENV_VAR", "SOURCES", "STATS",
    "available_datasets", "dataset_family", "load_dataset", "load_mnist", "locate", "read_idx", "resolve_data_root",
    "stratified_subset", "write_idx",
]

from .shortcuts import (  # noqa: E402  (shortcut data sets: ColorMNIST, DecoyMNIST, user masks)
    PixelBlobSampler, add_decoy, color_mnist, color_mnist_blob_sampler, color_mnist_stats, color_palette,
    decoy_corner_mask, decoy_mnist, masked_dataset, pixel_nonzero_frequency,
)

__all__ += [
    "PixelBlobSampler", "add_decoy", "color_mnist", "color_mnist_blob_sampler", "color_mnist_stats",
    "color_palette", "decoy_corner_mask", "decoy_mnist", "masked_dataset", "pixel_nonzero_frequency",
]

from .folder import ImageFolder, ImageReadError, image_folder, read_image, read_mask  # noqa: E402
from .image_ops import ImageTransform, center_crop, resize  # noqa: E402

__all__ += ["ImageFolder", "ImageReadError", "ImageTransform", "center_crop", "image_folder", "read_image",
            "read_mask", "resize"]

from .synthetic_ts import BOX_LAYOUTS, PROCESSES, BoxLayout, saliency_benchmark  # noqa: E402
from .ucr import UCR_DATASETS, SeriesDataset, TsFormatError, load_ucr, read_ts  # noqa: E402
from .tabular import TABLES, load_tabular  # noqa: E402  (scikit-learn's bundled tables, B×F)

__all__ += ["BOX_LAYOUTS", "BoxLayout", "PROCESSES", "SeriesDataset", "TsFormatError", "UCR_DATASETS", "load_ucr",
            "read_ts", "saliency_benchmark", "TABLES", "load_tabular"]
