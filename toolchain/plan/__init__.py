"""Memory planning: where every activation and scratch buffer lives in the arena."""
from .arena import Plan, find_overlaps, plan_memory

__all__ = ["Plan", "find_overlaps", "plan_memory"]
