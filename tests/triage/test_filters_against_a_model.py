"""Property tests: `triage list --json` (every page, every sort, text search through the
index and its tail and without it) and `export` (plain, CSV, STIX) against the reference model
in filters_model.py, on random stores built through the real store API and read through the CLI.

Narrowed generators, each for a defect known and not fixed here:
- `valid_until` is compared and sorted as stored (docs/TRIAGE.md): only millisecond
  timestamps are generated, where text order is time order;
- `--search` folds ASCII case only (docs/TRIAGE.md): the model folds ASCII only;
- no pull between two pages (a value's line moves when its first holder is revoked or updated,
  docs/TRIAGE.md "Sorting and paging");
- the erase part erases indicators only: erasing an object that holds no indicator value
  fails today (store/erasure.py, being fixed elsewhere).
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cti_exchange.store.store import Store
from cti_exchange.store.triage_queries import PageRequest, TriageFilter, list_page
from tests.triage.filters_model import (
    PARTNERS,
    TLP_IDS,
    World,
    export_text,
    filter_args,
    fresh_home,
    list_all,
    make_template,
    now_stix,
    parse_csv,
    parse_plain,
    run,
    ts_key,
)
from tests.triage.filters_model import (
    moment as model_moment,
)

VALUES = {
    "domain-name": ["alpha.com", "ALPHA.com", "beta-x.net", "gamma_y.org", "dél.com", "abc.com", "ab.net"],
    "ipv4-addr": ["45.13.7.9", "45.13.7.10", "91.2.3.4"],
    "url": ["http://alpha.com/a%20b", "http://alpha.com/a_b", "https://beta-x.net/x?q=1"],
    "mutex": ["Global\\evil_%mtx", "it's", 'q"uote', "ab", "x", "abc", "ABC", "aXc", "#hash", "ÉVIL", "évil"],
    "file-name": ["evil 100%.exe", "a_b.exe", "aXb.exe", "abc.exe"],
    "sha256": ["ab" * 32, "AB" * 32, "cd" * 32],
}
NAMES = ["Evil%Bear", "ab", "abc", "ABC bear", "Log4Shell", "CVE-2021-44228", "it's", "a_c", "Bär"]
SEARCHES = [
    "a",
    "ab",
    "abc",
    "AB",
    "x",
    "%",
    "_",
    "\\",
    "'",
    '"',
    "a_b",
    "a%2",
    "ALPHA",
    "évil",
    "ÉVIL",
    "bear",
    "lph",
    "mtx",
    "l_%",
    "100%",
    ".com",
    "it's",
    'q"u',
    "ab" * 4,
    "Bä",
]
RECEIVED = [
    "2026-01-10T12:00:00.000Z",
    "2026-01-10T12:00:00.000Z",
    "2026-01-10T12:05:00.000Z",
    "2026-01-10T13:00:00.000Z",
    "2026-01-11T00:00:00.000Z",
]
MODIFIED = [
    "2026-01-10T10:00:00.000Z",
    "2026-01-10T10:01:00Z",
    "2026-01-10T10:01:00.000Z",
    "2026-01-10T10:02:00.500Z",
    "2026-01-10T10:03:00.000Z",
]
VALID_UNTIL = [None, "2020-01-01T00:00:00.000Z", "2099-01-01T00:00:00.000Z", "2099-06-01T00:00:00.000Z"]
MARKINGS = [
    None,
    *TLP_IDS.values(),
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
]
KINDS = ["indicator"] * 6 + ["malware", "vulnerability", "threat-actor", "identity"]


@st.composite
def entity(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(KINDS))
    prefix = kind
    e: dict[str, Any] = {
        "id": f"{prefix}--{uuid.UUID(int=draw(st.integers(0, 2**64)) | (4 << 76) | (8 << 60))}",
        "kind": kind,
        "owner": draw(st.sampled_from(PARTNERS)),
    }
    if kind == "indicator":
        e["ioc_type"] = draw(st.sampled_from(sorted(VALUES)))
    return e


@st.composite
def version(draw: Any, e: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"id": e["id"], "kind": e["kind"], "modified": draw(st.sampled_from(MODIFIED))}
    if e["kind"] == "indicator":
        spec["ioc_type"] = e["ioc_type"]
        spec["value"] = draw(st.sampled_from(VALUES[e["ioc_type"]]))
        spec["name"] = draw(st.one_of(st.none(), st.just(spec["value"]), st.sampled_from(NAMES)))
        spec["valid_until"] = draw(st.sampled_from(VALID_UNTIL))
    else:
        spec["name"] = draw(st.sampled_from(NAMES))
    spec["marking"] = draw(st.sampled_from(MARKINGS))
    spec["confidence"] = draw(st.sampled_from([None, 0, 50, 100]))
    spec["revoked"] = draw(st.sampled_from([False] * 5 + [True]))
    return spec


@st.composite
def scenario(draw: Any) -> list[tuple[Any, ...]]:
    entities = draw(st.lists(entity(), min_size=4, max_size=14, unique_by=lambda e: e["id"]))
    ops: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(2, 6))):
        chosen = draw(
            st.lists(st.sampled_from(entities), min_size=2, max_size=10, unique_by=lambda e: e["id"])
        )
        owner_mostly = draw(st.booleans())
        partner = chosen[0]["owner"] if owner_mostly else draw(st.sampled_from(PARTNERS))
        ops.append(("write", partner, draw(st.sampled_from(RECEIVED)), [draw(version(e)) for e in chosen]))
        for _ in range(draw(st.integers(0, 3))):
            ops.append(
                (
                    "decide",
                    draw(st.integers(0, 50)),
                    draw(st.sampled_from(["accept", "accept", "accept", "reject", "false-positive"])),
                )
            )
    return ops


@st.composite
def filters(draw: Any) -> dict[str, Any]:
    f: dict[str, Any] = {}
    if draw(st.sampled_from([False] * 5 + [True])):
        f["partners"] = tuple(draw(st.lists(st.sampled_from(PARTNERS), min_size=1, max_size=2, unique=True)))
    if draw(st.sampled_from([False] * 5 + [True])):
        types = draw(
            st.lists(
                st.sampled_from(
                    [
                        "domain-name",
                        "mutex",
                        "url",
                        "sha256",
                        "indicator",
                        "malware",
                        "vulnerability",
                        "cve",
                        "identity",
                        "threat-actor",
                    ]
                ),
                min_size=1,
                max_size=2,
                unique=True,
            )
        )
        f["types"] = tuple(types)
        f["type_spellings"] = tuple(t.upper() if draw(st.booleans()) else t for t in types)
    if draw(st.sampled_from([False] * 6 + [True])):
        f["tlps"] = tuple(draw(st.lists(st.sampled_from(list(TLP_IDS)), min_size=1, max_size=2, unique=True)))
    if draw(st.sampled_from([False] * 6 + [True])):
        f["max_tlp"] = draw(st.sampled_from(list(TLP_IDS)))
    if draw(st.sampled_from([False] * 6 + [True])):
        f["min_confidence"] = draw(st.sampled_from([0, 1, 50, 100]))
    if draw(st.sampled_from([False] * 5 + [True])):
        since = draw(st.sampled_from(RECEIVED))
        spelled = draw(st.sampled_from(["z", "offset", "naive", "plus1ms"]))
        moment = model_moment(since)
        if spelled == "z":
            f["since_arg"] = since
        elif spelled == "offset":
            f["since_arg"] = moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
        elif spelled == "naive":
            f["since_arg"] = moment.replace(tzinfo=None).isoformat()
        else:
            moment = moment + timedelta(milliseconds=1)
            f["since_arg"] = moment.isoformat()
        f["since"] = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if draw(st.sampled_from([False] * 5 + [True])):
        f["statuses"] = tuple(
            draw(
                st.lists(
                    st.sampled_from(["new", "accepted", "rejected", "false-positive"]),
                    min_size=1,
                    max_size=2,
                    unique=True,
                )
            )
        )
    if draw(st.sampled_from([False] * 4 + [True])):
        f["text"] = draw(st.sampled_from(SEARCHES))
    f["expired"] = draw(st.sampled_from([None, None, None, True, False]))
    f["include_revoked"] = draw(st.booleans())
    return f


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised home, copied for each example (init costs more than the example)."""
    return make_template(tmp_path_factory.mktemp("model") / "template")


