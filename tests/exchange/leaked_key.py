"""A partner's key in the wrong hands: the agency's next push signs with a key of our choosing,
whatever its status (retired, revoked), as whoever holds a leaked copy of it would."""

from __future__ import annotations

from typing import Any

import pytest

import cti_exchange.exchange.push as push
from cti_exchange.envelope.seal import SenderKeys
from cti_exchange.home.profile_home import ProfileHome
from cti_exchange.keys.model import KeyUse
from tests.conftest import PASSPHRASE, Agency


def sign_next_pushes_with(monkeypatch: pytest.MonkeyPatch, agency: Agency, kid: str) -> None:
    """The agency's pushes sign with `kid` (until the monkeypatch is undone)."""
    home = ProfileHome(agency.home)
    private = home.keys.unlock(PASSPHRASE)

    def sender(_: ProfileHome, now: Any = None) -> SenderKeys:
        return SenderKeys(
            agency_id=agency.agency_id,
            signing_key=private[kid],
            own_encryption_key=home.keyring().current(KeyUse.ENC).public_jwk,
        )

    monkeypatch.setattr(push, "sender_keys", sender)
