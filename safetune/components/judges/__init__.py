"""Judges: one file per judge family, all behind ``safetune.components.judges.base.Judge``."""

from safetune.components.judges.base import Judge, Verdict, get_judge, judge_names, register_judge

__all__ = ["Judge", "Verdict", "get_judge", "judge_names", "register_judge"]
