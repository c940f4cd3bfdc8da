"""The one reader of secrets named in config (intake, write-back, 3PL, carriers)."""

from backorder.secrets import read_secret, why_missing


def test_the_environment_wins_then_the_files_first_line(tmp_path, monkeypatch):
    f = tmp_path / "secret"
    f.write_text("  from-file \nsecond line\n")
    monkeypatch.setenv("BO_TEST_SECRET", "from-env")
    assert read_secret("BO_TEST_SECRET", str(f)) == "from-env"
    monkeypatch.setenv("BO_TEST_SECRET", "")  # set but empty: the file
    assert read_secret("BO_TEST_SECRET", str(f)) == "from-file"
    assert read_secret(None, str(f)) == "from-file"


def test_nothing_readable_is_empty_and_says_why(tmp_path, monkeypatch):
    monkeypatch.delenv("BO_TEST_SECRET", raising=False)
    missing, empty = tmp_path / "missing", tmp_path / "empty"
    empty.write_text("")
    assert read_secret("BO_TEST_SECRET", None) == ""
    assert read_secret(None, str(missing)) == "" and read_secret(None, str(empty)) == ""
    assert read_secret(None, None) == ""
    assert why_missing("BO_TEST_SECRET", None) == "environment variable BO_TEST_SECRET is not set or empty"
    assert why_missing(None, str(empty)) == f"{empty} is empty"
    assert why_missing(None, str(missing)).startswith(f"cannot read {missing}: ")
    assert "no secret configured" in why_missing(None, None)
