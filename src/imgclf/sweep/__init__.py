"""Sweeps on Optuna: the search space, the study and its storage, pruning and deadlines."""
