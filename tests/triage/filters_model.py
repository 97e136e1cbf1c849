"""An independent reference model of `triage list` and `export` filters, and stores built
alongside it (tests/triage/test_filters_against_a_model.py).

Stores are built with the store's own `write_objects` (as tests/triage/conftest.py `put`
does), decisions with the real `decide` API; the listing and export are read through the real
CLI. The model re-derives everything in plain Python from the objects written: current version
per id, status carry-over, filters, de-duplication, order, paging. The only thing taken from the
database is each row's rowid (the "first stored" tie-breaker).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cti_exchange.exporters.safety import ValueCheck
from cti_exchange.exporters.value_forms import ValueForms
from cti_exchange.readers.warning_list import bundled_warning_lists
from cti_exchange.stix.guardrails import Guardrails
from cti_exchange.store import triage_queries
from cti_exchange.store.objects import write_objects
from cti_exchange.store.store import Store
from cti_exchange.triage_decisions import decide
from tests.conftest import CliResult, run_cli

CHECK = ValueCheck(Guardrails(bundled_warning_lists()))
FORMS = ValueForms(CHECK)

TLP_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP1_IDS = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "clear",
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "green",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "amber",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "red",
}
RANK = {"clear": 0, "green": 1, "amber": 2, "amber+strict": 3, "red": 4}
# The definitions the model shares with the code (which IOC types a store projects, which
# STIX types are plumbing): the model re-derives everything else.
IOC_TYPES = triage_queries.IOC_TYPES
NOT_TRIAGED = triage_queries.NOT_TRIAGED
PATHS = {
    "ipv4-addr": "ipv4-addr:value",
    "domain-name": "domain-name:value",
    "url": "url:value",
    "file-name": "file:name",
    "sha256": "file:hashes.'SHA-256'",
    "mutex": "mutex:name",
}
PARTNERS = ("cert-fr", "cert-in", "cert-de")


def now_stix() -> str:
    m = datetime.now(UTC)
    return m.strftime("%Y-%m-%dT%H:%M:%S.") + f"{m.microsecond // 1000:03d}Z"


def norm_version(ts: str) -> str:
    v = ts[:-1] + "+00:00" if ts.endswith("Z") else ts
    return datetime.fromisoformat(v).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def moment(ts: str) -> datetime:
    """A STIX timestamp as a moment, in UTC."""
    v = ts[:-1] + "+00:00" if ts.endswith(("Z", "z")) else ts
    m = datetime.fromisoformat(v)
    return (m if m.tzinfo is not None else m.replace(tzinfo=UTC)).astimezone(UTC)


def ts_key(ts: str | None) -> datetime | None:
    """A STIX timestamp as a moment (the model compares moments, not strings)."""
    if ts is None:
        return None
    v = ts[:-1] + "+00:00" if ts.endswith(("Z", "z")) else ts
    m = datetime.fromisoformat(v)
    if m.tzinfo is None:
        m = m.replace(tzinfo=UTC)
    return m.astimezone(UTC)


# -- running the CLI --------------------------------------------------------------------


def run(home: Path, *args: str) -> CliResult:
    return run_cli(*args, home=home)


def fresh_home(template: Path, where: Path) -> Path:
    """A copy of `template` (an initialised home with its store) at `where`."""
    shutil.rmtree(where, ignore_errors=True)
    shutil.copytree(template, where)
    return where


def make_template(where: Path) -> Path:
    result = run(where, "init", "--agency", "cert-xx", "--name", "CERT-XX")
    assert result.exit_code == 0, result.stderr
    with Store(where / "store.sqlite"):
        pass
    return where


# -- objects ----------------------------------------------------------------------------


def make_object(spec: dict[str, Any]) -> dict[str, Any]:
    """A STIX object from a version spec (kind, value/name, tlp, confidence, ...)."""
    kind = spec["kind"]
    obj: dict[str, Any] = {
        "type": kind if kind != "indicator" else "indicator",
        "spec_version": "2.1",
        "id": spec["id"],
        "created": "2026-01-10T09:00:00.000Z",
        "modified": spec["modified"],
    }
    if kind == "indicator":
        escaped = spec["value"].replace("\\", "\\\\").replace("'", "\\'")
        obj["pattern"] = f"[{PATHS[spec['ioc_type']]} = '{escaped}']"
        obj["pattern_type"] = "stix"
        obj["valid_from"] = "2026-01-10T09:00:00.000Z"
        obj["indicator_types"] = ["malicious-activity"]
    if spec.get("name") is not None:
        obj["name"] = spec["name"]
    if kind == "identity":
        obj["identity_class"] = "organization"
    if kind == "malware":
        obj["is_family"] = True
    if spec.get("marking"):
        obj["object_marking_refs"] = [spec["marking"]]
    if spec.get("confidence") is not None:
        obj["confidence"] = spec["confidence"]
    if spec.get("valid_until") is not None:
        obj["valid_until"] = spec["valid_until"]
    if spec.get("revoked"):
        obj["revoked"] = True
    return obj


def marking_level(ref: str | None) -> str | None:
    if ref is None:
        return None
    for level, mid in TLP_IDS.items():
        if mid == ref:
            return level
    return TLP1_IDS.get(ref)


def project(spec: dict[str, Any]) -> dict[str, Any]:
    kind = spec["kind"]
    ioc_type = value = None
    if kind == "indicator":
        ioc_type, value = spec["ioc_type"], spec["value"]
    elif kind == "vulnerability":
        ioc_type, value = "cve", spec.get("name")
    return {
        "type": kind,
        "ioc_type": ioc_type,
        "value": value,
        "name": spec.get("name"),
        "tlp": marking_level(spec.get("marking")),
        "confidence": spec.get("confidence"),
        "valid_until": spec.get("valid_until"),
        "revoked": bool(spec.get("revoked")),
        "detects": make_object(spec).get("pattern") if kind == "indicator" else None,
    }


# -- the model --------------------------------------------------------------------------


@dataclass
class Row:
    object_id: str
    version: str
    p: dict[str, Any]
    obj: dict[str, Any]
    partner: str
    received_at: str
    is_current: bool
    status: str = "new"
    sources: list[tuple[str, str]] = field(default_factory=list)  # (partner, received_at)
    rowid: int = 0


class Model:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Row] = {}

    def versions(self, oid: str) -> list[Row]:
        return [r for (o, _), r in self.rows.items() if o == oid]

    def current(self) -> list[Row]:
        return [r for r in self.rows.values() if r.is_current]

    def write(
        self, partner: str, received_at: str, objects: list[dict[str, Any]], specs: list[dict[str, Any]]
    ) -> None:
        """write_objects with no partner identity: the partner of the current version moves
        an object on; an earlier or a stranger's version is kept as not current; the same
        version again with the same content is a source, with other content nothing."""
        for obj, spec in zip(objects, specs, strict=True):
            oid, version = obj["id"], norm_version(obj["modified"])
            known = self.versions(oid)
            p = project(spec)
            if not known:
                self.rows[(oid, version)] = Row(
                    oid, version, p, obj, partner, received_at, True, sources=[(partner, received_at)]
                )
                continue
            same = self.rows.get((oid, version))
            if same is not None:
                if same.obj == obj:
                    same.sources.append((partner, received_at))
                continue
            current = next(r for r in known if r.is_current)
            if version > current.version and current.partner == partner:
                status = current.status
                if status != "new" and p["detects"] != current.p["detects"]:
                    status = "new"
                current.is_current = False
                self.rows[(oid, version)] = Row(
                    oid, version, p, obj, partner, received_at, True, status, [(partner, received_at)]
                )
            else:
                self.rows[(oid, version)] = Row(
                    oid, version, p, obj, partner, received_at, False, "new", [(partner, received_at)]
                )

    def decide(self, oid: str, status: str) -> None:
        cur = next(r for r in self.current() if r.object_id == oid)
        if cur.p["ioc_type"] is None or cur.p["value"] is None:
            holders = [cur]
        else:
            form = FORMS.of(cur.p["ioc_type"], cur.p["value"])
            holders = [
                r
                for r in self.current()
                if r.p["ioc_type"] == cur.p["ioc_type"]
                and r.p["value"] is not None
                and FORMS.of(r.p["ioc_type"], r.p["value"]) == form
            ]
        for r in holders:
            r.status = status

    # -- filters

    def matches(self, r: Row, f: dict[str, Any], now: str) -> bool:
        p = r.p
        types = f.get("types") or ()
        if types:
            ok = False
            for t in types:
                if t in IOC_TYPES:
                    ok |= p["ioc_type"] == t
                else:
                    ok |= p["type"] == t
            if not ok:
                return False
        elif p["type"] in NOT_TRIAGED:
            return False
        # Sent by: the first sender or a partner that sent the same version again.
        if f.get("partners") and not {p for p, _ in r.sources} & set(f["partners"]):
            return False
        if f.get("statuses") and r.status not in f["statuses"]:
            return False
        if f.get("tlps") and p["tlp"] not in f["tlps"]:
            return False
        if f.get("max_tlp") is not None and p["tlp"] is not None and RANK[p["tlp"]] > RANK[f["max_tlp"]]:
            return False
        if f.get("min_confidence") is not None and (
            p["confidence"] is None or p["confidence"] < f["min_confidence"]
        ):
            return False
        if f.get("since") is not None and moment(r.received_at) < moment(f["since"]):
            return False
        if f.get("text"):
            t = ascii_lower(f["text"])
            if not any(s is not None and t in ascii_lower(s) for s in (p["value"], p["name"])):
                return False
        vu = ts_key(p["valid_until"])
        expired = vu is not None and vu < moment(now)
        if f.get("expired") is True and not expired:
            return False
        if f.get("expired") is False and expired:
            return False
        if not f.get("include_revoked") and p["revoked"]:
            return False
        return True

    def listing(self, f: dict[str, Any], sort: str, descending: bool | None, now: str) -> list[Row]:
        matched = [r for r in self.current() if self.matches(r, f, now)]
        first: dict[tuple[str, str], Row] = {}
        for r in matched:
            if r.p["ioc_type"] is not None and r.p["value"] is not None:
                held = (r.p["ioc_type"], r.p["value"])
                if held not in first or r.rowid < first[held].rowid:
                    first[held] = r
        lines = [
            r
            for r in matched
            if r.p["ioc_type"] is None or r.p["value"] is None or first[(r.p["ioc_type"], r.p["value"])] is r
        ]
        natural = {
            "received": True,
            "confidence": True,
            "value": False,
            "valid-until": False,
            "partner": False,
            "status": False,
        }
        desc = natural[sort] if descending is None else descending

        def key(r: Row) -> Any:
            if sort == "received":
                return r.received_at  # all the same fixed-width format here
            if sort == "confidence":
                return r.p["confidence"]
            if sort == "value":
                v = r.p["value"] if r.p["value"] is not None else r.p["name"]
                return v.encode("utf-8") if v is not None else None
            if sort == "valid-until":
                return ts_key(r.p["valid_until"])
            if sort == "partner":
                return r.partner
            return r.status

        present = [r for r in lines if key(r) is not None]
        absent = [r for r in lines if key(r) is None]
        present.sort(key=lambda r: (key(r), r.rowid), reverse=desc)
        absent.sort(key=lambda r: r.rowid, reverse=desc)
        return present + absent

    def partners_of_line(self, r: Row) -> set[str]:
        if r.p["ioc_type"] is None or r.p["value"] is None:
            holders = [r]
        else:
            holders = [
                c
                for c in self.current()
                if c.p["ioc_type"] == r.p["ioc_type"] and c.p["value"] == r.p["value"]
            ]
        return {p for h in holders for p, _ in h.sources}

    # -- export

    def export_values(
        self, f: dict[str, Any], now: str, default_tlp: str = "amber", fmt: str = "plain"
    ) -> dict[tuple[str, str], dict[str, Any]]:
        statuses = tuple(f.get("statuses") or ("accepted",))
        f = dict(f, statuses=statuses)
        against: dict[str, set[str]] = {}
        for r in self.current():
            if r.status in ("false-positive", "rejected") and r.status not in statuses:
                if r.p["ioc_type"] is not None and r.p["value"] is not None:
                    against.setdefault(r.p["ioc_type"], set()).add(FORMS.of(r.p["ioc_type"], r.p["value"]))
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        for r in self.current():
            if r.p["ioc_type"] is None or r.p["value"] is None or not self.matches(r, f, now):
                continue
            t, v = r.p["ioc_type"], r.p["value"]
            if CHECK.refusal(t, v) is not None:
                continue
            form = FORMS.of(t, v)
            if form in against.get(t, ()):
                continue
            g = groups.setdefault(
                (t, v if fmt == "stix" else form),
                {"tlp": None, "confidence": None, "partners": set(), "first": r},
            )
            if r.p["tlp"] is not None and (g["tlp"] is None or RANK[r.p["tlp"]] > RANK[g["tlp"]]):
                g["tlp"] = r.p["tlp"]
            if r.p["confidence"] is not None and (
                g["confidence"] is None or r.p["confidence"] > g["confidence"]
            ):
                g["confidence"] = r.p["confidence"]
            g["partners"].add(r.partner)
            # STIX (no merging of spellings): the first-stored object of the exact value
            if r.rowid < g["first"].rowid:
                g["first"] = r
        out = {}
        for k, g in groups.items():
            if g["tlp"] is None:
                g["tlp"] = default_tlp
                if f.get("max_tlp") is not None and RANK[default_tlp] > RANK[f["max_tlp"]]:
                    continue
            if fmt == "plain" and (k[1].startswith("#") or "\n" in k[1]):
                continue
            out[k] = g
        return out


def ascii_lower(s: str) -> str:
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in s)


# -- building a real store alongside the model ------------------------------------------


class World:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.model = Model()
        self.path = home / "store.sqlite"

    def write(self, partner: str, received_at: str, specs: list[dict[str, Any]]) -> None:
        objects = [make_object(s) for s in specs]
        with Store(self.path) as store, store.db.transaction() as conn:
            write_objects(
                conn,
                [json.loads(json.dumps(o)) for o in objects],
                envelope_id=f"envelope--{uuid.uuid4()}",
                partner=partner,
                received_at=received_at,
            )
        self.model.write(partner, received_at, objects, specs)
        self.sync_rowids()

    def decide(self, oid: str, decision: str) -> None:
        with Store(self.path) as store:
            decide(store, [oid], decision)
        self.model.decide(
            oid, {"accept": "accepted", "reject": "rejected", "false-positive": "false-positive"}[decision]
        )

    def sync_rowids(self) -> None:
        with sqlite3.connect(self.path) as conn:
            for oid, version, rowid in conn.execute("SELECT object_id, version, rowid FROM objects"):
                r = self.model.rows.get((oid, version))
                if r is not None:
                    r.rowid = rowid

    def db_state(self) -> dict[tuple[str, str], tuple[int, str]]:
        with sqlite3.connect(self.path) as conn:
            return {
                (o, v): (c, s)
                for o, v, c, s in conn.execute("SELECT object_id, version, is_current, status FROM objects")
            }

    def check_state(self) -> list[str]:
        """The model's idea of which version is current (and its status) against the table."""
        problems = []
        db = self.db_state()
        for k, r in self.model.rows.items():
            if k not in db:
                problems.append(f"missing row {k}")
                continue
            c, s = db[k]
            if bool(c) != r.is_current:
                problems.append(f"{k}: current db={c} model={r.is_current}")
            elif r.is_current and s != r.status:
                problems.append(f"{k}: status db={s} model={r.status}")
        for k in db:
            if k not in self.model.rows:
                problems.append(f"extra row {k}")
        return problems


