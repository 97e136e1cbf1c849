"""RFC 7515/7516 serialisation around jwcrypto's JWA algorithms.

jwcrypto does every cryptographic operation (EdDSA, ECDH-ES + Concat KDF + AES key wrap,
AES-GCM). This module only frames them: base64url, JWS compact serialisation, JWE General JSON
serialisation, DEFLATE. It exists because jwcrypto's JWS/JWE objects base64-encode a payload up
to three times and compress at zlib's default level, which made sealing a 100,000-indicator
bundle cost ~2.5 s; framed here with SIMD base64 (pybase64) it costs a fraction of that (see
docs/BENCHMARKS.md). Interoperability with complete JOSE implementations is proven by
tests/envelope/test_interop.py (jwcrypto's own JWS/JWE API and joserfc, both ways).
"""

from __future__ import annotations

import json
import os
import zlib
from typing import Any

import pybase64
from isal import isal_zlib
from jwcrypto import jwk
from jwcrypto.jwa import JWA

from cti_exchange.envelope.header import JWE_CONTENT_TYPE, MAX_RECIPIENTS
from cti_exchange.envelope.reasons import EnvelopeRejected, RejectReason
from cti_exchange.readers.json_input import _DuplicateKey, _unique_keys

SIGNATURE_ALG = "EdDSA"
KEY_MANAGEMENT_ALG = "ECDH-ES+A256KW"
CONTENT_ENCRYPTION = "A256GCM"
COMPRESSION = "DEF"
# Level 1: several times faster than zlib's default 6 for a few percent more bytes; the
# envelope travels once and is opened once, so speed wins.
DEFLATE_LEVEL = 1
_CEK_BITS = 256
# What a receiver parses before anything is authenticated is bounded (docs/ENVELOPE.md, section
# 5): MAX_RECIPIENTS (header.py) entries, and protected headers (a few hundred bytes, a few KiB
# for many recipients) of at most this size.
MAX_PROTECTED_HEADER_BYTES = 64 * 1024
# The JWE members of this profile (RFC 7516 section 7.2.1). `aad` and `unprotected` are never
# written; `header` and `encrypted_key` at the top level are the flattened syntax.
_JWE_REFUSED_MEMBERS = ("aad", "unprotected", "header", "encrypted_key")
_JWE_PROTECTED_MEMBERS = frozenset({"enc", "zip", "cty"})
_RECIPIENT_HEADER_MEMBERS = frozenset({"alg", "kid", "epk"})


def b64url_encode(data: bytes) -> bytes:
    return pybase64.urlsafe_b64encode(data).rstrip(b"=")


_B64URL_VALUE = {
    c: i for i, c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}
_UNUSED_BITS = {1: 0, 2: 0b1111, 3: 0b11}  # by length mod 4 (1 is invalid anyway)


def b64url_decode(data: str | bytes, *, what: str) -> bytes:
    if not isinstance(data, (str, bytes)):
        # bytes(n) of a JSON number would allocate n zero bytes: an attacker-chosen allocation.
        raise EnvelopeRejected(RejectReason.MALFORMED_ENVELOPE, f"{what} is not a string")
    try:
        raw = data.encode("ascii") if isinstance(data, str) else data
        # RFC 7515 section 2: base64url without padding; pybase64 would also take '+' and '/'.
        if b"+" in raw or b"/" in raw or b"=" in raw:
            raise ValueError(what)
        # Canonical encodings only (RFC 4648 section 3.5): the unused low bits of the last
        # character must be zero. Otherwise "...Q" and "...R" decode to the same signature, so
        # anyone who can read a JWS could re-encode it into different bytes that still verify,
        # and the channel digest (SHA-256 of the JWS bytes) of the receiver's copy would no
        # longer match the sender's: the next genuine envelope would be a chain-mismatch.
        if len(raw) % 4 and _B64URL_VALUE.get(raw[-1], 0) & _UNUSED_BITS[len(raw) % 4]:
            raise ValueError(what)
        return pybase64.b64decode(raw + b"=" * (-len(raw) % 4), altchars=b"-_", validate=True)
    except (ValueError, TypeError, UnicodeEncodeError):
        raise EnvelopeRejected(RejectReason.MALFORMED_ENVELOPE, f"{what} is not base64url") from None


def loads_unique(data: str | bytes) -> Any:
    """JSON with every member name once per object: parsers disagree on which of two `alg`
    counts (Python's json takes the last, others the first or refuse), so a header giving one
    twice means different things to different receivers. Raises ValueError (a subclass,
    _DuplicateKey, naming the member, for a duplicate); RecursionError if nested too deep."""
    return json.loads(data, object_pairs_hook=_unique_keys)


