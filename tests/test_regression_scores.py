"""Scores of every detector on fixed data and seeds against the committed fixture.

``tests/_regression.py`` defines the fits (every configuration of the cross-detector tests,
the options that change how networks are built and trained, every score type, the image
networks) and recorded ``tests/fixtures/regression_scores.npz``. A refactor of training or
scoring that is meant to keep behaviour must reproduce it. The tolerance admits the last-bit
differences of other processors' math kernels (amplified a little by training); a change of
method moves scores by orders of magnitude more.
"""

import numpy as np
import pytest
from _regression import FIXTURE, cases

# Tiny networks: one thread (tests/conftest.py), as when the fixture was recorded.
pytestmark = pytest.mark.usefixtures("one_thread")

CASES = cases()
RECORDED = dict(np.load(FIXTURE))


def test_the_fixture_covers_every_case():
    recorded_cases = {name.rsplit("/", 1)[0] for name in RECORDED}
    assert recorded_cases == set(CASES)


@pytest.mark.parametrize("case", list(CASES))
def test_scores_match_the_recorded_fixture(case):
    outputs = CASES[case]()
    expected = {name.rsplit("/", 1)[1]: values for name, values in RECORDED.items()
                if name.rsplit("/", 1)[0] == case}  # fmt: skip
    assert set(outputs) == set(expected)
    for name, values in outputs.items():
        reference = expected[name]
        scale = np.max(np.abs(reference))
        np.testing.assert_allclose(
            values, reference, rtol=1e-4, atol=1e-6 * scale, err_msg=f"{case}: {name}"
        )
