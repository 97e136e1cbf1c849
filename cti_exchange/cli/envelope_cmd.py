"""`cti-exchange seal` and `cti-exchange open`: envelopes as files, for offline exchange."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from cti_exchange.cli.context import JsonOption, profile_home, writer_lock
from cti_exchange.cli.output import Output, refuse_stdout
from cti_exchange.cli.render_released import released_json, show_released
from cti_exchange.clock import stix_timestamp
from cti_exchange.errors import InputError, UsageError
from cti_exchange.exchange.offline import (
    AlreadyOpened,
    EnvelopeRefused,
    ReaddressedFile,
    envelope_from_document,
    exported_again,
    open_envelope_file,
    readdress_exported,
    refuse_personal_data,
    seal_bundle_for,
)
from cti_exchange.home.safe_files import check_output_target, read_bytes, write_output_file
from cti_exchange.store.erasure_tombstones import withheld_note
from cti_exchange.store.objects import not_applied_summary, revoked_accepted_note

MAX_FILE_BYTES = 1024 * 1024 * 1024


def seal(
    ctx: typer.Context,
    bundle: Annotated[
        Path | None,
        typer.Argument(help="STIX 2.1 bundle file to seal (sent byte for byte).", show_default=False),
    ] = None,
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to",
            help="Partner to seal for (repeatable). With --readdress: only for this partner "
            "(default: whichever needs it).",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Envelope file to write.", show_default=False)
    ] = None,
    readdress: Annotated[
        str | None,
        typer.Option(
            "--readdress",
            metavar="ENVELOPE_ID",
            help="Instead of a bundle: an envelope we sealed to a file, encrypted to a key the "
            "partner revoked before opening it, written again for its current key (same "
            "envelope id, sequence and signature).",
        ),
    ] = None,
    again: Annotated[
        str | None,
        typer.Option(
            "--again",
            metavar="ENVELOPE_ID",
            help="Instead of a bundle: an envelope we sealed to a file, written again as it was "
            "(a file lost or overwritten before its partner opened it).",
        ),
    ] = None,
    allow_red: Annotated[
        bool, typer.Option("--allow-red", help="Allow TLP:RED to partners whose entry allows it.")
    ] = False,
    keep_personal_data: Annotated[
        bool,
        typer.Option(
            "--keep-personal-data",
            help="Seal a bundle holding individuals' e-mail addresses, phone numbers or URLs with "
            "passwords (refused by default: the bundle is sealed as is, nothing can be withheld).",
        ),
    ] = False,
    observed_by_us: Annotated[
        bool,
        typer.Option(
            "--observed-by-us",
            help="The bundle's values are our own observations: seal them even where partners sent "
            "us the same values only at TLP:AMBER or stricter (as push --observed-by-us).",
        ),
    ] = False,
    json_mode: JsonOption = False,
) -> None:
    """Sign a bundle with our key and encrypt it to partners (and ourselves), into a file.

    The file must not exist: one sealed before and not yet opened by its partner would be lost,
    leaving a gap in its sequence. With --again ENVELOPE_ID (no bundle): a file we sealed is
    written again, byte for byte (`cti-exchange sent` lists them).

    With --readdress ENVELOPE_ID (no bundle): a file we sealed earlier that the partner cannot
    open because it revoked the encryption key it is wrapped for (`partners update-keys` lists
    them, `files_to_readdress`) is written again wrapped for its current key, and nothing else
    changes: the partner opens it in the first file's place, in order, with no gap. Refused
    (exit 2) for an envelope that is not ours, not sealed to a file for the partner,
    acknowledged by it (a receipt), or not wrapped for a key it revoked; exit 8 if the
    partner's entry no longer allows its TLP. Written 0644, as `seal` writes it (the content is encrypted).
    """
    if output is None:
        raise UsageError("give the envelope file to write: -o FILE")
    refuse_stdout(output, "seal writes the envelope to a file")
    # Before sealing, which moves the partners' channels: a target that cannot be written
    # would otherwise leave a sealed envelope no one can send (a gap in the channel).
    check_output_target(output)
    if output.exists() or output.is_symlink():
        raise UsageError(
            f"{output} exists: seal does not overwrite a file (an envelope written there and not "
            "yet opened by its partner would be lost, a gap in its sequence)",
            hint="give a new file name, or remove the old file once its partner has it; "
            "`cti-exchange seal --again ENVELOPE_ID -o FILE` writes a lost one again",
        )
    if again is not None:
        if bundle is not None or readdress is not None or allow_red or keep_personal_data or to:
            raise UsageError(
                "--again takes an envelope id and -o FILE only",
                hint="it writes an envelope we sealed before, as it was, for the partners it was for",
            )
        _write_again(ctx, again, output, json_mode)
        return
    if readdress is not None:
        if bundle is not None:
            raise UsageError(
                "give a bundle or --readdress ENVELOPE_ID, not both",
                hint="--readdress writes an envelope we sealed before; a bundle is sealed anew",
            )
        if allow_red or keep_personal_data:
            flag = "--allow-red" if allow_red else "--keep-personal-data"
            raise UsageError(f"{flag} applies when a bundle is sealed, not to --readdress")
        _readdress(ctx, readdress, to or [], output, json_mode)
        return
    if bundle is None:
        raise UsageError(
            "give the bundle file to seal",
            hint="or --readdress ENVELOPE_ID to write again a file the partner cannot open",
        )
    if not to:
        raise UsageError("give the partner to seal for: --to PARTNER (repeatable)")
    home = profile_home(ctx)
    raw = read_bytes(bundle, what="bundle", limit=MAX_FILE_BYTES)
    if not keep_personal_data:
        refuse_personal_data(home, bundle, source=str(bundle))
    # Under the profile lock, as push: the sequence numbers it takes and the key it signs with
    # must not change under it (`keys rotate`, `partners update-keys`, a sync).
    with writer_lock(home, "seal"):
        sealed = seal_bundle_for(
            home, raw, to, source=str(bundle), allow_red=allow_red, observed_by_us=observed_by_us
        )
        write_output_file(output, (json.dumps(sealed.artifact, indent=1) + "\n").encode(), 0o644)
    header = sealed.header
    out = Output(json_mode=json_mode)
    summary = {
        "envelope_id": header.envelope_id,
        "recipients": list(header.recipients),
        "sequences": {r: p.sequence for r, p in header.channels.items()},
        "objects": header.object_count,
        "signing_kid": header.signing_kid,
        "output": str(output),
    }
    if json_mode:
        out.data(summary)
        return
    out.line(
        f"Sealed {header.object_count} objects for {', '.join(header.recipients)} "
        f"into {output} (envelope {header.envelope_id})"
    )


def _write_again(ctx: typer.Context, envelope_id: str, output: Path, json_mode: bool) -> None:
    """`seal --again`: an envelope we sealed to a file, written again as it was."""
    _write_envelope_file(exported_again(profile_home(ctx), envelope_id), output, json_mode)


def _readdress(ctx: typer.Context, envelope_id: str, to: list[str], output: Path, json_mode: bool) -> None:
    """`seal --readdress`: the same signed envelope, wrapped for the partner's current key."""
    home = profile_home(ctx)
    with writer_lock(home, "seal --readdress"):
        done = readdress_exported(home, envelope_id, to)
    _write_envelope_file(done, output, json_mode)