def _duplicate_detail(what: str, error: _DuplicateKey) -> str:
    return f"{what} gives the member {str(error)[:60]!r} twice in one object"


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> None:
    """_unique_keys without building the object: twice as fast on a large bundle, which
    another parser (orjson) reads for its values (docs/BENCHMARKS.md, stop 26)."""
    if len({name for name, _ in pairs}) != len(pairs):
        _unique_keys(pairs)  # raises _DuplicateKey naming the member


def first_duplicate_member(document: bytes) -> str | None:
    """The first member name given twice in one object of a JSON document (any depth), or
    None. ValueError if it is not JSON; RecursionError if nested too deep for json."""
    try:
        json.loads(document, object_pairs_hook=_refuse_duplicates)
    except _DuplicateKey as exc:
        return str(exc)
    return None


def json_b64(obj: dict[str, Any]) -> bytes:
    return b64url_encode(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode())


# -- JWS (RFC 7515 section 7.1, compact serialisation) ------------------------------------


def jws_sign_compact(header: dict[str, Any], payload: bytes, signing_key: dict[str, Any]) -> bytes:
    signing_input = json_b64(header) + b"." + b64url_encode(payload)
    signature = JWA.signing_alg(SIGNATURE_ALG).sign(jwk.JWK(**signing_key), signing_input)
    return signing_input + b"." + b64url_encode(signature)


def jws_split(compact: bytes) -> tuple[dict[str, Any], bytes, bytes]:
    """Header (parsed), signing input and signature of a compact JWS, nothing verified yet."""
    first = compact.find(b".")
    last = compact.rfind(b".")
    if first <= 0 or last == first:
        raise EnvelopeRejected(RejectReason.MALFORMED_SIGNATURE, "plaintext is not a compact JWS")
    if first > _b64url_length(MAX_PROTECTED_HEADER_BYTES):
        raise EnvelopeRejected(
            RejectReason.MALFORMED_SIGNATURE,
            f"the JWS header is {first} base64url characters, over the "
            f"{MAX_PROTECTED_HEADER_BYTES}-byte limit",
        )
    try:
        header = loads_unique(b64url_decode(compact[:first], what="JWS header"))
        signature = b64url_decode(compact[last + 1 :], what="JWS signature")
    except _DuplicateKey as exc:
        raise EnvelopeRejected(
            RejectReason.MALFORMED_SIGNATURE, _duplicate_detail("the JWS header", exc)
        ) from None
    except (EnvelopeRejected, ValueError, RecursionError):  # not base64url, not JSON, too deep
        raise EnvelopeRejected(
            RejectReason.MALFORMED_SIGNATURE, "JWS header or signature is not base64url JSON"
        ) from None
    if not isinstance(header, dict):
        raise EnvelopeRejected(RejectReason.MALFORMED_SIGNATURE, "JWS header is not an object")
    return header, compact[:last], signature


def _b64url_length(size: int) -> int:
    """Characters of the unpadded base64url encoding of `size` bytes."""
    return (size * 4 + 2) // 3


def jws_verify(signing_input: bytes, signature: bytes, public_key: dict[str, Any]) -> bool:
    try:
        JWA.signing_alg(SIGNATURE_ALG).verify(jwk.JWK(**public_key), signing_input, signature)
    except Exception:  # cryptography raises InvalidSignature; bad keys raise ValueError
        return False
    return True


def jws_payload(signing_input: bytes) -> bytes:
    dot = signing_input.find(b".")
    return b64url_decode(signing_input[dot + 1 :], what="JWS payload")


# -- JWE (RFC 7516 section 7.2.1, General JSON serialisation) -----------------------------


