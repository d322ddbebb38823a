"""Pseudonyms: stable for one secret, different for another, never the name; the secret's home."""

import os

import pytest

from common.configkit import ConfigError
from common.pseudonyms import Pseudonyms, is_file_label, is_pseudonym
from server import config as server_config
from server.privacy import PrivacyConfig

SECRET = "0123456789abcdef0123456789abcdef"


def test_the_same_account_and_secret_give_the_same_pseudonym_every_time():
    first, second = Pseudonyms(SECRET), Pseudonyms(SECRET)
    assert first.of("lab", "anna") == second.of("lab", "anna") == first.of("lab", "anna")
    assert is_pseudonym(first.of("lab", "anna")) and "anna" not in first.of("lab", "anna")


def test_another_secret_another_site_or_another_account_give_another_pseudonym():
    p = Pseudonyms(SECRET)
    assert p.of("lab", "anna") != Pseudonyms(SECRET[::-1]).of("lab", "anna")
    assert p.of("lab", "anna") != p.of("library", "anna")  # accounts are local to a site
    assert p.of("lab", "anna") != p.of("lab", "Anna")


def test_a_stored_pseudonym_is_kept_and_a_raw_name_is_turned_into_its_pseudonym():
    p = Pseudonyms(SECRET)
    assert p.normalise("lab", p.of("lab", "anna")) == p.of("lab", "anna") == p.normalise("lab", "anna")
    assert p.normalise("lab", None) is None and p.normalise("lab", "") is None


def test_a_short_secret_is_refused_and_repr_never_shows_it():
    with pytest.raises(ValueError):
        Pseudonyms("short")
    assert SECRET not in repr(Pseudonyms(SECRET))


def test_without_a_configured_secret_one_is_made_in_the_state_folder_once(tmp_path):
    cfg = PrivacyConfig()
    first = cfg.pseudonyms(str(tmp_path)).of("lab", "anna")
    secret = tmp_path / "pseudonym-secret"
    assert secret.exists() and oct(secret.stat().st_mode & 0o777) == "0o600"
    assert cfg.pseudonyms(str(tmp_path)).of("lab", "anna") == first


def test_a_secret_from_a_file_or_the_environment(tmp_path, monkeypatch):
    (tmp_path / "s").write_text(SECRET + "\n")
    from_file = PrivacyConfig(secret_file=str(tmp_path / "s")).pseudonyms("unused")
    monkeypatch.setenv("PF_TEST_PSEUDONYM", SECRET)
    from_env = PrivacyConfig(secret_env="PF_TEST_PSEUDONYM").pseudonyms("unused")
    assert from_file.of("lab", "anna") == from_env.of("lab", "anna") == Pseudonyms(SECRET).of("lab", "anna")


@pytest.mark.parametrize("table, key, fix", [
    ({"users": "names"}, "privacy.users", "use 'pseudonym' (default), 'hidden' (counts only) or 'name'"),
    ({"secret_file": "/nonexistent/secret"}, "privacy.secret_file", "create the file with the secret"),
    ({"secret_env": "PF_TEST_UNSET_VARIABLE"}, "privacy.secret_env", "export PF_TEST_UNSET_VARIABLE"),
    ({"raw_user_days": -1}, "privacy.raw_user_days", "use a value from 0 to 3650"),
])
def test_privacy_config_errors_name_the_key_and_the_fix(table, key, fix):
    os.environ.pop("PF_TEST_UNSET_VARIABLE", None)
    with pytest.raises(ConfigError) as err:
        server_config.from_dict({"inventory": "x", "privacy": table}, "server.toml")
    assert err.value.key == key and fix in err.value.fix


def test_a_state_folder_that_cannot_hold_the_secret_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError) as err:
        PrivacyConfig().pseudonyms(str(blocker / "state"))
    assert err.value.key == "privacy.secret_file" and "set secret_file" in err.value.fix


def test_the_pseudonym_command_prints_what_the_collector_stores_for_an_account(tmp_path, capsys):
    from server.__main__ import main

    (tmp_path / "fleet.toml").write_text('[sites.lab]\norganisation = "O"\ncounty = "Örebro"\n')
    (tmp_path / "server.toml").write_text(f'inventory = "fleet.toml"\nstate_dir = "{tmp_path / "state"}"\n')
    assert main(["pseudonym", "-c", str(tmp_path / "server.toml"), "--site", "lab", "anna", "bo"]) == 0
    expected = PrivacyConfig().pseudonyms(str(tmp_path / "state"))
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{expected.of('lab', 'anna')}\tlab\tanna", f"{expected.of('lab', 'bo')}\tlab\tbo"]
    assert main(["pseudonym", "-c", str(tmp_path / "server.toml"), "anna"]) == 2  # no --site: says what to give


def test_a_masked_file_name_is_a_stable_keyed_label_keeping_only_customer_tags_and_extension():
    p = Pseudonyms(SECRET)
    label = p.file_label("lab", "bracket_volvo_rev_C [kilsberg-verktyg].3mf")
    assert label == p.file_label("lab", "bracket_volvo_rev_C [kilsberg-verktyg].3mf")
    assert label.endswith(" [kilsberg-verktyg].3mf") and "volvo" not in label
    assert label != Pseudonyms(SECRET[::-1]).file_label("lab", "bracket_volvo_rev_C [kilsberg-verktyg].3mf")
    assert label != p.file_label("library", "bracket_volvo_rev_C [kilsberg-verktyg].3mf")
    assert "volvo" not in p.file_label("lab", "bracket.volvo")  # only a printable file's extension
    assert is_file_label(label) and not is_file_label("bracket.gcode")


def test_the_caches_are_keyed_by_a_per_process_hash_never_by_the_name_and_agree_with_the_hmac():
    import hashlib
    import hmac

    p = Pseudonyms(SECRET)
    made = p.of("lab", "anna")
    kept = p.stored("lab", made)  # a pseudonym an agent sent is kept as it came
    assert made == "u-" + hmac.new(SECRET.encode(), b"lab\0anna", hashlib.sha256).hexdigest()[:12]
    assert kept == made and p.stored("lab", "anna") == made and p.stored("lab", "anna") == made  # cached
    for cache in (p._cache, p._kept):
        assert cache and all(not isinstance(key, str) and "anna" not in repr(key) for key in cache)


def test_where_the_hash_seed_is_fixed_the_cache_key_is_a_keyed_digest_and_pseudonyms_are_the_same():
    import subprocess
    import sys

    code = ("from common import pseudonyms as m; p = m.Pseudonyms('0123456789abcdef0123456789abcdef'); "
            "print(m._RANDOM_STR_HASH, p.stored('lab', 'anna'), p.of('lab', 'anna'), "
            "all(type(k) is bytes and len(k) == 16 for k in p._kept))")
    out = {seed: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                env={**os.environ, "PYTHONHASHSEED": seed}).stdout.split()
           for seed in ("0", "1234", "random")}
    expected = Pseudonyms(SECRET).of("lab", "anna")
    assert out["0"] == out["1234"] == ["False", expected, expected, "True"]
    assert out["random"] == ["True", expected, expected, "False"]
