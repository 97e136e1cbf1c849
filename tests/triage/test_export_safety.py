"""`export` guardrails, through the CLI: partner values checked as ours are, TLP gate before any
file is put in place, file modes, special targets (FIFO, descriptor paths, a closed pipe), and
`convert` into a missing directory."""

from __future__ import annotations

import json
import os
import random
import socket
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.readers.warning_list import bundled_warning_lists
from cti_exchange.stix.guardrails import Guardrails
from cti_exchange.stix.pattern_values import indicator_value
from tests.conftest import PASSPHRASE, Agency
from tests.triage.conftest import indicator, put, store_path
from tests.triage.test_export import _RULE, _body

GOOD = {
    "ipv4-addr": ["203.0.113.7", "198.51.100.0/24", "45.33.2.1"],
    "ipv6-addr": ["2001:db8::7"],
    "domain-name": ["evil.example", "bad.example.net"],
    "url": ["http://evil.example/gate.php?id=1"],
}
INVALID = {
    "ipv4-addr": ["a", "1.2.3.4/8"],  # not an address; host bits set
    "domain-name": [
        "evil.example\x0b0.0.0.0/0",  # VT: splitlines() and many tools split there
        "evil.example\u2028*",  # LINE SEPARATOR
        "evil.example\x00x",  # NUL
        "evil.example\n0.0.0.0/0",
        " evil.example",
    ],
    "url": ["http://evil.example:99999/"],
}
BROAD = {
    "ipv4-addr": ["0.0.0.0/0", "127.0.0.1"],
    "ipv6-addr": ["::/0"],
    "domain-name": ["com", "localhost", "*", "co.uk"],
}


def _values(groups: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(ioc_type, value) for ioc_type, values in groups.items() for value in values]


def _store(agency: Agency, groups: dict[str, list[str]], tlp: str = "amber") -> None:
    objects = []
    for ioc_type, value in _values(groups):
        obj = indicator(value, ioc_type, tlp=tlp)
        if "/" in value and ioc_type.startswith("ipv"):  # a range, as a partner's ISSUBSET
            obj["pattern"] = f"[{ioc_type}:value ISSUBSET '{value}']"
        objects.append(obj)
    put(agency, objects)


@pytest.fixture
def hostile(cert_in: Agency) -> Agency:
    _store(cert_in, GOOD)
    _store(cert_in, INVALID)
    _store(cert_in, BROAD)
    return cert_in


