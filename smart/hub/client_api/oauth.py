"""The OAuth 2.0 token endpoint (client credentials grant, RFC 6749 §4.4), by Authlib.

Authlib's framework-neutral :class:`AuthorizationServer` does the protocol
(client authentication by HTTP Basic or form fields, grant checks, the
error responses of §5.2); this module gives it our OAuth clients and
token store and adapts Starlette's request and response. A token is an
opaque random string, kept as its digest with its client and expiry.
"""

from __future__ import annotations

import hmac
import json
from collections import defaultdict
from collections.abc import Collection, Mapping
from typing import Any

from authlib.common.security import generate_token
from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Payload
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from starlette.responses import Response

from smart.hub.client_api.store import TOKEN_LIFETIME, ClientCredentials, digest

SCOPE = "client.read"


class OAuthClient(ClientMixin):
    """An OAuth client as Authlib asks about it: one shop client, client credentials only."""

    def __init__(self, client_id: str, client: str, secret_sha256: bytes) -> None:
        self.client_id = client_id
        self.client = client
        self._secret = secret_sha256

    def get_client_id(self) -> str:
        return self.client_id

    def get_allowed_scope(self, scope: Collection[str] | str) -> str:
        return SCOPE

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(self._secret, digest(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in ("client_secret_basic", "client_secret_post")

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def get_default_redirect_uri(self) -> str:
        return ""  # no redirects: client credentials only

    def check_response_type(self, response_type: str) -> bool:
        return False


class _FormPayload(OAuth2Payload):
    def __init__(self, form: dict[str, str]) -> None:
        self._form = form

    @property
    def data(self) -> dict[str, str]:
        return self._form

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        found: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in self._form.items():
            found[key].append(value)
        return found


class TokenRequest(OAuth2Request):
    def __init__(self, method: str, uri: str, headers: Mapping[str, str], form: dict[str, str]) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self.payload = _FormPayload(form)
        self._form = form

    @property
    def form(self) -> dict[str, str]:
        return self._form


class TokenServer(AuthorizationServer):
    def __init__(self, credentials: ClientCredentials) -> None:
        super().__init__(scopes_supported=[SCOPE])
        self.credentials = credentials
        self.register_grant(ClientCredentialsGrant)
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=lambda *a, **k: generate_token(43),
                expires_generator=lambda *a, **k: int(TOKEN_LIFETIME.total_seconds()),
            ),
        )

    def query_client(self, client_id: str) -> OAuthClient:
        held = self.credentials.oauth_client(client_id)
        # Authlib takes a falsy client as "unknown" and answers invalid_client (401)
        return OAuthClient(client_id, held[0], held[1]) if held else None  # type: ignore[return-value]

    def save_token(self, token: dict[str, str | int], request: OAuth2Request) -> None:
        client = request.client
        assert isinstance(client, OAuthClient)
        self.credentials.save_token(str(token["access_token"]), client.client_id, client.client)

    def create_oauth2_request(self, request: TokenRequest) -> TokenRequest:
        return request

    def handle_response(
        self, status: int, body: Mapping[str, object], headers: Mapping[str, str]
    ) -> Response:
        return Response(
            json.dumps(body) if isinstance(body, dict) else str(body),
            status_code=status,
            headers=dict(headers),
            media_type="application/json",
        )

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None
