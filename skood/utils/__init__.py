"""Utilities for developers of skood detectors: the contract checks
(:mod:`skood.utils.estimator_checks`)."""
