"""Serving the exchange: waitress in this process (`run_server`), or a child process that
tests, the demo and the benchmarks start, restart, kill and stop (`ServerProcess`).

The server listens on 127.0.0.1 unless told otherwise: it speaks plain HTTP, so anything
beyond the loopback interface belongs behind a TLS-terminating proxy (docs/SERVER.md).
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any

import waitress
from medallion import load_app

from cti_exchange.errors import ConfigError, NetworkError
from cti_exchange.server.app import DEFAULT_MAX_PAGE_SIZE, build_app
from cti_exchange.server.connection import BUSY_TIMEOUT_SECONDS, check_busy_timeout
from cti_exchange.server.provisioning import API_ROOT_NAME

DEFAULT_THREADS = 4
LOG_FILENAME = "server.log"
# waitress's defaults are 100 connections and 120 s before an idle one is closed: about 100
# clients that open a connection and never finish their request headers (or send nothing)
# took the server offline for two minutes. Connections cost a file descriptor and a few KB
# each, so allow many; close the idle ones sooner, checked every few seconds.
CONNECTION_LIMIT = 1000
CHANNEL_TIMEOUT_SECONDS = 30
CLEANUP_INTERVAL_SECONDS = 5
# A request body is received (spooled to a temporary file past 512 KB) before the app sees
# it, credentials included; waitress refuses a larger one from its Content-Length at once
# (413), and a chunked one as soon as that much has arrived. The slack lets a body slightly
# over max_content_length reach the app, which answers a TAXII-format 413.
BODY_SLACK_BYTES = 64 * 1024


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port_free(host: str, port: int) -> None:
    """ConfigError when `port` on `host` cannot be listened on now (another server has it):
    `serve` checks before it provisions, so that a start that fails changes nothing for the
    server already running there (an agency removed keeps its access until a real restart).
    Port 0 lets the system choose: always free."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            # Our own machine's port, taken or not ours to bind: a setting to change (exit 2),
            # not a partner's server out of reach (7).
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; nothing was changed",
                hint="stop the server already running there first, or choose another port",
            ) from None


def check_listen_address(host: str, *, allow_public: bool) -> None:
    """Loopback only, unless a public address is allowed explicitly."""
    if not is_loopback(host) and not allow_public:
        raise ConfigError(
            f"refusing to listen on {host}: the TAXII server speaks plain HTTP",
            hint="listen on 127.0.0.1 behind a TLS-terminating proxy (docs/SERVER.md), "
            "or allow a public address explicitly (serve --public)",
        )


