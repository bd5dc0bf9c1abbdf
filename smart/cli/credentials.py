"""``smart credentials``: issue, renew, suspend, revoke, list, verify and publish SMART-ID credentials."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import typer
from nats.aio.client import Client as NatsClient

from smart import logs
from smart import settings as smart_settings
from smart.access import distribution
from smart.access.credential import Credential, Kind, Refusal, parse_scope
from smart.access.verify import Verifier
from smart.bus import at_once
from smart.cli.people import default_actor, fail, vault
from smart.hub.vault import publish as vault_publish
from smart.hub.vault.service import hub_nats_url
from smart.hub.vault.smartid import IssuedCredential, VaultError

app = typer.Typer(help="SMART-ID credentials: issue, revoke, list, verify, publish.", no_args_is_help=True)


@app.callback()
def _logs() -> None:
    """Logs go to stderr, so what a command prints on stdout can be read by scripts."""
    logs.configure(smart_settings.load().log_level)


def _line(c: IssuedCredential) -> str:
    scope = ", ".join(f"{k}: {v}" for k, v in c.credential.scope.items())
    reason = f" ({c.status_reason})" if c.status_reason else ""
    return (
        f"{c.credential_id}  {c.employee_id:<10} {c.credential.subject:<10} {c.credential.kind.value:<9} "
        f"{scope:<36} until {c.credential.expires_at.date().isoformat()}  {c.status}{reason}"
    )


@app.command("issue")
def issue(
    employee_id: str = typer.Argument(...),
    kind: Kind = typer.Option(..., "--kind", help="access, audit, certified, training, safety or utility."),
    scope: str = typer.Option("", "--scope", help="key=value pairs, e.g. 'station=pt-1' or 'method=PT'."),
    days: int = typer.Option(365, "--days", min=1, help="Lifetime (certified: capped by what backs it)."),
    show_token: bool = typer.Option(False, "--token", help="Print the signed token too."),
    actor: str = typer.Option(default_actor(), "--actor", help="Who issues (recorded on the ledger)."),
) -> None:
    """Issue a credential; certified/training/safety only when the person's records make it current."""
    with vault() as smartid:
        try:
            issued = smartid.issue(
                employee_id, kind=kind, scope=parse_scope(scope), actor=actor, valid_for=timedelta(days=days)
            )
        except (VaultError, ValueError) as err:
            raise fail("credentials issue", err) from err
    typer.echo(_line(issued))
    if show_token:
        typer.echo(issued.token)


@app.command("renew")
def renew(
    credential_id: str = typer.Argument(...),
    days: int = typer.Option(365, "--days", min=1),
    actor: str = typer.Option(default_actor(), "--actor"),
) -> None:
    """Issue a fresh credential of the same kind and scope (re-checked against the records)."""
    with vault() as smartid:
        try:
            issued = smartid.renew(credential_id, actor=actor, valid_for=timedelta(days=days))
        except VaultError as err:
            raise fail("credentials renew", err) from err
    typer.echo(_line(issued))


def _change(command: str, credential_id: str, reason: str, actor: str) -> None:
    with vault() as smartid:
        operation = {"revoke": smartid.revoke, "suspend": smartid.suspend, "reinstate": smartid.reinstate}[
            command
        ]
        try:
            changed = operation(credential_id, reason=reason, actor=actor)
        except VaultError as err:
            raise fail(f"credentials {command}", err) from err
    typer.echo(_line(changed))
    typer.echo("run `smart credentials publish` to send it to the stations", err=True)


@app.command("revoke")
def revoke(
    credential_id: str = typer.Argument(...),
    reason: str = typer.Option(..., "--reason", help="Why (recorded on the ledger and shown at stations)."),
    actor: str = typer.Option(default_actor(), "--actor"),
) -> None:
    """Revoke a credential for good."""
    _change("revoke", credential_id, reason, actor)


@app.command("suspend")
def suspend(
    credential_id: str = typer.Argument(...),
    reason: str = typer.Option(..., "--reason"),
    actor: str = typer.Option(default_actor(), "--actor"),
) -> None:
    """Suspend a credential until it is reinstated."""
    _change("suspend", credential_id, reason, actor)


@app.command("reinstate")
def reinstate(
    credential_id: str = typer.Argument(...),
    reason: str = typer.Option(..., "--reason"),
    actor: str = typer.Option(default_actor(), "--actor"),
) -> None:
    """Lift a suspension."""
    _change("reinstate", credential_id, reason, actor)


