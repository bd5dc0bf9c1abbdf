"""``smart ledger``: check the hub's ledger, show its head, hand out proofs, read recent entries.

Every command reads the hub database named by the settings (``database_url``,
or the embedded floor's) and the hub's public key from the keys directory.
``smart verify`` (top level) needs neither: it checks a proof bundle offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import typer

from smart import logs
from smart import settings as smart_settings
from smart.hub.audit import proofs as audit_proofs
from smart.keys import KeyFileError, KeyStore, VerifyingKey
from smart.ledger import bundle, hub_store, merkle, trust, verify
from smart.ledger.checkpoint import CheckpointError
from smart.ledger.node_store import NodeLog

app = typer.Typer(help="The Custodian: verify the ledger, show its head, write proofs, read recent entries.")


def _connect() -> tuple[psycopg.Connection[tuple[Any, ...]], KeyStore]:
    settings = smart_settings.load()
    logs.configure(settings.log_level)
    try:
        url = smart_settings.database_url(settings)
        conn = psycopg.connect(url, autocommit=True)
    except (ValueError, psycopg.Error) as err:
        typer.echo(f"cannot reach the hub database: {err}", err=True)
        raise typer.Exit(2) from err
    return conn, KeyStore(settings.key_directory)


def _hub_key(keys: KeyStore) -> VerifyingKey:
    try:
        return keys.verifying_key(hub_store.HUB_KEY)
    except KeyFileError as err:
        typer.echo(f"no hub public key to check checkpoints against: {err}", err=True)
        raise typer.Exit(2) from err


def _admin_key(keys: KeyStore) -> VerifyingKey | None:
    """The administrator's public key: without it no node or witness key is established."""
    try:
        return keys.verifying_key(trust.ADMIN_KEY)
    except KeyFileError as err:
        typer.echo(
            f"warning: no administrator key ({trust.ADMIN_KEY}.pub): no node key is trusted: {err}", err=True
        )
        return None


@app.command("verify")
def verify_command(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    show: int = typer.Option(20, "--show", help="How many problems to list."),
    parallel: bool = typer.Option(
        False, "--parallel", help="Rebuild the Merkle tree in a second process (hubs with idle cores)."
    ),
    full: bool = typer.Option(False, "--full", help="Also prove every entry is canonical RFC 8785 (slow)."),
) -> None:
    """Re-derive every hash, chain link, signature, index and root; name the first bad index (exit 1)."""
    conn, keys = _connect()
    with conn:
        try:
            report = verify.verify_hub(
                conn, log_key=_hub_key(keys), admin=_admin_key(keys), parallel=parallel, full=full
            )
        except psycopg.errors.UndefinedTable as err:
            typer.echo(f"the database holds no ledger: {err}", err=True)
            raise typer.Exit(2) from err
    if as_json:
        problems = [{"index": p.index, "why": p.why} for p in report.problems[:show]]
        body = {
            "ok": report.ok,
            "size": report.size,
            "checkpoints": report.checkpoints,
            "problems": problems,
            "witness_findings": list(report.witness_findings),
        }
        typer.echo(json.dumps(body, indent=2))
    elif report.ok:
        typer.echo(
            f"ok: {report.size} entries from {report.nodes} nodes, {report.checkpoints} checkpoints; "
            "every hash, link, signature, index and root re-derived"
        )
    elif not report.problems:
        typer.echo(f"FAILED: the log re-derives ({report.size} entries), but the witnesses disagree:")
        for finding in report.witness_findings:
            typer.echo(f"  {finding}")
    else:
        first = report.problems[0]
        typer.echo(f"FAILED at index {first.index}: {first.why}")
        for finding in report.witness_findings:
            typer.echo(f"  witness: {finding}")
        for problem in report.problems[1:show]:
            typer.echo(f"  also {problem}")
        if len(report.problems) > show:
            typer.echo(f"  … and {len(report.problems) - show} more")
    if not report.ok:
        raise typer.Exit(1)


@app.command("head")
def head() -> None:
    """Print the latest checkpoint: the signed note with its witnesses' cosignatures."""
    conn, _keys = _connect()
    with conn:
        try:
            signed = hub_store.HubLog(conn).checkpoint()
        except CheckpointError as err:
            typer.echo(str(err), err=True)
            raise typer.Exit(1) from err
    typer.echo(signed.text(), nl=False)


