"""Standards: which revision of which spec applies, and whether what is in use meets it.

``procedure`` judges the procedure revision named (approved by a Level 3 in
the method, validated), the furnace's class and range against the job's,
and equipment that must match the part (the TAM panel's finish).
"""

from __future__ import annotations

from smart.modules import rulebound


class StandardsModule(rulebound.RuleBoundModule):
    name = "standards"
