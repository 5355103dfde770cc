"""Bundled prompt sets (HarmBench, StrongREJECT, AdvBench, XSTest), user prompt files, and
deterministic category-stratified splits. Licences and citations: ``data/README.md``.

    ps = load_prompt_set("harmbench")            # or "xstest-safe", "harmbench+strongreject", "my.csv"
    search_set = split(ps, "search")             # holdout = split(ps, "holdout"), disjoint
    quick = sample(search_set, 20)               # covers every category
"""

from safetune.datasets.items import PromptItem, PromptSet
from safetune.datasets.loaders import dataset_names, load_prompt_set, load_prompt_sets
from safetune.datasets.splits import SPLIT_SEED, fixed_split, sample, split, unused_sample

__all__ = [
    "PromptItem",
    "PromptSet",
    "SPLIT_SEED",
    "dataset_names",
    "fixed_split",
    "load_prompt_set",
    "load_prompt_sets",
    "sample",
    "split",
    "unused_sample",
]