@pytest.fixture
def homes() -> Iterator[Path]:
    """A directory for the examples' homes (one test, many examples)."""
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


def build(template: Path, homes: Path, ops: list[tuple[Any, ...]], index_after: int | None = None) -> World:
    world = World(fresh_home(template, homes / "home"))
    for n, op in enumerate(ops):
        if op[0] == "write":
            world.write(op[1], op[2], op[3])
        else:
            current = sorted(r.object_id for r in world.model.current() if r.p["type"] != "identity")
            if current:
                world.decide(current[op[1] % len(current)], op[2])
        if index_after is not None and n == index_after:
            # a search of 3+ characters builds the index: rows after this are its tail
            r = run(world.home, "triage", "list", "--search", "zzzzq", "--json")
            assert r.exit_code == 0, r.stderr
    return world


def check_listing(world: World, f: dict[str, Any], sort: str, desc: bool | None, limit: int) -> None:
    now = now_stix()
    items, sizes, total = list_all(world.home, f, sort, desc, limit)
    expected = world.model.listing(f, sort, desc, now)
    got_ids = [i["id"] for i in items]
    want_ids = [r.object_id for r in expected]
    context = (f, sort, desc, limit, [(r.object_id, r.p["value"], r.p["name"], r.rowid) for r in expected])
    event(f"lines {min(len(want_ids), 5)}{'+' if len(want_ids) >= 5 else ''} pages {min(len(sizes), 3)}")
    assert got_ids == want_ids, ("listing", got_ids, context)
    assert len(set(got_ids)) == len(got_ids), ("duplicates", got_ids)
    assert total == len(want_ids), ("count", total, len(want_ids), context)
    assert all(s == limit for s in sizes[:-1]), sizes
    for item, r in zip(items, expected, strict=True):
        assert set(item["partners"]) == world.model.partners_of_line(r), (item, r)
        assert item["status"] == r.status
        vu = ts_key(r.p["valid_until"])
        assert item["expired"] == (vu is not None and vu < model_moment(now)), (item, r.p)


