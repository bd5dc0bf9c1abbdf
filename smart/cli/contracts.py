"""``smart contract validate|diff``, ``smart apply``, ``smart get`` and ``smart crds``: contracts by hand.

``validate`` and ``diff`` work offline on files; ``apply`` and ``get`` are
the embedded driver (the floor's hub NATS from the settings); ``crds``
regenerates ``crds/`` from the models.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer

from smart import settings as smart_settings
from smart.bus.at_once import HubUnreachable
from smart.contracts import crds as crd_files
from smart.contracts import manifests
from smart.contracts.models import SmartContract

T = TypeVar("T")

contract_app = typer.Typer(help="Check and compare SmartContract files offline.", no_args_is_help=True)


def _load_or_exit(files: list[Path]) -> list[manifests.Loaded]:
    """The manifests in ``files``, or every error on stderr (file:line: path: what) and exit 1."""
    try:
        return manifests.load(files)
    except manifests.ManifestsInvalid as err:
        for error in err.errors:
            typer.echo(str(error), err=True)
        raise typer.Exit(1) from err


@contract_app.command("validate")
def validate(files: list[Path] = typer.Argument(..., help="Manifest files or directories.")) -> None:
    """Validate manifests: schema, units, intervals and semantics; errors name file, line and path."""
    for item in _load_or_exit(files):
        typer.echo(f"{item.file}: {item.manifest.kind} {item.manifest.metadata.name} is valid")


def _one_contract(path: Path) -> SmartContract:
    found = [item.manifest for item in manifests.load([path]) if isinstance(item.manifest, SmartContract)]
    if len(found) != 1:
        raise manifests.ManifestsInvalid(
            [manifests.ManifestError(str(path), None, "", f"expected one SmartContract, found {len(found)}")]
        )
    return found[0]


def contract_changes(old: SmartContract, new: SmartContract) -> list[str]:
    """Lines saying what changed, rules matched by id: ``~ path: a → b``, ``+ rule …``, ``- rule …``."""
    from smart.contracts import history

    def spec(contract: SmartContract) -> dict[str, Any]:
        return contract.spec.model_dump(mode="json", by_alias=True, exclude_none=True)

    return history.changes(spec(old), spec(new))


@contract_app.command("diff")
def diff(
    old: Path = typer.Argument(..., help="The contract as it was."), new: Path = typer.Argument(...)
) -> None:
    """What changed between two versions of a contract (rules matched by id); exit 1 when they differ."""
    try:
        changes = contract_changes(_one_contract(old), _one_contract(new))
    except manifests.ManifestsInvalid as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from err
    for line in changes:
        typer.echo(line)
    if changes:
        raise typer.Exit(1)
    typer.echo("no changes")


@contract_app.command("revision")
def revision(file: Path = typer.Argument(..., help="A file with one SmartContract.")) -> None:
    """The contract revision people sign (SHA-256 of its name and spec), as the approval names it."""
    from smart.contracts import approval

    try:
        contract = _one_contract(file)
    except manifests.ManifestsInvalid as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from err
    typer.echo(approval.spec_revision(contract))


@contract_app.command("approve")
def approve(
    name: str = typer.Argument(..., help="The contract's name."),
    revision: str = typer.Option(
        ..., "--revision", help="The pending revision (at least its first 8 characters)."
    ),
    credential: Path = typer.Option(
        ..., "--credential", help="File holding the approver's SMART-ID signature on that revision."
    ),
    namespace: str | None = typer.Option(
        None,
        "-n",
        "--namespace",
        help="On Kubernetes: create a ContractApproval in this namespace (kubeconfig or SMART_KUBE_SERVER).",
    ),
) -> None:
    """A second person approves a contract's pending revision; the floor (or the operator) distributes it.

    Refused, changing nothing, when the signer wrote the revision, lacks the authority the contract
    names, the signature does not verify, or the revision is not the pending one.
    """
    from smart.contracts import approval
    from smart.embedded import driver

    token = _token(credential, "--credential") or ""
    try:
        if namespace is not None:
            typer.echo(_approve_on_kubernetes(name, revision, token, namespace))
            return
        applied = asyncio.run(driver.approve(name, revision, token, smart_settings.load()))
    except approval.FloorUnreachable as err:  # said at once, where it tried and that nothing was approved
        said = err if namespace is not None else err.advising("on Kubernetes give -n NAMESPACE")
        typer.echo(f"smart contract approve: {said}", err=True)
        raise typer.Exit(1) from err
    except approval.ApprovalRefused as err:
        typer.echo(f"smart contract approve: {err}; nothing changed", err=True)
        raise typer.Exit(1) from err
    except OSError as err:  # after the floor answered: the approval may or may not have been recorded
        typer.echo(
            f"smart contract approve: the approval did not finish ({type(err).__name__}: {err}); "
            f"smart contract history {name} shows whether it was recorded",
            err=True,
        )
        raise typer.Exit(1) from err
    for item in applied:
        typer.echo(f"{item.kind.lower()}/{item.name} {item.outcome}")


def crds(
    directory: Path = typer.Option(Path("crds"), "--dir", help="Where the CRDs are written."),
    chart: Path = typer.Option(
        Path("charts/smart/crds"),
        "--chart-dir",
        help="The Helm chart's copy, written too when the chart is there.",
    ),
) -> None:
    """Write the SmartContract and Station CRDs, generated from the models, to crds/ and the chart's crds/.

    Helm installs a chart's CRDs only from the chart's own ``crds/``, so the chart carries a copy,
    which must never drift from the top-level one (a test compares them byte for byte).
    """
    targets = [directory, *([chart] if chart.parent.is_dir() else [])]
    for target in targets:
        for path in crd_files.write(target):
            typer.echo(f"wrote {path}")


def _token(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text().strip()
    except OSError as err:
        typer.echo(f"{what} {path}: {err.strerror or err}", err=True)
        raise typer.Exit(2) from err


def apply(
    files: list[Path] = typer.Option(..., "-f", "--filename", help="Manifest files or directories."),
    credential: Path | None = typer.Option(
        None,
        "--credential",
        help="File holding the author's SMART-ID signature on the contract revision (who wrote it).",
    ),
    bootstrap: bool = typer.Option(
        False,
        "--bootstrap",
        help="Seed a floor never seeded before, as smart up's first start does: first revisions go out "
        "without a second person, each recorded as contract.bootstrapped. Refused on a seeded floor.",
    ),
) -> None:
    """Apply SmartContracts and Stations to the embedded floor: same core, KV and ledger as the operator.

    A new contract or a change to one is held until a second person approves it
    (``smart contract approve``); ``smart contract revision FILE`` prints the revision to sign.
    """
    from smart.contracts import approval
    from smart.embedded import driver

    loaded = _load_or_exit(files)
    settings = smart_settings.load()
    author = _token(credential, "--credential")
    try:
        seeding = (
            approval.Bootstrap(
                by="smart apply --bootstrap", user=driver.os_user(), source=", ".join(map(str, files))
            )
            if bootstrap
            else None
        )
        applied = asyncio.run(
            driver.apply(
                [item.manifest for item in loaded], settings, author=author, bootstrap=seeding, waiting=True
            )
        )
    except HubUnreachable as err:  # said at once: where it tried (host:port) and that nothing changed
        typer.echo(f"smart apply: {err}", err=True)
        raise typer.Exit(1) from err
    except approval.ApprovalRefused as err:
        typer.echo(f"smart apply: {err}; nothing applied", err=True)
        raise typer.Exit(1) from err
    except OSError as err:  # after the floor answered: some manifests may be stored, smart get shows which
        where = driver.nats_address(settings)
        typer.echo(
            f"smart apply: the hub NATS at {where} went away during the apply ({type(err).__name__}); "
            "smart get contracts shows what was stored",
            err=True,
        )
        raise typer.Exit(1) from err
    for item in applied:
        typer.echo(f"{item.kind.lower()}/{item.name} {item.outcome}")


def get(what: str = typer.Argument(..., help="contracts or stations")) -> None:
    """List contracts (revision, stations synced/desired, ready) or stations on the embedded floor."""
    from smart.embedded import driver

    kind = {
        "contracts": "contract",
        "contract": "contract",
        "smc": "contract",
        "sc": "contract",
        "stations": "station",
        "station": "station",
        "sst": "station",
        "st": "station",
    }.get(what)
    if kind is None:
        typer.echo("smart get: expected contracts or stations", err=True)
        raise typer.Exit(2)
    records = _at_once("smart get", driver.get(kind, smart_settings.load(), waiting=True))
    if kind == "contract":
        typer.echo(f"{'NAME':<28} {'REVISION':<14} {'STATIONS':<9} READY")
        for record in records:
            status = record.get("status", {})
            revisions = sorted({r[:12] for r in status.get("revisions", {}).values()})
            shown = revisions[0] if len(revisions) == 1 else f"{len(revisions)} revisions"
            typer.echo(
                f"{record['manifest']['metadata']['name']:<28} {shown:<14} {status.get('stations', '-'):<9} "
                f"{status.get('ready', '-')}"
            )
    else:
        typer.echo(f"{'NAME':<12} {'PROCESS':<22} LABELS")
        for record in records:
            meta, spec = record["manifest"]["metadata"], record["manifest"]["spec"]
            labels = ",".join(f"{k}={v}" for k, v in sorted(meta.get("labels", {}).items()))
            typer.echo(f"{meta['name']:<12} {spec['process']:<22} {labels}")


def _at_once(command: str, call: Coroutine[Any, Any, T]) -> T:
    """``call``'s result, or (no floor answered its one try) one line saying where and exit 1."""
    try:
        return asyncio.run(call)
    except HubUnreachable as err:
        typer.echo(f"{command}: {err}", err=True)
        raise typer.Exit(1) from err


