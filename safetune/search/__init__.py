"""The search: NSGA-II over candidate vectors, hypervolume, and selection rules.

Nothing here imports transformers: the loop sees vectors and objective values only.
"""
