"""`cti-exchange keys`: show, export, rotate and revoke our agency's keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cti_exchange.agency import change_passphrase, export_key_document, revoke_key, rotate_keys
from cti_exchange.cli.context import JsonOption, profile_home, writer_lock
from cti_exchange.cli.output import Output, streaming_to_stdout
from cti_exchange.cli.render_keys import key_json, key_rows, key_table_columns
from cti_exchange.errors import ConfigError, CtiExchangeError, KeyStoreError, UsageError
from cti_exchange.home.passphrase import read_new_passphrase
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.home.safe_files import check_private_file, read_bytes, write_output_file
from cti_exchange.keys.key_document import MAX_KEY_DOCUMENT_BYTES, verify_key_document
from cti_exchange.keys.model import KeyStatus, KeyUse

keys_app = typer.Typer(
    help="Our agency's keys: show, export for partners, rotate, revoke, change their passphrase.",
    epilog="Example: cti-exchange keys export -o cert-fr.keys.json",
    no_args_is_help=True,
)


@keys_app.command("show", epilog="Example: cti-exchange keys show --json")
def show(ctx: typer.Context, json_mode: JsonOption = False) -> None:
    """List our keys with their RFC 7638 thumbprints, to compare with partners out of band."""
    home = profile_home(ctx)
    profile = home.load_profile()
    keyring = home.keyring()
    out = Output(json_mode=json_mode)
    # Reading the public keys needs no passphrase, so nothing here judged the private file;
    # this is the command an operator runs first, and every command that unlocks refuses it.
    if (problem := _private_key_file_problem(home)) is not None:
        out.warn(problem)
    if json_mode:
        out.data({"agency": profile.agency_id, "keys": [key_json(k) for k in keyring.keys]})
        return
    out.table(key_table_columns(), key_rows(keyring), title=f"Keys of {profile.agency_id}")


def _held_elsewhere(home: ProfileHome, output: Path) -> str | None:
    """What the regular file at `output` holds when it is not an earlier key export of ours
    (re-exporting after `keys rotate` replaces that one), or None. Other targets (a directory,
    a FIFO) are judged by write_output_file."""
    if not output.is_file():
        return None
    try:
        raw = read_bytes(output, what="existing file", limit=MAX_KEY_DOCUMENT_BYTES)
        agency = verify_key_document(raw, source=str(output)).keyring.agency.id
    except CtiExchangeError:
        return "is not a key file of ours"
    ours = home.load_profile().agency_id
    return None if agency == ours else f"holds the keys of {agency}, not ours"


def _private_key_file_problem(home: ProfileHome) -> str | None:
    """Why commands that unlock our keys would refuse keys/ or private.jwe (the rule `doctor`
    and unlocking apply), or None."""
    try:
        home.keys.check_dirs()
        check_private_file(home.keys.private_path, what="private key file")
    except (ConfigError, KeyStoreError) as exc:
        return (
            f"{exc.diagnostics()}; every command that unlocks the keys refuses it until then; rotate "
            "the keys if others could have copied them"
        )
    return None


@keys_app.command("export", epilog="Example: cti-exchange keys export -o cert-fr.keys.json")
def export(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write ('-' for stdout).")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the file if it exists (refused otherwise, exit 2).")
    ] = False,
) -> None:
    """Write our public keys (a signed JWK Set, no private member) for partners to pin.
    An existing file is replaced only if it is an earlier export of ours, or with --force: it
    may be the partner's key file about to be pinned."""
    home = profile_home(ctx)
    if output != Path("-") and not force and (held := _held_elsewhere(home, output)) is not None:
        raise UsageError(
            f"{output} already exists and {held}; nothing was written",
            hint="give another path, or pass --force to replace it",
        )
    document = export_key_document(home)
    if output == Path("-"):
        with streaming_to_stdout():
            typer.echo(document.decode(), nl=False)
        return
    write_output_file(output, document, 0o644, hint="give a file path, or -o - for standard output")
    keyring = home.keyring()
    out = Output()
    out.line(f"Wrote {output}")
    out.line(f"Signing key fingerprint: {keyring.current(KeyUse.SIG).thumbprint}")
    out.note(
        "A new partner pins it with this fingerprint, read to it over a second channel (phone, in "
        "person). A partner that pinned us already takes the file with `partners update-keys`, "
        "which checks it against the keys it pinned: no new call after `keys rotate`."
    )