def _write_envelope_file(done: ReaddressedFile, output: Path, json_mode: bool) -> None:
    # As `seal` writes it: the content is encrypted to its recipients, and the file is handed over.
    write_output_file(output, (json.dumps(done.artifact, indent=1) + "\n").encode(), 0o644)
    out = Output(json_mode=json_mode)
    if json_mode:
        out.data(
            {
                "envelope_id": done.envelope_id,
                "readdressed_for": done.partners,
                "sequences": done.sequences,
                "removed_kids": done.removed,
                "added_kids": done.added,
                "written_again": done.again,
                "output": str(output),
            }
        )
        return
    whom = ", ".join(done.partners)
    positions = ", ".join(f"{p} sequence {n}" for p, n in done.sequences.items())
    if done.again:
        out.line(f"Wrote envelope {done.envelope_id} into {output} again, as last written ({positions})")
    else:
        out.line(
            f"Re-addressed envelope {done.envelope_id} into {output} ({positions}): key(s) "
            f"{', '.join(done.removed)} replaced by {', '.join(done.added) or 'none'}"
        )
    out.note(
        f"Hand {output} to {whom} in place of the first file: the same signed envelope, which "
        f"it opens with `cti-exchange open` in order (no gap); if it had opened the first one "
        "after all, it refuses this one as a replay and nothing is accepted twice."
    )