def jwe_encrypt_general(
    plaintext: bytes, protected: dict[str, Any], recipient_keys: list[dict[str, Any]]
) -> dict[str, Any]:
    """Compresses (if protected says zip DEF), encrypts once, wraps the CEK for each recipient."""
    if not 1 <= len(recipient_keys) <= MAX_RECIPIENTS:
        # Receivers refuse more (docs/ENVELOPE.md, section 2): never seal what none would open.
        raise ValueError(f"{len(recipient_keys)} recipients: a JWE has 1 to {MAX_RECIPIENTS}")
    protected_b64 = json_b64(protected)
    cek = os.urandom(_CEK_BITS // 8)
    recipients = [_recipient_entry(cek, public) for public in recipient_keys]
    if protected.get("zip") == COMPRESSION:
        plaintext = deflate(plaintext)
    iv, ciphertext, tag = JWA.encryption_alg(CONTENT_ENCRYPTION).encrypt(cek, protected_b64, plaintext)
    return {
        "protected": protected_b64.decode(),
        "recipients": recipients,
        "iv": b64url_encode(iv).decode(),
        "ciphertext": b64url_encode(ciphertext).decode(),
        "tag": b64url_encode(tag).decode(),
    }


def jwe_decrypt_general(
    jwe: dict[str, Any],
    private_keys: dict[str, dict[str, Any]],
    *,
    max_plaintext_bytes: int,
) -> tuple[dict[str, Any], bytes]:
    """Finds our recipient entry by kid, unwraps the CEK, decrypts, inflates within a limit."""
    protected, data = jwe_decrypt_compressed(jwe, private_keys)
    if protected.get("zip") == COMPRESSION:
        return protected, bounded_inflate(data, max_plaintext_bytes)
    if len(data) > max_plaintext_bytes:
        raise EnvelopeRejected(RejectReason.DECOMPRESSION_LIMIT, "plaintext exceeds the limit")
    return protected, data


def _names_critical_extensions(jwe: dict[str, Any], protected: dict[str, Any], recipients: list[Any]) -> bool:
    headers = [protected, jwe.get("unprotected")]
    headers += [r.get("header") for r in recipients if isinstance(r, dict)]
    return any(isinstance(h, dict) and "crit" in h for h in headers)


def jwe_decrypt_compressed(
    jwe: dict[str, Any], private_keys: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], bytes]:
    """Decrypts without inflating: the plaintext as encrypted (DEFLATE-compressed if the
    protected header says zip DEF), for callers that also archive it compressed."""
    protected, _, plaintext = _decrypt(jwe, private_keys)
    return protected, plaintext


def _decrypt(
    jwe: dict[str, Any], private_keys: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], bytes, bytes]:
    """(protected header, CEK, plaintext) after every check of the JWE and our entry in it."""
    try:
        protected_b64 = jwe["protected"].encode("ascii")
        recipients = jwe["recipients"]
        if len(protected_b64) > _b64url_length(MAX_PROTECTED_HEADER_BYTES):
            raise EnvelopeRejected(
                RejectReason.MALFORMED_ENVELOPE,
                f"the JWE protected header is {len(protected_b64)} base64url characters, over "
                f"the {MAX_PROTECTED_HEADER_BYTES}-byte limit",
            )
        iv = b64url_decode(jwe["iv"], what="JWE iv")
        ciphertext = b64url_decode(jwe["ciphertext"], what="JWE ciphertext")
        tag = b64url_decode(jwe["tag"], what="JWE tag")
        protected = loads_unique(b64url_decode(protected_b64, what="JWE protected header"))
    except _DuplicateKey as exc:
        raise EnvelopeRejected(
            RejectReason.MALFORMED_ENVELOPE, _duplicate_detail("the JWE protected header", exc)
        ) from None
    except (
        KeyError,
        TypeError,
        AttributeError,
        UnicodeEncodeError,
        ValueError,
        RecursionError,
    ) as exc:
        if isinstance(exc, EnvelopeRejected):
            raise
        raise EnvelopeRejected(
            RejectReason.MALFORMED_ENVELOPE, "JWE lacks protected/recipients/iv/ciphertext/tag"
        ) from None
    if not isinstance(protected, dict) or not isinstance(recipients, list):
        raise EnvelopeRejected(RejectReason.MALFORMED_ENVELOPE, "JWE members have the wrong types")
    if not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise EnvelopeRejected(
            RejectReason.MALFORMED_ENVELOPE,
            f"the JWE has {len(recipients)} recipient entries (1 to {MAX_RECIPIENTS} allowed)",
        )
    if _names_critical_extensions(jwe, protected, recipients):
        # RFC 7516 section 4.1.13 (RFC 7515 section 4.1.11): a recipient must reject critical
        # extensions it does not understand, and this profile defines none.
        raise EnvelopeRejected(RejectReason.UNSUPPORTED_ALGORITHM, "the JWE names critical extensions (crit)")
    if protected.get("enc") != CONTENT_ENCRYPTION:
        raise EnvelopeRejected(
            RejectReason.UNSUPPORTED_ALGORITHM, f"JWE enc {protected.get('enc')!r} is not A256GCM"
        )
    if protected.get("zip") not in (None, COMPRESSION):
        raise EnvelopeRejected(
            RejectReason.UNSUPPORTED_ALGORITHM, f"JWE zip {protected.get('zip')!r} is not DEF"
        )
    if "alg" in protected:
        raise EnvelopeRejected(
            RejectReason.UNSUPPORTED_ALGORITHM,
            f"the JWE protected header names alg {protected['alg']!r}: in this profile alg is "
            f"per recipient ({KEY_MANAGEMENT_ALG}), never shared",
        )
    _check_unprotected(jwe, recipients)
    if len(iv) != 12 or len(tag) != 16:
        raise EnvelopeRejected(RejectReason.MALFORMED_ENVELOPE, "JWE iv or tag has the wrong length")

    entry = _our_recipient(recipients, private_keys)
    header = entry["header"]
    if header.get("alg") != KEY_MANAGEMENT_ALG:
        raise EnvelopeRejected(
            RejectReason.UNSUPPORTED_ALGORITHM, f"JWE alg {header.get('alg')!r} is not {KEY_MANAGEMENT_ALG}"
        )
    epk = header.get("epk")
    if not (
        isinstance(epk, dict)
        and epk.get("kty") == "OKP"
        and epk.get("crv") == "X25519"
        and isinstance(epk.get("x"), str)
        and set(epk) <= {"kty", "crv", "x"}
        and len(b64url_decode(epk["x"], what="epk")) == 32
    ):
        raise EnvelopeRejected(RejectReason.DECRYPTION_FAILED, "epk is not a public X25519 key")
    encrypted_key = b64url_decode(entry.get("encrypted_key", ""), what="encrypted_key")
    try:
        cek = _unwrap_cek(header, encrypted_key, private_keys[header["kid"]])
        plaintext = JWA.encryption_alg(CONTENT_ENCRYPTION).decrypt(cek, protected_b64, iv, ciphertext, tag)
    except Exception as exc:  # InvalidTag, InvalidUnwrap, low-order point ValueError, ...
        raise EnvelopeRejected(
            RejectReason.DECRYPTION_FAILED,
            f"cannot decrypt with key {header['kid']} ({type(exc).__name__})",
        ) from None
    _check_protected(protected)
    return protected, cek, plaintext


