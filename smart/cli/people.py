"""``smart people``: the people SMART-ID knows (the Vault hub), and their personnel records."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import psycopg
import typer

from smart import ledger, logs
from smart import settings as smart_settings
from smart.access.records import Record, RecordKind
from smart.access.roles import Role
from smart.hub.vault.service import open_logins, open_smartid
from smart.hub.vault.smartid import SmartId, VaultError
from smart.keys import KeyFileError
from smart.settings import Settings

app = typer.Typer(
    help="People, badges and personnel records (SMART-ID on the Vault hub).", no_args_is_help=True
)


@app.callback()
def _logs() -> None:
    """Logs go to stderr, so what a command prints on stdout can be read by scripts."""
    logs.configure(smart_settings.load().log_level)


def default_actor() -> str:
    return f"cli:{getpass.getuser()}"


def fail(command: str, err: Exception) -> typer.Exit:
    typer.echo(f"smart {command}: {err}" if command else f"smart: {err}", err=True)
    return typer.Exit(1)


@contextmanager
def vault(settings: Settings | None = None) -> Iterator[SmartId]:
    """SMART-ID for a command; an unreachable database or a busy ledger is one line and exit 1."""
    try:
        with open_smartid(settings or smart_settings.load()) as smartid:
            yield smartid
    except psycopg.OperationalError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise fail(
            "", RuntimeError(f"the Vault database does not answer ({first}); is `smart up` running?")
        ) from err
    except (ledger.NodeLogError, KeyFileError) as err:
        raise fail("", err) from err


@app.command("add")
def add(
    employee_id: str = typer.Argument(..., help="Employee id, e.g. E-1001."),
    name: str = typer.Option(..., "--name", help="Full name (stays on the hub)."),
    badge: str = typer.Option(..., "--badge", help="Badge id encoded in the badge's QR code."),
    role: list[str] = typer.Option([], "--role", help="A role (repeat for several)."),
    actor: str = typer.Option(default_actor(), "--actor", help="Who does this (recorded on the ledger)."),
) -> None:
    """Register a person and their badge."""
    with vault() as smartid:
        try:
            person = smartid.add_person(
                employee_id=employee_id, name=name, badge_id=badge, roles=role, actor=actor
            )
        except VaultError as err:
            raise fail("people add", err) from err
    typer.echo(f"added {person.employee_id} with badge {person.badge_id}")


@app.command("list")
def list_people(as_json: bool = typer.Option(False, "--json", help="One JSON array.")) -> None:
    """Every person with their badge and roles."""
    with vault() as smartid:
        people = smartid.people()
    if as_json:
        typer.echo(json.dumps([_person(p) for p in people], indent=2))
        return
    for p in people:
        typer.echo(f"{p.employee_id:<12} {p.badge_id:<12} {', '.join(p.roles):<24} {p.name}")


def _person(p: object) -> dict[str, object]:
    return {name: getattr(p, name) for name in ("employee_id", "name", "badge_id", "roles")}


@app.command("record")
def record(
    employee_id: str = typer.Argument(...),
    kind: RecordKind = typer.Argument(
        ..., help="certification, exam, eye_exam, performance, experience, course."
    ),
    on: str | None = typer.Option(None, "--on", help="Date of the record (YYYY-MM-DD) [today]."),
    method: str | None = typer.Option(None, "--method", help="NDT method, e.g. PT."),
    level: str | None = typer.Option(None, "--level", help="Level: trainee, 1L, 1, 2, 3."),
    scheme: str | None = typer.Option(None, "--scheme", help="NAS410 or EN4179 [NAS410]."),
    technique: str | None = typer.Option(None, "--technique"),
    exam: str | None = typer.Option(None, "--exam", help="general, specific or practical."),
    score: float | None = typer.Option(None, "--score"),
    samples: int | None = typer.Option(None, "--samples", help="Practical exam samples."),
    test: str | None = typer.Option(None, "--test", help="Eye exam: near_vision or colour_vision."),
    test_type: str | None = typer.Option(None, "--test-type", help="e.g. jaeger-1-at-12in."),
    course: str | None = typer.Option(None, "--course", help="Course id, e.g. uv-safety."),
    hours: float | None = typer.Option(None, "--hours"),
    actor: str = typer.Option(default_actor(), "--actor"),
) -> None:
    """Add a personnel record (certification, exam result, eye exam, performance, course)."""
    try:
        fact = Record(
            kind=kind,
            on=date.fromisoformat(on) if on else date.today(),
            method=method,
            level=level,
            scheme=scheme,
            technique=technique,
            exam=exam,
            score=score,
            samples=samples,
            test=test,
            test_type=test_type,
            course=course,
            hours=hours,
        )
    except ValueError as err:
        raise fail("people record", err) from err
    with vault() as smartid:
        try:
            smartid.add_record(employee_id, fact, actor=actor)
        except VaultError as err:
            raise fail("people record", err) from err
    typer.echo(f"recorded {fact.describe()} for {employee_id}")


@app.command("add-login")
def add_login(
    username: str = typer.Argument(..., help="Login name for the hub web pages."),
    role: Role = typer.Option(
        ..., "--role", help="operator, level3, quality_manager, auditor, admin or buyer."
    ),
    employee_id: str | None = typer.Option(None, "--person", help="The person this login belongs to."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Create a hub login (the password is asked for, or read from stdin; it is stored argon2-hashed)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with open_logins(smart_settings.load()) as logins:
            logins.add(username, password, role=role, employee_id=employee_id)
    except (VaultError, psycopg.Error) as err:
        raise fail("people add-login", err) from err
    typer.echo(f"login {username} ({role.value}) added")
