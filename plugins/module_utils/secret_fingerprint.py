# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A salted, slow fingerprint of a secret kept in a root-only file on the host.

Replicated never shows the console password back, so whether a password the
user changed differs from the one set can only be told from what was set
last: this keeps a PBKDF2-SHA256 fingerprint of it (never the secret itself),
mode 0600, and says whether a given secret matches it.
"""

from __future__ import absolute_import, division, print_function

import binascii
import hashlib
import hmac
import os

SCHEME = "pbkdf2-sha256"
ITERATIONS = 200000


def fingerprint(secret, salt=None, iterations=ITERATIONS):
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), salt, iterations)
    return "%s$%d$%s$%s" % (SCHEME, iterations, binascii.hexlify(salt).decode(), binascii.hexlify(digest).decode())


def matches(secret, stored):
    """True when `stored` (a fingerprint() line) is the fingerprint of `secret`."""
    try:
        scheme, iterations, salt, digest = stored.strip().split("$")
        if scheme != SCHEME:
            return False
        expected = fingerprint(secret, binascii.unhexlify(salt), int(iterations)).split("$")[3]
    except (ValueError, TypeError, binascii.Error):
        return False
    return hmac.compare_digest(expected, digest)


class SecretFingerprint:
    """The fingerprint file at `path` (0600, created with its directory 0700 if missing)."""

    def __init__(self, path):
        self.path = path

    def read(self):
        try:
            with open(self.path, "r") as handle:
                return handle.read()
        except (IOError, OSError):
            return None

    def matches(self, secret):
        stored = self.read()
        return stored is not None and matches(secret, stored)

    def record(self, secret):
        directory = os.path.dirname(self.path)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        temporary = "%s.tmp.%d" % (self.path, os.getpid())
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(fingerprint(secret) + "\n")
        os.chmod(temporary, 0o600)
        os.rename(temporary, self.path)
