import numpy as np
import pytest
import torch

import modelbased  # noqa: F401  (registers envs and agents)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def greedy_path_length(agent, env_id: str) -> int | None:
    """The longest path the greedy policy can take from the start over all tie-breaks,
    following the env's known (deterministic) model; None if some greedy choice loops."""
    import gymnasium as gym

    env = gym.make(env_id)
    start, _ = env.reset(seed=0)
    table = env.unwrapped.P
    memo: dict[int, int | None] = {}

    def longest(s: int, on_path: frozenset) -> int | None:
        if s in memo:
            return memo[s]
        if s in on_path:
            return None
        q = agent.Q[s]
        worst = 0
        for a in np.flatnonzero(q == q.max()):
            [(_, s2, _, done)] = table[s][int(a)]
            rest = 0 if done else longest(s2, on_path | {s})
            if rest is None:
                memo[s] = None
                return None
            worst = max(worst, 1 + rest)
        memo[s] = worst
        return worst

    return longest(start, frozenset())
