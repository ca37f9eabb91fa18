"""
=====================================
MNIST-C-style corruptions of digits
=====================================

:mod:`skood.datasets.corruptions` turns in-distribution images into near out-of-distribution
ones, as MNIST-C does: one row per corruption (after the clean digits), eight test digits per
row, then the far-OOD Fashion-MNIST items and two blends (one tenth of another image laid over
the digit), the hardest near-OOD sets. Needs the MNIST and Fashion-MNIST files (``SKOOD_DATA``,
or ``download=True`` to fetch them once).
"""

import matplotlib.pyplot as plt

from skood.datasets import load_fashion_mnist, load_mnist
from skood.datasets.corruptions import CORRUPTIONS, blend, corrupt
from skood.plotting import plot_image_grid

digits = load_mnist(subset="test", download=True).images[:8]
fashion = load_fashion_mnist(subset="test", download=True).images[:8]
rows = {"clean": digits}
rows.update({name: corrupt(digits, name, random_state=0) for name in CORRUPTIONS})
rows["fashion (far)"] = fashion
rows["0.1 fashion + 0.9 digit"] = blend(fashion, digits)
rows["0.1 zigzag + 0.9 digit"] = blend(rows["zigzag"], digits)

figure = plot_image_grid(rows, value_range=(0, 255), n_columns=8)
plt.show()
