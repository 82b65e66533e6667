"""The flow-linear schedule, the η step rule and inversion."""
import pytest
import torch

from sidlite import Schedule, SidliteError


def test_flow_linear_values_match_the_paper():
    s = Schedule.flow_linear(10, 1e-4)
    assert s.steps == 10 and s.alphas[0] == 1 and s.sigmas[0] == 0
    expected = [0.0001, 0.1112, 0.2223, 0.3334, 0.4445, 0.5556, 0.6667, 0.7778, 0.8889, 1.0]
    assert [round(v, 4) for v in s.sigmas[1:]] == expected
    assert s.alphas[10] == 0 and all(abs(a + b - 1) < 1e-12 for a, b in zip(s.alphas, s.sigmas))


def test_noise_level_lookup():
    s = Schedule.flow_linear(50, 1e-2)
    assert s.index_for_noise_level(0.5) == 25 and s.index_for_noise_level(0.2) == 10
    assert s.index_for_noise_level(None) == 50 and s.index_for_noise_level(0.0) == 1
    assert Schedule.flow_linear(200, 1e-4).index_for_noise_level(0.3) == 61


def test_last_step_returns_estimate_and_eta_zero_is_deterministic():
    s = Schedule.flow_linear(5)
    x_hat, eps = torch.randn(3, 4, 4), torch.randn(3, 4, 4)
    assert s.step(x_hat, eps, 0, eta=1.0) is x_hat
    a = s.step(x_hat, eps, 2, eta=0.0)
    torch.testing.assert_close(a, s.alphas[2] * x_hat + s.sigmas[2] * eps)


def test_eta_keeps_marginal_variance():
    s = Schedule.flow_linear(5)
    g = torch.Generator().manual_seed(0)
    x_hat = torch.zeros(200000)
    eps = torch.randn(200000, generator=g)
    for eta in (0.0, 0.5, 1.0):
        x = s.step(x_hat, eps, 3, eta=eta, generator=g)
        assert abs(float(x.std()) - s.sigmas[3]) < 0.01


def test_inversion_then_sampling_round_trip_with_exact_estimates():
    """With the true clean signal as x̂, DDIM inversion and η = 0 sampling retrace the same path."""
    s = Schedule.flow_linear(8)
    y, z = torch.randn(10, dtype=torch.float64), torch.randn(10, dtype=torch.float64)
    x = s.alphas[1] * y + s.sigmas[1] * z
    for t in range(1, s.steps):
        x = s.step(y, s.predict_noise(x, y, t), t + 1)
    torch.testing.assert_close(x, s.alphas[8] * y + s.sigmas[8] * z)
    for t in range(s.steps, 0, -1):
        x = s.step(y, s.predict_noise(x, y, t) if s.sigmas[t] else z, t - 1)
    torch.testing.assert_close(x, y)


@pytest.mark.parametrize("args", [dict(steps=0), dict(steps=3, sigma_min=0.0), dict(steps=3, sigma_min=1.5)])
def test_bad_schedules(args):
    with pytest.raises(SidliteError):
        Schedule.flow_linear(**args)


def test_eta_outside_range():
    with pytest.raises(SidliteError, match="eta"):
        Schedule.flow_linear(3).step(torch.zeros(1), torch.zeros(1), 1, eta=1.5)
