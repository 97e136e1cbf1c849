"""`doctor`: every check passes on a healthy exchange; each failure is found, with its fix and
the exit code of its family."""

from __future__ import annotations

import base64
import errno
import json
import os
import stat
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from cti_exchange.doctor import run_doctor
from cti_exchange.doctor.checklist import CheckResult, CheckStatus, DoctorContext
from cti_exchange.doctor.partner_checks import judge_clock_skew
from cti_exchange.errors import AuthError, ExitCode
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import KeyUse
from tests.cli.test_credentials_acl import GROUP_OBJ, MASK, OTHER, STRANGER, UNDEFINED, USER, USER_OBJ, acl
from tests.conftest import PASSPHRASE, Agency, run_cli
from tests.exchange.conftest import Exchange, write_iocs


def _doctor(
    agency: Agency, *args: str, env: dict[str, str | None] | None = None
) -> tuple[int, dict[str, dict], str]:
    result = agency.run("doctor", "--json", *args, env=env)  # type: ignore[arg-type]
    data = result.json()
    assert data["exit_code"] == result.exit_code
    return result.exit_code, {c["name"]: c for c in data["checks"]}, result.stderr


def _statuses(checks: dict[str, dict]) -> dict[str, str]:
    return {name: check["status"] for name, check in checks.items()}


def _offline_taxii(agency: Agency, partner: str) -> None:
    """TAXII settings that validate; --offline never contacts them."""
    result = agency.run(
        "partners",
        "set",
        partner,
        "--api-root",
        "http://127.0.0.1:9/exchange/",
        "--read-collection",
        "8f0f5d2e-6c1a-4b5e-9d3f-2a7c1e4b6d01",
        "--write-collection",
        "8f0f5d2e-6c1a-4b5e-9d3f-2a7c1e4b6d02",
    )
    assert result.exit_code == 0, result.stderr


# -- a healthy exchange ---------------------------------------------------------------------


def test_every_check_passes_on_a_healthy_exchange(exchange: Exchange, tmp_path: Path) -> None:
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(PASSPHRASE + "\n")
    passphrase_file.chmod(0o600)
    # As docs/OPERATIONS.md sets it up: the passphrase in a file, not in the environment.
    as_operated: dict[str, str | None] = {
        "CTI_EXCHANGE_PASSPHRASE": None,
        "CTI_EXCHANGE_PASSPHRASE_FILE": str(passphrase_file),
    }
    for agency, partner in ((exchange.fr, "cert-in"), (exchange.india, "cert-fr")):
        code, checks, stderr = _doctor(agency, env=as_operated)
        assert code == 0, stderr
        assert set(_statuses(checks).values()) == {"ok"}, checks
        for what in ("pinned keys", "TAXII settings", "reachable", "access", "clock"):
            assert checks[f"partner {partner}: {what}"]["status"] == "ok"
        assert {"config", "key files", "passphrase", "store", "audit trail", "outbox"} <= set(checks)
        # The fingerprint whole, as pinned: compared by eye with what the partner read out.
        pinned = agency.run("partners", "show", partner, "--json").json()["fingerprint"]
        assert f"fingerprint {pinned} pinned" in checks[f"partner {partner}: pinned keys"]["detail"]

    text = exchange.fr.run("doctor", env=as_operated)  # type: ignore[arg-type]
    assert text.exit_code == 0
    assert text.stdout.splitlines()[0].split("\t") == ["status", "check", "result", "fix"]
    assert "0 failed" in text.stdout.splitlines()[-1]


