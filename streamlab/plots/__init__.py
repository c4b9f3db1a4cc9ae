"""Drawing only: each function takes ``ax=None``, draws on it and returns it; no global settings change."""

from streamlab.plots.summary import answer_over_time, memory_growth

__all__ = ["answer_over_time", "memory_growth"]
