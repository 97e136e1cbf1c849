"""`cti-exchange init`: create our agency profile and keys."""

from __future__ import annotations

from typing import Annotated

import typer

from cti_exchange.agency import check_init, init_agency
from cti_exchange.cli.context import JsonOption, profile_home
from cti_exchange.cli.output import Output
from cti_exchange.cli.render_keys import key_rows, key_table_columns
from cti_exchange.errors import UsageError
from cti_exchange.home.passphrase import read_passphrase
from cti_exchange.keys.model import AGENCY_ID
from cti_exchange.stix.tlp import Tlp


def init(
    ctx: typer.Context,
    agency: Annotated[
        str, typer.Option("--agency", help="Agency id: lower-case letters, digits, '-' (cert-fr).")
    ],
    name: Annotated[str, typer.Option("--name", help="Display name, e.g. CERT-FR.")],
    country: Annotated[
        str | None,
        typer.Option("--country", help="ISO 3166 code; default: from the id (cert-fr -> FR)."),
    ] = None,
    default_tlp: Annotated[
        str, typer.Option("--default-tlp", help="TLP for inputs that carry none (not clear).")
    ] = "amber",
    json_mode: JsonOption = False,
) -> None:
    """Create the agency profile and its signing (Ed25519) and encryption (X25519) keys.

    The passphrase protecting the private keys is read from a prompt, or from
    CTI_EXCHANGE_PASSPHRASE_FILE (a 0600 file) or CTI_EXCHANGE_PASSPHRASE; never from argv.
    """
    out = Output(json_mode=json_mode)
    home = profile_home(ctx)
    # Checked before the passphrase is asked for, and before the country is guessed from it.
    if not AGENCY_ID.fullmatch(agency):
        raise UsageError(
            f"--agency {agency!r} is not an agency id: lower-case letters, digits and '-', "
            "starting with a letter or digit, at most 63 characters",
            hint="e.g. --agency cert-fr",
        )
    try:
        tlp = Tlp.parse(default_tlp)
    except ValueError as exc:
        raise UsageError(f"--default-tlp: {exc}") from None
    check_init(home, agency_id=agency, country=country, default_tlp=tlp)  # before the prompt
    passphrase = read_passphrase(confirm=True, purpose="new agency keys")
    result = init_agency(
        home, agency_id=agency, name=name, country=country, passphrase=passphrase, default_tlp=tlp
    )
    profile, keyring = result.profile, result.keyring
    if json_mode:
        out.data(
            {
                "home": str(home.root),
                "agency": profile.agency_id,
                "identity": profile.identity_id,
                "keys": [
                    {"kid": k.kid, "use": k.use.value, "thumbprint": k.thumbprint} for k in keyring.keys
                ],
            }
        )
        return
    out.line(f"Created profile for {profile.agency_name} ({profile.agency_id}) in {home.root}")
    out.line(f"STIX identity: {profile.identity_id}")
    out.table(key_table_columns(), key_rows(keyring), title="Keys")
    out.note(
        "Next: send partners `cti-exchange keys export -o FILE` and read them the signing key "
        "fingerprint over another channel."
    )


def register(app: typer.Typer) -> None:
    app.command(
        "init",
        epilog="Example: CTI_EXCHANGE_PASSPHRASE_FILE=~/.cti-pass cti-exchange --home ~/cert-fr "
        "init --agency cert-fr --name CERT-FR",
    )(init)
