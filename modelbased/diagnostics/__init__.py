"""Diagnostics that make model error visible: the tabular value-error bound (simulation lemma,
:mod:`~modelbased.diagnostics.tabular`); one-step error, calibration and compounding k-step
error of learned ensembles (:mod:`~modelbased.diagnostics.model_error`, behind ``modelbased
diagnose`` in :mod:`~modelbased.diagnostics.report`)."""

from modelbased.diagnostics.tabular import BoundReport, transition_tv, value_error_bound

__all__ = ["BoundReport", "transition_tv", "value_error_bound"]
