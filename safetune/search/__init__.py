"""The search: ask/tell algorithms over candidate vectors, fronts and hypervolume, champion selection.

Nothing here imports torch, Lightning or transformers: an algorithm sees vectors and objective
values only (``base.py``); ``front.py`` has the Pareto front and hypervolume; one file per algorithm
(``nsga2``, ``random_search``, ``lagrangian``) behind ``registry.py``; ``selection.py`` picks which
front configuration gets which registry alias.
"""
