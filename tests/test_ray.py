"""Ray: a grid search under Ray's joblib backend gives the sequential search's scores."""

import pytest
from _parallel_search import assert_search_matches_sequential

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_backend():
    from ray.util.joblib import register_ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    register_ray()
    yield
    ray.shutdown()


def test_grid_search_under_the_ray_backend_matches_the_sequential_one(ray_backend):
    assert_search_matches_sequential("ray")
