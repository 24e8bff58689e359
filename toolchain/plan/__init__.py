"""Memory planning: the call order, and where every activation and scratch buffer lives
in the arena."""
from .arena import Plan, find_overlaps, plan_memory
from .schedule import ScheduleResult, schedule, search_order

__all__ = ["Plan", "ScheduleResult", "find_overlaps", "plan_memory", "schedule", "search_order"]
