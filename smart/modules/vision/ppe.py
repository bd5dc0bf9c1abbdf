"""PPE at a station: confirmed by scanning each item's tag, and by an image check where one is configured.

The contract names the PPE a process needs (its ``ppe`` rule, judged by
Safety); this file only gathers what the station can vouch for into the
event's ``ppe`` set. A PPE tag (``SMART:PPE:<item>``) scanned at the station
says the item is worn. A :class:`PpeDetector` may look at a frame and say,
for each item it is asked about, ``present``, ``absent`` or ``unknown``.
The default, :class:`NoDetector`, cannot see PPE at all: it answers
``unknown`` for every item, always, and never ``present``. With it, only
scanned tags count.

How the two combine (:func:`evidence`): an item counts as worn when its
tag was scanned and the image check does not say ``absent``, or when the
image check says ``present``; a tag the image contradicts is reported, not
counted. Nothing here allows or refuses: the contract's PPE rule decides
from the set.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, Protocol, runtime_checkable

from smart.modules.vision import codes, decode

Presence = Literal["present", "absent", "unknown"]


@runtime_checkable
class PpeDetector(Protocol):
    """An image check for PPE: for each item asked about, whether the frame shows it worn."""

    def detect(self, frame: decode.Frame, *, items: Collection[str]) -> Mapping[str, Presence]:
        """``present``, ``absent`` or ``unknown`` for each of ``items``."""
        ...


class NoDetector:
    """The default detector. It cannot see PPE: it has no model and does not look at the frame.

    It answers ``unknown`` for every item, every time — never ``present``
    and never ``absent`` — so PPE is confirmed by scanned tags alone until a
    real detector is configured.
    """

    def detect(self, frame: decode.Frame, *, items: Collection[str]) -> Mapping[str, Presence]:
        return MappingProxyType(dict.fromkeys(items, "unknown"))


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the station can vouch for: the items worn (``Event.ppe``) and how each was judged."""

    worn: frozenset[str]
    tagged: frozenset[str]
    seen: Mapping[str, Presence]
    #: Items whose tag was scanned but which the image check saw absent (not counted as worn).
    contradicted: frozenset[str]


def tagged(scanned: Iterable[codes.Code]) -> frozenset[str]:
    """The PPE items whose tags are among the scanned codes."""
    return frozenset(code.item for code in scanned if isinstance(code, codes.PpeTag))


def evidence(
    tags: Iterable[codes.PpeTag | str],
    *,
    frame: decode.Frame | None = None,
    detector: PpeDetector | None = None,
    items: Collection[str] = (),
) -> Evidence:
    """Tags scanned, and what ``detector`` (default :class:`NoDetector`) sees of ``items`` in ``frame``.

    ``items`` are the PPE items to look for (the contract's required and
    prohibited ones); the tags scanned are always looked for too.
    """
    scanned = frozenset(tag.item if isinstance(tag, codes.PpeTag) else tag for tag in tags)
    asked = tuple(sorted(scanned | set(items)))
    seen: Mapping[str, Presence] = MappingProxyType({})
    if frame is not None:
        seen = MappingProxyType(dict((detector or NoDetector()).detect(frame, items=asked)))
    contradicted = frozenset(item for item in scanned if seen.get(item) == "absent")
    worn = (scanned - contradicted) | {item for item, presence in seen.items() if presence == "present"}
    return Evidence(worn=frozenset(worn), tagged=scanned, seen=seen, contradicted=contradicted)
