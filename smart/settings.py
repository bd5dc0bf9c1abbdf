"""The effective settings of a SMART installation, in one place.

Every process (``smart up``, the operator, a node agent, the tests) reads
the same model: defaults, then a settings file, then ``SMART_*`` environment
variables, then command-line flags. Keeping it in one model means ``smart
config show`` can print exactly what a process would run with, and nothing
reads ``os.environ`` behind its back.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from smart import style

#: The six stations of the reference shop, in the order ``--stations N`` takes them.
SHOP_STATIONS: tuple[str, ...] = ("pt-1", "mt-1", "ut-1", "ht-1", "cp-1", "sr-1")

_STATION_ID = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")


def settings_file() -> Path:
    """Where the settings file lives: ``SMART_SETTINGS_FILE`` or ``./smart.toml``."""
    return Path(os.environ.get("SMART_SETTINGS_FILE", "smart.toml"))


def station_ids(count: int) -> list[str]:
    """Station ids for an embedded floor of ``count`` stations.

    The first six are the reference shop's; beyond that the floor grows with
    generic ``st-7``, ``st-8`` … so that larger simulated floors stay valid.
    """
    if count < 1:
        raise ValueError("a floor needs at least one station")
    named = list(SHOP_STATIONS[:count])
    return named + [f"st-{n}" for n in range(len(named) + 1, count + 1)]


def default_state_dir() -> Path:
    """``/var/lib/smart`` for root (a system service's place), ``~/.local/state/smart`` otherwise."""
    return Path("/var/lib/smart") if os.geteuid() == 0 else Path("~/.local/state/smart")


#: The driver's NATS user at the hub (see :meth:`Settings.hub_nats_signin`) and its password file.
DRIVER_NATS_USER = "driver"
DRIVER_NATS_PASSWORD_FILE = "nats-driver.password"


class Settings(BaseSettings):
    """Settings shared by every SMART process."""

    model_config = SettingsConfigDict(env_prefix="SMART_", extra="forbid", validate_default=True)

    state_dir: Path = Field(
        default_factory=lambda: default_state_dir(),
        description="Where the embedded floor keeps its database, JetStream stores and keys.",
    )
    stations: int = Field(default=6, ge=1, le=64, description="Number of simulated stations.")
    host: str = Field(default="127.0.0.1", description="Loopback address every embedded service binds.")
    web_port: int = Field(default=8480, ge=1, le=65535, description="Hub web app (status, dashboards).")
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description=(
            "The proxies (the DMZ's) whose X-Forwarded-Proto and X-Forwarded-For the hub web app believes: "
            "comma-separated addresses or networks, '*' for any. Behind a TLS-terminating proxy the "
            "client API's OAuth token endpoint (https only) needs it to include the proxy."
        ),
    )
    postgres_port: int = Field(default=54480, ge=1, le=65535, description="Embedded PostgreSQL.")
    nats_port: int = Field(default=4480, ge=1, le=65535, description="Hub NATS client port.")
    nats_leaf_port: int = Field(default=7480, ge=1, le=65535, description="Hub leafnode port.")
    nats_monitor_port: int = Field(default=8490, ge=1, le=65535, description="Hub NATS monitoring port.")
    station_nats_port_base: int = Field(
        default=4500, ge=1, le=65000, description="Station i's leaf client port is base + i."
    )
    station_monitor_port_base: int = Field(
        default=8500, ge=1, le=65000, description="Station i's leaf monitoring port is base + i."
    )
    station_web_port_base: int = Field(
        default=8600, ge=1, le=65000, description="Station i's web app (kiosk, health) port is base + i."
    )
    node_station: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
        description="The station this node is, as `smart station provision` or the chart set it: any"
        " station id (pt-2, cl-4), not only the simulated floor's; its ports are the node_* ones.",
    )
    node_leaf_port: int = Field(
        default=4222, ge=1, le=65535, description="The node's own station's leaf client port."
    )
    node_monitor_port: int = Field(
        default=8222, ge=1, le=65535, description="The node's own station's leaf monitoring port."
    )
    node_web_port: int = Field(
        default=8080, ge=1, le=65535, description="The node's own station's web app (kiosk, health) port."
    )
    kiosk_host: str | None = Field(
        default=None,
        description="The address the station's web app (kiosk) binds; default: host. The chart sets"
        " 0.0.0.0 so the kiosk's Service reaches it; the agent still dials its leaf on host.",
    )
    heartbeat_s: float = Field(default=2.0, gt=0, le=60, description="How often a station reports.")
    station_offline_after_s: float = Field(
        default=10.0, gt=0, le=3600, description="A station silent this long is shown offline."
    )
    contract_bootstrap: bool = Field(
        default=False,
        description="The operator lets a SmartContract's first revision out without a second person"
        " (each recorded as contract.bootstrapped): for seeding a new cluster only; off, a new"
        " contract waits for its ContractApproval like every change.",
    )
    contract_approval_namespace: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
        description="On Kubernetes: the namespace where the hub's approval page creates ContractApprovals"
        " for the operator to verify (the pod's service account bound to the contract-approver Role)."
        " Unset: the page approves through the embedded floor's driver, as `smart contract approve` does.",
    )
    # The station's GPIO pin map (BCM numbers; defaults: a Pi 5 HAT layout clear of I2C, SPI and UART).
    station_gpio: Literal["auto", "pi", "simulated"] = Field(
        default="auto",
        description="The station's GPIO: 'pi' requires real pins, 'simulated' uses gpiozero's mock pins"
        " (the embedded floor), 'auto' takes real pins when there are any and says so when not.",
    )
    gpio_green_pin: int = Field(default=5, ge=0, le=27, description="Stack light green lamp output.")
    gpio_amber_pin: int = Field(default=6, ge=0, le=27, description="Stack light amber lamp output.")
    gpio_red_pin: int = Field(default=13, ge=0, le=27, description="Stack light red lamp output.")
    gpio_buzzer_pin: int = Field(default=19, ge=0, le=27, description="Buzzer output.")
    gpio_relay_pin: int = Field(default=26, ge=0, le=27, description="Interlock relay output.")
    gpio_relay_active_high: bool = Field(
        default=True, description="False for relay boards that energise the coil on a low output."
    )
    gpio_relay_pulse_hz: float = Field(
        default=0.0,
        ge=0,
        le=1000,
        description="0: the relay output is a steady level. Above 0: a square wave at this rate while"
        " energised, for a relay behind a retriggerable timer (watchdog relay), which drops it when the"
        " pulses stop, even if the station's process is killed.",
    )
    gpio_estop_pin: int = Field(
        default=17, ge=0, le=27, description="E-stop input: normally closed to ground, internal pull-up."
    )
    gpio_estop_bounce_ms: int = Field(default=20, ge=0, le=500, description="E-stop input debounce.")
    gpio_interlock_lease_ms: int = Field(
        default=500, ge=50, le=10000, description="The interlock relay drops unless re-affirmed this often."
    )
    keys_dir: Path | None = Field(
        default=None, description="Signing keys (0600); defaults to <state_dir>/keys."
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="An external PostgreSQL instead of the embedded one (postgresql://…).",
    )
    nats_url: str | None = Field(
        default=None, description="An external hub NATS instead of the embedded one."
    )
    station_image: str | None = Field(
        default=None,
        description="The container image (repository:tag or @digest) of the module DaemonSets the operator"
        " creates; the Helm chart sets it to its own image so hub and stations run one build."
        " Unset: each module manifest's image.",
    )
    nats_credentials: Path | None = Field(
        default=None,
        description="The hub services' NATS credentials file (.creds), if the hub NATS asks for one.",
    )
    secrets_dir: Path | None = Field(
        default=None,
        description="Generated or mounted secrets (database passwords, 0600); default <state_dir>/secrets.",
    )
    contracts_dir: Path = Field(
        default=Path("contracts"),
        description="The contracts' folder (SmartContract and Station manifests) the hub reads intervals"
        " from (MaintenanceHub's calibration and TUS/SAT schedule, in `smart hub run`, `smart up` and"
        " `smart maintenance`). Made absolute when the settings load, so a process started elsewhere"
        " reads the folder named here; on Kubernetes, a mounted copy of the contracts applied.",
    )
    log_level: str = Field(default="INFO", description="Root log level.")
    shop_timezone: str = Field(
        default_factory=lambda: style.default_zone().key,
        description="The shop's IANA time zone (e.g. America/Chicago): a credential or check is current"
        " through the end of its due day here, not in UTC; the hub's pages show times in it. Default:"
        " the machine's TZ, else UTC.",
    )
    credential_clock_skew_s: float = Field(
        default=120, ge=0, le=3600, description="Clock skew a station tolerates when verifying credentials."
    )
    restart_backoff_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="First wait before restarting a crashed server; doubles each time.",
    )

    @field_validator("state_dir", "keys_dir", "contracts_dir")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser().absolute() if value is not None else None

    @field_validator("shop_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name, e.g. America/Chicago") from err
        return value

    @property
    def shop_zone(self) -> ZoneInfo:
        return ZoneInfo(self.shop_timezone)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=settings_file()),
        )

    @property
    def station_ids(self) -> list[str]:
        return station_ids(self.stations)

    @property
    def key_directory(self) -> Path:
        return self.keys_dir or self.state_dir / "keys"

    @property
    def secrets_directory(self) -> Path:
        return self.secrets_dir or self.state_dir / "secrets"

    def hub_nats_signin(self) -> dict[str, str]:
        """The driver's sign-in at the hub NATS, as ``nats.connect`` keywords (the hub asks everyone).

        The driver is the administrator's side: ``smart apply``/``get``/…, the operator, the embedded
        floor and ``smart hub run --role all``. ``nats_credentials`` (a .creds file) if set, else the
        password the embedded floor generated (``nats-driver.password`` in the secrets), else nothing:
        then the URL must carry the user (as the chart's Secret does) or the hub refuses.
        """
        if self.nats_credentials is not None:
            return {"user_credentials": str(self.nats_credentials)}
        password = self.secrets_directory / DRIVER_NATS_PASSWORD_FILE
        if password.exists():
            return {"user": DRIVER_NATS_USER, "password": password.read_text().strip()}
        return {}

    def hub_nats_url(self) -> str:
        """The hub's NATS: ``nats_url`` if set, else the embedded floor's hub server."""
        return self.nats_url or f"nats://{self.host}:{self.nats_port}"

    def knows(self, station: str) -> bool:
        """Whether this node can run ``station``: its own provisioned station, or one of the floor's."""
        return station == self.node_station or station in self.station_ids

    def _position(self, station: str) -> int:
        if station not in self.station_ids:
            raise ValueError(
                f"unknown station {station!r}: this node is {self.node_station or 'no station'}"
                f" (SMART_NODE_STATION) and the floor has {', '.join(self.station_ids)}"
            )
        return self.station_ids.index(station) + 1

    def station_nats_port(self, station: str) -> int:
        if station == self.node_station:
            return self.node_leaf_port
        return self.station_nats_port_base + self._position(station)

    def station_monitor_port(self, station: str) -> int:
        if station == self.node_station:
            return self.node_monitor_port
        return self.station_monitor_port_base + self._position(station)

    def station_web_port(self, station: str) -> int:
        if station == self.node_station:
            return self.node_web_port
        return self.station_web_port_base + self._position(station)

    @property
    def kiosk_bind(self) -> str:
        """Where the station's web app listens."""
        return self.kiosk_host or self.host

    def station_data_dir(self, station: str) -> Path:
        """A station's own files (its store, its ledger, its witness state)."""
        return self.state_dir / "stations" / station

    def environment(self) -> dict[str, str]:
        """These settings as ``SMART_*`` variables, so a child process runs with exactly them."""
        env: dict[str, str] = {}
        for name, value in self:
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"SMART_{name.upper()}"] = str(value)
        return env

    def masked(self) -> dict[str, Any]:
        """The settings as plain values, secrets shown as ``**********``."""
        shown: dict[str, Any] = {}
        for name, value in self:
            if isinstance(value, SecretStr):
                shown[name] = "**********"
            elif isinstance(value, Path):
                shown[name] = str(value)
            else:
                shown[name] = value
        shown["key_directory"] = str(self.key_directory)
        shown["station_ids"] = self.station_ids
        return shown


def load(**overrides: Any) -> Settings:
    """Settings with command-line ``overrides`` (``None`` values are ignored)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def valid_station_id(station: str) -> bool:
    return bool(_STATION_ID.match(station))


#: The embedded PostgreSQL's owner role, database and password file (in the secrets directory).
EMBEDDED_OWNER_ROLE = "smart_owner"
EMBEDDED_DATABASE = "smart"
EMBEDDED_OWNER_PASSWORD = "postgres-owner.password"


def database_url(settings: Settings) -> str:
    """The hub database (owner role): ``database_url`` if set, else the embedded floor's.

    The embedded one's password is read from the secrets directory, never generated here: a
    floor that has not run yet has no database to give.
    """
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    password_file = settings.secrets_directory / EMBEDDED_OWNER_PASSWORD
    if not password_file.exists():
        raise ValueError(
            f"no database: set SMART_DATABASE_URL, or run `smart up` with state dir {settings.state_dir}"
        )
    password = password_file.read_text().strip()
    return (
        f"postgresql://{EMBEDDED_OWNER_ROLE}:{password}@{settings.host}:{settings.postgres_port}"
        f"/{EMBEDDED_DATABASE}"
    )
