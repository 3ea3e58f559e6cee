"""Two real centrals for national hub tests: a hub and a region, each a real uvicorn server
on loopback with its own DuckDB file, and a real HTTP proxy that can tamper with lists."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from central.accounts.model import Role
from central.config import (
    AlertsConfig,
    CentralConfig,
    HttpConfig,
    NationalConfig,
    NationalForwardConfig,
    WatchlistsConfig,
    WatchlistSyncConfig,
)
from central.national.signing import Signer, generate
from central.watchlist.model import ListChange
from tests.central.police_helpers import Server
from tests.harness import KeyRing, central_config

LIST = "national-stolen"
REGION = "lviv"
# plate, category, priority: Cyrillic as the registry writes them
WANTED = [("АА7681ТЕ", "stolen", 1), ("BC1234HH", "wanted", 2), ("КА0001ВВ", "stolen", 1)]


def export_csv(rows: list[tuple[str, str, int]]) -> bytes:
    """A registry CSV export with ids (keys id:N), reasons and case references."""
    lines = ["id,plate,category,priority,reason,case_ref,valid_until"]
    for i, (plate, category, priority) in enumerate(rows):
        lines.append(f"{i},{plate},{category},{priority},розшук,1202500000{i},2099-12-31")
    return ("\n".join(lines) + "\n").encode()


def load_hub_list(server: Server, rows: list[tuple[str, str, int]]) -> None:
    """Replace the hub's national list with ``rows`` (as an operator upload would)."""
    watchlists = server.central.watchlists
    assert watchlists is not None
    watchlists.upload(
        LIST,
        export_csv(rows),
        "csv",
        full=True,
        change=ListChange(),
        actor="test",
        reason="registry export",
    )


@dataclass
class Hub:
    """The hub server, its public key and a region user's token (national:read/forward)."""

    server: Server
    public: str
    token: str

    @property
    def list_url(self) -> str:
        return f"{self.server.url}/api/v1/national/lists/{LIST}"


def hub_config(ring: KeyRing, root: Path, port: int | None = None) -> tuple[CentralConfig, str]:
    """A hub's config (key made on first call) and its public key."""
    key = root / "hub.pem"
    public = Signer.load(key).public if key.exists() else generate(key)
    cfg = central_config(ring, root / "hub")
    if port is not None:
        cfg = cfg.model_copy(update={"http": HttpConfig(port=port)})
    national = NationalConfig(hub=True, signing_key_file=key, publish=[LIST])
    return cfg.model_copy(update={"national": national}), public


def start_hub(ring: KeyRing, root: Path, port: int | None = None) -> Hub:
    """Start (or restart, on ``port``) the hub; a region user ``lviv`` gets a token once."""
    cfg, public = hub_config(ring, root, port)
    server = Server(cfg)
    token_file = root / "lviv-at-hub.token"
    if not token_file.exists():
        accounts = server.central.accounts
        assert accounts is not None
        accounts.create_user(REGION, Role.POLICE_API.value, None, "test")
        made = accounts.create_token(REGION, ["national:read", "national:forward"], "test")
        token_file.write_text(made.secret)
        token_file.chmod(0o600)
    return Hub(server, public, token_file.read_text())


def region_config(
    ring: KeyRing, root: Path, hub: Hub, *, list_url: str = "", interval_s: float = 0.3
) -> CentralConfig:
    """A region that syncs the hub's list (signed) and forwards alerts on it."""
    cfg = central_config(ring, root / "region")
    token_file = root / "lviv-at-hub.token"
    sync = WatchlistSyncConfig(
        name=LIST,
        url=list_url or hub.list_url,
        interval_s=interval_s,
        verify_key=hub.public,
        token_file=token_file,
    )
    forward = NationalForwardConfig(
        url=hub.server.url,
        region=REGION,
        token_file=token_file,
        backoff_initial_s=0.1,
        backoff_max_s=0.3,
        timeout_s=3.0,
    )
    return cfg.model_copy(
        update={
            "watchlists": WatchlistsConfig(sync=[sync]),
            "national": NationalConfig(forward=forward),
            "alerts": AlertsConfig(offline_check_interval_s=0.5),
        }
    )


Tamper = Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]


class TamperingProxy:
    """A real HTTP server in front of the hub that passes lists through, or alters them.

    ``tamper`` (None: pass through) gets the hub's body and headers and returns what the
    region receives.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.tamper: Tamper | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                forward = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("authorization", "if-none-match")
                }
                if proxy.tamper is not None:
                    forward.pop("If-None-Match", None)
                resp = httpx.get(proxy.upstream + self.path, headers=forward, timeout=20)
                body, headers = (
                    resp.content,
                    {
                        k: v
                        for k, v in resp.headers.items()
                        if k.lower() not in ("content-length", "transfer-encoding", "connection")
                    },
                )
                if proxy.tamper is not None and resp.status_code == 200:
                    body, headers = proxy.tamper(body, headers)
                self.send_response(resp.status_code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                return

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
