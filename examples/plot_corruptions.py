"""Draw the MNIST-C-style corruptions of skood as a picture grid.

One row per corruption (plus the clean digits and the near-OOD blend of the Fashion-MNIST
item with the digit), eight test digits per row. Needs matplotlib and the MNIST/Fashion-MNIST
files (``SKOOD_DATA``).

Run: ``python examples/plot_corruptions.py docs/images/corruptions.png``
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skood.datasets import load_fashion_mnist, load_mnist  # noqa: E402
from skood.datasets.corruptions import CORRUPTIONS, blend, corrupt  # noqa: E402

output = sys.argv[1] if len(sys.argv) > 1 else "corruptions.png"
digits = load_mnist(subset="test").images[:8]
fashion = load_fashion_mnist(subset="test").images[:8]
rows = {"clean": digits}
rows.update({name: corrupt(digits, name, random_state=0) for name in CORRUPTIONS})
rows["fashion (far)"] = fashion
rows["0.1 fashion + 0.9 digit"] = blend(fashion, digits)
rows["0.1 zigzag + 0.9 digit"] = blend(rows["zigzag"], digits)

fig, axes = plt.subplots(len(rows), 8, figsize=(8, len(rows) * 1.05))
for axis_row, (name, images) in zip(axes, rows.items(), strict=True):
    for axis, image in zip(axis_row, images, strict=True):
        axis.imshow(image, cmap="gray", vmin=0, vmax=255)
        axis.set_xticks([])
        axis.set_yticks([])
    axis_row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
fig.tight_layout()
fig.savefig(output, dpi=80)
print("wrote", output)