@app.command("proof")
def proof(
    index: int = typer.Argument(..., help="Global index of the entry."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Where to write the bundle (ledger-proof-INDEX.json)."
    ),
    size: int | None = typer.Option(
        None, "--size", help="Prove against the checkpoint of this size (latest)."
    ),
) -> None:
    """Write a proof bundle for one entry, checkable offline with `smart verify`."""
    conn, keys = _connect()
    with conn:
        try:
            made = hub_store.HubLog(conn, admin=_admin_key(keys)).proof_bundle(
                index, size=size, log_key=_hub_key(keys)
            )
        except (CheckpointError, merkle.ProofError) as err:
            typer.echo(f"cannot prove index {index}: {err}", err=True)
            raise typer.Exit(1) from err
    target = out or Path(f"ledger-proof-{index}.json")
    target.write_bytes(made.to_bytes())
    typer.echo(f"wrote {target} (index {index} in the log of size {made.checkpoint.checkpoint.size})")


@app.command("keys")
def export_keys(
    out: Path | None = typer.Option(None, "--out", "-o", help="Write to this file instead of printing."),
) -> None:
    """Export the trust file a verifier needs (`smart verify --keys`): each key with its one role.

    The log's key and origin; the witness and node keys the administrator established (a
    registration signed by the ledger-admin key). Rows of the database without that signature
    are left out, whoever inserted them.
    """
    conn, keys = _connect()
    with conn:
        hub = hub_store.HubLog(conn, admin=_admin_key(keys))
        trusted = hub.trust(_hub_key(keys))
    for key in (trusted.log, *trusted.witnesses.values(), *trusted.nodes.values()):
        roles = trusted.roles_of(key)
        if len(roles) > 1:  # a provisioning mistake: a key is trusted for one role only
            typer.echo(f"warning: key {key.name} ({key.key_id}) holds {len(roles)} roles: {roles}", err=True)
    text = trusted.to_bytes()
    if out is None:
        typer.echo(text.decode(), nl=False)
    else:
        out.write_bytes(text)
        typer.echo(
            f"wrote {out} (log {trusted.log.name} for {trusted.origin}, {len(trusted.witnesses)} witnesses, "
            f"{len(trusted.nodes)} nodes)"
        )


alarms_app = typer.Typer(help="Ledger alarms: forks, refused entries, rollbacks seen by witnesses.")
app.add_typer(alarms_app, name="alarms")


