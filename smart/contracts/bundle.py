"""Per-station bundles: compile a contract for one station, hash it, sign it, verify it.

A bundle is everything a station needs to enforce a contract with no hub:
the contract's rules, window, enforcement mode and standards, the station's
id and labels (for role rules) and the modules it must run there. It is
serialised as canonical JSON (RFC 8785), so the same contract and station
give the same bytes in the operator and in the embedded driver; the
revision is the SHA-256 of those bytes. The hub signs the bytes with its
Ed25519 key; what goes into the KV bucket is a signed envelope::

    {"bundle": {...}, "revision": "<sha256 hex>",
     "signature": {"alg": "Ed25519", "keyId": "<hub key id>", "value": "<base64>"}}

also canonical JSON. Ed25519 signatures are deterministic, so the envelope's
bytes too are identical for the same key.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pydantic
import rfc8785

from smart.contracts import catalog, rules
from smart.contracts.models import API_VERSION, SmartContract, Station
from smart.keys import SigningKey, VerifyingKey

BUNDLE_KIND = "ContractBundle"


class BundleError(ValueError):
    """A bundle's bytes, revision or signature do not check out; the message says which."""


@dataclass(frozen=True, slots=True)
class SignedBundle:
    station: str
    contract: str
    revision: str
    bundle: Mapping[str, Any]
    envelope: bytes

    @property
    def short_revision(self) -> str:
        return self.revision[:12]


class EnvelopeSignature(pydantic.BaseModel):
    """The hub's signature over the bundle's canonical bytes."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    alg: Literal["Ed25519"]
    key_id: str = pydantic.Field(alias="keyId", min_length=1)
    value: str = pydantic.Field(min_length=1)


class SignedEnvelope(pydantic.BaseModel):
    """The signed envelope as it travels in the ``contracts`` bucket: read once, here, at the edge."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    bundle: dict[str, Any]
    revision: str = pydantic.Field(pattern=r"^[0-9a-f]{64}$")
    signature: EnvelopeSignature


def canonical(value: Any) -> bytes:
    return bytes(rfc8785.dumps(value))


def modules_for(contract: SmartContract, station: Station) -> list[str]:
    """The contract's modules that the module manifests allow on this station, in a stable order."""
    return sorted(
        m
        for m in contract.spec.modules
        if m in catalog.MODULES and catalog.MODULES[m].may_run_on(station.labels)
    )


def compile_bundle(contract: SmartContract, station: Station) -> dict[str, Any]:
    """The bundle of ``contract`` for ``station`` as plain JSON values (no time, no key: deterministic)."""
    spec = contract.spec
    return {
        "apiVersion": API_VERSION,
        "kind": BUNDLE_KIND,
        "contract": contract.metadata.name,
        "station": station.spec.station_id,
        "stationLabels": dict(sorted(station.labels.items())),
        "enforcement": spec.enforcement,
        "window": spec.window.model_dump(mode="json", by_alias=True, exclude_none=True),
        "timezone": spec.timezone,
        "standards": [s.model_dump(mode="json", by_alias=True, exclude_none=True) for s in spec.standards],
        "modules": modules_for(contract, station),
        "rules": [rules.dump(rule) for rule in spec.rules],
    }


def revision_of(bundle: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(bundle)).hexdigest()


def sign(bundle: Mapping[str, Any], key: SigningKey) -> SignedBundle:
    data = canonical(bundle)
    revision = hashlib.sha256(data).hexdigest()
    envelope = {
        "bundle": bundle,
        "revision": revision,
        "signature": {
            "alg": "Ed25519",
            "keyId": key.key_id,
            "value": base64.b64encode(key.sign(data)).decode(),
        },
    }
    return SignedBundle(
        station=str(bundle["station"]),
        contract=str(bundle["contract"]),
        revision=revision,
        bundle=bundle,
        envelope=canonical(envelope),
    )


def verify(envelope: bytes, key: VerifyingKey) -> SignedBundle:
    """Check an envelope from the KV bucket: JSON, revision = SHA-256 of the bundle, hub signature."""
    try:
        value = SignedEnvelope.model_validate_json(envelope)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "(envelope)"
        raise BundleError(f"not a signed bundle: {where}: {first.get('msg')}") from err
    bundle, revision, signature = value.bundle, value.revision, value.signature
    data = canonical(bundle)
    if hashlib.sha256(data).hexdigest() != revision:
        raise BundleError(f"bundle revision {revision} does not match its content")
    if signature.key_id != key.key_id:
        raise BundleError(f"bundle {revision[:12]} signed by key {signature.key_id}, expected {key.key_id}")
    try:
        signed = base64.b64decode(signature.value, validate=True)
    except ValueError as err:
        raise BundleError(f"bundle {revision[:12]}: signature.value is not base64") from err
    if not key.verify(signed, data):
        raise BundleError(f"bundle {revision[:12]}: signature does not verify")
    return SignedBundle(
        station=str(bundle["station"]),
        contract=str(bundle["contract"]),
        revision=revision,
        bundle=bundle,
        envelope=envelope,
    )