def _run(agency: Agency, *args: str) -> str:
    result = agency.run("export", "--any-status", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _listed(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#   ")]


def test_invalid_and_overly_broad_partner_values_are_left_out_and_listed(
    hostile: Agency, tmp_path: Path
) -> None:
    text = _run(hostile)
    good = {value for _, value in _values(GOOD)}
    body = _body(text)
    assert set(body) == good and len(body) == len(good)
    # One stored value is one line, whatever tool splits the file: no VT, U+2028, NUL...
    assert [line for line in text.splitlines() if not line.startswith("#")] == body
    assert len(text.split("\n")) == len(text.splitlines()) + 1
    head = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert "# not written: 9 domain-name: invalid or overly broad" in head
    listed = _listed(text)
    assert len(listed) == sum(len(v) for v in (*INVALID.values(), *BROAD.values()))
    assert '#   domain-name "evil.example\\x0b0.0.0.0/0": unprintable: ' in head
    assert '#   domain-name "evil.example\\u2028*": unprintable: ' in head
    assert '#   ipv4-addr "0.0.0.0/0": broad-range [broad]: ' in head
    assert '#   domain-name "com": single-label [broad]: ' in head
    assert '#   ipv4-addr "a": invalid-value: ' in head
    # --json lists them too, each with its code and whether --allow-broad would write it.
    out = tmp_path / "list.txt"
    result = hostile.run("export", "--any-status", "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    summary = result.json()
    assert summary["refused"] == len(listed)
    refused = {(r["type"], r["value"]): r for r in summary["files"][0]["refused_values"]}
    assert set(refused) == set(_values(INVALID)) | set(_values(BROAD))
    assert refused[("ipv6-addr", "::/0")]["broad"] is True
    assert refused[("domain-name", "evil.example\x00x")]["broad"] is False
    assert summary["files"][0]["refused"]["domain-name"] == 9


def test_allow_broad_writes_the_broad_values_never_the_invalid_ones(hostile: Agency) -> None:
    text = _run(hostile, "--allow-broad")
    expected = {value for _, value in _values(GOOD) + _values(BROAD)}
    assert set(_body(text)) == expected
    assert len(_listed(text)) == sum(len(v) for v in INVALID.values())


def test_ids_rules_never_hold_an_invalid_or_overly_broad_value(hostile: Agency) -> None:
    suricata = _run(hostile, "--format", "suricata")
    body = "\n".join(_body(suricata))
    for line in _body(suricata):
        assert _RULE.match(line), line
    assert "<> [::/0]" not in body and "<> 0.0.0.0/0" not in body and "<> a any" not in body
    assert 'content:".com"' not in body and "1.2.3.4/8" not in body
    assert "<> 45.33.2.1 any" in body and "<> 198.51.100.0/24 any" in body
    snort = _run(hostile, "--format", "snort")
    assert "|03|com|00|" not in snort and "|09|localhost|00|" not in snort
    for line in _body(snort):
        assert _RULE.match(line), line
    misp = json.loads(_run(hostile, "--format", "misp"))["Event"]["Attribute"]
    assert {a["value"] for a in misp} == {value for _, value in _values(GOOD)}
    stix = json.loads(_run(hostile, "--format", "stix"))
    assert len([o for o in stix["objects"] if o["type"] == "indicator"]) == len(_values(GOOD))


def test_the_fast_path_agrees_with_the_full_checks() -> None:
    """The fast path is only a shortcut: every value it lets through, the normalisers and the
    guardrails let through too (values shaped like the benchmark's, and near misses)."""
    from bench.bench_store import _value
    from cti_exchange.exporters.safety import ValueCheck

    check = ValueCheck(Guardrails(bundled_warning_lists()))
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    values = [indicator_value(_value(i, rng.getrandbits(64))[0]) for i in range(6000)]
    values += [
        ("domain-name", name)
        for name in [
            "a.example.com",
            "example.com",
            "co.uk",
            "evil.co.uk",
            "google.com",
            "mail.google.com",
            "x.localhost",
            "a-.example.org",
            "xn--80ak6aa92e.com",
            "a" * 64 + ".com",
            ".".join(["a" * 60] * 5) + ".com",
            "evil.test",
            "docs.internal",
            "_dmarc.evil.org",
        ]
    ]
    values += [("ipv4-addr", f"{a}.{b}.0.1") for a in range(256) for b in (0, 1, 18, 51, 64, 168, 254)]
    values += [("ipv4-addr", v) for v in ("01.2.3.4", "1.2.3.256", "300.1.1.1", "1.2.3")]
    values += [
        ("url", u)
        for u in (
            "http://evil.example/",
            "https://Evil.example/x",
            "http://bad.example.org",
            "http://raw.githubusercontent.com/x/y",
            "http://github.com/",
            "http://co.uk/x",
            "ftp://evil.org/x",
            "http://evil.org:8080/x",
        )
    ]
    values += [
        ("ipv6-addr", v)
        for v in ("2001:db8::7", "2a00:1450::1", "2A00:1450::1", "fe80::1", "::1", "100::1", "fc00::1", "::")
    ]
    values += [
        ("ipv6-addr", v) for v in ("::ffff:10.0.0.1", "2001:0db8::1", "2001:db8:0:0:1::1", "64:ff9b::1")
    ]
    values += [("email-addr", e) for e in ("a.b@evil.org", "a..b@evil.org", "a@xn--80ak6aa92e.com")]
    values += [("file-name", f) for f in ("evil.exe", "svchost.exe", "%TEMP%", "a*.exe", "..", "x.dll")]
    values += [("md5", "d41d8cd98f00b204e9800998ecf8427e"), ("sha1", "A" * 40), ("md5", "0" * 64)]
    passed = 0
    for ioc_type, value in values:
        assert ioc_type is not None and value is not None
        if check.fast_path(ioc_type)(value):
            passed += 1
            assert check.thorough(ioc_type, value) is None, (ioc_type, value)
    assert passed > len(values) // 2  # the fast path does serve ordinary values


def _export_rows(agency: Agency) -> list[dict[str, object]]:
    conn = sqlite3.connect(store_path(agency))
    try:
        rows = conn.execute("SELECT details FROM audit_log WHERE action = 'export' ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [json.loads(r[0]) for r in rows]


def test_a_directory_export_refused_by_tlp_puts_no_file_in_place(cert_in: Agency, tmp_path: Path) -> None:
    put(cert_in, [indicator(f"host{i}.evil.example") for i in range(300)])
    put(cert_in, [indicator("e" * 64, "sha256", tlp="red")])  # the last part to be written
    out = tmp_path / "outdir"
    out.mkdir()
    refused = cert_in.run("export", "--any-status", "-o", str(out))
    assert refused.exit_code == 8 and "nothing was written" in refused.stderr
    assert list(out.iterdir()) == []  # no file of an earlier type, no temporary file
    assert _export_rows(cert_in) == []
    allowed = cert_in.run("export", "--any-status", "-o", str(out), "--i-understand-tlp")
    assert allowed.exit_code == 0, allowed.stderr
    assert len(list(out.iterdir())) == 23 and not [p for p in out.iterdir() if p.name.startswith(".")]
    assert len(_export_rows(cert_in)) == 1


@pytest.fixture
def umask() -> Iterator[None]:
    before = os.umask(0o022)
    os.umask(before)
    yield
    os.umask(before)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.usefixtures("umask")
def test_file_modes_follow_the_tlp_and_the_umask(cert_in: Agency, tmp_path: Path) -> None:
    put(cert_in, [indicator("green.example", tlp="green"), indicator("strict.example", tlp="amber+strict")])
    put(cert_in, [indicator("0.0.0.0/0", "ipv4-addr", tlp="red")])  # refused, but named in the head
    green, strict, red = tmp_path / "green.txt", tmp_path / "strict.txt", tmp_path / "red.txt"
    os.umask(0o022)
    assert cert_in.run("export", "--any-status", "--tlp", "green", "-o", str(green)).exit_code == 0
    assert _mode(green) == 0o640
    args = ("export", "--any-status", "--i-understand-tlp", "-o")
    assert cert_in.run(*args, str(strict), "--tlp", "amber+strict").exit_code == 0
    assert _mode(strict) == 0o600
    # Only a refused value is RED: the head names it, so the file is RED and owner-only.
    assert cert_in.run(*args, str(red), "--type", "ipv4-addr").exit_code == 0
    assert red.read_text().startswith("# TLP:RED") and _mode(red) == 0o600
    # A format without a head does not name it: the event is not marked for it.
    misp = cert_in.run(
        "export", "--any-status", "--i-understand-tlp", "--type", "ipv4-addr", "--format", "misp"
    )
    assert json.loads(misp.stdout)["Event"]["Tag"] == []
    os.umask(0o077)
    assert cert_in.run("export", "--any-status", "--tlp", "green", "-o", str(green)).exit_code == 0
    assert _mode(green) == 0o600
    os.umask(0o027)
    lists = tmp_path / "lists"
    lists.mkdir()
    assert cert_in.run(*args, str(lists)).exit_code == 0
    assert _mode(lists / "domain-name.txt") == 0o600  # holds AMBER+STRICT
    assert _mode(lists / "md5.txt") == 0o640


def _cli(agency: Agency, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE}
    return subprocess.run(
        [sys.executable, "-m", "cti_exchange", "--home", str(agency.home), *args],
        env=env,
        timeout=120,
        check=False,
        **kwargs,
    )


@pytest.fixture
def small(cert_in: Agency) -> Agency:
    put(cert_in, [indicator("a.example"), indicator("b.example")])
    return cert_in


def test_a_fifo_is_fed_not_replaced(small: Agency, tmp_path: Path) -> None:
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the writer's open does not wait
    try:
        result = small.run("export", "--any-status", "-o", str(fifo))
        assert result.exit_code == 0, result.stderr
        received = b""
        while chunk := os.read(reader, 65536):
            received += chunk
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert _body(received.decode()) == ["a.example", "b.example"]


def test_descriptor_paths_are_written_through(small: Agency, tmp_path: Path) -> None:
    direct = _cli(small, "export", "--any-status", "-o", "/proc/self/fd/1", capture_output=True)
    assert direct.returncode == 0, direct.stderr
    assert _body(direct.stdout.decode()) == ["a.example", "b.example"]
    # A link to our stdout, whatever stdout is: a pipe, or a regular file (as /dev/stdout is).
    link = tmp_path / "link"
    link.symlink_to("/proc/self/fd/1")
    piped = _cli(small, "export", "--any-status", "-o", str(link), capture_output=True)
    assert piped.returncode == 0, piped.stderr
    assert _body(piped.stdout.decode()) == ["a.example", "b.example"]
    captured = tmp_path / "captured.txt"
    captured.write_text("kept\n")
    with captured.open("ab") as stdout:
        into_file = _cli(
            small, "export", "--any-status", "-o", str(link), stdout=stdout, stderr=subprocess.PIPE
        )
    assert into_file.returncode == 0, into_file.stderr
    assert os.readlink(link) == "/proc/self/fd/1"  # the link is still a link
    assert captured.read_text().startswith("kept\n# TLP:AMBER")  # appended, as `>>` would
    assert _body(captured.read_text()) == ["kept", "a.example", "b.example"]


def test_targets_that_cannot_be_written_are_one_line_errors(small: Agency, tmp_path: Path) -> None:
    sock_path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(sock_path))
        sock = small.run("export", "-o", str(sock_path))
    finally:
        server.close()
    assert sock.exit_code == 2 and "not a regular file" in sock.stderr
    assert stat.S_ISSOCK(os.stat(sock_path).st_mode)
    # A directory nothing can be created in (even by root): no temporary file, one line.
    proc = small.run("export", "-o", "/proc/self/cti-export.txt")
    assert proc.exit_code == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "cannot write /proc/self/cti-export.txt" in proc.stderr


def test_a_reader_that_stops_early_ends_the_export_quietly(cert_in: Agency) -> None:
    put(cert_in, [indicator(f"host{i}.long-enough-to-fill-a-pipe.example") for i in range(4000)])
    process = subprocess.Popen(
        [sys.executable, "-m", "cti_exchange", "--home", str(cert_in.home), "export", "--any-status"],
        env={**os.environ, "CTI_EXCHANGE_PASSPHRASE": PASSPHRASE},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(b"# TLP:AMBER")
    process.stdout.close()  # as `| head -1` does
    status = process.wait(timeout=120)
    stderr = process.stderr.read()
    process.stderr.close()
    assert status == 141, stderr  # 128 + SIGPIPE, what a shell reports for `cat` or `grep`
    assert stderr == b""
    (record,) = _export_rows(cert_in)
    assert record["files"][0]["complete"] is False  # type: ignore[index]


def test_convert_into_a_missing_directory_is_a_one_line_error(cert_in: Agency, tmp_path: Path) -> None:
    source = tmp_path / "one.txt"
    source.write_text("evil.example\n")
    result = cert_in.run("convert", str(source), "-o", str(tmp_path / "nodir" / "x.json"))
    assert result.exit_code == 2, result.stderr
    assert (
        result.stderr.count("\n") == 1 and f"directory {tmp_path / 'nodir'} does not exist" in result.stderr
    )
    assert not (tmp_path / "nodir").exists()
