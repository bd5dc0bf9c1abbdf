"""Gatekeeper: may this person, with this part and PO, run this process on this equipment now?

``badge`` judges the person alone (the credential and exam rules: level,
supervisor of a trainee, recertification, lapse, vision and colour-contrast
exams) when someone badges in and no traveler is scanned yet; ``start``
judges every Gatekeeper rule, the traveler and the station's role included.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

from smart.modules import rulebound


class GatekeeperModule(rulebound.RuleBoundModule):
    name = "gatekeeper"
    verb_kinds: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType({"badge": ("credential", "exam")})
