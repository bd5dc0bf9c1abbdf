"""``smart hub``: what runs on a hub (its services and web app, from settings), and its owner's step."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from psycopg.conninfo import conninfo_to_dict
from pydantic import SecretStr

from smart import logs
from smart import settings as smart_settings

if TYPE_CHECKING:
    from smart.hub.hubquery.answers import HubQuery

app = typer.Typer(help="Run the hub's services.", no_args_is_help=True)


def _role(role: str, *, all_allowed: bool = True) -> str:
    from smart.hub.run import ROLES

    allowed = ROLES if all_allowed else tuple(r for r in ROLES if r != "all")
    if role not in allowed:
        print(f"smart hub: --role {role!r}: expected one of {', '.join(allowed)}", file=sys.stderr)
        raise typer.Exit(2)
    return role


def _database_url_from(path: Path) -> SecretStr:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        print(f"smart hub: --database-url-file {path}: {err.strerror or err}", file=sys.stderr)
        raise typer.Exit(2) from err
    if not text:
        print(f"smart hub: --database-url-file {path}: the file is empty", file=sys.stderr)
        raise typer.Exit(2)
    return SecretStr(text)


@app.command("run")
def run(
    role: str = typer.Option(
        "all", "--role", help="Which hub to run: vault, floor, business, or all in one process."
    ),
    database_url_file: Path | None = typer.Option(
        None,
        "--database-url-file",
        help="Read the database URL from this file (written by `smart hub migrate --url-file`): "
        "the role's own login, so the process never holds the owner's.",
    ),
) -> None:
    """Serve the hub (ledger intake, SMART-ID, HandoffCentral, reorders, web) from settings, until SIGTERM.

    Given the role's own login (``--database-url-file``), it migrates nothing and connects as that
    login only; given the owner's URL, it does ``smart hub migrate``'s part first.
    """
    from smart.hub.run import run_hub

    settings = smart_settings.load()
    logs.configure(settings.log_level)
    _role(role)
    if database_url_file is not None:
        settings = settings.model_copy(update={"database_url": _database_url_from(database_url_file)})
    try:
        smart_settings.database_url(settings)
    except ValueError as err:
        print(f"smart hub: {err}", file=sys.stderr)
        raise typer.Exit(2) from err
    import uvloop

    from smart.embedded import approver

    embedded = functools.partial(approver.on_embedded_floor, settings=settings)
    # uvloop, as uvicorn picks when it starts its own loop (and as `smart bench api` measures)
    uvloop.run(
        run_hub(
            settings, role=role, contract_approver=None if settings.contract_approval_namespace else embedded
        )
    )


def _hub_query(settings: smart_settings.Settings, role: str) -> HubQuery:
    """The role's HubQuery with that role's own connections, as ``smart hub run --role`` builds it."""
    from datetime import datetime

    from smart.hub.hubquery.answers import HubQuery
    from smart.hub.services import HubServices
    from smart.hub.vault import service as vault
    from smart.hub.vault.smartid import SmartId
    from smart.keys import KeyStore

    hub = HubServices(settings, role=role)
    smartid = None
    if hub.runs("smart-id"):
        keys = KeyStore(settings.key_directory)
        smartid = SmartId(
            hub.owner_database_url(),
            key=keys.signing_key(vault.CREDENTIAL_KEY),
            ledger=vault.SharedNodeLog(settings.state_dir / "ledger", keys),
            zone=settings.shop_zone,
        )
    return HubQuery(
        role,
        smartid=smartid,
        business_url=hub.role_database_url() if hub.runs("business-feed") else None,
        maintenance_url=hub.app_database_url() if hub.runs("maintenance") else None,
        today=lambda: datetime.now(settings.shop_zone).date(),
    )


@app.command("query")
def query(
    question: str = typer.Argument("", help="The question typed, e.g. 'status of PO 4411'."),
    audio: Path | None = typer.Option(None, "--audio", help="A WAV recording of the question, instead."),
    role: str = typer.Option("business", "--role", help="Which hub answers: vault, floor, business or all."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object: question, heard, topic, text."),
) -> None:
    """Ask "Hey SMART" at a hub, typed or spoken, answered from that hub's own data with its own login."""
    from smart.hub.hubquery import answers, speech
    from smart.hub.run import ROLES

    if role not in ROLES:
        print(f"smart hub query: --role {role!r}: expected one of {', '.join(ROLES)}", file=sys.stderr)
        raise typer.Exit(2)
    if (audio is None) == (not question.strip()):
        print("smart hub query: give a QUESTION or --audio FILE (one of them)", file=sys.stderr)
        raise typer.Exit(2)
    settings = smart_settings.load()
    logs.configure(settings.log_level)  # on stderr: stdout is the answer
    try:
        hub_query = _hub_query(settings, role)
        answer = hub_query.hear(audio) if audio is not None else hub_query.ask(question)
    except (speech.SpeechError, ValueError) as err:
        print(f"smart hub query: {err}", file=sys.stderr)
        raise typer.Exit(2) from err
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(answer), indent=2))
        return
    if answer.heard is not None:
        typer.echo(f"heard: {answer.heard or '(nothing recognised)'}")
    typer.echo(answer.text)
    for row in answer.rows:
        typer.echo("  " + "  ".join(row.values()))
    if answer.topic == answers.NOT_UNDERSTOOD:
        raise typer.Exit(1)


