"""`push -`: the list piped in on standard input is shared like a file; the same bytes piped
again are the same push (its id hashes what was read, not the spooled copy's name). So is a
pipe given by its descriptor (`push <(cat iocs.csv)`)."""

from __future__ import annotations

from cti_exchange.errors import ExitCode
from tests.cli.test_pipe_inputs import pipe_written, run_process
from tests.exchange.conftest import Exchange, received_values

PIPED = "evil[.]example.org\nhxxp://198.51.100.7/gate.php\nThe actor then moved laterally.\n203.0.113.9\n"


def test_push_of_piped_input_twice_shares_once(exchange: Exchange) -> None:
    """The push's id hashes the bytes read, not the spooled file's name: the same list piped
    again is the same push, which sends nothing the second time."""
    first = exchange.fr.run("push", "-", "--to", "cert-in", "--json", input=PIPED)
    assert first.exit_code == 0, first.stderr
    assert first.json()["partners"][0]["objects"] == 3
    again = exchange.fr.run("push", "-", "--to", "cert-in", "--json", input=PIPED)
    assert again.exit_code == 0 and again.json()["already_shared_at"], again.stderr
    assert exchange.india.run("pull").exit_code == 0
    assert sorted(received_values(exchange.india)) == [
        "203.0.113.9",
        "evil.example.org",
        "http://198.51.100.7/gate.php",
    ]


def test_push_of_nothing_usable_on_standard_input_names_dash(exchange: Exchange) -> None:
    result = exchange.fr.run("push", "-", "--to", "cert-in", input="just some words\n")
    assert result.exit_code == ExitCode.INPUT
    assert "nothing usable to share in -" in result.stderr


def test_push_from_a_pipe_given_as_dev_fd(exchange: Exchange) -> None:
    """`push <(cat iocs.csv) --to P`: exit 70 "not seekable" before."""
    listed = "type,value,tlp\nipv4,203.0.113.5,green\ndomain,evil[.]example.org,amber\n"
    with pipe_written(listed) as read_end:
        name = f"/dev/fd/{read_end}"
        result = run_process(exchange.fr.home, "push", name, "--to", "cert-in", pass_fds=(read_end,))
    assert result.returncode == 0, result.stderr
    assert exchange.india.run("pull").exit_code == 0
    assert sorted(received_values(exchange.india)) == ["203.0.113.5", "evil.example.org"]
