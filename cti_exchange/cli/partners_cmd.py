"""`cti-exchange partners`: pin partner agencies' keys and set how we exchange with them."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from cti_exchange.cli.context import JsonOption, profile_home, writer_lock
from cti_exchange.cli.output import Output
from cti_exchange.cli.render_keys import key_json, key_rows, key_table_columns
from cti_exchange.errors import KeyStoreError, UsageError
from cti_exchange.home.safe_files import check_private_file, read_bytes, resolve_in_home
from cti_exchange.keys.key_document import MAX_KEY_DOCUMENT_BYTES
from cti_exchange.partnership import (
    add_partner,
    configure_partner,
    get_partner,
    outbox_not_empty,
    remove_partner,
    unconfirmed_envelopes,
    undelivered_envelopes,
    update_partner_keys,
)
from cti_exchange.profile.model import MAX_RESPONSE_BYTES, PartnerConfig
from cti_exchange.stix.tlp import Tlp
from cti_exchange.taxii.endpoint import shown_url
from cti_exchange.untrusted_text import escape_controls

# File options are stored as given in config.toml, where a relative path is read from the
# profile home (home/safe_files.resolve_in_home), not from the directory the command ran in.
_RELATIVE = "A relative path is relative to the profile home; give an absolute one otherwise."

partners_app = typer.Typer(
    help="Partner agencies: pin their keys, list, show, update, remove, configure TAXII.",
    epilog="Example: cti-exchange partners add cert-in --jwks cert-in.keys.json --fingerprint THUMBPRINT",
    no_args_is_help=True,
)


def _tlp_option(value: str | None, option: str) -> Tlp | None:
    if value is None:
        return None
    try:
        return Tlp.parse(value)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def _note_red_needs_allow_red(out: Output, partner: PartnerConfig) -> None:
    """`--max-tlp red` alone does not let TLP:RED through (docs/OPERATIONS.md): say so, or the
    analyst believes RED goes out and `partners show` reads as a contradiction."""
    if partner.max_tlp is Tlp.RED and not partner.allow_red:
        out.note(
            f"TLP:RED is still not sent to {partner.name}: --max-tlp caps the other levels, and "
            f"RED also needs `cti-exchange partners set {partner.name} --allow-red` (and "
            "--allow-red on the push)"
        )


def _partner_json(partner: PartnerConfig) -> dict[str, object]:
    data = partner.to_dict()
    taxii = data.get("taxii")
    if isinstance(taxii, dict) and isinstance(taxii.get("api_root"), str):
        taxii["api_root"] = shown_url(taxii["api_root"])  # a hand-edited URL may hold a password
    data["name"] = partner.name
    data["display_name"] = partner.display_name
    return data


@partners_app.command(
    "add",
    epilog="Example: cti-exchange partners add cert-in --jwks cert-in.keys.json "
    "--fingerprint uaAxdM8GeB2OAEcjEL9ALgkSbywAlqmMr3gpImTcfCE",
)
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Local name for the partner, e.g. cert-in.")],
    jwks: Annotated[Path, typer.Option("--jwks", help="The partner's `keys export` file.")],
    fingerprint: Annotated[
        str,
        typer.Option("--fingerprint", help="Partner's signing key thumbprint, got out of band."),
    ],
    max_tlp: Annotated[
        str, typer.Option("--max-tlp", help="Highest TLP we may send this partner.")
    ] = "amber",
    allow_red: Annotated[
        bool, typer.Option("--allow-red", help="Allow TLP:RED (push also needs --allow-red).")
    ] = False,
    json_mode: JsonOption = False,
) -> None:
    """Pin a partner's keys after checking the fingerprint you were given out of band."""
    home = profile_home(ctx)
    document = read_bytes(jwks, what="key file", limit=MAX_KEY_DOCUMENT_BYTES)
    with writer_lock(home, "partners add"):
        partner, keyring = add_partner(
            home,
            name,
            document,
            fingerprint=fingerprint,
            source=str(jwks),
            max_tlp=_tlp_option(max_tlp, "--max-tlp") or Tlp.AMBER,
            allow_red=allow_red,
        )
    out = Output(json_mode=json_mode)
    if partner.agency_id != name:
        # The fingerprint vouches for the file, not for the name it is pinned under: another
        # agency's file pinned as `cert-in` is a mix-up the analyst should see at once.
        out.warn(
            f"the key file is {escape_controls(partner.display_name)}'s (agency id "
            f"{partner.agency_id}), pinned under the local name {name}: check that it is the file "
            f"you meant; `cti-exchange partners remove {name}` undoes it (our TAXII server, "
            f"`serve`, names the account {partner.agency_id})"
        )
    if json_mode:
        out.data(_partner_json(partner) | {"keys": [key_json(k) for k in keyring.keys]})
        return
    out.line(
        f"Pinned {escape_controls(partner.display_name)} ({partner.agency_id}) as {partner.name}; "
        f"signing key {partner.fingerprint}"
    )
    out.note(f"Set its TAXII server with `cti-exchange partners set {name} --api-root URL ...`")
    _note_red_needs_allow_red(out, partner)