@app.command("migrate")
def migrate(
    role: str = typer.Option(
        ...,
        "--role",
        help="The hub role whose schemas and login to make: vault, floor, business, or all (the single hub).",
    ),
    url_file: Path | None = typer.Option(
        None,
        "--url-file",
        help="Write the role's own connection string here (0600) for `smart hub run --database-url-file`.",
    ),
) -> None:
    """As the database owner (SMART_DATABASE_URL): migrate the role's schemas and make its login; idempotent.

    The chart runs this in an init container, the only one given the owner's secret; the role's
    password comes from the secrets directory (SMART_SECRETS_DIR).
    """
    from smart.hub.services import HubServices

    settings = smart_settings.load()
    logs.configure(settings.log_level)
    _role(role)
    try:
        smart_settings.database_url(settings)
    except ValueError as err:
        print(f"smart hub: {err}", file=sys.stderr)
        raise typer.Exit(2) from err
    services = HubServices(settings, role=role)
    services.prepare()
    if url_file is not None:
        url = services.own_login_url()
        url_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(url_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(url + "\n")
        user = conninfo_to_dict(url).get("user")
        print(f"smart hub: {role} migrated; its login {user} written to {url_file}")
    else:
        print(f"smart hub: {role} migrated")


@app.command("keys")
def keys(
    out: Path = typer.Option(..., "--out", help="The keys directory to make them in (existing ones kept)."),
) -> None:
    """Make the keys the hub roles need on Kubernetes, and print the command making the keys Secret.

    The hub's signing key, SMART-ID's credential key, and each role's own ledger nodes' keys
    (``hub_roles.LEDGER_NODES``): the Vault and Business sign their node logs with them, and the
    Floor's intake checks the batches they ship against the same keys' public halves. Made here, by
    the administrator, so no pod trusts a key it made itself.
    """
    from smart.bus import hub_roles
    from smart.hub.gathering import NODE_KEY_NAMES
    from smart.hub.vault import service as vault
    from smart.keys import KeyStore

    store = KeyStore(out)
    names = [
        "hub",
        vault.CREDENTIAL_KEY,
        *(NODE_KEY_NAMES.get(node, node) for nodes in hub_roles.LEDGER_NODES.values() for node in nodes),
    ]
    for name in names:
        store.signing_key(name)
    files = " ".join(f"--from-file={n}.{s}={out / n}.{s}" for n in names for s in ("key", "pub"))
    typer.echo(f"kubectl -n <namespace> create secret generic smart-keys {files}")