@alarms_app.callback(invoke_without_command=True)
def alarms(
    ctx: typer.Context,
    show_all: bool = typer.Option(False, "--all", help="Also the alarms an administrator decided."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List the open ledger alarms (a station's ledger stays blocked while its fork alarm is open)."""
    if ctx.invoked_subcommand is not None:
        return
    conn, keys = _connect()
    with conn:
        found = hub_store.HubLog(conn, admin=_admin_key(keys)).ledger_alarms(open_only=not show_all)
    if as_json:
        typer.echo(json.dumps({"alarms": [a.to_json() for a in found]}, indent=2))
        return
    if not found:
        typer.echo("no open ledger alarms" if not show_all else "no ledger alarms")
        return
    for alarm in found:
        state = "OPEN" if alarm.open else f"decided by {alarm.decided_by}: {alarm.decision}"
        blocks = " (blocks its ledger)" if alarm.open and alarm.kind in hub_store.BLOCKING else ""
        typer.echo(
            f"#{alarm.id}  {alarm.raised_at:%Y-%m-%d %H:%M:%S}  {alarm.kind}  {alarm.node}#{alarm.node_seq}"
            f"  {state}{blocks}  {alarm.detail}"
        )


@alarms_app.command("decide")
def decide(
    alarm_id: int = typer.Argument(..., help="The alarm's number (from `smart ledger alarms`)."),
    decision: str = typer.Option(..., "--decision", help="What was decided, in words, for the record."),
    by: str = typer.Option(..., "--by", help="Who decided (the administrator's name or badge)."),
) -> None:
    """Close an alarm with the administrator's decision, signed with ledger-admin and put on the ledger.

    Deciding unblocks the station's ledger: the hub takes its batches again, judged as ever (a
    log that still conflicts raises a new alarm).
    """
    conn, keys = _connect()
    settings = smart_settings.load()
    try:
        admin = (
            keys.signing_key(trust.ADMIN_KEY)
            if (keys.directory / f"{trust.ADMIN_KEY}.key").exists()
            else None
        )
        if admin is None:
            raise trust.TrustError(
                f"this machine does not hold the administrator's key ({trust.ADMIN_KEY}.key)"
            )
        with conn:
            hub = hub_store.HubLog(conn, admin=admin)
            decided = hub.decide_alarm(alarm_id, decision=decision, by=by, admin=admin)
    except (trust.TrustError, KeyFileError) as err:
        typer.echo(f"cannot decide alarm #{alarm_id}: {err}", err=True)
        raise typer.Exit(1) from err
    # On the ledger: an entry of the administrator's own node, gathered into the hub's log.
    with NodeLog.open(
        settings.state_dir / "ledger", node=trust.ADMIN_NODE, keys=keys, key_name=trust.ADMIN_NODE_KEY
    ) as record:
        entry = record.append(
            kind="ledger.alarm_decided",
            subject=f"alarm:{decided.id}",
            data=decided.to_json(),
            actor=by,
        )
        record.sign_head()
    typer.echo(
        f"alarm #{decided.id} ({decided.kind}, {decided.node}#{decided.node_seq}) decided by {by}: "
        f"{decision}; recorded as {trust.ADMIN_NODE}#{entry.node_seq}"
    )


@app.command("tail")
def tail(
    count: int = typer.Option(20, "-n", "--count", help="How many entries."),
    node: str | None = typer.Option(None, "--node", help="Only this node's entries."),
) -> None:
    """The most recent entries, one line each: index, time, node#seq, kind, subject, actor, data."""
    conn, _keys = _connect()
    with conn:
        if node is None:
            rows = conn.execute(
                "SELECT idx, entry FROM ledger_entries ORDER BY idx DESC LIMIT %s", (count,)
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT idx, entry FROM ledger_entries WHERE node = %s ORDER BY idx DESC LIMIT %s",
                (node, count),
            ).fetchall()
    for idx, raw in reversed(rows):
        body = json.loads(bytes(raw))
        data = json.dumps(body["data"], separators=(",", ":"), ensure_ascii=False)
        contract = f" [{body['contract']}]" if body["contract"] else ""
        typer.echo(
            f"{idx:>8}  {body['ts']}  {body['node']}#{body['node_seq']}  {body['kind']}  {body['subject']}  "
            f"by {body['actor']}{contract}  {data}"
        )


def verify_bundle(
    path: Path = typer.Argument(..., help="The proof bundle (JSON)."),
    keys: Path = typer.Option(
        ..., "--keys", help="The trust file (`smart ledger keys`), or a provisioned keys directory."
    ),
    min_witnesses: int = typer.Option(
        0, "--min-witnesses", help="Require cosignatures of this many distinct trusted witnesses."
    ),
) -> None:
    """Check a ledger proof bundle offline: entry, index, inclusion proof, checkpoint and cosignatures."""
    try:
        trusted = trust.load(keys)
        raw = path.read_bytes()
    except (trust.TrustError, OSError) as err:
        typer.echo(f"FAILED: {err}")
        raise typer.Exit(2) from err
    if audit_proofs.is_appendix(raw):  # a job audit packet's appendix: one bundle per cited entry
        try:
            checked = audit_proofs.verify(raw, trusted, min_witnesses=min_witnesses)
        except audit_proofs.AppendixError as err:
            typer.echo(f"FAILED: {err}")
            raise typer.Exit(1) from err
        typer.echo(
            f"ok: {len(checked.verified)} entries of the packet for {checked.packet} are in "
            f"{trusted.origin} at size {checked.size}, each proved against the checkpoint the log signed"
        )
        return
    try:
        proved = bundle.verify(raw, trusted, min_witnesses=min_witnesses)
    except bundle.BundleError as err:
        typer.echo(f"FAILED: {err}")
        raise typer.Exit(1) from err
    entry = proved.entry
    witnesses = ", ".join(proved.witnesses) or "no witnesses"
    typer.echo(
        f"ok: {entry.node}#{entry.node_seq} ({entry.kind}, {entry.subject}) is entry {proved.index} "
        f"of {proved.origin} at size {proved.size}; checkpoint signed by the log, cosigned by {witnesses}"
    )