def test_wrong_taxii_secret_fails_auth_and_a_dead_server_fails_network(exchange: Exchange) -> None:
    secret = exchange.fr.home / "taxii.secret"
    secret.write_text("not-the-password-at-all")
    code, checks, stderr = _doctor(exchange.fr)
    assert code == 3
    assert checks["partner cert-in: reachable"]["status"] == "ok"  # it answered: with a 401
    access = checks["partner cert-in: access"]
    assert access["status"] == "fail" and "HTTP 401" in access["detail"]
    assert "username and secret" in access["fix"]
    # Doctor's own fix does not send the reader to doctor (push's hint does: it says why).
    assert "cti-exchange doctor" not in access["fix"], access["fix"]
    pushed = exchange.fr.run("push", "-", "--to", "cert-in", input="c2.example\n")
    assert pushed.exit_code == 3 and "(`cti-exchange doctor` checks them)" in pushed.stderr
    assert "doctor: 1 check(s) failed; first: partner cert-in: access" in stderr

    secret.write_text(exchange.passwords["cert-fr"])
    exchange.server.stop()
    code, checks, _ = _doctor(exchange.fr)
    assert code == 7
    reach = checks["partner cert-in: reachable"]
    assert reach["status"] == "fail" and "server is up" in reach["fix"]
    assert checks["partner cert-in: access"]["status"] == "skip"
    assert checks["partner cert-in: clock"]["status"] == "skip"

    code, checks, _ = _doctor(exchange.fr, "--offline")
    assert code == 0 and checks["partner cert-in: reachable"]["status"] == "skip"


# -- local failures -------------------------------------------------------------------------


def test_loose_key_file_and_directory_permissions(cert_fr: Agency) -> None:
    private = cert_fr.home / "keys" / "private.jwe"
    private.chmod(0o644)
    code, checks, _ = _doctor(cert_fr, "--offline")
    assert code == 2
    assert checks["key files"]["status"] == "fail"
    assert f"`chmod 600 {private}`" in checks["key files"]["fix"]
    assert "rotate the keys" in checks["key files"]["fix"]
    # What needs the private key is not tried; the audit trail, which needs public.json only, is.
    assert checks["passphrase"]["status"] == "skip" and checks["audit trail"]["status"] == "ok"

    private.chmod(0o600)
    (cert_fr.home / "keys").chmod(0o755)
    code, checks, _ = _doctor(cert_fr, "--offline")
    assert code == 2 and f"chmod 700 {cert_fr.home / 'keys'}" in checks["key files"]["fix"]


def test_doctor_judges_the_key_directory_as_unlocking_does(cert_fr: Agency, tmp_path: Path) -> None:
    keys = cert_fr.home / "keys"
    unlock = ("keys", "export", "-o", str(tmp_path / "cert-fr.keys.json"))  # signs: unlocks
    for mode in (0o750, 0o2750):  # the group may list it: private.jwe is 0600 and encrypted
        keys.chmod(mode)
        code, checks, stderr = _doctor(cert_fr, "--offline")
        assert code == 0 and checks["key files"]["status"] == "ok", stderr
        assert f"({mode:04o})" in checks["key files"]["detail"]
        assert cert_fr.run(*unlock).exit_code == 0
    for mode in (0o755, 0o705, 0o751, 0o770, 0o720):  # others may look in; group may write
        keys.chmod(mode)
        refused = cert_fr.run(*unlock)
        code, checks, _ = _doctor(cert_fr, "--offline")
        assert (refused.exit_code, code, checks["key files"]["status"]) == (2, 2, "fail"), oct(mode)
        assert checks["key files"]["detail"] in refused.stderr


