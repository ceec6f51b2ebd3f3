"""What a run is asked to do beyond its partitions, carried as Dagster run tags and parsed in one place.

Tags rather than ``dg.Config``: the weekly schedule, the CLI and the UI's partition backfills all launch
ranged runs of the same asset jobs, and only tags reach every one of them (a backfill launched from the
asset graph takes no run config); tags also show in the UI's run list. Every tag is named and typed here;
stages read :class:`RunParameters`, never a tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

AS_OF_TAG = "costagent/as_of"  # the report date, YYYY-MM-DD; today (UTC) when absent
AI_TAG = "costagent/ai"  # "off": deterministic insights, no Gemini calls (history runs mail nobody)
# who launched it: "cli", "backfill" or "preview" (`preview team --ai`); absent for the schedule and the UI
TRIGGER_TAG = "costagent/trigger"

Trigger = Literal["cli", "backfill", "preview", "schedule_or_ui"]


@dataclass(frozen=True)
class RunParameters:
    """A run's parameters: its report date, whether AI may be called, and what launched it."""

    as_of: date | None = None
    ai_off: bool = False
    trigger: Trigger = "schedule_or_ui"

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> RunParameters:
        """The parameters of a run with ``tags``; a malformed date raises ``ValueError`` naming the tag."""
        text = tags.get(AS_OF_TAG)
        try:
            as_of = date.fromisoformat(text) if text else None
        except ValueError:
            raise ValueError(f"run tag {AS_OF_TAG} must be a date like 2026-11-23, got {text!r}") from None
        trigger = tags.get(TRIGGER_TAG)
        return cls(
            as_of=as_of,
            ai_off=tags.get(AI_TAG) == "off",
            trigger=trigger if trigger in ("cli", "backfill", "preview") else "schedule_or_ui",
        )

    def to_tags(self) -> dict[str, str]:
        """The tags that carry these parameters (only those that differ from the defaults)."""
        tags = {}
        if self.as_of is not None:
            tags[AS_OF_TAG] = self.as_of.isoformat()
        if self.ai_off:
            tags[AI_TAG] = "off"
        if self.trigger != "schedule_or_ui":
            tags[TRIGGER_TAG] = self.trigger
        return tags
