"""The value-error bound of a learned tabular model (the simulation lemma; Kearns & Singh 2002,
Lemma 4; Strehl, Li & Littman 2009).

For a true MDP M and a learned one M^ with discount gamma < 1, let
    eps   = max_{s,a} TV(P(.|s,a), P^(.|s,a))     over next states plus a "terminated" outcome,
    eps_R = max_{s,a} |R(s,a) - R^(s,a)|,
    V_max = max(|R|_inf, |R^|_inf) / (1 - gamma).
Then for every policy, and so for the optimal values too,
    || V* - V^* ||_inf  <=  (eps_R + 2 gamma eps V_max) / (1 - gamma).
:func:`value_error_bound` reports the measured sup-norm gap beside that bound.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from modelbased.models.tabular import TabularMDP
from modelbased.planning.tabular import value_iteration


@dataclasses.dataclass(frozen=True)
class BoundReport:
    """The model errors, the optimal values of both models, the measured gap and the bound."""

    eps: float
    eps_R: float
    v_max: float
    gamma: float
    gap: float
    bound: float
    V_true: np.ndarray
    V_model: np.ndarray

    @property
    def holds(self) -> bool:
        """Whether the measured gap is within the bound."""
        return self.gap <= self.bound + 1e-9

    def summary(self) -> dict[str, float]:
        """The scalar fields as floats."""
        return {k: float(getattr(self, k)) for k in ("eps", "eps_R", "v_max", "gap", "bound")}


def transition_tv(true: TabularMDP, model: TabularMDP) -> np.ndarray:
    """``[S, A]`` total-variation distances between the two models' outcome distributions,
    where an outcome is a non-terminating next state or "terminated"."""
    c_true, c_model = true.continuation, model.continuation
    end_true = 1.0 - c_true.sum(-1)
    end_model = 1.0 - c_model.sum(-1)
    return 0.5 * (np.abs(c_true - c_model).sum(-1) + np.abs(end_true - end_model))


def value_error_bound(true: TabularMDP, model: TabularMDP, gamma: float) -> BoundReport:
    """Measure ``||V* - V^*||_inf`` and the simulation-lemma bound for ``gamma < 1``."""
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"the bound needs gamma in [0, 1), got {gamma}")
    if true.P.shape != model.P.shape:
        raise ValueError(f"models differ in shape: {true.P.shape} vs {model.P.shape}")
    eps = float(transition_tv(true, model).max())
    eps_r = float(np.abs(true.R - model.R).max())
    v_max = max(np.abs(true.R).max(), np.abs(model.R).max()) / (1.0 - gamma)
    V_true, _, _ = value_iteration(true.P, true.R, gamma, true.D, theta=1e-12)
    V_model, _, _ = value_iteration(model.P, model.R, gamma, model.D, theta=1e-12)
    gap = float(np.abs(V_true - V_model).max())
    bound = (eps_r + 2.0 * gamma * eps * v_max) / (1.0 - gamma)
    return BoundReport(eps, eps_r, float(v_max), gamma, gap, float(bound), V_true, V_model)