def test_doctor_judges_private_jwe_as_unlocking_does(cert_fr: Agency, tmp_path: Path) -> None:
    """Doctor used to look at the mode bits alone: a private.jwe shared through an ACL naming
    only us (how systemd hands over credentials) failed doctor but unlocked, and a symbolic
    link to a 0600 file passed doctor but was refused at unlock."""
    private = cert_fr.home / "keys" / "private.jwe"
    unlock = ("keys", "export", "-o", str(tmp_path / "cert-fr.keys.json"))  # signs: unlocks

    moved = tmp_path / "elsewhere.jwe"
    private.rename(moved)
    private.symlink_to(moved)
    refused = cert_fr.run(*unlock)
    code, checks, _ = _doctor(cert_fr, "--offline")
    assert (refused.exit_code, code, checks["key files"]["status"]) == (2, 2, "fail")
    assert "is a symbolic link" in checks["key files"]["detail"]
    assert checks["key files"]["detail"] in refused.stderr
    private.unlink()
    moved.rename(private)

    me = os.geteuid()
    entries = [(USER_OBJ, 6, UNDEFINED), (USER, 4, me), (GROUP_OBJ, 0, UNDEFINED), (MASK, 4, UNDEFINED)]
    only_us = acl(*entries, (OTHER, 0, UNDEFINED))
    with_stranger = acl(*entries, (USER, 4, STRANGER), (OTHER, 0, UNDEFINED))
    try:
        os.setxattr(private, "system.posix_acl_access", only_us)
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        pytest.skip(f"no POSIX ACLs on this file system: {exc}")
    assert stat.S_IMODE(private.stat().st_mode) == 0o640  # the group bits are the ACL's mask
    assert cert_fr.run(*unlock).exit_code == 0
    code, checks, stderr = _doctor(cert_fr, "--offline")
    assert code == 0 and checks["key files"]["status"] == "ok", stderr

    os.setxattr(private, "system.posix_acl_access", with_stranger)
    refused = cert_fr.run(*unlock)
    code, checks, _ = _doctor(cert_fr, "--offline")
    assert (refused.exit_code, code, checks["key files"]["status"]) == (2, 2, "fail")
    assert "through its ACL" in checks["key files"]["detail"]
    assert checks["key files"]["detail"] in refused.stderr


def test_passphrase_for_unattended_use(cert_fr: Agency, tmp_path: Path) -> None:
    no_env: dict[str, str | None] = {"CTI_EXCHANGE_PASSPHRASE": None}
    code, checks, _ = _doctor(cert_fr, "--offline", env=no_env)
    assert code == 3
    assert checks["passphrase"]["status"] == "fail"
    assert "CTI_EXCHANGE_PASSPHRASE_FILE" in checks["passphrase"]["fix"]

    # In the environment: it works, with a warning (every child process inherits it).
    code, checks, _ = _doctor(cert_fr, "--offline")
    assert code == 0
    assert checks["passphrase"]["status"] == "warn"
    assert "environment variable CTI_EXCHANGE_PASSPHRASE" in checks["passphrase"]["detail"]
    assert checks["passphrase"]["fix"].startswith(
        "put it in a 0600 file named by CTI_EXCHANGE_PASSPHRASE_FILE"
    )

    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text("a wrong passphrase\n")
    passphrase_file.chmod(0o600)
    code, checks, _ = _doctor(
        cert_fr, "--offline", env=no_env | {"CTI_EXCHANGE_PASSPHRASE_FILE": str(passphrase_file)}
    )
    assert code == 3 and "wrong passphrase" in checks["passphrase"]["detail"]

    passphrase_file.write_text(PASSPHRASE + "\n")
    passphrase_file.chmod(0o644)
    code, checks, _ = _doctor(
        cert_fr, "--offline", env=no_env | {"CTI_EXCHANGE_PASSPHRASE_FILE": str(passphrase_file)}
    )
    assert code == 2 and checks["passphrase"]["fix"].startswith(f"run `chmod 600 {passphrase_file}`")

    passphrase_file.chmod(0o600)
    code, checks, _ = _doctor(
        cert_fr, "--offline", env=no_env | {"CTI_EXCHANGE_PASSPHRASE_FILE": str(passphrase_file)}
    )
    assert (
        checks["passphrase"]["status"] == "ok" and f"file {passphrase_file}" in checks["passphrase"]["detail"]
    )