def open_(
    ctx: typer.Context,
    envelope: Annotated[Path, typer.Argument(help="Envelope file (from `seal` or a TAXII read).")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the verified bundle here.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Verify only: store nothing, quarantine nothing.")
    ] = False,
    accept_gap: Annotated[
        bool,
        typer.Option("--accept-gap", help="Accept despite missing sequence numbers (recorded)."),
    ] = False,
    json_mode: JsonOption = False,
) -> None:
    """Verify an envelope (decrypt, signature, pinned signer, header, sequence, STIX) and accept it.

    Prints the verdict: signer, key fingerprint, times, sequence, or why it was rejected. Once
    a file is accepted, the sender's envelopes held in quarantine behind it go through.
    """
    refuse_stdout(output, "the verified bundle may be TLP:RED and is written 0600")
    if output is not None:
        check_output_target(output)  # before the envelope is accepted (it cannot be opened twice)
    home = profile_home(ctx)
    raw = read_bytes(envelope, what="envelope", limit=MAX_FILE_BYTES)
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        raise InputError(f"{envelope} is not JSON (truncated?)") from None
    artifact = envelope_from_document(document, source=str(envelope))
    out = Output(json_mode=json_mode)
    # Accepting stores the envelope and moves the sender's channel, as pull and sync do: under
    # the same lock, or a sync taking the same envelope meanwhile would make one of the two fail.
    guard = nullcontext() if dry_run else writer_lock(home, "open")
    try:
        with guard:
            verdict = open_envelope_file(
                home,
                artifact,
                store_result=not dry_run,
                accept_gap=accept_gap,
                received=raw if artifact is document else None,  # kept byte for byte if refused
            )
    except EnvelopeRefused as refused:
        if json_mode:
            out.data(
                {
                    "verdict": "rejected",
                    "reason": refused.rejected.reason.value,
                    "detail": refused.rejected.detail,
                    "envelope_id": refused.rejected.envelope_id,
                    "sender": refused.rejected.sender,
                    "quarantine_record": refused.record_id,
                    "recorded_before": refused.recorded_before,
                }
            )
        raise
    if isinstance(verdict, AlreadyOpened):
        _already_opened(out, verdict, output)
        return
    opened = verdict.opened
    header = opened.header
    if output is not None:
        write_output_file(output, opened.bundle_bytes, 0o600)
    result = {
        "verdict": "accepted" if verdict.stored else "verified",
        "envelope_id": header.envelope_id,
        "sender": header.sender,
        "partner": verdict.partner,
        "signing_kid": opened.signer.kid,
        "signing_key_thumbprint": opened.signer.thumbprint,
        "issued_at": stix_timestamp(header.issued_at),
        "sequence": opened.channel.sequence if opened.channel else None,
        "gap_accepted": list(opened.gap_skipped),
        "bundle_id": header.bundle_id,
        "objects": header.object_count,
        "new_versions": verdict.new_versions,
        "versions_not_applied": [n.to_dict() for n in verdict.not_applied],
        "accepted_objects_revoked": verdict.revoked_accepted,
        # Erased on request, not stored (with those of held envelopes released after it).
        "withheld_as_erased": verdict.withheld_erased + verdict.released.withheld_erased,
        "own_copy": verdict.partner is None,
        **released_json(verdict.released),
        "still_held": list(verdict.still_held),
    }
    if json_mode:
        out.data(result)
        return
    word = "ACCEPTED" if verdict.stored else "VERIFIED"
    out.line(f"Verdict: {word}" + (" (our own copy)" if verdict.partner is None else ""))
    out.table(
        ["field", "value"],
        [
            ["envelope", header.envelope_id],
            ["sender", header.sender],
            ["signed by", opened.signer.kid],
            ["key fingerprint", opened.signer.thumbprint],
            ["issued at", result["issued_at"]],
            ["sequence", str(result["sequence"] or "-")],
            ["objects", str(header.object_count)],
            [
                "new versions stored" if verdict.stored else "stored",
                str(verdict.new_versions)
                if verdict.stored
                else (
                    "nothing (--dry-run)" if dry_run else "nothing (our own copy: see `cti-exchange sent`)"
                ),
            ],
        ],
    )
    if opened.gap_skipped:
        done = "would be accepted" if dry_run else "accepted"
        out.warn(f"{done} despite missing sequence numbers {list(opened.gap_skipped)}")
    released = verdict.released
    show_released(out, released, verdict.partner)
    if verdict.still_held:
        records = ", ".join(map(str, verdict.still_held))
        out.warn(
            f"{len(verdict.still_held)} envelope(s) from {verdict.partner} still held in quarantine "
            f"behind a gap (record(s) {records}): another envelope is missing before them; open "
            f"its file and they follow, or `quarantine accept-gap {verdict.still_held[0]}` (the "
            "lowest sequence) only if the partner confirms it is lost"
        )
    revoked = verdict.revoked_accepted + released.revoked_accepted
    if note := revoked_accepted_note(str(verdict.partner), revoked):
        out.note(note)
    if note := withheld_note(str(verdict.partner), result["withheld_as_erased"]):
        out.note(note)
    if summary := not_applied_summary(verdict.not_applied + released.not_applied):
        out.warn(summary)


def _already_opened(out: Output, verdict: AlreadyOpened, output: Path | None) -> None:
    """The same envelope accepted before: exit 0, so a script opening every file of a folder
    can run again; with -o, an error, because no bundle is written."""
    sender = verdict.partner or verdict.sender
    said = f"envelope {verdict.envelope_id} from {sender} was accepted at {verdict.accepted_at}"
    if output is not None:
        raise UsageError(
            f"{said} already: {output} is not written (a bundle is written when an envelope is accepted)",
            hint=f"its objects are in the store: `cti-exchange triage list --partner {verdict.partner}`"
            if verdict.partner
            else None,
        )
    if out.json_mode:
        out.data({"verdict": "already-opened", **verdict.__dict__})
        return
    out.line("Verdict: ALREADY OPENED")
    out.note(f"{said}: nothing new, nothing quarantined")


def register(app: typer.Typer) -> None:
    app.command(
        "seal",
        epilog="\b\nExample: cti-exchange seal bundle.json --to cert-in -o envelope.json\n"
        "Example: cti-exchange seal --readdress ENVELOPE_ID -o envelope-readdressed.json",
    )(seal)
    app.command(
        "open",
        epilog="Example: cti-exchange open envelope.json -o bundle.json",
    )(open_)
