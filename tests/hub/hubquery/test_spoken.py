"""HubQuery spoken: espeak-ng says a question into a WAV, the hub grammar hears it, the hub answers it.

One database for the module holds what the three hubs hold (SMART-ID's people
and eye exams, Business's published PO statuses, MaintenanceHub's register);
each hub's HubQuery is built with its own login only, as ``smart hub run
--role`` builds it, so the Business hub's answers come through
``smart_business``, which may not read the Vault's tables. The recordings are
made at test time with espeak-ng, as the station's voice tests make theirs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from smart import recordings
from smart.access.roles import Role
from smart.bus.hub_roles import HubRole
from smart.hub import database_roles
from smart.hub.hubquery import grammar, speech
from smart.hub.hubquery import web as hubquery_web
from smart.hub.hubquery.answers import NOT_UNDERSTOOD, HubQuery
from smart.hub.maintenance import store as maintenance_store
from smart.hub.published import feed
from smart.hub.vault import database as vault_database
from smart.hub.vault import service as vault
from smart.hub.vault.logins import Logins
from smart.hub.vault.smartid import SmartId
from smart.hub.web.auth import SESSION_COOKIE, Guard
from smart.keys import KeyStore
from smart.ledger import hub_store
from smart.runtime import demo_shop
from smart.runtime.background import BackgroundFloor
from smart.testing.plugin import fresh_database

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng (Debian) not installed")

NOW = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
TODAY = NOW.date()


def spoken(text: str, path: Path, voice: str = "en-us") -> Path:
    """``text`` as espeak-ng says it into a 22.05 kHz WAV, more or less a person at the mic."""
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return path


@dataclass
class Hubs:
    vault: HubQuery
    floor: HubQuery
    business: HubQuery
    business_url: str
    owner_url: str
    logins: Logins
    root: Path


@pytest.fixture(scope="module")
def hubs(postgres_floor: BackgroundFloor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hubs]:
    root = Path(tmp_path_factory.mktemp("hubquery"))
    with fresh_database(postgres_floor) as database:
        owner_url = database.url
        password = "hubquery-app"
        hub_store.migrate(owner_url, app_password=password)
        vault_database.migrate(owner_url)
        keys = KeyStore(root / "keys")
        smartid = SmartId(
            owner_url,
            key=keys.signing_key(vault.CREDENTIAL_KEY),
            ledger=vault.SharedNodeLog(root / "ledger", keys),
            clock=lambda: NOW,
        )
        demo_shop.enrol(smartid, NOW)  # op-9's near-vision exam has lapsed by NOW
        business_url = database_roles.ensure_login_role(owner_url, HubRole.BUSINESS, root / "secrets")
        feed.migrate(owner_url, role=database_roles.DATABASE_ROLES[HubRole.BUSINESS])
        maintenance_store.migrate(owner_url)
        with psycopg.connect(owner_url, autocommit=True) as conn:
            for line, station in (("1", "pt-1"), ("2", "sr-1")):
                body = {"po": "PO-4411", "line": line, "status": "handed-off", "station": station}
                conn.execute(
                    "INSERT INTO published.records (kind, key, body, published_at, feed_seq) "
                    "VALUES ('po-status', %s, %s, %s, %s)",
                    (f"PO-4411-{line}", Jsonb(body), NOW, int(line)),
                )
            for asset, due in (("UV-METER-1", date(2026, 5, 1)), ("LIGHT-METER-2", date(2026, 9, 1))):
                conn.execute(
                    "INSERT INTO maintenance.equipment (asset_id, kind, station, serial, calibration_due, "
                    "added_by, added_at) VALUES (%s, 'light-meter', 'pt-1', 'S-1', %s, 'qm-1', %s)",
                    (asset, due, NOW),
                )
        app_url = make_conninfo(owner_url, user=hub_store.APP_ROLE, password=password)
        recogniser = speech.HubRecogniser()  # one decoder for the module: building it is the slow part
        logins = Logins(owner_url)
        logins.add("client-desk", "correct horse battery", role=Role.OPERATOR)
        yield Hubs(
            vault=HubQuery("vault", smartid=smartid, today=lambda: TODAY, recogniser=recogniser),
            floor=HubQuery("floor", maintenance_url=app_url, today=lambda: TODAY, recogniser=recogniser),
            business=HubQuery(
                "business", business_url=business_url, today=lambda: TODAY, recogniser=recogniser
            ),
            business_url=business_url,
            owner_url=owner_url,
            logins=logins,
            root=root,
        )


def test_spoken_questions_are_heard_and_each_hub_answers_from_its_own_data(
    hubs: Hubs, tmp_path: Path
) -> None:
    asked = [
        (hubs.vault, "hey smart who is due for an eye exam this month", "eye-exams-due"),
        (hubs.business, "hey smart status of P O four four one one", "po-status"),
        (hubs.business, "what is the status of P O four four one one", "po-status"),
        (hubs.floor, "hey smart which gauges are overdue", "gauges-overdue"),
    ]
    answers = []
    for n, (hub, said, topic) in enumerate(asked):
        answer = hub.hear(spoken(said, tmp_path / f"q{n}.wav"))
        assert (answer.topic, answer.heard) == (topic, said.lower()), answer
        answers.append(answer)
    eye, po, po_again, gauges = answers
    assert eye.question == "who is due for an eye exam this month"
    assert "D-009" in {r["employee"] for r in eye.rows}
    assert po.question == "status of po 4411" and po.text == po_again.text
    assert {(r["line"], r["station"]) for r in po.rows} == {("1", "pt-1"), ("2", "sr-1")}
    assert gauges.text == "overdue for calibration: UV-METER-1 at pt-1 (due 2026-05-01)"


def test_a_question_for_another_hub_is_refused_by_name_never_read_across(hubs: Hubs, tmp_path: Path) -> None:
    eye = hubs.business.hear(spoken("who is due for an eye exam this month", tmp_path / "eye.wav"))
    assert (eye.topic, eye.rows) == ("eye-exams-due", ())
    assert eye.text == "the Vault hub answers that, not this one"
    gauges = hubs.business.hear(spoken("which gauges are overdue", tmp_path / "gauges.wav"))
    assert gauges.text == "the Floor hub answers that, not this one"
    # Business's own login could not have read the Vault's people even if it tried.
    with psycopg.connect(hubs.business_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM vault.people")
    # The Vault holds no POs: its grammar has no PO question, and one said is not understood, not guessed.
    po = hubs.vault.hear(spoken("hey smart status of P O four four one one", tmp_path / "po.wav"))
    assert po.topic == NOT_UNDERSTOOD and po.rows == (), po
    assert "<po>" not in grammar.jsgf(hubs.vault.po_numbers()) and "four four one one" in grammar.jsgf(
        hubs.business.po_numbers()
    )


@pytest.mark.parametrize(
    "said",
    [
        "hey smart turn on the lights",
        "can you pass me the developer",
        "good morning everyone",
        "who ate my lunch",
    ],
)
def test_speech_that_is_no_question_is_not_understood_never_guessed(
    hubs: Hubs, tmp_path: Path, said: str
) -> None:
    answer = hubs.business.hear(spoken(said, tmp_path / "other.wav"))
    assert answer.topic == NOT_UNDERSTOOD and answer.rows == (), answer
    assert answer.text.startswith("Not understood: ") and "status of PO 4411" in answer.text


def test_silence_and_bad_recordings(hubs: Hubs, tmp_path: Path) -> None:
    silence = tmp_path / "silence.wav"
    silence.write_bytes(recordings.wav_bytes(bytes(2 * speech.RATE)))
    answer = hubs.business.hear(silence)
    assert answer.topic == NOT_UNDERSTOOD and answer.text.startswith("Not understood: no question was heard")
    with pytest.raises(speech.SpeechError, match="audio: not a readable WAV"):
        hubs.business.hear(b"RIFF not really a wav")
    long = tmp_path / "long.wav"
    long.write_bytes(recordings.wav_bytes(bytes(2 * speech.RATE * (speech.MAX_SECONDS + 1))))
    with pytest.raises(speech.SpeechError, match="longer than 30 s"):
        hubs.business.hear(long)


def test_heard_words_read_as_typed() -> None:
    assert grammar.typed("hey smart status of p o four four one one") == "status of po 4411"
    assert grammar.typed("where is p o one oh oh one") == "where is po 1001"
    assert grammar.typed("which gauges are overdue") == "which gauges are overdue"
    assert grammar.said_number("PO-4411") == "four four one one" and grammar.said_number("BENCH-1") is None
    assert "an" not in grammar.other_words()  # "an eye exam" must not count as other speech


def test_the_audio_route_answers_with_what_was_heard_and_names_bad_input(hubs: Hubs, tmp_path: Path) -> None:
    app = FastAPI()
    app.include_router(hubquery_web.router(hubs.business, Guard(hubs.logins)))
    wav = spoken("hey smart status of P O four four one one", tmp_path / "q.wav").read_bytes()
    with TestClient(app) as web:
        assert web.post("/api/v1/hubquery/audio", content=wav).status_code == 401
        token = hubs.logins.sign_in("client-desk", "correct horse battery")
        assert token is not None
        web.cookies.set(SESSION_COOKIE, token)
        answer = web.post("/api/v1/hubquery/audio", content=wav, headers={"Content-Type": "audio/wav"}).json()
        assert answer["heard"] == "hey smart status of p o four four one one"
        assert answer["text"] == "PO 4411: line 1 handed-off at pt-1; line 2 handed-off at sr-1" or (
            answer["text"] == "PO 4411: line 2 handed-off at sr-1; line 1 handed-off at pt-1"
        )
        bad = web.post("/api/v1/hubquery/audio", content=b"not a wav")
        assert bad.status_code == 422 and bad.json()["detail"].startswith("audio: not a readable WAV")
        empty = web.post("/api/v1/hubquery/audio", content=b"")
        assert empty.status_code == 422 and "audio: the body is empty" in empty.json()["detail"]
        big = web.post("/api/v1/hubquery/audio", content=b"\0" * (hubquery_web.MAX_AUDIO_BYTES + 1))
        assert big.status_code == 413 and big.json()["detail"].startswith("audio: larger than")
        typed = web.post("/api/v1/hubquery", json={"question": "what is the weather"}).json()
        assert typed["topic"] == NOT_UNDERSTOOD and typed["heard"] is None
    assert json.dumps(answer)  # the answer is plain JSON


def test_smart_hub_query_hears_a_recording_with_the_roles_own_login(hubs: Hubs, tmp_path: Path) -> None:
    from smart.testing.cli import invoke

    env = {
        "SMART_DATABASE_URL": hubs.owner_url,
        "SMART_STATE_DIR": str(tmp_path / "state"),
        "SMART_SECRETS_DIR": str(hubs.root / "secrets"),
        "SMART_KEYS_DIR": str(hubs.root / "keys"),
        "SMART_SETTINGS_FILE": str(tmp_path / "no-settings.toml"),
    }
    wav = spoken("hey smart status of P O four four one one", tmp_path / "q.wav")
    done = invoke("hub", "query", "--role", "business", "--audio", str(wav), "--json", env=env)
    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout)
    assert answer["heard"] == "hey smart status of p o four four one one"
    assert answer["topic"] == "po-status" and len(answer["rows"]) == 2
    said = invoke(
        "hub", "query", "--role", "business", "--audio", str(spoken("good morning everyone", wav)), env=env
    )
    assert said.exit_code == 1 and said.stdout.startswith("heard: (nothing recognised)\nNot understood: ")
    both = invoke("hub", "query", "--role", "business", "status of PO 4411", "--audio", str(wav), env=env)
    assert both.exit_code == 2 and "give a QUESTION or --audio FILE" in both.stderr
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    refused = invoke("hub", "query", "--role", "business", "--audio", str(bad), env=env)
    assert refused.exit_code == 2 and f"{bad}: not a readable WAV" in refused.stderr
