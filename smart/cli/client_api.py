"""``smart client key …`` and ``smart invoice …``: the client API's credentials, and Pay, from a shell.

A new key or OAuth secret is printed once, on stdout, and kept only as its
digest; the actor on the ledger is ``cli:<os user>``, never a typed name.
The key commands work against the Business hub's database (the settings'
URL: its own login, or the owner's under ``smart up``), where the client
API runs: a client is known there once the Floor published it (its code and
name, sent when it is added in ClientManager), before any PO of it.
They migrate nothing (the Business hub's start or ``smart hub migrate
--role business`` did); Pay's commands work against the Floor's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import typer

from smart import settings as smart_settings
from smart.cli.work import _fail, _print, actor
from smart.hub import work as work_services
from smart.hub.client_api.store import ClientCredentials
from smart.hub.clients.store import Refused
from smart.hub.pay import service as pay_service
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
        if node == CLIENT_API:
            _business_schemas(url)
        else:
            work_services.migrate(url)
            pay_service.migrate(url)
    except (ValueError, psycopg.Error) as err:
        raise _fail(f"cannot reach the hub database: {err}") from err
    try:
        yield url, ServiceNodeLog(settings.state_dir / "ledger", KeyStore(settings.key_directory), node=node)
    except Refused as err:
        raise _fail(err) from err


def _business_schemas(url: str) -> None:
    """Refuse (naming what to do) a database where the Business hub has not made its schemas."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT to_regclass('client_api.api_keys') IS NOT NULL AND to_regclass('published.records') "
            "IS NOT NULL"
        ).fetchone()
    if not row or not row[0]:
        raise _fail(
            "database: no client API schema here; the client API runs on the Business hub: point "
            "SMART_DATABASE_URL at its database and start it (smart up), or run "
            "smart hub migrate --role business"
        )


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
