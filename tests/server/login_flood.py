"""A flood of wrong logins for test_login_flood.py, in a process of its own:
`python -m tests.server.login_flood URL ATTACKERS`. Each of ATTACKERS threads sends wrong
passwords for cert-in, every request from a new 127.x.y.z source address, until stdin
closes; then the status codes seen, and the bodies of the 503 answers, go to stdout as JSON."""

from __future__ import annotations

import collections
import http.client
import json
import sys
import threading
from base64 import b64encode
from urllib.parse import urlsplit

TAXII = "application/taxii+json;version=2.1"


def main(url: str, attackers: int) -> None:
    parts = urlsplit(url)
    host, port, path = parts.hostname or "", parts.port or 80, parts.path
    codes: collections.Counter[str] = collections.Counter()
    descriptions: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def attack(n: int) -> None:
        sent = 0
        while not stop.is_set():
            sent += 1
            source = f"127.{100 + n}.{sent // 250 % 250}.{sent % 250 + 1}"
            credentials = b64encode(f"cert-in:guess {n} {sent}".encode()).decode()
            connection = http.client.HTTPConnection(host, port, timeout=60, source_address=(source, 0))
            try:
                connection.request(
                    "GET", path, headers={"Accept": TAXII, "Authorization": f"Basic {credentials}"}
                )
                response = connection.getresponse()
                body = response.read().decode(errors="replace")
                code = str(response.status)
            except OSError as exc:
                code, body = type(exc).__name__, ""
            finally:
                connection.close()
            with lock:
                codes[code] += 1
                if code == "503" and len(descriptions) < 10:
                    descriptions.add(body)

    threads = [threading.Thread(target=attack, args=(n,)) for n in range(attackers)]
    for thread in threads:
        thread.start()
    sys.stdin.read()
    stop.set()
    for thread in threads:
        thread.join(120)
    json.dump({"codes": codes, "descriptions": sorted(descriptions)}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
