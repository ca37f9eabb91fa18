"""Draw the MNIST-C-style corruptions of skood as a picture grid.

One row per corruption (plus the clean digits and the near-OOD blend of the Fashion-MNIST
item with the digit), eight test digits per row. Needs matplotlib and the MNIST/Fashion-MNIST
files (``SKOOD_DATA``).

Run: ``python examples/plot_corruptions.py docs/images/corruptions.png``
"""

import sys

from skood.datasets import load_fashion_mnist, load_mnist
from skood.datasets.corruptions import CORRUPTIONS, blend, corrupt
from skood.plotting import plot_image_grid

output = sys.argv[1] if len(sys.argv) > 1 else "corruptions.png"
digits = load_mnist(subset="test").images[:8]
fashion = load_fashion_mnist(subset="test").images[:8]
rows = {"clean": digits}
rows.update({name: corrupt(digits, name, random_state=0) for name in CORRUPTIONS})
rows["fashion (far)"] = fashion
rows["0.1 fashion + 0.9 digit"] = blend(fashion, digits)
rows["0.1 zigzag + 0.9 digit"] = blend(rows["zigzag"], digits)

figure = plot_image_grid(rows, value_range=(0, 255), n_columns=8)
figure.savefig(output, dpi=80)
print("wrote", output)
