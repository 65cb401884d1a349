"""Stable colours: a name (team, deployment, account) always gets the same colour, on every page and every run.

Names in general: the colour is the name's SHA-1 modulo the palette (Tableau's ten without its grey, and five of its
twenty: 14 colours that stay apart and readable on white), so it depends on nothing but the name: not on sort order,
on which other names are on the chart, or on the Python process (`hash()` is salted per process, SHA-1 is not). Two
names can share a colour (with 14 colours, likely once there are five or more); the legend and hover text name each.

Teams (`team_colours`): collision-free for the first 14. The teams the whole daily cost table knows are sorted and
take the palette's slots in that order, so no two of them share a colour and each keeps its colour as long as the
list of teams does (a new team that sorts before others shifts those after it). Teams beyond the palette, or not in
the list, take a colour from `EXTRA_PALETTE` by their SHA-1: never one of the first 14 teams' colours, though two of
them may share one. `idle` and `unallocated` are never a team's colour: fixed greys, drawn hatched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

PALETTE: tuple[str, ...] = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
    "#1f4e79", "#8cd17d", "#b6992d", "#499894", "#d37295",
)
#: For teams beyond the palette: Tableau 20's lighter halves that `PALETTE` leaves out, and five more hues; no grey
#: (greys are idle and unallocated).
EXTRA_PALETTE: tuple[str, ...] = (
    "#a0cbe8", "#ffbe7d", "#ff9d9a", "#86bcb6", "#f1ce63", "#d4a6c8", "#fabfd2", "#d7b5a6", "#6b9ac4",
    "#c85200", "#7e9c3a", "#8f6bb3", "#d95f8a", "#3e9e9e",
)

#: Status classes keep fixed colours: success muted, client errors amber, throttling orange-red, server errors red.
STATUS_COLOURS: dict[str, str] = {
    "2xx": "#9ecae1",
    "4xx (not 429)": "#f2b134",
    "429": "#e6550d",
    "5xx": "#a50f15",
}

IDLE, UNALLOCATED = "idle", "unallocated"
#: Cost nobody used (a provisioned deployment's unused capacity) and cost no rule places: neutral greys, hatched.
IDLE_COLOUR = "#c9ced6"
UNALLOCATED_COLOUR = "#6e7781"
#: What a chart folds together beyond its top entries ("other teams").
OTHER_COLOUR = "#e3e7ec"
FIXED_TEAM_COLOURS: dict[str, str] = {IDLE: IDLE_COLOUR, UNALLOCATED: UNALLOCATED_COLOUR}

#: The attribution method of a cost figure, drawn as the bar's pattern (whatever its colour).
METHOD_PATTERNS: dict[str, str] = {"direct": "", "owner": ".", "estimated": "/", "unallocated": "x", "idle": "\\"}


def _digest(name: str) -> int:
    return int.from_bytes(hashlib.sha1(name.encode("utf-8"), usedforsecurity=False).digest()[:4], "big")


def colour_of(name: str) -> str:
    """The palette colour for a name."""
    return PALETTE[_digest(name) % len(PALETTE)]


def team_colours(teams: Iterable[str]) -> dict[str, str]:
    """A colour per team of `teams` (the whole table's, so that a filtered view keeps them), without collisions
    among the first `len(PALETTE)` in sorted order; `idle` and `unallocated` get their fixed greys."""
    named = sorted({t for t in teams if t not in FIXED_TEAM_COLOURS})
    colours = {team: PALETTE[i] if i < len(PALETTE) else extra_colour_of(team) for i, team in enumerate(named)}
    return {**colours, **FIXED_TEAM_COLOURS}


def extra_colour_of(name: str) -> str:
    """The colour of a team outside the palette's slots (see the module's docstring)."""
    return FIXED_TEAM_COLOURS.get(name) or EXTRA_PALETTE[_digest(name) % len(EXTRA_PALETTE)]


def team_colour(colours: dict[str, str], team: str) -> str:
    """A team's colour from `team_colours`, or its fallback when the mapping does not know it yet."""
    return colours.get(team) or extra_colour_of(team)
