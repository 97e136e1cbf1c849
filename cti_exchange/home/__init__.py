"""Adapter for the profile home directory: config, key files, partner pins, passphrase input."""