def test_tampered_audit_trail_and_corrupt_store(cert_fr: Agency) -> None:
    import sqlite3

    store = cert_fr.home / "store.sqlite"
    conn = sqlite3.connect(store)
    conn.execute("""UPDATE audit_log SET details = '{}' WHERE seq = 1""")
    conn.commit()
    conn.close()
    code, checks, _ = _doctor(cert_fr, "--offline")
    assert code == 4
    assert checks["store"]["status"] == "ok"
    audit = checks["audit trail"]
    assert audit["status"] == "fail" and audit["detail"].startswith("first bad record 1: ")
    assert "audit verify" in audit["fix"]

    # An index that no longer matches its table: the store opens, integrity_check objects.
    conn = sqlite3.connect(store)
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = 'CREATE INDEX audit_log_by_time ON audit_log (actor)' "
        "WHERE name = 'audit_log_by_time'"
    )
    conn.commit()
    conn.close()
    code, checks, _ = _doctor(cert_fr, "--offline")
    assert code == 4
    assert checks["store"]["status"] == "fail"
    assert "integrity_check: row 1 missing from index audit_log_by_time" in checks["store"]["detail"]

    # Overwritten pages: the store does not even open.
    data = bytearray(store.read_bytes())
    assert len(data) > 3 * 4096
    data[4096 : 3 * 4096] = b"\xa5" * (2 * 4096)  # pages 2 and 3: tables and indexes
    store.write_bytes(bytes(data))
    code, checks, _ = _doctor(cert_fr, "--offline")
    assert code == 4
    assert checks["store"]["status"] == "fail" and "malformed" in checks["store"]["detail"]
    assert "backup" in checks["store"]["fix"]
    assert checks["audit trail"]["status"] == "skip" and checks["outbox"]["status"] == "skip"


def _set_expiry(keys_file: Path, use: str, expires: datetime) -> None:
    doc = json.loads(keys_file.read_text())
    for status in doc["key_status"].values():
        if status["use"] == use and status["status"] == "current":
            status["expires"] = expires.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    keys_file.write_text(json.dumps(doc))


def test_partner_settings_and_pinned_key_expiry(partnered: tuple[Agency, Agency]) -> None:
    fr, _ = partnered
    code, checks, _ = _doctor(fr, "--offline")
    assert code == 0  # a partner reached by files only is a valid set-up: a warning
    settings = checks["partner cert-in: TAXII settings"]
    assert settings["status"] == "warn" and "cti-exchange partners set cert-in" in settings["fix"]
    assert checks["partner cert-in: reachable"]["status"] == "skip"

    _offline_taxii(fr, "cert-in")
    pinned = fr.home / "partners" / "cert-in.keys.json"
    now = datetime.now(UTC)
    _set_expiry(pinned, "enc", now + timedelta(days=10))
    code, checks, _ = _doctor(fr, "--offline")
    assert code == 0  # a warning does not fail
    keys = checks["partner cert-in: pinned keys"]
    assert keys["status"] == "warn" and "their encryption key" in keys["detail"]
    assert "expires in 9 day(s)" in keys["detail"]

    _set_expiry(pinned, "sig", now - timedelta(days=1))
    code, checks, _ = _doctor(fr, "--offline")
    assert code == 2
    keys = checks["partner cert-in: pinned keys"]
    assert keys["status"] == "fail" and "their signing key" in keys["detail"] and "expired" in keys["detail"]
    assert "cti-exchange partners update-keys cert-in" in keys["fix"]

    # A pinned file that no longer holds the pinned fingerprint: replaced or edited since it
    # was pinned, a security event as OPERATIONS.md says (it was exit 2 and "re-pin with
    # update-keys", which reads this file first and failed the same way; error-hunt M4).
    doc = json.loads(pinned.read_text())
    doc["keys"] = [k for k in doc["keys"] if k.get("use") != "sig"]
    doc["key_status"] = {k["kid"]: doc["key_status"][k["kid"]] for k in doc["keys"]}
    pinned.write_text(json.dumps(doc))
    code, checks, _ = _doctor(fr, "--offline")
    keys = checks["partner cert-in: pinned keys"]
    assert code == 4 and "no longer holds the key pinned" in keys["detail"], checks
    assert "security event" in keys["fix"] and "cert-in.signed.json" in keys["fix"]
    shown = fr.run("partners", "show", "cert-in")
    assert shown.exit_code == 4 and shown.stderr.count("\n") == 1 and "security event" in shown.stderr


def test_our_keys_expiring_soon_warn_and_expired_fail(cert_fr: Agency) -> None:
    home = ProfileHome(cert_fr.home)
    expires = home.keyring().current(KeyUse.SIG).expires
    env = {"CTI_EXCHANGE_PASSPHRASE": PASSPHRASE}
    soon = run_doctor(home, offline=True, environ=env, now=expires - timedelta(days=10))
    assert soon.result("our signing key").status is CheckStatus.WARN
    assert "keys rotate" in (soon.result("our signing key").fix or "")
    assert soon.exit_code is ExitCode.OK

    late = run_doctor(ProfileHome(cert_fr.home), offline=True, environ=env, now=expires + timedelta(days=1))
    assert late.result("our signing key").status is CheckStatus.FAIL
    assert late.exit_code is ExitCode.USAGE


