"""FusedAdam: both paths (the private kernel and the torch.optim.Adam fallback) take the same
steps as torch.optim.Adam, and checkpoints are interchangeable between all three."""

import pytest
import torch

from modelbased.models.optim import FusedAdam, fused_kernel_works


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


def test_kernel_is_found_on_this_build() -> None:
    assert fused_kernel_works(torch.device("cpu"), torch.float32)
    assert FusedAdam(_net(0).parameters()).kernel  # the default takes it where it works


@pytest.mark.parametrize("kernel", [True, False])
def test_matches_torch_adam(kernel: bool) -> None:
    ref, ours = _net(0), _net(0)
    _train(ref, torch.optim.Adam(ref.parameters(), lr=3e-3), 40)
    opt = FusedAdam(ours.parameters(), lr=3e-3, kernel=kernel)
    assert opt.kernel is kernel
    _train(ours, opt, 40)
    for p, q in zip(ref.parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)


def test_kernel_and_fallback_take_identical_steps() -> None:
    """The kept fast path against the public one it replaces: bit-identical parameters after
    N steps, with gradients from ``.grad`` and passed in (as SAC's temperature does)."""
    nets = {k: _net(0) for k in (True, False)}
    opts = {k: FusedAdam(nets[k].parameters(), lr=3e-3, kernel=k) for k in nets}
    fused_ref = _net(0)
    _train(fused_ref, torch.optim.Adam(fused_ref.parameters(), lr=3e-3, fused=True), 60)
    for k in nets:
        _train(nets[k], opts[k], 60)
    for a, b, c in zip(*(n.parameters() for n in (*nets.values(), fused_ref)), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(a, c, rtol=0, atol=0)
    scalars = {k: torch.tensor(0.3) for k in (True, False)}
    scalar_opts = {k: FusedAdam([scalars[k]], lr=0.1, kernel=k) for k in scalars}
    for i in range(20):
        for k in scalars:
            scalar_opts[k].step([torch.tensor(float(i % 3 - 1))])
    assert scalars[True].item() == scalars[False].item() != 0.3
    assert scalars[False].grad is None  # the fallback lends passed gradients only for the step


def test_feature_test_decides_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import modelbased.models.optim as optim

    probe = optim.fused_kernel_works.__wrapped__  # uncached
    cpu = torch.device("cpu")

    def changed_signature(*args, **kwargs):
        raise TypeError("_fused_adam_() got an unexpected keyword argument 'beta1'")

    monkeypatch.setattr(torch, "_fused_adam_", changed_signature)
    assert not probe(cpu, torch.float32)
    monkeypatch.setattr(torch, "_fused_adam_", lambda *args, **kwargs: None)  # a silent no-op
    assert not probe(cpu, torch.float32)
    monkeypatch.undo()
    monkeypatch.setattr(optim, "fused_kernel_works", lambda device, dtype: False)
    net = _net(0)
    opt = FusedAdam(net.parameters(), lr=3e-3)
    assert not opt.kernel
    _train(net, opt, 3)
    mixed = [torch.zeros(2), torch.zeros(2, dtype=torch.float64)]
    assert not FusedAdam(mixed).kernel
    with pytest.raises(ValueError, match="one device and dtype"):
        FusedAdam(mixed, kernel=True)


def test_state_lives_on_the_params_device() -> None:
    params = [torch.zeros(3, device="meta"), torch.zeros(2, device="meta")]
    opt = FusedAdam(params, kernel=True)
    assert opt._step.device.type == "meta"
    assert {t.device.type for t in (*opt.exp_avg, *opt.exp_avg_sq)} == {"meta"}


@pytest.mark.parametrize("kernel", [True, False])
def test_checkpoints_load_both_ways(kernel: bool) -> None:
    ref, ours = _net(1), _net(1)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-3)
    ours_opt = FusedAdam(ours.parameters(), kernel=kernel)
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
    other = FusedAdam(_net(2).parameters(), kernel=not kernel)
    other.load_state_dict(ours_opt.state_dict())  # one path -> the other
    assert float(other.state_dict()["state"][0]["step"]) == 10.0


@pytest.mark.parametrize("kernel", [True, False])
def test_refuses_missing_gradient_and_wrong_state(kernel: bool) -> None:
    net = _net(0)
    opt = FusedAdam(net.parameters(), kernel=kernel)
    with pytest.raises(RuntimeError, match="no gradient"):
        opt.step()
    other = FusedAdam(torch.nn.Linear(2, 2).parameters())
    with pytest.raises(ValueError, match="parameters"):
        opt.load_state_dict(other.state_dict())


def test_sac_updates_are_identical_on_both_paths() -> None:
    """SAC's three optimizers (the temperature's with passed gradients) on either path."""
    from modelbased.models.actor_critic import SACUpdate, SACUpdateConfig

    g = torch.Generator().manual_seed(0)
    batch = (
        torch.randn(64, 3, generator=g),
        torch.rand(64, 1, generator=g) * 2 - 1,
        torch.randn(64, generator=g),
        torch.randn(64, 3, generator=g),
        torch.rand(64, generator=g) < 0.1,
    )
    runs = []
    for kernel in (True, False):
        sac = SACUpdate(3, 1, SACUpdateConfig(hidden=(32, 32)), seed=0)
        lr = sac.config.learning_rate
        sac.actor_optimizer = FusedAdam(sac.actor.parameters(), lr, kernel=kernel)
        sac.critic_optimizer = FusedAdam(sac.critic.parameters(), lr, kernel=kernel)
        sac.alpha_optimizer = FusedAdam([sac.log_alpha], lr, kernel=kernel)
        for _ in range(10):
            sac.update(*batch)
        runs.append(sac.state_dict())
    for key in ("actor", "critic", "critic_target"):
        for name, value in runs[0][key].items():
            torch.testing.assert_close(value, runs[1][key][name], rtol=0, atol=0)
    assert runs[0]["log_alpha"].item() == runs[1]["log_alpha"].item() != 0.0
