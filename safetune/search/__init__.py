"""The search: NSGA-II, random search and a Lagrangian GA over candidate vectors, hypervolume,
and selection rules.

Nothing here imports transformers: the loop sees vectors and objective values only.
"""
