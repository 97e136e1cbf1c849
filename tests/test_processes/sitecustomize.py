"""Loaded by every Python process the test suite starts (tests/conftest.py puts this directory
first on PYTHONPATH), and imported by the suite's own processes.

Private key files are derived with TEST_PBKDF2_ITERATIONS PBKDF2 rounds instead of the
product's 210,000 (keys/protection.py), as Django's documentation advises a fast password
hasher for test runs: unlocking a key file costs 0.1 to 0.2 s at full strength, and the suite
unlocks thousands, about 40% of its time. The cryptography stays real (the same JWE, the same
PBKDF2, fewer rounds), and a profile written this way is one the product refuses
("it was altered"), so nothing made by the tests could pass for a real key file.

tests/cli/test_key_trust.py checks the product's own strength in a process started without
this directory: 210,000 rounds written, fewer refused.
"""

from __future__ import annotations

TEST_PBKDF2_ITERATIONS = 1_000

import cti_exchange.keys.protection as _protection  # noqa: E402

_protection.PBKDF2_ITERATIONS = TEST_PBKDF2_ITERATIONS