def test_outbox_warns_about_envelopes_undelivered_too_long(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    fr, _ = partnered
    _offline_taxii(fr, "cert-in")
    queued = fr.run("push", str(write_iocs(tmp_path / "a.csv", 2)), "--to", "cert-in", "--queue")
    assert queued.exit_code == 0, queued.stderr
    env = {"CTI_EXCHANGE_PASSPHRASE": PASSPHRASE}
    assert (
        run_doctor(ProfileHome(fr.home), offline=True, environ=env).result("outbox").status is CheckStatus.OK
    )
    later = run_doctor(
        ProfileHome(fr.home), offline=True, environ=env, now=datetime.now(UTC) + timedelta(hours=25)
    )
    outbox = later.result("outbox")
    assert (
        outbox.status is CheckStatus.WARN and "1 envelope(s) undelivered for more than 24 h" in outbox.detail
    )
    assert later.ok


def test_without_a_profile_config_fails_and_the_rest_is_skipped(tmp_path: Path) -> None:
    result = run_cli("doctor", "--json", home=tmp_path / "nowhere")
    assert result.exit_code == 2
    checks: Any = result.json()["checks"]
    assert checks[0]["name"] == "config" and checks[0]["status"] == "fail"
    assert "cti-exchange init" in checks[0]["fix"]
    assert {c["status"] for c in checks[1:]} == {"skip"}


def test_no_check_raises(tmp_path: Path) -> None:
    def broken(ctx: DoctorContext) -> Iterable[CheckResult]:
        raise KeyError("bug")
        yield  # a generator, like the real checks

    def refused(ctx: DoctorContext) -> Iterable[CheckResult]:
        raise AuthError("refused", hint="fix it")

    report = run_doctor(
        ProfileHome(tmp_path),
        checks=[(broken, (), "broken"), (refused, (), "refused"), (broken, ("broken",), "after")],
    )
    assert [(r.name, r.status) for r in report.results] == [
        ("broken", CheckStatus.FAIL),
        ("refused", CheckStatus.FAIL),
        ("after", CheckStatus.SKIP),
    ]
    assert report.results[0].exit_code is ExitCode.INTERNAL and "KeyError" in report.results[0].detail
    assert report.results[1].exit_code is ExitCode.AUTH and report.results[1].fix == "fix it"
    assert report.exit_code is ExitCode.INTERNAL


# -- clock skew, judged from a Date header ------------------------------------------------------


def test_clock_skew_is_judged_from_the_date_header() -> None:
    now = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)

    def judge(offset_seconds: float) -> CheckStatus:
        header = format_datetime(now - timedelta(seconds=offset_seconds), usegmt=True)
        return judge_clock_skew("clock", header, now, max_skew_seconds=300).status

    assert judge(0) is CheckStatus.OK
    assert judge(59) is CheckStatus.OK
    assert judge(-61) is CheckStatus.WARN  # we are behind
    assert judge(299) is CheckStatus.WARN
    assert judge(301) is CheckStatus.FAIL
    assert judge(-3600) is CheckStatus.FAIL
    failed = judge_clock_skew("clock", format_datetime(now - timedelta(seconds=400), usegmt=True), now, 300)
    assert failed.detail == "our clock is 400 s ahead of the server's, beyond the 300 s envelopes allow"
    assert "time synchronisation" in (failed.fix or "")
    assert judge_clock_skew("clock", None, now, 300).status is CheckStatus.WARN
    assert judge_clock_skew("clock", "yesterday-ish", now, 300).status is CheckStatus.WARN
    # No zone (`-0000`, or two Date headers joined by requests): a warning, not exit 70.
    for header in (
        "Sat, 05 Dec 2026 10:00:00 -0000",
        "Sat, 05 Dec 2026 10:00:00 GMT, Sat, 05 Dec 2026 10:00:00 GMT",
    ):
        assert judge_clock_skew("clock", header, now, 300).status is CheckStatus.WARN, header


