"""The shared database's connection: a schema per test, and errors that name the URL but never its password."""

import pytest

from vectorstore.database import DatabaseUnavailable, connect, shown_url


def test_a_database_url_gets_a_schema_of_its_own(database_url: str) -> None:
    with connect(database_url) as db:
        db.execute("CREATE TABLE probe (x int)")
        assert db.execute("SELECT count(*) FROM probe").fetchone() == (0,)


def test_an_unreachable_database_is_one_line_without_the_password() -> None:
    with pytest.raises(DatabaseUnavailable) as error:
        connect("postgresql://newsdesk:s3cret@127.0.0.1:1/newsdesk")
    assert "s3cret" not in str(error.value) and "NEWSDESK_DATABASE_URL" in str(error.value)
    assert "\n" not in str(error.value)
    assert shown_url("postgresql://a:b@h/d") == "postgresql://a:***@h/d"