def filter_args(f: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for p in f.get("partners") or ():
        args += ["--partner", p]
    for t in f.get("type_spellings") or f.get("types") or ():
        args += ["--type", t]
    for t in f.get("tlp_spellings") or f.get("tlps") or ():
        args += ["--tlp", t]
    if f.get("max_tlp") is not None:
        args += ["--max-tlp", f["max_tlp"]]
    if f.get("min_confidence") is not None:
        args += ["--min-confidence", str(f["min_confidence"])]
    if f.get("since_arg") is not None:
        args += ["--since", f["since_arg"]]
    for s in f.get("statuses") or ():
        args += ["--status", s]
    if f.get("text") is not None:
        args += ["--search", f["text"]]
    if f.get("include_revoked"):
        args += ["--include-revoked"]
    return args


def list_all(
    home: Path,
    f: dict[str, Any],
    sort: str,
    descending: bool | None,
    limit: int,
    between: Callable[[], None] | None = None,
) -> tuple[list[dict[str, Any]], list[int], int | None]:
    """Every page of `triage list --json`: the items, page sizes, and --count's total."""
    args = ["triage", "list", "--json", "--count", "--limit", str(limit), "--sort", sort, *filter_args(f)]
    if f.get("expired") is True:
        args.append("--expired")
    elif f.get("expired") is False:
        args.append("--not-expired")
    if descending is True:
        args.append("--desc")
    elif descending is False:
        args.append("--asc")
    items: list[dict[str, Any]] = []
    sizes = []
    total = None
    after = None
    for n in range(1000):
        r = run(home, *args, *(["--after", after] if after else []))
        assert r.exit_code == 0, (args, r.stderr)
        doc = r.json()
        items += doc["items"]
        sizes.append(len(doc["items"]))
        total = doc["total"] if total is None else total
        after = doc["next"]
        if between is not None and n == 0:
            between()
        if after is None:
            break
    return items, sizes, total


def export_text(home: Path, fmt: str, args: list[str]) -> CliResult:
    return run(home, "export", "--format", fmt, "--i-understand-tlp", *args)


def parse_plain(text: str) -> list[str]:
    return [line for line in text.split("\n") if line and not line.startswith("#")]


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(
        csv.DictReader(io.StringIO("\n".join(line for line in text.split("\n") if not line.startswith("#"))))
    )
