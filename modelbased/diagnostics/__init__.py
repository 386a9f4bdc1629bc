"""Diagnostics that make model error visible: the tabular value-error bound now; compounding
error vs horizon and calibration of learned ensembles arrive with the world-model issue."""

from modelbased.diagnostics.tabular import BoundReport, transition_tv, value_error_bound

__all__ = ["BoundReport", "transition_tv", "value_error_bound"]