@partners_app.command("list", epilog="Example: cti-exchange partners list --json")
def list_(ctx: typer.Context, json_mode: JsonOption = False) -> None:
    """List pinned partners and what we may send them."""
    profile = profile_home(ctx).load_profile()
    partners = sorted(profile.partners.values(), key=lambda p: p.name)
    out = Output(json_mode=json_mode)
    if json_mode:
        out.data([_partner_json(p) for p in partners])
        return
    if not partners:
        out.line("No partners yet; pin one with `cti-exchange partners add`.")
        return
    out.table(
        ["name", "agency", "country", "max TLP", "TAXII API root", "pinned signing key"],
        [
            [
                p.name,
                p.agency_id,
                p.country or "",
                p.max_tlp.label + (" (RED allowed)" if p.allow_red else ""),
                shown_url(p.taxii.api_root) if p.taxii else "-",
                p.fingerprint,
            ]
            for p in partners
        ],
    )


@partners_app.command("show", epilog="Example: cti-exchange partners show cert-in")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Partner name.")],
    json_mode: JsonOption = False,
) -> None:
    """Show a partner's settings and pinned keys."""
    home = profile_home(ctx)
    partner = get_partner(home, name)
    keyring = home.partner_keyring(partner)
    out = Output(json_mode=json_mode)
    if json_mode:
        out.data(_partner_json(partner) | {"keys": [key_json(k) for k in keyring.keys]})
        return
    # The name comes from the partner's key file: shown with control characters escaped.
    out.line(
        f"{escape_controls(partner.display_name)} ({partner.agency_id}), country {partner.country or '?'}"
    )
    out.line(f"Max TLP we send: {partner.max_tlp.label}; RED allowed: {'yes' if partner.allow_red else 'no'}")
    if partner.taxii:
        t = partner.taxii
        out.line(
            escape_controls(
                f"TAXII: {shown_url(t.api_root)} read={t.read_collection} write={t.write_collection} "
                f"auth={t.auth}"
            )
        )
    out.heading("Pinned keys")
    out.table(key_table_columns(), key_rows(keyring), title="Pinned keys")


@partners_app.command("remove", epilog="Example: cti-exchange partners remove cert-in --yes")
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Partner name.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    drop_outbox: Annotated[
        bool,
        typer.Option(
            "--drop-outbox",
            help="Remove it even with envelopes still in its outbox; they are never delivered.",
        ),
    ] = False,
    json_mode: JsonOption = False,
) -> None:
    """Forget a partner and its pinned keys.

    The sent log keeps every envelope sealed for it: those its server took and it never
    acknowledged are listed by `status` apart (`unconfirmed_to_removed_partners`), not as
    undelivered.
    """
    home = profile_home(ctx)
    get_partner(home, name)
    waiting = undelivered_envelopes(home, name)
    if waiting and not drop_outbox:
        raise outbox_not_empty(name, len(waiting))
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("refusing to remove a partner without --yes when not on a terminal")
        typer.confirm(f"Remove partner {name} and its pinned keys?", abort=True)
    # Under the profile lock, which a running sync or push holds: otherwise a sync posting the
    # outbox at this moment delivered the envelopes said here to be dropped, to the partner
    # being removed. What waits is read again once the lock is ours.
    with writer_lock(home, "partners remove"):
        get_partner(home, name)
        waiting = undelivered_envelopes(home, name)
        if waiting and not drop_outbox:
            raise outbox_not_empty(name, len(waiting))
        partner = remove_partner(home, name, drop_outbox=drop_outbox)
    unconfirmed = unconfirmed_envelopes(home, name)
    out = Output(json_mode=json_mode)
    if json_mode:
        out.data(
            {
                "name": name,
                "agency_id": partner.agency_id,
                "dropped_envelopes": waiting,
                "unconfirmed_envelopes": unconfirmed,
            }
        )
        return
    out.line(f"Removed partner {name}")
    if waiting:
        out.note(
            f"Dropped {len(waiting)} envelope(s) from its outbox; they will not be delivered. If "
            f"{name} is pinned again, what we send it next follows a gap where they were: tell it "
            "to run `cti-exchange quarantine accept-gap` for it then."
        )
    if unconfirmed:
        out.note(
            f"{len(unconfirmed)} envelope(s) posted to {name} never got a receipt: the sent log "
            "keeps them, and `cti-exchange status` lists them apart, not as undelivered."
        )
    # What the removal leaves as it was (docs/OPERATIONS.md, "Removing a partner").
    out.note(
        f"What {name} sent stays in the store, and what was accepted stays in exports "
        f"(`cti-exchange triage list --partner {name}`, then `triage reject`); {name} is not told. "
        "If we run the TAXII server, restart `cti-exchange serve` to withdraw its access: from "
        "every agency served there, so tell them first."
    )


