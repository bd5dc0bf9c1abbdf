"""Some events only at a station of some role (shipping and receiving at sr-1)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from smart.contracts.families import judging, vocabulary


class StationRoleRule(vocabulary.RuleBase):
    """These actions happen only at a station with one of these roles (e.g. shipping on sr-1)."""

    kind: Literal["stationRole"] = "stationRole"
    module: ClassVar[str] = "gatekeeper"
    default_on: ClassVar[tuple[str, ...]] = ("ship", "receive")

    roles: list[vocabulary.Name] = Field(min_length=1)


def compile_rule(rule: StationRoleRule, ctx: judging.Context) -> judging.Check:
    fail = judging.failer(rule)
    role = ctx.role
    if role in rule.roles:
        return lambda event, facts: None
    refused = fail(
        f"station {ctx.station} (role {role}) may not do this; roles {', '.join(rule.roles)}",
        station=ctx.station,
        role=role,
    )
    return lambda event, facts: refused


FAMILY = judging.Family(StationRoleRule, compile_rule)