def test_a_tampered_audit_trail_is_exit_4_even_after_an_earlier_failure(
    partnered: tuple[Agency, Agency],
) -> None:
    """A partner entry missing its write collection (a failure earlier in the list, exit 2) hid
    a tampered audit trail: doctor exited 2, and a cron watching for 4 saw nothing."""
    import sqlite3

    fr, _ = partnered
    read = ["--read-collection", "8f0f5d2e-6c1a-4b5e-9d3f-2a7c1e4b6d01"]
    half = fr.run("partners", "set", "cert-in", "--api-root", "https://taxii.example/api/", *read)
    assert half.exit_code == 0, half.stderr
    code, checks, _ = _doctor(fr, "--offline")
    assert code == 2 and checks["partner cert-in: TAXII settings"]["status"] == "fail"

    conn = sqlite3.connect(fr.home / "store.sqlite")
    conn.execute("""UPDATE audit_log SET details = '{}' WHERE seq = 1""")
    conn.commit()
    conn.close()
    code, checks, _ = _doctor(fr, "--offline")
    assert code == 4, checks
    assert checks["partner cert-in: TAXII settings"]["status"] == "fail"
    assert checks["audit trail"]["status"] == "fail"


def test_a_loosened_private_key_file_does_not_hide_a_tampered_audit_trail(
    partnered: tuple[Agency, Agency],
) -> None:
    """The audit check waited for the key-file check, so a private key left 0644 turned a
    tampered trail into `skip ... needs key files` and exit 2. It needs only public.json."""
    import sqlite3

    fr, _ = partnered
    conn = sqlite3.connect(fr.home / "store.sqlite")
    conn.execute("""UPDATE audit_log SET details = '{}' WHERE seq = 1""")
    conn.commit()
    conn.close()
    (fr.home / "keys" / "private.jwe").chmod(0o644)
    code, checks, _ = _doctor(fr, "--offline")
    assert checks["key files"]["status"] == "fail"
    assert checks["audit trail"]["status"] == "fail"
    assert code == 4, checks


def _x25519_public_jwk() -> dict[str, str]:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()}