SORTS = ["received", "confidence", "value", "valid-until", "partner", "status"]


@settings(max_examples=14, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=scenario(), fs=st.lists(filters(), min_size=1, max_size=3), data=st.data())
def test_listing_matches_model(
    template: Path, homes: Path, ops: list[tuple[Any, ...]], fs: list[dict[str, Any]], data: Any
) -> None:
    world = build(template, homes, ops)
    assert world.check_state() == []
    for f in fs:
        sort = data.draw(st.sampled_from(SORTS))
        desc = data.draw(st.sampled_from([None, True, False]))
        limit = data.draw(st.integers(1, 4))
        check_listing(world, f, sort, desc, limit)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=scenario(), data=st.data())
def test_text_search_with_index_and_tail(
    template: Path, homes: Path, ops: list[tuple[Any, ...]], data: Any
) -> None:
    cut = data.draw(st.integers(0, len(ops) - 1))
    world = build(template, homes, ops, index_after=cut)
    for text in data.draw(st.lists(st.sampled_from(SEARCHES), min_size=1, max_size=4)):
        f = {"text": text, "include_revoked": data.draw(st.booleans())}
        check_listing(world, f, data.draw(st.sampled_from(SORTS)), None, data.draw(st.integers(1, 5)))
        # Without the index: the received-order scan, and the fallback plan past its budget.
        types = tuple(
            data.draw(st.lists(st.sampled_from(["indicator", "domain-name", "mutex", "cve"]), max_size=2))
        )
        plain = TriageFilter(text=text, types=types, include_revoked=f["include_revoked"])
        with Store(world.path) as store:
            conn = store.db.conn
            pages = []
            for budget in (60.0, 0.0):
                conn.execute("BEGIN")
                try:
                    rows, _ = list_page(
                        conn, plain, PageRequest(scan_budget=budget, text_index=False, limit=1000)
                    )
                finally:
                    conn.execute("COMMIT")
                pages.append([r.rowid for r in rows])
        assert pages[0] == pages[1], ("fallback plan", text, types)


