"""Id prefixes an analyst copies from the list (found on a walkthrough): two objects whose ids
share their first 8 hex digits read the same on a terminal, and `triage show` of that prefix
said only "names several objects". The list now cuts ids where they differ, and the refusal
names the candidates."""

from __future__ import annotations

from cti_exchange.cli.render_triage import _short_ids
from tests.conftest import Agency
from tests.triage.conftest import indicator, put

TWINS = (
    "indicator--6a1f0a4e-1111-4c1e-8a11-000000000001",
    "indicator--6a1f0a4e-2222-4c1e-8a11-000000000002",
)


def test_ids_shown_together_are_cut_where_they_differ() -> None:
    alone = _short_ids([TWINS[0], "indicator--7b2e0000-1111-4c1e-8a11-000000000003"])
    assert alone[TWINS[0]] == "indicator--6a1f0a4e"
    together = _short_ids([*TWINS, TWINS[0]])
    assert together == {TWINS[0]: "indicator--6a1f0a4e-1111", TWINS[1]: "indicator--6a1f0a4e-2222"}


def test_an_ambiguous_prefix_names_its_candidates(cert_in: Agency) -> None:
    put(
        cert_in,
        [indicator("first.example", object_id=TWINS[0]), indicator("second.example", object_id=TWINS[1])],
    )
    refused = cert_in.run("triage", "show", "indicator--6a1f0a4e")
    assert refused.exit_code == 2
    assert (
        TWINS[0] in refused.stderr and TWINS[1] in refused.stderr and "give more of the id" in refused.stderr
    )
    shown = cert_in.run("triage", "show", "indicator--6a1f0a4e-2222")
    assert shown.exit_code == 0 and "second.example" in shown.stdout


def test_hashes_are_shown_whole_on_a_terminal() -> None:
    """A SHA-256 was cut to 60 characters (`f20ed03b...3dd8... (64 characters)`): it could be
    neither read out nor pasted into `triage accept`."""
    from types import SimpleNamespace

    from cti_exchange.cli.render_triage import _label

    digest = "f20ed03b" * 8
    for ioc_type, value in (("sha256", digest), ("sha512", digest * 2)):
        line = SimpleNamespace(object=SimpleNamespace(ioc_type=ioc_type, value=value, name=None))
        assert _label(line, 60) == value  # type: ignore[arg-type]
    # Every value, as a URL of 69 characters was cut too (`...correlat... (69 characters)`);
    # a name (an object with no indicator value) is text, cut.
    long_value = SimpleNamespace(
        object=SimpleNamespace(ioc_type="domain-name", value="a" * 80 + ".example", name=None)
    )
    assert _label(long_value, 60) == "a" * 80 + ".example"  # type: ignore[arg-type]
    long_name = SimpleNamespace(object=SimpleNamespace(ioc_type=None, value=None, name="Campaign " * 10))
    assert _label(long_name, 60).endswith("(90 characters)")  # type: ignore[arg-type]