def _check_protected(protected: dict[str, Any]) -> None:
    """The protected header holds what docs/ENVELOPE.md section 2 says, nothing else. Checked
    once AES-GCM has authenticated it, so that a header altered in transit is refused as
    what it is (decryption-failed) and one its sender wrote wrong as malformed-envelope."""
    if protected.get("cty") != JWE_CONTENT_TYPE:
        raise EnvelopeRejected(
            RejectReason.MALFORMED_ENVELOPE,
            f"JWE cty {protected.get('cty')!r} is not {JWE_CONTENT_TYPE!r}",
        )
    if extra := sorted(set(protected) - _JWE_PROTECTED_MEMBERS):
        raise EnvelopeRejected(
            RejectReason.MALFORMED_ENVELOPE,
            f"the JWE protected header carries {', '.join(extra)[:200]}: only enc, zip and cty belong there",
        )


def _check_unprotected(jwe: dict[str, Any], recipients: list[Any]) -> None:
    """Every header parameter where docs/ENVELOPE.md section 2 puts it, and nothing else: a
    parameter outside the protected header is not authenticated, and one RFC 7516 lets a
    receiver ignore (or apply: `enc` in a shared header) means the receiver and another tool
    could read the envelope differently. Refused rather than ignored: we never write one."""
    if present := [name for name in _JWE_REFUSED_MEMBERS if name in jwe]:
        raise EnvelopeRejected(
            RejectReason.MALFORMED_ENVELOPE,
            f"the JWE has a member {present[0]!r}: this profile never writes one "
            "(General JSON Serialization; no aad, no shared unprotected header)",
        )
    for entry in recipients:
        if not isinstance(entry, dict) or not isinstance(entry.get("header"), dict):
            raise EnvelopeRejected(RejectReason.MALFORMED_ENVELOPE, "malformed JWE recipient entry")
        if extra := sorted(set(entry["header"]) - _RECIPIENT_HEADER_MEMBERS):
            raise EnvelopeRejected(
                RejectReason.MALFORMED_ENVELOPE,
                f"a JWE recipient header carries {', '.join(extra)[:200]}: only alg, kid and epk "
                "belong there",
            )


def jwe_recipient_kids(jwe: dict[str, Any]) -> list[str]:
    """The key ids of a JWE's recipient entries (those that name one)."""
    recipients = jwe.get("recipients")
    entries = recipients if isinstance(recipients, list) else []
    headers = [e.get("header") for e in entries if isinstance(e, dict)]
    kids = [h.get("kid") for h in headers if isinstance(h, dict)]
    return [kid for kid in kids if isinstance(kid, str)]


