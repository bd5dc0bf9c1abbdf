"""The packet's machine-readable appendix: one proof bundle per cited entry, all against one checkpoint.

An auditor (or the client) checks the appendix offline with ``smart verify
APPENDIX --keys TRUST``: every bundle must verify (:func:`smart.ledger.bundle.verify`),
every bundle must rest on the same cosigned checkpoint, and the bundles must
be exactly the entries the appendix says the packet cites, so a bundle
dropped or swapped is caught as surely as an edited one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import rfc8785

from smart.keys import VerifyingKey
from smart.ledger import bundle
from smart.ledger.hub_store import HubLog
from smart.ledger.trust import Trust

FORMAT = "smart-audit-proofs/v1"


class AppendixError(ValueError):
    """An appendix that does not prove what it claims; the message names the bundle at fault."""


@dataclass(frozen=True, slots=True)
class Checked:
    packet: str
    size: int
    verified: tuple[bundle.Verified, ...]


def latest_cosigned_size(hub: HubLog, *, min_cosignatures: int = 1) -> int:
    """The largest checkpoint size with at least ``min_cosignatures`` witness lines (else the latest)."""
    row = hub.conn.execute(
        "SELECT size FROM ledger_cosignatures GROUP BY size HAVING count(*) >= %s ORDER BY size DESC LIMIT 1",
        (min_cosignatures,),
    ).fetchone()
    return int(row[0]) if row else hub.size()


def appendix(hub: HubLog, cited: Sequence[int], *, packet: str, log_key: VerifyingKey, size: int) -> bytes:
    """The appendix (canonical JSON) for entries ``cited``, proved against the checkpoint of ``size``."""
    proved = [i for i in sorted(set(cited)) if i < size]
    bundles = [b.to_bytes().decode() for b in hub.proof_bundles(proved, size=size, log_key=log_key)]
    return rfc8785.dumps(
        {"format": FORMAT, "packet": packet, "size": size, "cited": sorted(set(cited)), "bundles": bundles}
    )


def is_appendix(raw: bytes) -> bool:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(body, dict) and body.get("format") == FORMAT


def verify(raw: bytes, trust: Trust, *, min_witnesses: int = 0) -> Checked:
    """Check every bundle of an appendix offline; :class:`AppendixError` names the first one at fault."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise AppendixError(f"appendix: not JSON: {err}") from err
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise AppendixError(f"appendix: expected format {FORMAT!r}")
    bundles = body.get("bundles")
    cited = body.get("cited")
    if not isinstance(bundles, list) or not isinstance(cited, list):
        raise AppendixError("appendix: must list the cited entries and their bundles")
    verified: list[bundle.Verified] = []
    for at, text in enumerate(bundles):
        if not isinstance(text, str):
            raise AppendixError(f"bundles[{at}]: must be a bundle's canonical JSON text")
        try:
            verified.append(bundle.verify(text.encode(), trust, min_witnesses=min_witnesses))
        except bundle.BundleError as err:
            raise AppendixError(f"bundles[{at}]: {err}") from err
        if verified[-1].size != body.get("size"):
            raise AppendixError(
                f"bundles[{at}]: proved at size {verified[-1].size}, not the appendix's {body.get('size')}"
            )
    indexes = [v.index for v in verified]
    if indexes != cited:
        missing = sorted(set(cited) - set(indexes))
        extra = sorted(set(indexes) - set(cited))
        raise AppendixError(
            f"appendix: bundles do not match the cited entries (missing {missing}, extra {extra})"
        )
    return Checked(str(body.get("packet")), int(body["size"]), tuple(verified))