@partners_app.command(
    "update-keys",
    epilog="Example: cti-exchange partners update-keys cert-in --jwks cert-in.keys.json",
)
def update_keys(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Partner name.")],
    jwks: Annotated[Path, typer.Option("--jwks", help="The partner's new `keys export` file.")],
    fingerprint: Annotated[
        str | None,
        typer.Option(
            "--fingerprint",
            help="Only if no pinned key signed the file: new signing key thumbprint, out of band.",
        ),
    ] = None,
    old_keys_lost: Annotated[
        bool,
        typer.Option(
            "--old-keys-lost",
            help="With --fingerprint: the partner lost its old keys (made its profile again) and "
            "said so out of band: keys its file no longer lists are retired, not withdrawn.",
        ),
    ] = False,
    json_mode: JsonOption = False,
) -> None:
    """Accept a partner's rotated or revoked keys (signed by a key already pinned).

    A pinned key the new file no longer lists is withdrawn: everything it signed is refused,
    and accepted envelopes it signed have their objects rejected. When the partner lost its
    keys (a forgotten passphrase, a profile made again) and confirms its new signing key out
    of band, --fingerprint with --old-keys-lost retires them instead, as of the file's date:
    what they signed before stays accepted.

    If it revoked an encryption key, envelopes posted to it by TAXII, unconfirmed and
    encrypted to that key, are queued again, re-addressed to its current key
    (`requeued_envelopes` in --json); envelopes sealed to a file for it are listed
    (`files_to_readdress`), to write again with `cti-exchange seal --readdress ID -o FILE`.
    Envelopes already accepted that a newly revoked signing key signed after its revocation
    have their objects set to rejected, out of exports (`signed_after_revocation`; exit 4).
    """
    home = profile_home(ctx)
    document = read_bytes(jwks, what="key file", limit=MAX_KEY_DOCUMENT_BYTES)
    with writer_lock(home, "partners update-keys"):
        updated = update_partner_keys(
            home, name, document, source=str(jwks), fingerprint=fingerprint, old_keys_lost=old_keys_lost
        )
    update = updated.update
    out = Output(json_mode=json_mode)
    if json_mode:
        out.data(
            {
                "partner": name,
                "trusted_by": update.trusted_by,
                "added": list(update.added),
                "newly_revoked": list(update.newly_revoked),
                "retired_lost": list(update.retired_lost),
                "pinned_signing_key": update.anchor.thumbprint,
                "unchanged": updated.unchanged,
                "requeued_envelopes": updated.requeued,
                "files_to_readdress": updated.files_to_readdress,
                "signed_after_revocation": [f.to_dict() for f in updated.signed_after_revocation],
            }
        )
        if alert := updated.integrity_alert(name):
            raise alert
        return
    if updated.unchanged:
        out.line(f"Keys of {name} unchanged: the file holds the keys already pinned")
        return
    out.line(f"Updated keys of {name} (trusted by {update.trusted_by})")
    for kid in update.added:
        out.line(f"  added {kid}")
    for kid in update.newly_revoked:
        out.line(f"  revoked {kid}")
    for kid in update.retired_lost:
        out.line(f"  retired {kid} (lost by {name}): what it signed before the new file stays accepted")
    if updated.requeued:
        out.line(
            f"  {len(updated.requeued)} envelope(s) posted to {name} but not confirmed were encrypted "
            "to a revoked key: queued again, re-addressed at the next `sync` or `push`"
        )
    if updated.files_to_readdress:
        out.line(
            f"  {len(updated.files_to_readdress)} envelope(s) sealed to a file for {name} and not "
            f"confirmed are encrypted to a revoked key: {name} cannot open them. Unless it already "
            "did, write each again re-addressed, `cti-exchange seal --readdress ID -o FILE`, and "
            "hand that file over in place of the first:"
        )
        for envelope_id in updated.files_to_readdress:
            out.line(f"    {envelope_id}")
    for flagged in updated.signed_after_revocation:
        out.line(
            f"  ALERT envelope {flagged.envelope_id} (accepted) was signed by {flagged.signer_kid} at "
            f"{flagged.issued_at}, but {flagged.detail}: its {len(flagged.objects_rejected)} object(s) "
            "set to rejected"
        )
    if alert := updated.integrity_alert(name):
        raise alert


