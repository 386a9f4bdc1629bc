"""FusedAdam: the same steps as torch.optim.Adam, and checkpoints interchangeable with it."""

import pytest
import torch

from modelbased.models.optim import FusedAdam


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))


def _train(net: torch.nn.Module, opt, steps: int, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(32, 3, generator=g)
        loss = (net(x) - x.sum(1, keepdim=True)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_matches_torch_adam() -> None:
    ref, ours = _net(0), _net(0)
    _train(ref, torch.optim.Adam(ref.parameters(), lr=3e-3), 40)
    _train(ours, FusedAdam(ours.parameters(), lr=3e-3), 40)
    for p, q in zip(ref.parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)


def test_checkpoints_load_both_ways() -> None:
    ref, ours = _net(1), _net(1)
    ref_opt, ours_opt = torch.optim.Adam(ref.parameters(), lr=1e-3), FusedAdam(ours.parameters())
    _train(ref, ref_opt, 5)
    ours.load_state_dict(ref.state_dict())
    ours_opt.load_state_dict(ref_opt.state_dict())  # torch.optim.Adam -> FusedAdam
    _train(ref, ref_opt, 5, seed=1)
    _train(ours, ours_opt, 5, seed=1)
    for p, q in zip(ref.parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)
    back = torch.optim.Adam(_net(2).parameters())
    back.load_state_dict(ours_opt.state_dict())  # FusedAdam -> torch.optim.Adam
    assert float(back.state_dict()["state"][0]["step"]) == 10.0


def test_refuses_missing_gradient_and_wrong_state() -> None:
    net = _net(0)
    opt = FusedAdam(net.parameters())
    with pytest.raises(RuntimeError, match="no gradient"):
        opt.step()
    other = FusedAdam(torch.nn.Linear(2, 2).parameters())
    with pytest.raises(ValueError, match="parameters"):
        opt.load_state_dict(other.state_dict())
