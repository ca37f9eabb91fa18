"""The Gaussian log-densities shared by the flows and InvGAN, against torch.distributions."""

import torch
from torch.distributions import Normal

from skood.nn.gaussian import diagonal_normal_log_prob, standard_normal_log_prob


def test_standard_normal_log_prob_matches_torch_distributions():
    z = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = Normal(0.0, 1.0).log_prob(z).flatten(1).sum(1)
    torch.testing.assert_close(standard_normal_log_prob(z), expected)


def test_diagonal_normal_log_prob_matches_torch_distributions():
    generator = torch.Generator().manual_seed(1)
    x, mean, log_sigma = (
        torch.randn(6, 4, generator=generator, dtype=torch.float64) for _ in range(3)
    )
    expected = Normal(mean, log_sigma.exp()).log_prob(x).sum(1)
    torch.testing.assert_close(diagonal_normal_log_prob(x, mean, log_sigma), expected)