@keys_app.command("rotate", epilog="Example: cti-exchange keys rotate --use both")
def rotate(
    ctx: typer.Context,
    use: Annotated[str, typer.Option("--use", help="Which keys to renew: sig, enc or both.")] = "both",
    json_mode: JsonOption = False,
) -> None:
    """Make new current keys; old public keys stay to verify and decrypt older envelopes."""
    uses = {"sig": (KeyUse.SIG,), "enc": (KeyUse.ENC,), "both": (KeyUse.SIG, KeyUse.ENC)}
    if use not in uses:
        raise UsageError(f"--use must be sig, enc or both, not {use!r}")
    home = profile_home(ctx)
    home.load_profile()
    home.private_keys()  # unlocked before the lock is taken: a passphrase prompt never holds it
    # Under the profile lock: a sync or push running now signs with the keys it unlocked and
    # then signs the audit head with the current key, which must not change under it.
    with writer_lock(home, "keys rotate"):
        new = rotate_keys(home, uses[use])
    out = Output(json_mode=json_mode)
    if json_mode:
        out.data({"new_keys": [key_json(k) for k in new]})
        return
    for key in new:
        out.line(f"New current {key.use.value} key {key.kid} (thumbprint {key.thumbprint})")
    out.note("Send partners a fresh `keys export`; they run `partners update-keys`.")


@keys_app.command(
    "passphrase",
    epilog="Example: CTI_EXCHANGE_NEW_PASSPHRASE_FILE=new.pass cti-exchange keys passphrase",
)
def passphrase(ctx: typer.Context) -> None:
    """Change the passphrase of our private keys (keys/private.jwe): the keys stay the same.

    The current passphrase comes as for every command (prompt, CTI_EXCHANGE_PASSPHRASE_FILE);
    the new one is typed twice, or read from the 0600 file CTI_EXCHANGE_NEW_PASSPHRASE_FILE
    names, never from the command line. For cron: write the new passphrase file first, change
    the passphrase with it, then point CTI_EXCHANGE_PASSPHRASE_FILE at it. Backups of
    keys/private.jwe keep the old passphrase."""
    home = profile_home(ctx)
    home.load_profile()
    home.private_keys()  # unlocked (and the current passphrase checked) before anything else
    new = read_new_passphrase()
    with writer_lock(home, "keys passphrase"):
        change_passphrase(home, new)
    out = Output()
    out.line(f"Passphrase changed for the keys in {home.keys.private_path}.")
    out.note(
        "Unattended runs read the old one until CTI_EXCHANGE_PASSPHRASE_FILE (or "
        "CTI_EXCHANGE_PASSPHRASE) holds the new one; backups of private.jwe keep the old one."
    )


@keys_app.command(
    "revoke",
    epilog="Example: cti-exchange keys revoke cert-fr-sig-20261123-uaAxdM8G --reason compromised",
)
def revoke(
    ctx: typer.Context,
    kid: Annotated[str, typer.Argument(help="Key id to revoke (see `keys show`).")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the record.")] = None,
    json_mode: JsonOption = False,
) -> None:
    """Revoke a key: never used again; signatures it makes after now are rejected."""
    home = profile_home(ctx)
    home.load_profile()
    target = home.keyring().find(kid)
    if target is not None and target.status is KeyStatus.CURRENT:
        # A current key is replaced at once, which needs our private keys: unlocked first, so
        # a wrong passphrase changes nothing (not a revocation left without a replacement).
        home.private_keys()
    with writer_lock(home, "keys revoke"):
        result = revoke_key(home, kid, reason)
    out = Output(json_mode=json_mode)
    if json_mode:
        out.data(
            {
                "revoked": key_json(result.revoked),
                "replacement": key_json(result.replacement) if result.replacement else None,
            }
        )
        return
    out.line(f"Revoked {result.revoked.kid}")
    replacement = result.replacement
    if replacement:
        out.line(
            f"New current {replacement.use.value} key {replacement.kid} (thumbprint {replacement.thumbprint})"
        )
    out.note("Send partners a fresh `keys export` so they learn of the revocation.")
    if replacement and replacement.use is KeyUse.SIG:
        # The export is signed by the new key, which no partner pinned: the revoked one cannot
        # vouch for it, so `partners update-keys` asks each of them for the thumbprint.
        out.note(
            f"It is signed by the new signing key, which partners have not pinned: read them its "
            f"thumbprint {replacement.thumbprint} by another channel (phone), for `cti-exchange "
            "partners update-keys NAME --jwks FILE --fingerprint THUMBPRINT`."
        )
    others = [
        k.kid
        for k in home.keyring().keys
        if k.status is KeyStatus.CURRENT and k.kid != (replacement.kid if replacement else None)
    ]
    if others:
        out.note(
            "If keys/private.jwe itself was exposed, every key in it was: revoke the other current "
            f"key too ({', '.join(others)}) and change the passphrase (`cti-exchange keys passphrase`)."
        )


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
