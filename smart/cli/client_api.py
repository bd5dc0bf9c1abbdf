"""``smart client key …`` and ``smart invoice …``: the client API's credentials, and Pay, from a shell.

A new key or OAuth secret is printed once, on stdout, and kept only as its
digest; the actor on the ledger is ``cli:<os user>``, never a typed name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import typer

from smart import settings as smart_settings
from smart.cli.work import _fail, _print, actor
from smart.hub import work as work_services
from smart.hub.client_api import service as client_api_service
from smart.hub.client_api.store import ClientCredentials
from smart.hub.clients.store import Refused
from smart.hub.pay.store import Pay
from smart.hub.service_log import CLIENT_API, PAY, ServiceNodeLog
from smart.keys import KeyStore

key_app = typer.Typer(
    help="API keys and OAuth clients of the client API (SMART-API): one client each, revocable.",
    no_args_is_help=True,
)
invoice_app = typer.Typer(
    help="Pay: invoices for shipped, certified PO lines; credit notes.", no_args_is_help=True
)


@contextmanager
def _store(node: str) -> Iterator[tuple[str, ServiceNodeLog]]:
    settings = smart_settings.load()
    try:
        url = smart_settings.database_url(settings)
        work_services.migrate(url)
        client_api_service.migrate(url)
    except (ValueError, psycopg.Error) as err:
        raise _fail(f"cannot reach the hub database: {err}") from err
    try:
        yield url, ServiceNodeLog(settings.state_dir / "ledger", KeyStore(settings.key_directory), node=node)
    except Refused as err:
        raise _fail(err) from err


@key_app.command("create")
def key_create(
    client: str,
    label: str = typer.Option("", help="What the key is for (the client's ERP, a portal)."),
    oauth: bool = typer.Option(False, "--oauth", help="An OAuth client (id and secret) instead of a key."),
) -> None:
    """A new API key (or OAuth client) for CLIENT; the secret is printed this once."""
    with _store(CLIENT_API) as (url, ledger):
        store = ClientCredentials(url, ledger=ledger, pool_size=1)
        try:
            if oauth:
                client_id, secret = store.create_oauth_client(client, actor=actor(), label=label)
                _print({"client": client, "clientId": client_id, "clientSecret": secret})
            else:
                info, key = store.create_key(client, actor=actor(), label=label)
                _print({**info.to_json(), "key": key})
        finally:
            store.close()


@key_app.command("revoke")
def key_revoke(key_id: str) -> None:
    """Revoke an API key by its id (or an OAuth client by its ``smc_…`` id); refused from the next request."""
    with _store(CLIENT_API) as (url, ledger):
        store = ClientCredentials(url, ledger=ledger, pool_size=1)
        try:
            if key_id.startswith("smc_"):
                store.revoke_oauth_client(key_id, actor=actor())
                _print({"clientId": key_id, "revoked": True})
            else:
                _print(store.revoke_key(key_id, actor=actor()).to_json())
        finally:
            store.close()


@key_app.command("list")
def key_list(client: str | None = typer.Argument(None)) -> None:
    """The API keys (never their secrets), of one client or all."""
    with _store(CLIENT_API) as (url, ledger):
        store = ClientCredentials(url, ledger=ledger, pool_size=1)
        try:
            _print([k.to_json() for k in store.keys(client)])
        finally:
            store.close()


@invoice_app.command("issue")
def invoice_issue(po: str, lines: list[str] = typer.Argument(..., help="The PO lines to invoice.")) -> None:
    """Invoice shipped, certified lines of PO at the PO line's price and quantity."""
    with _store(PAY) as (url, ledger):
        pay = Pay(url, ledger=ledger, pool_size=1)
        try:
            _print(pay.invoice(po, lines, actor=actor()).to_json())
        finally:
            pay.close()


@invoice_app.command("credit")
def invoice_credit(
    invoice: str,
    line: str = typer.Option(..., help="The returned line."),
    quantity: int = typer.Option(..., help="How many parts came back."),
    reason: str = typer.Option(..., help="Why: the return, its RMA or NCR."),
) -> None:
    """A credit note against INVOICE for returned parts."""
    with _store(PAY) as (url, ledger):
        pay = Pay(url, ledger=ledger, pool_size=1)
        try:
            _print(pay.credit(invoice, [(line, quantity)], reason=reason, actor=actor()).to_json())
        finally:
            pay.close()
