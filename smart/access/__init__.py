"""Access, the Guardian: who people and devices are, what they may do, and proof a station checks alone.

- ``credential``: the six kinds of credential and what a refusal says;
- ``tokens``: credentials as standard signed tokens (JWS compact, Ed25519);
- ``verify``: offline verification with mirrored keys and the revocation list;
- ``records``, ``schemes``, ``derive``: certification schemes (NAS410, EN4179)
  and courses as data, and a person's current credentials derived from records;
- ``permits``: what each credential kind permits at a station;
- ``admission``: a scanned badge's tokens verified, then the permits — the station's one call;
- ``roles``: who may do what on the hub web pages;
- ``stationauth``: each station's own NATS credentials and permissions;
- ``distribution``: the KV buckets stations mirror (keys, revocations, per-station credentials).

This package is a library: it never imports a driver (web, CLI, runtime).
"""

from smart.access.credential import Credential, Kind, Reason, Refusal, Revocation
from smart.access.verify import Verifier, verify

__all__ = ["Credential", "Kind", "Reason", "Refusal", "Revocation", "Verifier", "verify"]
