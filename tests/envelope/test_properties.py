"""Properties of the envelope, checked with hypothesis.

- Round trips: any bundle of valid STIX objects, serialised any way, sealed to any set of
  partners, opens for each of them (and for the sender) to the identical bytes.
- Mutations: whatever byte is flipped, deleted or inserted, anywhere (the artifact's JSON text,
  the JWE JSON, one base64url member, or the signed JWS re-encrypted by a co-recipient),
  opening either rejects with a `RejectReason` or, when the change means nothing (JSON
  whitespace, an unchecked member), returns exactly the original bundle bytes and JWS. Never
  any other exception.
- The parsers underneath: base64url decoding is canonical (one encoding per byte string), the
  bounded inflater never returns more than its limit, a JWS splitter never crashes.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from cti_exchange.envelope.header import EnvelopeHeader
from cti_exchange.envelope.jose_framing import (
    b64url_decode,
    b64url_encode,
    bounded_inflate,
    jws_split,
)
from cti_exchange.envelope.reasons import EnvelopeRejected, RejectReason
from cti_exchange.stix.tlp import Tlp

from .conftest import (
    Bundle,
    Node,
    artifact_jwe,
    artifact_jwe_bytes,
    decrypt_jws,
    make_party,
    reencrypt,
    with_jwe,
)

FAST = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

# Parties are generated once: key generation is not what is being tested.
FR, IN, DE, XX = (make_party(a) for a in ("cert-fr", "cert-in", "cert-de", "cert-xx"))
PARTNERS = [IN, DE, XX]


def receiver(party: Any) -> Node:
    """A fresh receiver (empty inbox) that pins CERT-FR."""
    node = Node(party)
    node.pin(FR)
    return node


# -- bundles -------------------------------------------------------------------------------

TIMESTAMP = "2026-11-23T10:00:00.000Z"
TLPS = st.sampled_from([Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED])


def stix_id(kind: str) -> st.SearchStrategy[str]:
    return st.uuids(version=4).map(lambda u: f"{kind}--{u}")


PATTERNS = st.one_of(
    st.ip_addresses(v=4).map(lambda ip: f"[ipv4-addr:value = '{ip}']"),
    st.ip_addresses(v=6).map(lambda ip: f"[ipv6-addr:value = '{ip}']"),
    st.from_regex(r"[a-z0-9]{1,12}\.(fr|in|example)", fullmatch=True).map(
        lambda d: f"[domain-name:value = '{d}']"
    ),
    st.binary(min_size=32, max_size=32).map(lambda h: f"[file:hashes.'SHA-256' = '{h.hex()}']"),
)


@st.composite
def indicators(draw: st.DrawFn) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": draw(stix_id("indicator")),
        "created": TIMESTAMP,
        "modified": TIMESTAMP,
        "name": draw(st.text(max_size=40)),  # any Unicode: the bytes must survive exactly
        "pattern": draw(PATTERNS),
        "pattern_type": "stix",
        "valid_from": TIMESTAMP,
        "object_marking_refs": [draw(TLPS).marking_id],
    }
    if draw(st.booleans()):
        obj["confidence"] = draw(st.integers(0, 100))
    if draw(st.booleans()):
        obj["description"] = draw(st.text(max_size=200))
    return obj


@st.composite
def bundles(draw: st.DrawFn) -> Bundle:
    objects: list[dict[str, Any]] = draw(st.lists(indicators(), min_size=1, max_size=6))
    if draw(st.booleans()):
        malware = {
            "type": "malware",
            "spec_version": "2.1",
            "id": draw(stix_id("malware")),
            "created": TIMESTAMP,
            "modified": TIMESTAMP,
            "name": draw(st.text(max_size=20)),
            "is_family": draw(st.booleans()),
        }
        objects.append(malware)
        objects.append(
            {
                "type": "relationship",
                "spec_version": "2.1",
                "id": draw(stix_id("relationship")),
                "created": TIMESTAMP,
                "modified": TIMESTAMP,
                "relationship_type": "indicates",
                "source_ref": objects[0]["id"],
                "target_ref": malware["id"],
            }
        )
    bundle_id = draw(stix_id("bundle"))
    doc = {"type": "bundle", "id": bundle_id, "objects": objects}
    # Any serialisation a producer might use: what is signed is these bytes, whatever they are.
    data = json.dumps(
        doc,
        indent=draw(st.sampled_from([None, 0, 2])),
        ensure_ascii=draw(st.booleans()),
        sort_keys=draw(st.booleans()),
    ).encode()
    return Bundle(data, bundle_id, len(objects))


# -- round trips -----------------------------------------------------------------------------


@FAST
@given(
    bundle=bundles(),
    recipients=st.lists(st.sampled_from(PARTNERS), min_size=1, max_size=3, unique_by=lambda p: p.agency_id),
)
def test_seal_then_open_gives_the_identical_bundle_bytes(bundle: Bundle, recipients: list[Any]) -> None:
    sealed = Node(FR).seal(bundle, recipients)
    readers = [*recipients, FR]
    for party in readers:
        opened = receiver(party).open(sealed.artifact)
        assert opened.bundle_bytes == bundle.data
        assert opened.bundle == json.loads(bundle.data)
        assert opened.digest == sealed.digest
        assert opened.header == sealed.header
    for party in PARTNERS:
        if party not in readers:
            receiver(party).rejects(sealed.artifact, RejectReason.NOT_ADDRESSED_TO_US)


# -- mutated envelopes -------------------------------------------------------------------------

GENUINE_BUNDLE = Bundle(
    json.dumps(
        {
            "type": "bundle",
            "id": "bundle--6b1bd1e3-6a86-4e37-a4fb-2a4c4e9b1f0e",
            "objects": [
                {
                    "type": "indicator",
                    "spec_version": "2.1",
                    "id": "indicator--0c0b0f4e-2f39-4f2c-9d8d-1f6f4c3c7a11",
                    "created": TIMESTAMP,
                    "modified": TIMESTAMP,
                    "name": "C2 — 198.51.100.7",
                    "pattern": "[ipv4-addr:value = '198.51.100.7']",
                    "pattern_type": "stix",
                    "valid_from": TIMESTAMP,
                    "object_marking_refs": [Tlp.AMBER.marking_id],
                }
            ],
        },
        ensure_ascii=False,
    ).encode(),
    "bundle--6b1bd1e3-6a86-4e37-a4fb-2a4c4e9b1f0e",
    1,
)
GENUINE = Node(FR).seal(GENUINE_BUNDLE, [IN, DE])
GENUINE_JWS = decrypt_jws(GENUINE.artifact, IN)
B64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@st.composite
def mutations(draw: st.DrawFn, data: bytes, alphabet: bytes | None = None) -> bytes:
    """One flip, deletion (a truncation when it reaches the end) or insertion."""
    kind = draw(st.sampled_from(["flip", "delete", "truncate", "insert"]))
    index = draw(st.integers(0, len(data) - 1))
    if kind == "flip":
        if alphabet is not None:  # stay within the alphabet: a plausible-looking value
            replacement = draw(st.sampled_from(alphabet).filter(lambda c: c != data[index]))
        else:
            replacement = data[index] ^ draw(st.integers(1, 255))
        return data[:index] + bytes([replacement]) + data[index + 1 :]
    if kind == "delete":
        return data[:index] + data[index + draw(st.integers(1, 16)) :]
    if kind == "truncate":
        return data[:index]
    inserted = draw(
        st.binary(min_size=1, max_size=8)
        if alphabet is None
        else st.lists(st.sampled_from(alphabet), min_size=1, max_size=8).map(bytes)
    )
    return data[:index] + inserted + data[index:]


def assert_rejected_or_unchanged(artifact: Any) -> None:
    """The property: a named rejection, or the original bytes exactly."""
    try:
        opened = receiver(IN).open(artifact)
    except EnvelopeRejected as rejected:
        assert isinstance(rejected.reason, RejectReason)
        note(f"rejected: {rejected.reason.value}")
        return
    note("accepted: the mutation was semantically null")
    assert opened.bundle_bytes == GENUINE_BUNDLE.data
    assert opened.jws == GENUINE_JWS  # the signed bytes themselves are not malleable
    assert opened.digest == GENUINE.digest


@FAST
@given(st.data())
def test_a_mutated_artifact_json_text(data: st.DataObject) -> None:
    """What a corrupted file or a meddling relay delivers. Text that is no longer JSON never
    reaches open_envelope (the CLI reports it as input error 6)."""
    text = json.dumps(GENUINE.artifact, indent=1).encode()
    mutated = data.draw(mutations(text))
    try:
        document = json.loads(mutated)
    except (ValueError, RecursionError):
        assume(False)
    assert_rejected_or_unchanged(document)


@FAST
@given(st.data())
def test_a_mutated_jwe_json(data: st.DataObject) -> None:
    """The JWE JSON inside payload_bin, re-wrapped with a matching hash (an attacker's edit,
    not an accident the hash would catch)."""
    mutated = data.draw(mutations(artifact_jwe_bytes(GENUINE.artifact)))
    assert_rejected_or_unchanged(with_jwe(GENUINE.artifact, mutated))


JWE_MEMBERS = ["protected", "iv", "ciphertext", "tag", "encrypted_key", "epk.x"]


@FAST
@given(st.data(), st.sampled_from(JWE_MEMBERS), st.integers(0, 1), st.booleans())
def test_a_mutated_base64url_member(data: st.DataObject, member: str, entry: int, in_alphabet: bool) -> None:
    """One base64url member of the JWE, for CERT-In's recipient entry or CERT-DE's."""
    jwe = artifact_jwe(GENUINE.artifact)
    holder: dict[str, Any] = jwe
    key = member
    if member == "encrypted_key":
        holder = jwe["recipients"][entry]
    elif member == "epk.x":
        holder, key = jwe["recipients"][entry]["header"]["epk"], "x"
    original = holder[key].encode()
    mutated = data.draw(mutations(original, B64URL if in_alphabet else None))
    try:
        holder[key] = mutated.decode()
    except UnicodeDecodeError:
        holder[key] = mutated.decode("latin-1")
    assert_rejected_or_unchanged(with_jwe(GENUINE.artifact, jwe))


@FAST
@given(st.data(), st.booleans())
def test_a_mutated_jws_re_encrypted_by_a_co_recipient(data: st.DataObject, in_alphabet: bool) -> None:
    """CERT-DE can read the JWS and re-encrypt anything to CERT-In. No change to the signed
    bytes may survive: not even a re-encoding that decodes to the same signature."""
    mutated = data.draw(mutations(GENUINE_JWS, B64URL + b"." if in_alphabet else None))
    assume(mutated != GENUINE_JWS)
    with_mutation = reencrypt(GENUINE.artifact, mutated, [IN])
    try:
        receiver(IN).open(with_mutation)
    except EnvelopeRejected as rejected:
        note(f"rejected: {rejected.reason.value}")
        return
    raise AssertionError("a modified JWS was accepted")


# -- the parsers underneath ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=80))
def test_base64url_round_trips(raw: bytes) -> None:
    assert b64url_decode(b64url_encode(raw), what="x") == raw


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet=st.sampled_from(list(B64URL.decode()) + ["=", "+", "/", " ", "é"]), max_size=60))
def test_base64url_has_one_encoding_per_value(text: str) -> None:
    """Whatever decodes must be the canonical encoding of what it decodes to."""
    try:
        raw = b64url_decode(text, what="x")
    except EnvelopeRejected as rejected:
        assert rejected.reason is RejectReason.MALFORMED_ENVELOPE
        return
    assert b64url_encode(raw).decode() == text


@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=4096), st.integers(0, 5000), st.integers(1, 9))
def test_bounded_inflate_never_returns_more_than_the_limit(plain: bytes, limit: int, level: int) -> None:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    compressed = compressor.compress(plain) + compressor.flush()
    try:
        out = bounded_inflate(compressed, limit)
    except EnvelopeRejected as rejected:
        assert rejected.reason is RejectReason.DECOMPRESSION_LIMIT
        assert len(plain) > limit or limit == 0
        return
    assert out == plain and len(out) <= limit


@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=2048))
def test_bounded_inflate_of_garbage_only_rejects(garbage: bytes) -> None:
    try:
        out = bounded_inflate(garbage, 1024)
    except EnvelopeRejected as rejected:
        assert rejected.reason in (
            RejectReason.MALFORMED_ENVELOPE,
            RejectReason.DECOMPRESSION_LIMIT,
        )
        return
    assert len(out) <= 1024


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.lists(st.binary(max_size=60).map(b64url_encode), min_size=1, max_size=5).map(b".".join),
    )
)
def test_splitting_a_jws_never_crashes(compact: bytes) -> None:
    try:
        header, signing_input, _signature = jws_split(compact)
    except EnvelopeRejected as rejected:
        assert rejected.reason is RejectReason.MALFORMED_SIGNATURE
        return
    assert isinstance(header, dict) and compact.startswith(signing_input)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
CTI_MEMBERS = [
    "version",
    "envelope_id",
    "sender",
    "recipients",
    "issued_at",
    "channels",
    "bundle_id",
    "object_count",
]


@settings(max_examples=300, deadline=None, database=None)
@given(st.sampled_from(CTI_MEMBERS), JSON_VALUES)
def test_any_value_in_a_signed_header_member_is_parsed_or_bad_header(member: str, value: Any) -> None:
    """Signed headers come from pinned partners only, but a buggy one must not crash us."""
    header = json.loads(json.dumps(GENUINE.header.to_protected()))
    header["cti"][member] = value
    try:
        parsed = EnvelopeHeader.from_protected(header)
    except EnvelopeRejected as rejected:
        assert rejected.reason is RejectReason.BAD_HEADER
        return
    assert parsed.to_protected()["cti"]["envelope_id"] == header["cti"]["envelope_id"]