def test_a_pinned_key_swapped_in_the_pinned_file_alone_is_an_integrity_failure(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """Another X25519 key written over the partner's encryption key in partners/cert-in.keys.json
    (mode kept): doctor said "pinned keys ok" and seal sealed to it. It is checked against the
    signed key file the keys came in, kept beside it."""
    fr, india = partnered
    _offline_taxii(fr, "cert-in")
    assert _doctor(fr, "--offline")[1]["partner cert-in: pinned keys"]["status"] == "ok"
    pinned = fr.home / "partners" / "cert-in.keys.json"
    original = pinned.read_text()
    doc = json.loads(original)
    enc = next(k for k in doc["keys"] if k.get("use") == "enc")
    enc.update(_x25519_public_jwk())
    pinned.write_text(json.dumps(doc))
    code, checks, _ = _doctor(fr, "--offline")
    keys = checks["partner cert-in: pinned keys"]
    assert code == 4 and keys["status"] == "fail", keys
    assert f"pinned key {enc['kid']} (enc) is not the one in the signed key file" in keys["detail"]
    assert "security event" in keys["fix"]

    # The keys as pinned, and after the partner rotates and we pin its new file: consistent.
    pinned.write_text(original)
    assert india.run("keys", "rotate", "--use", "enc").exit_code == 0
    document = india.export_keys(tmp_path / "cert-in-rotated.keys.json")
    assert fr.run("partners", "update-keys", "cert-in", "--jwks", str(document)).exit_code == 0
    code, checks, _ = _doctor(fr, "--offline")
    assert code == 0 and checks["partner cert-in: pinned keys"]["status"] == "ok", checks

    (fr.home / "partners" / "cert-in.signed.json").unlink()
    code, checks, _ = _doctor(fr, "--offline")
    assert (
        checks["partner cert-in: pinned keys"]["status"] == "warn"
        and "is missing" in (checks["partner cert-in: pinned keys"]["detail"])
    )


@pytest.mark.parametrize(
    ("field", "written", "said"),
    [
        ("write_collection", "ID", "'ID' is not a TAXII collection id"),
        ("read_collection", "00000000-0000-0000-0000-000000000000", "is the nil UUID"),
        ("read_collection", "--write-collection", "took the option"),
    ],
)
def test_a_collection_id_typed_into_the_config_by_hand_is_checked(
    partnered: tuple[Agency, Agency], field: str, written: str, said: str
) -> None:
    """`partners set` refuses an id that is not a UUID; one typed into config.toml by hand was
    only found when every pull and push failed with HTTP 404. `doctor` names it, offline too."""
    fr, _ = partnered
    _offline_taxii(fr, "cert-in")
    config = fr.home / "config.toml"
    text = config.read_text()
    old = next(line for line in text.splitlines() if line.startswith(f"{field} = "))
    config.write_text(text.replace(old, f'{field} = "{written}"'))
    code, checks, _ = _doctor(fr, "--offline")
    assert code == 2
    settings = checks["partner cert-in: TAXII settings"]
    assert settings["status"] == "fail" and said in settings["detail"], settings
    assert settings["detail"].startswith(field)
    option = "--" + field.replace("_", "-")
    assert settings["fix"].startswith(f"cti-exchange partners set cert-in {option} ID")


def test_envelopes_queued_for_a_partner_without_a_server_fail_the_outbox(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """Every cron `sync` ends with exit 2 while envelopes wait for a partner with no TAXII
    server to post them to; `doctor` used to pass (a warning for the settings, ok for an
    outbox whose envelopes were still young)."""
    fr, _ = partnered
    queued = fr.run("push", str(write_iocs(tmp_path / "iocs.csv", 2)), "--to", "cert-in", "--queue")
    assert queued.exit_code == 0, queued.stderr
    assert fr.run("sync").exit_code == 2
    code, checks, _ = _doctor(fr, "--offline")
    assert code == 2
    outbox = checks["outbox"]
    assert outbox["status"] == "fail" and "1 envelope(s) wait in the outbox for cert-in" in outbox["detail"]
    assert "every `sync` fails" in outbox["detail"]
    assert outbox["fix"].startswith("cti-exchange partners set cert-in --api-root URL")


def test_envelopes_held_in_quarantine_are_a_warning_then_a_failure(
    partnered: tuple[Agency, Agency], tmp_path: Path
) -> None:
    """A gap: sync alerted once (exit 4), then ended 0 while the channel behind it waited, and
    doctor, which monitoring runs daily, said nothing of it."""
    import sqlite3

    from tests.envelope.conftest import indicator, make_bundle
    from tests.envelope.test_cli_envelope import bundle_file, open_json, seal

    cert_fr, cert_in = partnered
    envelopes = [
        seal(
            cert_fr,
            bundle_file(tmp_path, f"b{n}.json", make_bundle([indicator(f"198.51.9.{n}")])),
            "cert-in",
            name=f"{n}.json",
        )
        for n in range(1, 4)
    ]
    assert open_json(cert_in, envelopes[0])[0] == 0
    assert open_json(cert_in, envelopes[2])[0] == 4  # 2 lost: 3 waits behind the gap
    code, checks, _ = _doctor(cert_in, "--offline")
    assert code == 0 and checks["quarantine"]["status"] == "warn", checks["quarantine"]
    assert checks["quarantine"]["detail"].startswith("1 envelope(s) held for review from cert-fr")
    assert "quarantine list" in checks["quarantine"]["fix"]

    conn = sqlite3.connect(cert_in.home / "store.sqlite")
    conn.execute("UPDATE quarantine SET received_at = '2020-01-01T00:00:00.000Z'")
    conn.commit()
    conn.close()
    code, checks, _ = _doctor(cert_in, "--offline")
    assert code == 4 and checks["quarantine"]["status"] == "fail"
    assert "for more than 24 h" in checks["quarantine"]["detail"]
