"""`sight --tlp` looser than the indicator's TLP: found on a walkthrough, the error named the
problem but not the fix."""

from __future__ import annotations

from tests.conftest import Agency
from tests.triage.conftest import FR_IDENTITY, identity, indicator, put


def test_a_looser_tlp_is_refused_with_the_fix(partnered: tuple[Agency, Agency]) -> None:
    _, india = partnered
    put(india, [identity(FR_IDENTITY, "CERT-FR"), indicator("seen.example", tlp="amber")])
    result = india.run("sight", "seen.example", "--tlp", "green")
    assert result.exit_code == 2
    assert "cannot be less strict than its TLP:AMBER" in result.stderr
    assert "leave --tlp out (the sighting is then TLP:AMBER) or give a stricter level" in result.stderr
