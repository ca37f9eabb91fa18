"""Scores of every detector on fixed data and seeds against the committed fixture.

``tests/_regression.py`` defines the fits (every configuration of the cross-detector tests,
the options that change how networks are built and trained, every score type, the image
networks) and recorded ``tests/fixtures/regression_scores.npz``. A refactor of training or
scoring that is meant to keep behaviour must reproduce it.

The fits run once per test run, in a fresh interpreter with the math kernels pinned to AVX2 and
one thread (``_regression.PINNED_KERNELS``), which makes every x86-64 processor compute the
recording's bits: the tolerance is a few float32 roundings. On other processors (ARM, say) the
kernels are other code, and no tolerance both admits what training grows from their last bits
(up to 2.5% of the scale between AVX-512 and AVX2 kernels) and fails a changed formula (the NLP
without the traced variance moves the scores of the table cases by less): there the comparison
skips, and fails in CI, which must run it.
"""

import _regression
import numpy as np
import pytest
from _regression import FIXTURE, KernelsNotPinnable, cases, fit_pinned

from conftest import in_ci

CASES = cases()
RECORDED = dict(np.load(FIXTURE))


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, np.ndarray]:
    path = tmp_path_factory.mktemp("regression") / "outputs.npz"
    try:
        fit_pinned(path)
    except KernelsNotPinnable as error:
        message = f"the recorded scores need an x86-64 processor with AVX2 ({error})"
        if in_ci():
            pytest.fail(f"{message}; CI is set: the comparison must run there", pytrace=False)
        pytest.skip(message)
    return dict(np.load(path))


def test_the_fixture_covers_every_case():
    recorded_cases = {name.rsplit("/", 1)[0] for name in RECORDED}
    assert recorded_cases == set(CASES)


@pytest.mark.parametrize("case", list(CASES))
def test_scores_match_the_recorded_fixture(case, outputs):
    prefix = f"{case}/"
    refitted = {name: values for name, values in outputs.items() if name.startswith(prefix)}
    expected = {name: values for name, values in RECORDED.items() if name.startswith(prefix)}
    assert set(refitted) == set(expected)
    for name, values in refitted.items():
        reference = expected[name]
        scale = np.max(np.abs(reference))
        np.testing.assert_allclose(values, reference, rtol=1e-4, atol=1e-6 * scale, err_msg=name)


def test_a_processor_without_the_pinned_kernels_is_refused(tmp_path, monkeypatch):
    # PyTorch's generic kernels stand in for a processor without AVX2.
    monkeypatch.setitem(_regression.PINNED_KERNELS, "ATEN_CPU_CAPABILITY", "default")
    with pytest.raises(KernelsNotPinnable, match="not AVX2"):
        fit_pinned(tmp_path / "outputs.npz")
    assert not (tmp_path / "outputs.npz").exists()