def _export_args(f: dict[str, Any], include_expired: bool, any_status: bool) -> list[str]:
    args = filter_args(f)
    if include_expired:
        args.append("--include-expired")
    if any_status:
        args = [a for a in args]
        args.append("--any-status")
    return args


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=scenario(), fs=st.lists(filters(), min_size=1, max_size=2), data=st.data())
def test_export_matches_model(
    template: Path, homes: Path, ops: list[tuple[Any, ...]], fs: list[dict[str, Any]], data: Any
) -> None:
    world = build(template, homes, ops)
    now = now_stix()
    chosen: list[dict[str, Any]] = [{}, *fs]
    for given_filter in chosen:
        f = {k: v for k, v in given_filter.items() if k != "expired"}
        include_expired = data.draw(st.booleans())
        any_status = not f.get("statuses") and data.draw(st.booleans())
        mf = dict(f, expired=None if include_expired else False)
        if any_status:
            mf["statuses"] = ("new", "accepted", "rejected", "false-positive")
        want = world.model.export_values(mf, now)
        args = _export_args(f, include_expired, any_status)
        r = export_text(world.home, "plain", args)
        assert r.exit_code == 0, r.stderr
        got = parse_plain(r.stdout)
        assert len(got) == len(set(got)), ("plain duplicates", got)
        event(f"export {fmt_n(len(want))}")
        assert sorted(got) == sorted(v for _, v in want), ("plain", sorted(got), sorted(want), f, args)
        r = export_text(world.home, "csv", args)
        assert r.exit_code == 0, r.stderr
        rows = parse_csv(r.stdout)
        got_csv = {(row["type"], row["value"].removeprefix("'")): row for row in rows}
        assert len(got_csv) == len(rows)
        want_all = world.model.export_values(mf, now, fmt="csv")
        assert set(got_csv) == set(want_all), ("csv", sorted(got_csv), sorted(want_all), f, args)
        for k, g in want_all.items():
            row = got_csv[k]
            assert row["tlp"].lower().removeprefix("tlp:") == g["tlp"], ("csv tlp", k, row, g)
            conf = "" if g["confidence"] is None else str(g["confidence"])
            assert row["confidence"] == conf, ("csv confidence", k, row, g)
        r = export_text(world.home, "stix", args)
        assert r.exit_code == 0, r.stderr
        bundle = json.loads(r.stdout)
        indicators = [o for o in bundle["objects"] if o["type"] in ("indicator", "vulnerability")]
        assert len(indicators) == len({o["id"] for o in indicators})
        want_stix = world.model.export_values(mf, now, fmt="stix")
        assert sorted(o["id"] for o in indicators) == sorted(
            g["first"].object_id for g in want_stix.values()
        ), ("stix", sorted(o["id"] for o in indicators), sorted(want_stix), f)


def fmt_n(n: int) -> str:
    return "0" if n == 0 else "1-2" if n < 3 else "3+"


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=scenario(), later=scenario(), data=st.data())
def test_text_search_after_erase(
    template: Path, homes: Path, ops: list[tuple[Any, ...]], later: list[tuple[Any, ...]], data: Any
) -> None:
    world = build(template, homes, ops, index_after=len(ops) - 1)
    # Indicators only: erasing an object that holds no indicator value fails today
    # (store/erasure.py `_holding`, being fixed elsewhere).
    current = sorted(r.object_id for r in world.model.current() if r.p["type"] == "indicator")
    if not current:
        return
    victim = data.draw(st.sampled_from(current))
    r = run(world.home, "triage", "erase", victim, "--note", "test erasure", "--yes")
    assert r.exit_code == 0, r.stderr
    for k in [k for k in world.model.rows if k[0] == victim]:
        del world.model.rows[k]
    text = data.draw(st.sampled_from(SEARCHES))
    check_listing(world, {"text": text}, "received", None, 3)
    # more rows after the rebuilt index: a tail (ids not erased)
    for op in later:
        if op[0] == "write":
            specs = [
                s for s in op[3] if s["id"] != victim and not any(k[0] == s["id"] for k in world.model.rows)
            ]
            if specs:
                world.write(op[1], op[2], specs)
    world.sync_rowids()
    for text in data.draw(st.lists(st.sampled_from(SEARCHES), min_size=1, max_size=3)):
        check_listing(
            world, {"text": text, "include_revoked": True}, data.draw(st.sampled_from(SORTS)), None, 4
        )
