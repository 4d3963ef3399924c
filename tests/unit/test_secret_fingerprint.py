"""The console password fingerprint (plugins/module_utils/secret_fingerprint.py)."""
import stat

from ansible_collections.circleci_server.aws.plugins.module_utils import secret_fingerprint as fp


def test_fingerprint_matches_only_its_secret_and_never_holds_it(tmp_path):
    store = fp.SecretFingerprint(str(tmp_path / "etc" / "console_password.fingerprint"))
    assert not store.matches("Console-Password-1")
    store.record("Console-Password-1")
    text = (tmp_path / "etc" / "console_password.fingerprint").read_text()
    assert "Console-Password-1" not in text and text.startswith("pbkdf2-sha256$")
    assert stat.S_IMODE((tmp_path / "etc" / "console_password.fingerprint").stat().st_mode) == 0o600
    assert store.matches("Console-Password-1")
    assert not store.matches("Console-Password-2")
    # Salted: the same password twice gives two different fingerprints.
    assert fp.fingerprint("same") != fp.fingerprint("same")


def test_a_damaged_fingerprint_matches_nothing(tmp_path):
    path = tmp_path / "f"
    for text in ("", "garbage", "md5$1$00$00", "pbkdf2-sha256$x$zz$00"):
        path.write_text(text)
        assert not fp.SecretFingerprint(str(path)).matches("anything")
