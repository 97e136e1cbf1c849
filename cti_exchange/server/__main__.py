"""Internal entry point: `python -m cti_exchange.server --data DIR` serves the exchange's TAXII
server in this process. Users run `cti-exchange serve`; `runner.ServerProcess` runs this."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from cti_exchange.errors import CtiExchangeError
from cti_exchange.server.app import DEFAULT_MAX_PAGE_SIZE
from cti_exchange.server.connection import BUSY_TIMEOUT_SECONDS
from cti_exchange.server.runner import (
    DEFAULT_THREADS,
    run_medallion_config,
    run_server,
    stop_when_stdin_closes,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cti_exchange.server", description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="provisioned data directory to serve")
    source.add_argument(
        "--medallion-config", type=Path, help="serve plain medallion from this config (tests)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--ready-file", type=Path, help="write the bound address here (JSON)")
    parser.add_argument("--allow-public", action="store_true", help="allow a non-loopback host")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    parser.add_argument("--max-page-size", type=int, default=DEFAULT_MAX_PAGE_SIZE)
    parser.add_argument("--trusted-proxy", help="address of the reverse proxy (X-Forwarded-For)")
    parser.add_argument(
        "--busy-timeout",
        type=float,
        default=BUSY_TIMEOUT_SECONDS,
        help="seconds a POST waits for the write lock before 503",
    )
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument(
        "--stop-with-parent", action="store_true", help="stop when stdin closes (ServerProcess)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.stop_with_parent:
        stop_when_stdin_closes()
    try:
        if args.medallion_config is not None:
            run_medallion_config(
                args.medallion_config,
                args.host,
                args.port,
                ready_file=args.ready_file,
                threads=args.threads,
            )
        else:
            run_server(
                args.data,
                args.host,
                args.port,
                ready_file=args.ready_file,
                allow_public=args.allow_public,
                threads=args.threads,
                max_page_size=args.max_page_size,
                trusted_proxy=args.trusted_proxy,
                busy_timeout=args.busy_timeout,
            )
    except CtiExchangeError as exc:
        print(f"cti-exchange server: {exc.diagnostics()}", file=sys.stderr)
        return int(exc.exit_code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
