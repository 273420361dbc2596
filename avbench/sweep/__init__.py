"""Sweeps: the search space derived from an experiment's nulls, and the backends that search it."""
