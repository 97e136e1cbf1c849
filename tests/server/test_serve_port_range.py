"""`serve --port` outside 0..65535 is a usage error naming the range (exit 2), refused before
anything is provisioned; it was an internal error (exit 70, OverflowError from bind())."""

from __future__ import annotations

import pytest

from tests.conftest import Agency


@pytest.mark.parametrize("port", ["70000", "65536", "-1"])
def test_a_port_out_of_range_is_a_usage_error(cert_fr: Agency, port: str) -> None:
    result = cert_fr.run("serve", "--port", port)
    assert result.exit_code == 2, result.stderr
    assert "0<=x<=65535" in result.stderr and "internal error" not in result.stderr
    assert not (cert_fr.home / "taxii-server").exists()