def _recipient_entry(cek: bytes, public: dict[str, Any]) -> dict[str, Any]:
    """One `recipients` member: the CEK wrapped for `public` (ECDH-ES+A256KW, fresh epk)."""
    header = {"alg": KEY_MANAGEMENT_ALG, "kid": public["kid"]}
    wrapped = JWA.keymgmt_alg(KEY_MANAGEMENT_ALG).wrap(
        jwk.JWK(**public), _CEK_BITS, cek, dict(header, enc=CONTENT_ENCRYPTION)
    )
    header["epk"] = wrapped["header"]["epk"]
    return {"header": header, "encrypted_key": b64url_encode(wrapped["ek"]).decode()}


def _unwrap_cek(header: dict[str, Any], encrypted_key: bytes, private: dict[str, Any]) -> bytes:
    cek: bytes = JWA.keymgmt_alg(KEY_MANAGEMENT_ALG).unwrap(
        jwk.JWK(**private), _CEK_BITS, encrypted_key, dict(header, enc=CONTENT_ENCRYPTION)
    )
    return cek


def jwe_rewrap_recipients(
    jwe: dict[str, Any],
    private_keys: dict[str, dict[str, Any]],
    replacements: dict[str, dict[str, Any] | None],
    additions: list[dict[str, Any]],
) -> dict[str, Any]:
    """The same JWE (protected header, iv, ciphertext and tag unchanged) with the recipient
    entries whose kid is in `replacements` wrapped again for the public key given there, or
    dropped where it gives None, and entries for `additions` appended.

    The CEK comes from our own entry (`private_keys`), and is checked by decrypting the
    ciphertext before it is wrapped for anyone: a damaged entry is never passed on. The
    plaintext (the signed JWS) is not touched, so the envelope keeps its signature, id and
    channel position."""
    _, cek, _ = _decrypt(jwe, private_keys)
    recipients = []
    for r in jwe["recipients"]:
        kid = r["header"].get("kid")
        if not (isinstance(kid, str) and kid in replacements):
            recipients.append(r)
        elif (public := replacements[kid]) is not None:
            recipients.append(_recipient_entry(cek, public))
    recipients += [_recipient_entry(cek, public) for public in additions]
    return {**jwe, "recipients": recipients}


def _our_recipient(recipients: list[Any], private_keys: dict[str, dict[str, Any]]) -> dict[str, Any]:
    for entry in recipients:
        if not isinstance(entry, dict) or not isinstance(entry.get("header"), dict):
            raise EnvelopeRejected(RejectReason.MALFORMED_ENVELOPE, "malformed JWE recipient entry")
        kid = entry["header"].get("kid")
        if isinstance(kid, str) and kid in private_keys:  # a list or object kid is unhashable
            return entry
    kids = [e["header"].get("kid") for e in recipients]
    raise EnvelopeRejected(
        RejectReason.NOT_ADDRESSED_TO_US, f"no recipient entry for our keys (recipients: {kids})"
    )


def deflate(data: bytes) -> bytes:
    """Raw DEFLATE (RFC 1951), as JWE "zip": "DEF" requires (RFC 7516 section 4.1.3).

    Intel ISA-L (python-isal) writes standard DEFLATE about five times faster than zlib at
    level 1 (docs/BENCHMARKS.md); any inflater, zlib included, reads it back.
    """
    compressor = isal_zlib.compressobj(DEFLATE_LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def bounded_inflate(data: bytes, limit: int) -> bytes:
    """Raw DEFLATE (RFC 1951) that stops at `limit` bytes: a bomb never gets further."""
    if limit < 1:  # zlib takes max_length 0 to mean "no limit": fail closed instead
        raise EnvelopeRejected(RejectReason.DECOMPRESSION_LIMIT, f"the plaintext limit is {limit}")
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit)
    except zlib.error as exc:
        raise EnvelopeRejected(RejectReason.MALFORMED_ENVELOPE, f"bad DEFLATE data ({exc})") from None
    if inflater.unconsumed_tail or (not inflater.eof and inflater.decompress(b"", 1)):
        raise EnvelopeRejected(
            RejectReason.DECOMPRESSION_LIMIT, f"decompressed plaintext exceeds {limit} bytes"
        )
    if not inflater.eof:
        raise EnvelopeRejected(RejectReason.MALFORMED_ENVELOPE, "truncated DEFLATE data")
    return out
