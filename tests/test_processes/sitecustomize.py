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

The exchange server's account passwords are hashed with scrypt N = TEST_SCRYPT_N instead of
the product's 2**15 (server/passwords.py; the cost travels in each hash, so a server verifies
a hash at the cost it was made with). At full cost a server started by a test spends about
1 s of CPU on scrypt before it serves its first page: both accounts hashed when provisioned,
the decoy hash made at start, each account's first login checked. The same scrypt, the same
hash format, a cheaper N. Tests whose point is that checks are expensive (the login throttle
and flood tests) take the `product_scrypt` fixture (tests/conftest.py): the product's N in
the test's own process, and PRODUCT_SCRYPT_ENV set so that this file leaves it alone in the
servers they start; tests/server/test_access.py checks that the product's N is 2**15.
"""

from __future__ import annotations

import os

TEST_PBKDF2_ITERATIONS = 1_000
TEST_SCRYPT_N = 2**10
PRODUCT_SCRYPT_ENV = "CTI_TESTS_PRODUCT_SCRYPT"

import cti_exchange.keys.protection as _protection  # noqa: E402
import cti_exchange.server.passwords as _passwords  # noqa: E402

_protection.PBKDF2_ITERATIONS = TEST_PBKDF2_ITERATIONS

# The product's N, as server/passwords.py sets it. Kept on that module the first time this
# file runs in a process, as this file can run twice in one (tests/conftest.py runs it, a test
# may import it as tests.test_processes.sitecustomize) and the second time sees N lowered.
PRODUCT_SCRYPT_N: int = vars(_passwords).setdefault("_PRODUCT_SCRYPT_N", _passwords._SCRYPT_N)
if os.environ.get(PRODUCT_SCRYPT_ENV) != "1":
    _passwords._SCRYPT_N = TEST_SCRYPT_N
