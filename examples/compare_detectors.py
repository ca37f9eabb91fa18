"""Compare DLSGAN's NLP and reconstruction scores with IsolationForest and OneClassSVM.

Every detector follows scikit-learn's orientation (higher ``score_samples`` = more normal), so
the same metric code serves all of them. Optionally plots the score distributions of inliers and
outliers and the ROC curves with ``skood.plotting`` (needs matplotlib).

Run: ``python examples/compare_detectors.py [--plot scores.png]``
"""

import argparse

from sklearn.ensemble import IsolationForest
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from skood import DLSGANDetector
from skood.datasets import load_arrhythmia
from skood.metrics import average_precision, roc_auc, tnr_at_tpr

parser = argparse.ArgumentParser()
parser.add_argument("--plot", help="write a histogram of test scores to this PNG")
args = parser.parse_args()

X, y = load_arrhythmia(return_X_y=True)
X_train, X_test, _, y_test = train_test_split(X, y, test_size=0.4, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

detectors = {
    "DLSGAN NLP": DLSGANDetector(random_state=0),
    "DLSGAN reconstruction": DLSGANDetector(score_type="reconstruction", random_state=0),
    "IsolationForest": IsolationForest(random_state=0),
    "OneClassSVM": OneClassSVM(gamma="auto"),
}
scores = {}
for name, detector in detectors.items():
    scores[name] = detector.fit(X_train).score_samples(X_test)
    print(
        f"{name:<24} ROC AUC {roc_auc(y_test, scores[name]):.3f}  "
        f"AP {average_precision(y_test, scores[name]):.3f}  "
        f"TNR@95%TPR {tnr_at_tpr(y_test, scores[name]):.3f}"
    )

if args.plot:
    import matplotlib.pyplot as plt

    from skood.plotting import plot_roc_curves, plot_score_histograms

    fig, axes = plt.subplots(1, len(scores) + 1, figsize=(4 * (len(scores) + 1), 3.2))
    for axis, (name, values) in zip(axes[:-1], scores.items(), strict=True):
        # Neural scores have long lower tails; clipping keeps the bulk readable.
        plot_score_histograms(y_test, values, clip_percentile=2, ax=axis)
        axis.set_title(name)
    plot_roc_curves(y_test, scores, ax=axes[-1])
    fig.tight_layout()
    fig.savefig(args.plot, dpi=100)
    print("wrote", args.plot)