@app.command("list")
def list_credentials(
    employee_id: str | None = typer.Option(None, "--person", help="Only this employee's credentials."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Credentials with their status (tokens are not printed)."""
    with vault() as smartid:
        found = smartid.credentials(employee_id)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "credential_id": c.credential_id,
                        "employee_id": c.employee_id,
                        "badge_id": c.credential.subject,
                        "kind": c.credential.kind.value,
                        "scope": dict(c.credential.scope),
                        "expires_at": c.credential.expires_at.isoformat(),
                        "status": c.status,
                    }
                    for c in found
                ],
                indent=2,
            )
        )
        return
    for c in found:
        typer.echo(_line(c))


@app.command("standing")
def standing(employee_id: str = typer.Argument(...)) -> None:
    """What the person's records make current today under the schemes, and why not where not."""
    with vault() as smartid:
        try:
            smartid.person(employee_id)
            found = smartid.standings(employee_id)
        except VaultError as err:
            raise fail("credentials standing", err) from err
    for s in found:
        until = s.valid_until.isoformat() if s.valid_until else "-"
        typer.echo(f"{s.describe():<48} {s.status.value:<14} until {until}")
        for reason in s.reasons:
            typer.echo(f"    {reason}")


async def _mirrored_verifier(url: str, skew: timedelta) -> Verifier:
    try:  # a station's leaf, as it stands: one try, its user-less sign-in
        client = await at_once.connect(
            url,
            name="smart-credentials-verify",
            signin={},
            what="the NATS",
            who="this command's",
            advice="Start the floor (smart up) or name another --nats",
        )
    except at_once.HubUnreachable as err:
        raise fail("credentials verify", err) from err
    try:
        return await distribution.station_verifier(client.jetstream(), clock_skew=skew)
    finally:
        await client.close()


@app.command("verify")
def verify(
    token: str = typer.Argument(..., help="A credential token (as read from a badge's credentials)."),
    station: str = typer.Option(..., "--station", help="The station asking, e.g. pt-1."),
    at: str | None = typer.Option(None, "--at", help="Judge at this ISO-8601 UTC time [now]."),
    nats_url: str | None = typer.Option(
        None,
        "--nats",
        help="Read keys and revocations from this NATS (e.g. a station leaf) instead of the Vault.",
    ),
) -> None:
    """Verify a token offline, as a station does; exit 1 when refused, printing why."""
    settings = smart_settings.load()
    skew = timedelta(seconds=settings.credential_clock_skew_s)
    now = datetime.fromisoformat(at).astimezone(UTC) if at else datetime.now(UTC)
    if nats_url:
        verifier = asyncio.run(_mirrored_verifier(nats_url, skew))
    else:
        with vault(settings) as smartid:
            keys = {k.key_id: k for k in smartid.issuer_keys()}
            revoked = {r.credential_id: r for r in smartid.revocations()}
        verifier = Verifier(keys=keys, revocations=revoked, clock_skew=skew)
    outcome = verifier.verify(token.strip(), now=now, station=station)
    if isinstance(outcome, Refusal):
        typer.echo(f"refused: {outcome}")
        raise typer.Exit(1)
    assert isinstance(outcome, Credential)
    typer.echo(
        f"accepted: {outcome.describe()} for badge {outcome.subject}, until {outcome.expires_at.isoformat()}"
    )


async def _publish_nats(settings: smart_settings.Settings, nats_url: str | None) -> NatsClient:
    """The hub NATS (``--nats`` signs in as the settings' driver too), tried once, exit 1 if none."""
    url = nats_url or hub_nats_url(settings)
    try:
        return await at_once.connect(
            url,
            name="smart-credentials-publish",
            signin=settings.hub_nats_signin(),
            what="the hub NATS",
            who="the driver's",
            advice="Start the floor (smart up) and try again",
        )
    except at_once.HubUnreachable as err:
        raise fail("credentials publish", err) from err


@app.command("publish")
def publish(
    nats_url: str | None = typer.Option(None, "--nats", help="The hub NATS [settings]."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would change at each station; change nothing."
    ),
    yes: bool = typer.Option(False, "--yes", help="Publish even if it withdraws badges, without asking."),
) -> None:
    """Put issuer keys, the revocation list and each station's badges into the KV buckets stations mirror.

    It first shows what will change at each station; a publish that would withdraw anyone's badge from a
    station asks before doing it (``--yes`` to go on without asking, ``--dry-run`` to only look).
    """
    settings = smart_settings.load()

    async def look() -> vault_publish.Preview:
        client = await _publish_nats(settings, nats_url)
        try:
            with vault(settings) as smartid:
                return await vault_publish.preview(smartid, client.jetstream(), settings.station_ids)
        finally:
            await client.close()

    async def run() -> vault_publish.Published:
        client = await _publish_nats(settings, nats_url)
        try:
            with vault(settings) as smartid:
                return await vault_publish.publish(smartid, client.jetstream(), settings.station_ids)
        finally:
            await client.close()

    seen = asyncio.run(look())
    typer.echo("what this publish changes:")
    for line in seen.lines():
        typer.echo(f"  {line}")
    if dry_run:
        typer.echo("dry run: nothing published")
        return
    withdrawals = seen.withdrawals
    if withdrawals and not yes:
        who = "; ".join(f"{station}: {', '.join(badges)}" for station, badges in withdrawals.items())
        if not typer.confirm(f"this withdraws badges ({who}); publish?", default=False):
            typer.echo("not published: nothing changed", err=True)
            raise typer.Exit(1)
    done = asyncio.run(run())
    typer.echo(
        f"published {done.keys} key(s), {done.revocations} revocation(s), badges per station: {done.badges}"
    )
