import gymnasium as gym
import numpy as np
import pytest

from modelbased.models import CountModel, DeterministicModel, TabularMDP
from modelbased.planning import (
    PriorityQueue,
    dyna_q_planning,
    policy_evaluation,
    policy_iteration,
    q_learning_updates,
    value_iteration,
)


def frozen_lake() -> TabularMDP:
    return TabularMDP.from_env(gym.make("FrozenLake-v1"))


def test_value_iteration_frozen_lake_start_value():
    V, Q, iterations = value_iteration(*_pr(frozen_lake()), gamma=1.0, D=frozen_lake().D)
    assert V[0] == pytest.approx(0.82353, abs=1e-4)
    assert iterations > 10


def _pr(mdp):
    return mdp.P, mdp.R


def test_policy_iteration_agrees_with_value_iteration():
    mdp = frozen_lake()
    for gamma in (0.9, 0.99, 1.0):
        V_vi, _, _ = value_iteration(mdp.P, mdp.R, gamma, mdp.D)
        V_pi, _, policy, _ = policy_iteration(mdp.P, mdp.R, gamma, mdp.D)
        np.testing.assert_allclose(V_pi, V_vi, atol=1e-6)
        np.testing.assert_allclose(
            policy_evaluation(mdp.P, mdp.R, policy, gamma, mdp.D), V_vi, atol=1e-6
        )


def test_value_iteration_two_state_chain_by_hand():
    # s0 -a0-> s1 (r=0), s0 -a1-> terminate (r=0.5); s1 -any-> terminate (r=1)
    P = np.zeros((2, 2, 2))
    P[0, 0, 1] = 1
    P[0, 1, 0] = 1
    P[1, :, 1] = 1
    D = np.zeros_like(P)
    D[0, 1, 0] = 1
    D[1, :, 1] = 1
    R = np.array([[0.0, 0.5], [1.0, 1.0]])
    V, Q, _ = value_iteration(P, R, 0.9, D)
    np.testing.assert_allclose(V, [0.9, 1.0])
    np.testing.assert_allclose(Q[0], [0.9, 0.5])


def test_q_learning_kernel_matches_python_reference():
    rng = np.random.default_rng(0)
    Q = rng.normal(size=(7, 3))
    n = 500
    s, a, s2 = rng.integers(0, 7, n), rng.integers(0, 3, n), rng.integers(0, 7, n)
    r, term = rng.normal(size=n), rng.random(n) < 0.2
    ref = Q.copy()
    for k in range(n):
        target = r[k] + (0.0 if term[k] else 0.9 * ref[s2[k]].max())
        ref[s[k], a[k]] += 0.3 * (target - ref[s[k], a[k]])
    q_learning_updates(Q, s, a, r, s2, term, 0.3, 0.9)
    np.testing.assert_allclose(Q, ref)


def test_priority_queue_pops_highest_and_keeps_higher_priority():
    pq = PriorityQueue()
    pq.push(0, 0, 1.0)
    pq.push(1, 1, 3.0)
    pq.push(0, 0, 0.5)  # lower: ignored
    pq.push(2, 0, 2.0)
    pq.push(2, 0, 5.0)  # higher: replaces
    restored = PriorityQueue()
    restored.load_state(pq.state())
    for q in (pq, restored):
        assert [q.pop()[:2] for _ in range(len(q))] == [(2, 0), (1, 1), (0, 0)]
        with pytest.raises(IndexError):
            q.pop()


def test_count_model_samples_empirical_distribution():
    m = CountModel(3, 1)
    for s2, n in ((0, 100), (1, 300), (2, 600)):
        for _ in range(n):
            m.update(0, 0, float(s2), s2, s2 == 2)
    rng = np.random.default_rng(0)
    s2, r, term = m.sample(np.zeros(20000, np.int64), np.zeros(20000, np.int64), rng)
    np.testing.assert_allclose(np.bincount(s2, minlength=3) / 20000, [0.1, 0.3, 0.6], atol=0.015)
    np.testing.assert_array_equal(r, s2.astype(float))
    np.testing.assert_array_equal(term, s2 == 2)
    mdp = m.to_mdp()
    np.testing.assert_allclose(mdp.P[0, 0], [0.1, 0.3, 0.6])
    assert mdp.R[0, 0] == pytest.approx(1.5)
    assert mdp.D[1, 0, 1] == 1.0  # untried pair: terminates


def test_deterministic_model_last_seen_and_predecessors():
    m = DeterministicModel(4, 2)
    m.update(0, 1, 0.0, 2, False)
    m.update(1, 0, 0.0, 2, False)
    m.update(0, 1, 1.0, 3, True)  # last seen wins
    s2, r, term = m.sample(np.array([0, 1]), np.array([1, 0]), np.random.default_rng(0))
    assert list(s2) == [3, 2] and list(r) == [1.0, 0.0] and list(term) == [True, False]
    assert m.predecessors(2).tolist() == [[1, 0]]
    assert sorted(m.observed_pairs.tolist()) == [1, 2]
    copy = DeterministicModel(4, 2)
    copy.load_state_dict(m.state_dict())
    assert copy.observed_pairs.tolist() == m.observed_pairs.tolist()


def test_fused_planning_kernel_matches_sampling_then_q_learning_updates():
    rng = np.random.default_rng(1)
    n_states, n_actions = 9, 4
    next_state = rng.integers(0, n_states, (n_states, n_actions))
    reward = rng.normal(size=(n_states, n_actions))
    terminal = rng.random((n_states, n_actions)) < 0.2
    pairs = rng.choice(n_states * n_actions, 20, replace=False)
    idx = rng.integers(0, len(pairs), 300)
    Q = rng.normal(size=(n_states, n_actions))
    ref = Q.copy()
    s, a = pairs[idx] // n_actions, pairs[idx] % n_actions
    td_ref = q_learning_updates(ref, s, a, reward[s, a], next_state[s, a], terminal[s, a], 0.3, 0.9)
    td = dyna_q_planning(Q, pairs, idx, next_state, reward, terminal, 0.3, 0.9)
    np.testing.assert_array_equal(Q, ref)
    assert td == td_ref


@pytest.mark.parametrize("planning_steps", [5, 50])  # the default and the DynaMaze preset
def test_fused_dyna_q_planning_equals_the_general_path(planning_steps):
    import modelbased as mb

    def agent(fused: bool) -> mb.DynaQ:
        a = mb.DynaQ(
            "modelbased/DynaMaze-v0", seed=3, planning_steps=planning_steps, eval_every=10**9
        )
        assert a.fused_planning  # plain Dyna-Q on its last-seen model takes the fused path
        a.fused_planning = fused
        return a.learn(3_000)

    fused, general = agent(True), agent(False)
    assert fused.planning_updates == general.planning_updates == 3_000 * planning_steps
    np.testing.assert_array_equal(fused.Q, general.Q)
    assert fused.rng.bit_generator.state == general.rng.bit_generator.state  # same draws


def test_only_plain_dyna_q_takes_the_fused_path():
    import modelbased as mb

    assert not mb.DynaQ("modelbased/DynaMaze-v0", model="stochastic").fused_planning
    assert not mb.DynaQPlus("modelbased/DynaMaze-v0").fused_planning
