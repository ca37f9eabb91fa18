"""Dataset loaders. The loaders do not use torch (importing ``skood.datasets`` still imports
torch, through the ``skood`` package).

``load_arrhythmia`` ships with the package; ``load_odds`` and ``load_adbench`` read files from a
data folder given by ``data_home``, the ``SKOOD_DATA`` environment variable or ``~/skood_data``.
The outlier-detection loaders return labels in scikit-learn's convention (+1 inlier, -1
outlier); ``load_mnist`` and ``load_fashion_mnist`` return class labels.
"""

from ._base import get_data_home
from ._images import load_fashion_mnist, load_mnist, scale_images
from ._tabular import list_adbench, list_odds, load_adbench, load_arrhythmia, load_odds

__all__ = [
    "get_data_home",
    "list_adbench",
    "list_odds",
    "load_adbench",
    "load_arrhythmia",
    "load_fashion_mnist",
    "load_mnist",
    "load_odds",
    "scale_images",
]