def _hub_database(settings: smart_settings.Settings) -> str:
    """The hub database as its app role; a floor's state without that role's password is refused.

    The password is the floor's (``smart up`` made it): reading it must not make one, which no
    database knows and would be left behind in the state directory by a command that only reads.
    """
    from smart.hub.services import APP_PASSWORD_FILE, HubServices

    password = settings.secrets_directory / APP_PASSWORD_FILE
    if not password.exists():
        raise ValueError(
            f"no hub database here: {password} is missing "
            f"(run `smart up` with state dir {settings.state_dir})"
        )
    return HubServices(settings).app_database_url()


def _database_address(url: str) -> str:
    """A PostgreSQL URL or conninfo as host and port, for what a person reads: never its password."""
    import psycopg.conninfo

    try:
        parts = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(an unreadable database URL)"
    return f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}"


@contract_app.command("history")
def history_command(
    name: str = typer.Argument(..., help="The contract's name."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object instead of lines."),
) -> None:
    """Every revision of a contract: author, approvers, when, the diff, and when each station had it."""
    import datetime

    import psycopg

    from smart.contracts import history
    from smart.embedded import driver
    from smart.hub.compliance import service

    settings = smart_settings.load()
    found_records = _at_once("smart contract history", driver.approval_records(settings, waiting=True))
    records = {r.contract: r for r in found_records}
    if name not in records:
        typer.echo(f"smart contract history: no contract {name} on this floor", err=True)
        raise typer.Exit(1)
    try:
        with psycopg.connect(_hub_database(settings), autocommit=True) as conn:
            found, mapping = service.activations_of(conn, name), service.deployed_mapping(conn, name)
    except (psycopg.Error, ValueError) as err:
        typer.echo(
            f"smart contract history: the hub database cannot be read ({str(err)[:200]}); "
            "station periods are left out",
            err=True,
        )
        found, mapping = [], {}
    rows = history.history(
        records[name], found=found, compiled_from=mapping, now=datetime.datetime.now(datetime.UTC)
    )
    if as_json:
        typer.echo(json.dumps({"contract": name, "revisions": [r.json() for r in rows]}, indent=2))
        return
    for row in rows:
        approvers = ", ".join(row.approvers) or ("first revision" if row.first else "-")
        typer.echo(
            f"{row.revision[:12]}  {row.state:<18} submitted {row.submitted.isoformat(timespec='seconds')}"
            f"  author {row.author or 'not proven'}  approved by {approvers}"
        )
        for line in row.diff:
            typer.echo(f"    {line}")
        for period in row.periods:
            until = period.until.isoformat(timespec="seconds") if period.until else "now"
            typer.echo(f"    {period.station}: {period.since.isoformat(timespec='seconds')} → {until}")


@contract_app.command("at")
def at_command(
    station: str = typer.Argument(..., help="The station, e.g. pt-1."),
    time: str = typer.Option(
        ..., "--time", help="The moment, RFC 3339 with offset, e.g. 2026-11-30T10:00:00Z."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """What was in force at a station at a time, from the stations' own activations in the hub log."""
    import psycopg

    from smart.contracts import history
    from smart.hub.compliance import service

    try:
        moment = history.parse_time(time, field_name="--time")
    except history.HistoryError as err:
        typer.echo(f"smart contract at: {err}", err=True)
        raise typer.Exit(2) from err
    settings = smart_settings.load()
    try:
        url = _hub_database(settings)
    except ValueError as err:
        typer.echo(f"smart contract at: {err}; nothing changed", err=True)
        raise typer.Exit(1) from err
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as err:  # said at once: where it tried (host:port) and nothing changed
        typer.echo(
            f"smart contract at: the hub database at {_database_address(url)} did not answer or refused "
            f"the sign-in ({type(err).__name__}); nothing changed. Start the floor (smart up) and try again",
            err=True,
        )
        raise typer.Exit(1) from err
    with conn:
        found = service.in_force_with_rules(conn, station, moment)
    if as_json:
        typer.echo(
            json.dumps({"station": station, "time": moment.isoformat(), "inForce": [f.json() for f in found]})
        )
        return
    if not found:
        typer.echo(f"no contract was in force at {station} at {moment.isoformat()}: it failed closed")
    for item in found:
        typer.echo(
            f"{item.contract:<28} {item.revision[:12]}  since {item.since.isoformat(timespec='seconds')}"
        )
        if item.rules is not None:
            typer.echo(f"  rules: {', '.join(item.rules)}")


def _approve_on_kubernetes(name: str, revision: str, token: str, namespace: str) -> str:
    """Create a ContractApproval for the pending revision (or an emergency's countersignature) and
    wait for the operator's verdict (:mod:`smart.contracts.kube_approval`, the hub page's call too)."""
    from smart.contracts import kube_approval

    return kube_approval.request(name, revision, token, namespace)
