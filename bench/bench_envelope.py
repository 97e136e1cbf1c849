"""Benchmark of sealing and opening an envelope (issue 3): cryptography must never be the
bottleneck.

    .venv/bin/python bench/bench_envelope.py                # the run in docs/BENCHMARKS.md
    .venv/bin/python bench/bench_envelope.py --count 10000  # a quick smoke run

Builds a realistic bundle of N indicators (default 100,000) with cti-exchange's own object
builder (the dicts `convert` produces: mixed IOC types, TLP marking refs, some descriptions and
external references; ~640 bytes each), then measures, in the same process, each step
separately, repeated (default 5 times; median and min reported):

- JSON serialisation of the bundle (`serialise_bundle`): the baseline everything is compared to;
- `seal_bundle` and its parts: JWS (EdDSA over the bytes), JWE (DEFLATE, AES-256-GCM, one
  ECDH-ES+A256KW wrap per recipient), the artifact (base64, SHA-256, JSON);
- `open_envelope` and its parts: artifact (base64 decode, SHA-256, JSON of the JWE), decrypt,
  inflate, signature verification, payload base64url decode, JSON parse of the bundle, STIX
  validation;
- for comparison, the naive library approach: jwcrypto's high-level JWS + JWE classes doing
  the same sign-then-encrypt and decrypt-then-verify.

Prints a markdown table and the peak resident set size. Nothing asserts on the timings: this
is not a test (tests/envelope/ checks behaviour).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import jwcrypto.jwe
import orjson
from jwcrypto import jwk, jws

from cti_exchange.envelope.artifact import artifact_jwe, envelope_artifact
from cti_exchange.envelope.header import ChannelPosition
from cti_exchange.envelope.jose_framing import (
    COMPRESSION,
    CONTENT_ENCRYPTION,
    bounded_inflate,
    jwe_decrypt_compressed,
    jwe_encrypt_general,
    jws_payload,
    jws_sign_compact,
    jws_split,
    jws_verify,
)
from cti_exchange.envelope.open import ReceiverContext, open_envelope
from cti_exchange.envelope.seal import RecipientKey, SenderKeys, seal_bundle
from cti_exchange.keys.material import generate_key_pair
from cti_exchange.keys.model import AgencyRef, Keyring, KeyUse
from cti_exchange.stix.bundle import build_bundle, serialise_bundle
from cti_exchange.stix.ioc_types import IocType
from cti_exchange.stix.objects import StixObjectBuilder
from cti_exchange.stix.patterns import pattern_for
from cti_exchange.stix.tlp import Tlp
from cti_exchange.stix.validate import validate_bundle

NOW = datetime(2026, 11, 23, 10, 5, tzinfo=UTC)
ADVISORIES = "https://www.cert.ssi.gouv.fr/ioc/"
IDENTITY = {
    "type": "identity",
    "spec_version": "2.1",
    "id": "identity--f7057009-c6c7-5705-914f-068f8d8b4ab1",
    "created": "2026-11-01T00:00:00.000Z",
    "modified": "2026-11-01T00:00:00.000Z",
    "name": "CERT-FR",
    "identity_class": "organization",
}
DESCRIPTIONS = [
    "C2 server seen in a phishing campaign against public administrations.",
    None,
    None,
    None,
]


def ioc(n: int) -> tuple[IocType, str]:
    """A mix of IOC types in roughly the proportions CERT feeds have."""
    kind = n % 10
    if kind < 4:
        return IocType.IPV4, f"{11 + n // 65536 % 200}.{n // 256 % 256}.{n % 256}.{7 + n % 200}"
    if kind < 6:
        return IocType.DOMAIN, f"update-{n:06d}.cdn-{n % 97}.example"
    if kind == 6:
        return IocType.URL, f"https://login-{n % 997}.example/portal/{n:07d}/index.php?id={n}"
    if kind == 7:
        return IocType.SHA256, f"{n:064x}"[::-1]
    if kind == 8:
        return IocType.MD5, f"{n * 2654435761 % 2**128:032x}"
    return IocType.EMAIL, f"billing-{n}@mail-{n % 89}.example"


def make_objects(count: int) -> list[dict[str, Any]]:
    builder = StixObjectBuilder(IDENTITY["id"], NOW, {}, default_confidence=75)
    tlps = [Tlp.GREEN, Tlp.AMBER, Tlp.CLEAR, Tlp.AMBER]
    objects = []
    for n in range(count):
        ioc_type, value = ioc(n)
        references = (
            [{"source_name": "cert-fr", "url": f"{ADVISORIES}CERTFR-2026-IOC-{n % 400:03d}/"}]
            if n % 10 == 0
            else None
        )
        objects.append(
            builder.indicator_from(
                ioc_type,
                value,
                pattern_for(ioc_type, value),
                tlp=tlps[n % 4],
                description=DESCRIPTIONS[n % 4],
                external_references=references,
            )
        )
    return objects


def timed(function: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        result = None
        gc.collect()
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return times, result


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="indicators in the bundle")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement")
    parser.add_argument("--recipients", type=int, default=1, help="partner recipients")
    parser.add_argument("--json", metavar="FILE", help="also write the raw figures here")
    args = parser.parse_args()
    repeat = args.repeat

    sender_sig, sender_sig_info = generate_key_pair(KeyUse.SIG, "cert-fr", NOW, 365)
    sender_enc, sender_enc_info = generate_key_pair(KeyUse.ENC, "cert-fr", NOW, 365)
    partners = [generate_key_pair(KeyUse.ENC, f"cert-p{i}", NOW, 365) for i in range(args.recipients)]
    receiver_private, _ = partners[0]
    public = {k: v for k, v in sender_enc.items() if k != "d"}
    recipients = [
        RecipientKey(f"cert-p{i}", {k: v for k, v in key.items() if k != "d"})
        for i, (key, _) in enumerate(partners)
    ]
    sender = SenderKeys("cert-fr", sender_sig, public)
    ring = Keyring(AgencyRef("cert-fr", "CERT-FR"), (sender_sig_info, sender_enc_info))

    started = time.perf_counter()
    bundle = build_bundle(make_objects(args.count), IDENTITY, validate=False)
    build_seconds = time.perf_counter() - started
    rss_built = rss_mib()
    rows: dict[str, list[float]] = {}

    rows["JSON serialisation (serialise_bundle)"], bundle_bytes = timed(
        lambda: serialise_bundle(bundle), repeat
    )
    object_count = len(bundle["objects"])
    channels = {r.agency_id: ChannelPosition(1, None) for r in recipients}

    def seal() -> Any:
        return seal_bundle(
            bundle_bytes,
            bundle_id=bundle["id"],
            object_count=object_count,
            sender=sender,
            recipients=recipients,
            channels=channels,
            now=NOW,
        )

    rows["seal_bundle (total)"], sealed = timed(seal, repeat)
    header = sealed.header.to_protected()
    rows["  JWS: EdDSA sign + base64url"], jws_bytes = timed(
        lambda: jws_sign_compact(header, bundle_bytes, sender_sig), repeat
    )
    protected = {"enc": CONTENT_ENCRYPTION, "zip": COMPRESSION, "cty": "cti-envelope+jws"}
    keys = [r.encryption_key for r in recipients] + [public]
    rows["  JWE: DEFLATE + AES-256-GCM + key wraps"], jwe = timed(
        lambda: jwe_encrypt_general(jws_bytes, protected, keys), repeat
    )
    rows["  artifact: JSON + base64 + SHA-256"], _ = timed(
        lambda: envelope_artifact(json.dumps(jwe, separators=(",", ":")).encode(), sealed.header),
        repeat,
    )
    rss_sealed = rss_mib()

    artifact = sealed.artifact
    context = ReceiverContext(
        agency_id="cert-p0",
        decryption_keys={receiver_private["kid"]: receiver_private},
        keyrings={"cert-fr": ring},
        now=NOW,
        seen_envelope=lambda sender, envelope_id: False,
        channel_state=lambda agency: None,
        validate_bundle=validate_bundle,
    )
    rows["open_envelope (total)"], opened = timed(lambda: open_envelope(artifact, context), repeat)
    assert opened.bundle_bytes == bundle_bytes
    private = {receiver_private["kid"]: receiver_private}
    rows["  artifact: base64 + SHA-256 + JSON of the JWE"], parsed_jwe = timed(
        lambda: artifact_jwe(artifact, max_envelope_bytes=1 << 30), repeat
    )
    rows["  decrypt: key unwrap + AES-256-GCM"], (_, compressed) = timed(
        lambda: jwe_decrypt_compressed(parsed_jwe, private), repeat
    )
    rows["  inflate (bounded)"], jws_received = timed(
        lambda: bounded_inflate(compressed, 512 * 1024 * 1024), repeat
    )
    _, signing_input, signature = jws_split(jws_received)
    signer_public = sender_sig_info.public_jwk
    rows["  signature: split + EdDSA verify"], _ = timed(
        lambda: jws_verify(*jws_split(jws_received)[1:], signer_public), repeat
    )
    rows["  payload: base64url decode"], payload = timed(lambda: jws_payload(signing_input), repeat)
    rows["  JSON parse of the bundle"], parsed = timed(lambda: orjson.loads(payload), repeat)
    rows["  STIX validation (validate_bundle)"], problems = timed(lambda: validate_bundle(parsed), repeat)
    assert not problems, problems[:3]
    unvalidated = replace(context, validate_bundle=lambda bundle: [])
    rows["open_envelope without STIX validation"], _ = timed(
        lambda: open_envelope(artifact, unvalidated), repeat
    )
    rss_opened = rss_mib()

    # The naive approach: jwcrypto's own JWS and JWE objects.
    jwcrypto.jwe.default_max_compressed_size = 1 << 30
    signing_jwk = jwk.JWK(**sender_sig)
    recipient_jwks = [jwk.JWK(**key) for key in keys]

    def naive_seal() -> str:
        signer = jws.JWS(bundle_bytes)
        signer.add_signature(signing_jwk, None, protected=json.dumps(header))
        token = jwcrypto.jwe.JWE(signer.serialize(compact=True).encode(), protected=protected)
        for key in recipient_jwks:
            token.add_recipient(key, header={"alg": "ECDH-ES+A256KW", "kid": key["kid"]})
        return str(token.serialize())

    rows["jwcrypto JWS+JWE API: seal"], naive = timed(naive_seal, repeat)
    receiver_jwk = jwk.JWK(**receiver_private)
    verifier = jwk.JWK(**signer_public)

    def naive_open() -> bytes:
        token = jwcrypto.jwe.JWE()
        token.deserialize(naive, key=receiver_jwk)
        signed = jws.JWS()
        signed.deserialize(token.payload.decode())
        signed.verify(verifier, alg="EdDSA")
        return bytes(signed.payload)

    rows["jwcrypto JWS+JWE API: open (no STIX checks)"], naive_payload = timed(naive_open, repeat)
    assert naive_payload == bundle_bytes
    rss_end = rss_mib()

    def median(name: str) -> float:
        return statistics.median(rows[name])

    serialise = median("JSON serialisation (serialise_bundle)")
    opening_steps = [
        "  artifact: base64 + SHA-256 + JSON of the JWE",
        "  decrypt: key unwrap + AES-256-GCM",
        "  inflate (bounded)",
        "  signature: split + EdDSA verify",
        "  payload: base64url decode",
    ]
    before_json = sum(median(name) for name in opening_steps)
    artifact_json = json.dumps(artifact).encode()
    print(f"# Envelope benchmark: {args.count:,} indicators ({object_count:,} objects)\n")
    command = " ".join([".venv/bin/python", "bench/bench_envelope.py", *sys.argv[1:]])
    print(f"Command: `{command}`\n")
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, jwcrypto {version('jwcrypto')}, "
        f"cryptography {version('cryptography')}, pybase64 {version('pybase64')}; "
        f"{args.recipients} partner recipient(s) + the sender's own copy; "
        f"{repeat} runs each.\n"
    )
    print(
        f"Sizes: bundle {len(bundle_bytes) / 1e6:.1f} MB "
        f"({len(bundle_bytes) / object_count:.0f} bytes/object), "
        f"JWS {len(jws_bytes) / 1e6:.1f} MB, "
        f"DEFLATE {len(compressed) / 1e6:.1f} MB, artifact JSON {len(artifact_json) / 1e6:.1f} MB. "
        f"Building the objects took {build_seconds:.1f} s (not part of any figure).\n"
    )
    print("| step | median (s) | min (s) |")
    print("| --- | ---: | ---: |")
    for name, times in rows.items():
        label = name.replace("  ", "&nbsp;&nbsp;↳ ") if name.startswith("  ") else name
        print(f"| {label} | {statistics.median(times):.3f} | {min(times):.3f} |")
    print()
    print(
        f"Beyond JSON: `seal_bundle` (which starts from the serialised bytes) takes "
        f"{median('seal_bundle (total)'):.3f} s (min {min(rows['seal_bundle (total)']):.3f} s), "
        f"against {serialise:.3f} s to serialise; opening up to the JSON parse (the five steps "
        f"before it, sum of medians) takes {before_json:.3f} s, against "
        f"{median('  JSON parse of the bundle'):.3f} s to parse the bundle and "
        f"{median('  STIX validation (validate_bundle)'):.3f} s to validate it."
    )
    print(
        f"Peak RSS (high-water mark, MiB): after building the bundle {rss_built:.0f}, after the "
        f"seal runs {rss_sealed:.0f}, after the open runs {rss_opened:.0f}, after the jwcrypto "
        f"runs {rss_end:.0f}."
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump({name: times for name, times in rows.items()}, out, indent=1)


if __name__ == "__main__":
    main()