def run_server(
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ready_file: Path | None = None,
    allow_public: bool = False,
    threads: int = DEFAULT_THREADS,
    max_page_size: int = DEFAULT_MAX_PAGE_SIZE,
    trusted_proxy: str | None = None,
    busy_timeout: float = BUSY_TIMEOUT_SECONDS,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the exchange laid out in `data_dir` until SIGTERM or SIGINT.

    port=0 picks a free port; the one bound is written, with the URL, to `ready_file` (JSON)
    and given to `on_ready` once the server accepts connections. With `trusted_proxy` (the
    reverse proxy's address), a request from that address is taken to come from the client
    its X-Forwarded-For names last; the header is ignored on requests from anywhere else. A
    POST that waits `busy_timeout` seconds for another to release the write lock is answered
    503.
    """
    check_busy_timeout(busy_timeout)
    check_listen_address(host, allow_public=allow_public)
    if not is_loopback(host) and not trusted_proxy:
        print(public_warning(host), file=sys.stderr, flush=True)
    proxy = proxy_settings(trusted_proxy) if trusted_proxy else {}
    app = build_app(data_dir, max_page_size=max_page_size, busy_timeout=busy_timeout)
    _serve(app, host, port, ready_file, threads, app.config["MAX_CONTENT_LENGTH"], on_ready, **proxy)


def public_warning(host: str) -> str:
    return (
        f"WARNING: serving plain HTTP on {host}, a public address, without --trusted-proxy: "
        "HTTP Basic passwords and every object cross the network in clear, and nothing in "
        "front of the server limits slow or idle connections. Put a TLS-terminating reverse "
        "proxy in front of it, listen on 127.0.0.1 and start with --trusted-proxy 127.0.0.1 "
        "(docs/SERVER.md, Behind TLS)."
    )


def waitress_settings(max_body: int) -> dict[str, Any]:
    """waitress's limits, set explicitly rather than left to its defaults (see the constants
    above): connections, idle time, and the largest request body it receives."""
    return {
        "connection_limit": CONNECTION_LIMIT,
        "channel_timeout": CHANNEL_TIMEOUT_SECONDS,
        "cleanup_interval": CLEANUP_INTERVAL_SECONDS,
        # poll(), not select(): select() cannot watch descriptors numbered above 1023, and
        # the connection limit lets more than that be open.
        "asyncore_use_poll": True,
        "max_request_body_size": max_body + BODY_SLACK_BYTES,
    }


def _raise_open_files_limit(needed: int) -> None:
    """Room for CONNECTION_LIMIT sockets (plus the database, logs and spooled bodies) when the
    soft limit is lower, as far as the hard limit allows."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def proxy_settings(address: str) -> dict[str, Any]:
    """waitress's own handling of a trusted reverse proxy: it rewrites REMOTE_ADDR from the
    last X-Forwarded-For hop (the one the proxy added) and drops the header from other peers."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ConfigError(
            f"--trusted-proxy {address!r} is not an IP address",
            hint="give the address the proxy connects from, e.g. 127.0.0.1",
        ) from None
    return {
        "trusted_proxy": address,
        "trusted_proxy_headers": {"x-forwarded-for"},
        "trusted_proxy_count": 1,
        "clear_untrusted_proxy_headers": True,
    }


def run_medallion_config(
    config_path: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ready_file: Path | None = None,
    threads: int = DEFAULT_THREADS,
) -> None:
    """Serve plain medallion exactly as its JSON config says (any backend, plaintext users).

    For tests and benchmarks that compare against medallion's own backends; never for
    production, whose passwords must be hashed.
    """
    if not is_loopback(host):
        raise ConfigError("plain medallion is for tests and benchmarks: loopback only")
    app = load_app(str(config_path))
    _serve(app, host, port, ready_file, threads, max_body=32 * 1024 * 1024, on_ready=None)


def _serve(
    app: Any,
    host: str,
    port: int,
    ready_file: Path | None,
    threads: int,
    max_body: int,
    on_ready: Callable[[str], None] | None,
    **proxy: Any,
) -> None:
    _raise_open_files_limit(CONNECTION_LIMIT + 256)
    try:
        server = waitress.create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="cti-exchange",
            **waitress_settings(max_body),
            **proxy,
        )
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc}", hint="choose another port") from exc
    bound_host, bound_port = _bound_address(server)
    url = f"http://{_url_host(bound_host)}:{bound_port}/"

    def stop(signum: int, frame: FrameType | None) -> None:
        # waitress.run() turns SystemExit into a shutdown that lets running requests finish.
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    if ready_file is not None:
        _write_json_atomically(
            ready_file, {"host": bound_host, "port": bound_port, "url": url, "pid": os.getpid()}
        )
    if on_ready is not None:
        on_ready(url)
    server.run()


def stop_when_stdin_closes() -> None:
    """Shut down (as on SIGTERM) once stdin reaches end of file.

    ServerProcess keeps its child's stdin open; if the parent dies, even by SIGKILL, the pipe
    closes and the server follows it instead of listening on forever.
    """

    def watch() -> None:
        # The raw descriptor, not sys.stdin: a daemon thread blocked in a buffered read
        # would hold its lock while the interpreter shuts down.
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="stop-with-parent", daemon=True).start()


def _bound_address(server: Any) -> tuple[str, int]:
    if hasattr(server, "effective_port"):
        return str(server.effective_host), int(server.effective_port)
    # Several sockets (e.g. "localhost" on IPv4 and IPv6): report the first.
    host, port = server.effective_listen[0]
    return str(host), int(port)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _write_json_atomically(path: Path, content: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(content))
    os.replace(partial, path)


# -- the server as a child process -------------------------------------------------------

_running: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    """A test run that dies without stopping its servers must not leave them listening."""
    for server in list(_running):
        with contextlib.suppress(Exception):
            server.kill()


class ServerProcess:
    """A TAXII server in a child process (`python -m cti_exchange.server`).

        with ServerProcess(data_dir) as server:
            ApiRoot(server.api_root_url, user="cert-fr", password=...)

    It listens on 127.0.0.1 on a free port, which `restart()` keeps. Its output goes to
    `server.log` in the data directory.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_root: str = API_ROOT_NAME,
        max_page_size: int = DEFAULT_MAX_PAGE_SIZE,
        threads: int = DEFAULT_THREADS,
        startup_timeout: float = 30.0,
        medallion_config: Path | None = None,
        trusted_proxy: str | None = None,
        busy_timeout: float = BUSY_TIMEOUT_SECONDS,
    ) -> None:
        self.data_dir = data_dir
        self.busy_timeout = busy_timeout
        self.trusted_proxy = trusted_proxy
        self.host = host
        self.api_root = api_root
        self.log_path = data_dir / LOG_FILENAME
        self.startup_timeout = startup_timeout
        self._requested_port = port
        self._max_page_size = max_page_size
        self._threads = threads
        self._medallion_config = medallion_config
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.port: int | None = None

    @classmethod
    def plain_medallion(
        cls, config_path: Path, work_dir: Path, *, api_root: str, **kwargs: Any
    ) -> ServerProcess:
        """Plain medallion from its own config file (see run_medallion_config)."""
        return cls(work_dir, api_root=api_root, medallion_config=config_path, **kwargs)

    # -- addresses ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None:
            raise NetworkError("the TAXII server has not been started")
        return f"http://{_url_host(self.host)}:{self.port}/"

    @property
    def discovery_url(self) -> str:
        return self.url + "taxii2/"

    @property
    def api_root_url(self) -> str:
        return f"{self.url}{self.api_root}/"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- life cycle ---------------------------------------------------------------------

    def _command(self, port: int, ready_file: Path) -> list[str]:
        command = [sys.executable, "-m", "cti_exchange.server", "--host", self.host]
        command += ["--port", str(port), "--ready-file", str(ready_file)]
        command += ["--threads", str(self._threads), "--stop-with-parent"]
        if self._medallion_config is not None:
            return [*command, "--medallion-config", str(self._medallion_config)]
        command += ["--data", str(self.data_dir), "--max-page-size", str(self._max_page_size)]
        command += ["--busy-timeout", str(self.busy_timeout)]
        return command + (["--trusted-proxy", self.trusted_proxy] if self.trusted_proxy else [])

    def start(self) -> ServerProcess:
        """Start the server and wait until it accepts connections."""
        if self.running:
            return self
        port = self.port if self.port is not None else self._requested_port
        ready_file = self.data_dir / f".server-ready-{os.getpid()}-{id(self)}.json"
        ready_file.unlink(missing_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._process = subprocess.Popen(
            self._command(port, ready_file),
            stdin=subprocess.PIPE,  # closed when we go: see stop_when_stdin_closes
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        _running.add(self)
        deadline = time.monotonic() + self.startup_timeout
        while not ready_file.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise NetworkError(
                    f"the TAXII server in {self.data_dir} did not start: {self._log_tail()}",
                    hint=f"see {self.log_path}",
                )
            time.sleep(0.02)
        ready = json.loads(ready_file.read_text())
        ready_file.unlink(missing_ok=True)
        self.port = int(ready["port"])
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (running requests finish), then SIGKILL after `timeout` seconds."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return self._forget()

    def kill(self) -> int | None:
        """SIGKILL: the crash a durable server must survive."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.kill()
            process.wait()
        return self._forget()

    def restart(self) -> ServerProcess:
        """Stop (if running) and start again on the same port."""
        self.stop()
        return self.start()

    def _forget(self) -> int | None:
        code = self._process.returncode if self._process is not None else None
        if self._process is not None and self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        self._process = None
        _running.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
