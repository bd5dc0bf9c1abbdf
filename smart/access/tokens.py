"""Credentials as standard signed tokens: a JWT (RFC 7519) in JWS compact form, signed with Ed25519.

The algorithm is named ``Ed25519`` (RFC 9864's fully-specified name for
EdDSA over Ed25519; joserfc marks the older ``EdDSA`` deprecated). The header
carries the issuer's key id (``kid``) and the type ``smart-credential+jwt``
so a token of another kind can never be mistaken for a credential. Claims:
``iss``, ``sub`` (badge id), ``jti`` (credential id), ``iat``, ``nbf``,
``exp`` (seconds since the epoch, UTC), ``kind`` and ``scope``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from smart.access.credential import Credential, Kind
from smart.keys import SigningKey, VerifyingKey

ALGORITHM = "Ed25519"
TOKEN_TYPE = "smart-credential+jwt"


class TokenError(ValueError):
    """A token that cannot be read as a SMART credential; the message says what is wrong."""


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def _moment(value: Any, claim: str) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TokenError(f"claim {claim!r} must be an integer number of seconds, got {value!r}")
    return datetime.fromtimestamp(value, UTC)


def claims(credential: Credential) -> dict[str, Any]:
    return {
        "iss": credential.issuer,
        "sub": credential.subject,
        "jti": credential.credential_id,
        "iat": _seconds(credential.issued_at),
        "nbf": _seconds(credential.not_before),
        "exp": _seconds(credential.expires_at),
        "kind": credential.kind.value,
        "scope": dict(credential.scope),
        **({"extra": dict(credential.extra)} if credential.extra else {}),
    }


def from_claims(values: Mapping[str, Any], *, key_id: str) -> Credential:
    """The credential a token's claims describe; raises :class:`TokenError` naming the bad claim."""
    try:
        kind = Kind(values["kind"])
    except KeyError as err:
        raise TokenError("claim 'kind' is missing") from err
    except ValueError as err:
        raise TokenError(f"claim 'kind' is {values['kind']!r}, not one of {[k.value for k in Kind]}") from err
    for name in ("sub", "jti", "iss"):
        if not isinstance(values.get(name), str) or not values[name]:
            raise TokenError(f"claim {name!r} must be a non-empty string")
    scope = values.get("scope", {})
    extra = values.get("extra", {})
    if not isinstance(scope, dict) or not all(isinstance(v, str) for v in scope.values()):
        raise TokenError("claim 'scope' must be an object of strings")
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
        raise TokenError("claim 'extra' must be an object of strings")
    try:
        return Credential(
            credential_id=values["jti"],
            subject=values["sub"],
            kind=kind,
            scope=scope,
            issued_at=_moment(values.get("iat"), "iat"),
            not_before=_moment(values.get("nbf"), "nbf"),
            expires_at=_moment(values.get("exp"), "exp"),
            issuer_key_id=key_id,
            issuer=values["iss"],
            extra=extra,
        )
    except ValueError as err:
        raise TokenError(str(err)) from err


def jwk(key: SigningKey | VerifyingKey) -> OKPKey:
    """The joserfc key object for one of our Ed25519 keys."""
    if isinstance(key, SigningKey):
        return OKPKey.import_key(key.private)
    return OKPKey.import_key(key.public)


def sign(credential: Credential, key: SigningKey) -> str:
    """The credential as a compact JWS signed by ``key`` (whose key id must be the credential's)."""
    if credential.issuer_key_id != key.key_id:
        raise ValueError(
            f"credential {credential.credential_id} names issuer key {credential.issuer_key_id}, "
            f"but the signing key {key.name} has id {key.key_id}"
        )
    header = {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": key.key_id}
    payload = json.dumps(claims(credential), separators=(",", ":"), sort_keys=True)
    return jws.serialize_compact(header, payload, jwk(key), algorithms=[ALGORITHM])


def header(token: str) -> dict[str, Any]:
    """The protected header of ``token``, before any signature is checked."""
    try:
        obj = jws.extract_compact(token.encode("ascii"))
    except (JoseError, ValueError, UnicodeError) as err:
        raise TokenError(f"not a compact JWS: {type(err).__name__}") from err
    values = dict(obj.headers())
    if values.get("alg") != ALGORITHM:
        raise TokenError(f"algorithm {values.get('alg')!r} is not {ALGORITHM}")
    if values.get("typ") != TOKEN_TYPE:
        raise TokenError(f"token type {values.get('typ')!r} is not {TOKEN_TYPE}")
    if not isinstance(values.get("kid"), str):
        raise TokenError("header has no key id ('kid')")
    return values


def signing_input(token: str) -> tuple[bytes, bytes]:
    """The bytes a signature covers and the signature, for a bare Ed25519 check (the benchmark's)."""
    head, payload, signature = token.encode("ascii").split(b".")
    return head + b"." + payload, base64.urlsafe_b64decode(signature + b"=" * (-len(signature) % 4))