@partners_app.command(
    "set",
    epilog="Example: cti-exchange partners set cert-in --api-root https://taxii.cert-in.org.in/exchange/ "
    '--read-collection "$READ_COLLECTION" --write-collection "$WRITE_COLLECTION" '
    "--auth basic --username cert-fr --secret-file ~/.cti-taxii-secret\n"
    "READ_COLLECTION and WRITE_COLLECTION: the ids of the collections the partner's server "
    "gives us (UUIDs; `cti-exchange serve` prints those of its collections).",
)
def set_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Partner name.")],
    max_tlp: Annotated[
        str | None, typer.Option("--max-tlp", help="Highest TLP we send (TLP:RED aside: --allow-red).")
    ] = None,
    allow_red: Annotated[
        bool | None,
        typer.Option(
            "--allow-red/--no-allow-red",
            help="Allow TLP:RED, whatever --max-tlp says (a push also needs --allow-red).",
        ),
    ] = None,
    api_root: Annotated[str | None, typer.Option("--api-root", help="TAXII 2.1 API root URL.")] = None,
    read_collection: Annotated[
        str | None, typer.Option("--read-collection", help="Collection id (a UUID) we pull from.")
    ] = None,
    write_collection: Annotated[
        str | None, typer.Option("--write-collection", help="Collection id (a UUID) we push to.")
    ] = None,
    auth: Annotated[str | None, typer.Option("--auth", help="none, basic or bearer.")] = None,
    username: Annotated[str | None, typer.Option("--username", help="Basic auth user.")] = None,
    secret_env: Annotated[
        str | None,
        typer.Option(
            "--secret-env",
            help="NAME of the env variable holding password/token (CTI_TAXII_SECRET), not the secret.",
        ),
    ] = None,
    secret_file: Annotated[
        str | None, typer.Option("--secret-file", help=f"0600 file holding password/token. {_RELATIVE}")
    ] = None,
    ca_bundle: Annotated[
        str | None, typer.Option("--ca-bundle", help=f"CA bundle (PEM). {_RELATIVE}")
    ] = None,
    client_cert: Annotated[
        str | None, typer.Option("--client-cert", help=f"Client certificate (mutual TLS). {_RELATIVE}")
    ] = None,
    client_key: Annotated[
        str | None, typer.Option("--client-key", help=f"Client key (mutual TLS), 0600. {_RELATIVE}")
    ] = None,
    # The bounds are those of schemas/profile.schema.json, so a value out of range is refused
    # naming the option, not as a field of config.toml.
    page_size: Annotated[
        int | None,
        typer.Option("--page-size", min=1, max=10000, help="Objects per TAXII page (pull)."),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0.1, max=600, help="Seconds per TAXII request."),
    ] = None,
    retry_budget: Annotated[
        float | None,
        typer.Option(
            "--retry-budget",
            min=0,
            max=3600,
            help="Seconds to keep retrying a failing request (default 120). In one run, a server "
            "that did not answer within a partner's budget is not tried again for the other "
            "partners on it (docs/OPERATIONS.md).",
        ),
    ] = None,
    max_response_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-response-bytes",
            min=1024,
            max=MAX_RESPONSE_BYTES,
            help="Bytes: the largest answer read from its server, after decoding (default and most "
            "512 MiB); a page larger is asked for again in fewer objects.",
        ),
    ] = None,
    json_mode: JsonOption = False,
) -> None:
    """Set what we may send a partner and how to reach its TAXII server (no secrets here)."""
    given: list[object] = [max_tlp, allow_red, api_root, read_collection, write_collection, auth]
    given += [username, secret_env, secret_file, ca_bundle, client_cert, client_key]
    if all(value is None for value in [*given, page_size, timeout, retry_budget, max_response_bytes]):
        raise UsageError(
            f"nothing to set for partner {name}",
            hint="give the settings to change, e.g. --max-tlp green (see `cti-exchange partners set --help`)",
        )
    if auth is not None and auth not in ("none", "basic", "bearer"):
        raise UsageError(f"--auth must be none, basic or bearer, not {auth!r}")
    for option, seconds in (("--timeout", timeout), ("--retry-budget", retry_budget)):
        if seconds is not None and not math.isfinite(seconds):  # nan passes every range check
            raise UsageError(f"{option} must be a number of seconds, not {seconds}")
    home = profile_home(ctx)
    taxii_changes = {
        "api_root": api_root,
        "read_collection": read_collection,
        "write_collection": write_collection,
        "auth": auth,
        "username": username,
        "secret_env": secret_env,
        "secret_file": secret_file,
        "ca_bundle": ca_bundle,
        "client_cert": client_cert,
        "client_key": client_key,
        "page_size": page_size,
        "timeout_seconds": timeout,
        "retry_budget_seconds": retry_budget,
        "max_response_bytes": max_response_bytes,
    }
    # A narrower --max-tlp takes effect between runs, never inside a running push or sync.
    with writer_lock(home, "partners set"):
        partner = configure_partner(
            home,
            name,
            max_tlp=_tlp_option(max_tlp, "--max-tlp"),
            allow_red=allow_red,
            taxii_changes=taxii_changes,
        )
    out = Output(json_mode=json_mode)
    # Saved as given (the file may be made later), but a push or pull fails until it exists.
    for option, value in (
        ("--secret-file", secret_file),
        ("--ca-bundle", ca_bundle),
        ("--client-cert", client_cert),
        ("--client-key", client_key),
    ):
        if value is not None and not resolve_in_home(value, home.root).exists():
            out.warn(
                f"{option} {resolve_in_home(value, home.root)} does not exist (yet): push and pull "
                f"with {name} fail until it does"
                + (
                    ""
                    if Path(value).expanduser().is_absolute()
                    else "; a relative path is read from the profile home"
                )
            )
        elif value is not None and option in _SECRET_FILES:
            # Judged now as push and pull will judge it, not first in the next cron mail.
            try:
                check_private_file(resolve_in_home(value, home.root), what=_SECRET_FILES[option].format(name))
            except KeyStoreError as refused:
                out.warn(f"{refused.message}: push and pull with {name} fail until then; {refused.hint}")
    taxii = partner.taxii
    if taxii is not None and taxii.read_collection and taxii.read_collection == taxii.write_collection:
        # A typo more often than a design (`serve` gives each direction its own collection); a
        # server with one collection for both directions works, our own copies being skipped.
        out.warn(
            f"the read and write collections of {name} are the same, {taxii.read_collection}: "
            "--read-collection is where the partner posts for us, --write-collection where we post "
            "for it (`cti-exchange serve` prints both); check them unless its server uses one "
            "collection for both directions"
        )
    if json_mode:
        out.data(_partner_json(partner))
        return
    out.line(f"Updated partner {name}")
    if max_tlp is not None:
        _note_red_needs_allow_red(out, partner)


# Files push and pull refuse unless they are ours, 0600, not links (safe_files.check_private_file),
# named as they name them (taxii/secrets.py, taxii/client.py).
_SECRET_FILES = {
    "--secret-file": "TAXII secret file of partner {}",
    "--client-key": "partner {}: the TLS client key (--client-key)",
}


def register(app: typer.Typer) -> None:
    app.add_typer(partners_app, name="partners")
