import torch

from fourreal.sampling.flow_solver import guided, sample, sigma_schedule
from fourreal.training.flow_matching import flow_loss, interpolate, sample_sigma, velocity_target


def test_interpolation_and_velocity_by_hand():
    x0 = torch.tensor([[1.0, -1.0]])
    eps = torch.tensor([[0.5, 2.0]])
    xs = interpolate(x0, eps, torch.tensor([0.25]))
    torch.testing.assert_close(xs, torch.tensor([[0.875, -0.25]]))  # 0.75 * x0 + 0.25 * eps
    torch.testing.assert_close(velocity_target(x0, eps), torch.tensor([[-0.5, 3.0]]))


def test_interpolation_ends_per_video_sigma_and_path_velocity():
    gen = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 3, 3, 2, 2, generator=gen), torch.randn(2, 3, 3, 2, 2, generator=gen)
    assert torch.equal(interpolate(x0, eps, torch.zeros(2)), x0) and torch.equal(interpolate(x0, eps, torch.ones(2)), eps)
    mixed = interpolate(x0, eps, torch.tensor([0.0, 1.0]))  # sigma [B]: one flow time per video
    assert torch.equal(mixed[0], x0[0]) and torch.equal(mixed[1], eps[1])
    step = interpolate(x0, eps, torch.full((2,), 0.7)) - interpolate(x0, eps, torch.full((2,), 0.2))
    torch.testing.assert_close(step, 0.5 * velocity_target(x0, eps))  # d x_sigma / d sigma is the target


def test_loss_by_hand_skips_conditioning_frames():
    pred = torch.zeros(1, 3, 2)
    target = torch.tensor([[[1.0, 1.0], [2.0, 0.0], [3.0, 3.0]]])
    # frame errors: 1, 2, 9; frame 0 is conditioning
    assert flow_loss(pred, target, torch.tensor([[1.0, 0, 0]])).item() == 5.5
    assert flow_loss(pred, target, torch.zeros(1, 3)).item() == 4.0
    assert flow_loss(pred, target, torch.ones(1, 3)).item() == 0.0


def test_sigma_distributions():
    g = torch.Generator().manual_seed(0)
    u = sample_sigma(20000, "uniform", generator=g)
    ln = sample_sigma(20000, "logit_normal", generator=g)
    assert 0 < u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    assert abs(ln.median() - 0.5) < 0.02 and ln.std() < u.std()  # logit-normal concentrates mid-range


def test_exact_velocity_recovers_the_data_and_keeps_conditioning():
    x0 = torch.randn(2, 4, 3)
    noise_seed = 7
    eps = torch.randn((2, 4, 3), generator=torch.Generator().manual_seed(noise_seed))

    def oracle(x, s):  # the true velocity of the straight path from eps to x0
        return eps - x0

    for method in ("euler", "heun"):
        out = sample(oracle, (2, 4, 3), steps=5, method=method, seed=noise_seed, progress=False)
        torch.testing.assert_close(out, x0, atol=1e-5, rtol=0)
    cond = torch.full((2, 4, 3), 9.0)
    mask = torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0]])
    out = sample(oracle, (2, 4, 3), steps=3, cond=cond, cond_mask=mask, seed=noise_seed, progress=False)
    assert torch.equal(out[0, 0], cond[0, 0]) and torch.equal(out[0, 3], cond[0, 3]) and torch.equal(out[1, 1], cond[1, 1])
    assert not torch.equal(out[1, 0], cond[1, 0])


def test_sampling_is_deterministic_given_the_seed():
    v = lambda x, s: -x  # noqa: E731
    a = sample(v, (1, 2, 3), steps=4, seed=3, progress=False)
    assert torch.equal(a, sample(v, (1, 2, 3), steps=4, seed=3, progress=False))
    assert not torch.equal(a, sample(v, (1, 2, 3), steps=4, seed=4, progress=False))


def test_schedule_and_guidance():
    s = sigma_schedule(4, shift=3.0)
    assert s[0] == 1 and s[-1] == 0 and (s.diff() < 0).all() and s[2] > 0.5
    g = guided(lambda x, s: torch.ones_like(x), lambda x, s: torch.zeros_like(x), 2.5)
    assert g(torch.zeros(1), torch.zeros(1)).item() == 2.5


def test_sigma_max_caps_the_flow_time_the_model_is_asked_at():
    asked = []

    def v(x, s):  # records every flow time it is asked at, and depends on it
        asked.append(s.clone())
        return -x * s.view(-1, 1, 1)

    for method in ("euler", "heun"):
        asked.clear()
        plain = sample(v, (2, 3, 4), steps=4, method=method, seed=1, progress=False)
        assert max(s.max().item() for s in asked) == 1.0
        torch.testing.assert_close(sample(v, (2, 3, 4), steps=4, method=method, seed=1, progress=False, sigma_max=1.0),
                                   plain, atol=0, rtol=0)  # the default is the plain solve, bit for bit
        asked.clear()
        capped = sample(v, (2, 3, 4), steps=4, method=method, seed=1, progress=False, sigma_max=0.8)
        # sigmas 1, 0.75, 0.5, 0.25: only the first is capped, the step sizes are those of the schedule
        assert sorted({round(s[0].item(), 4) for s in asked}, reverse=True)[:2] == [0.8, 0.75]
        assert all((s <= torch.tensor(0.8)).all() for s in asked) and not torch.equal(capped, plain)
