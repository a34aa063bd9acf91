from __future__ import annotations

from afasa_ops.redact import Redactor


def test_known_values_and_patterns_are_masked() -> None:
    r = Redactor()
    r.add("plain-secret-value")
    r.learn_environment(
        {"DB_PASSWORD": "pw-from-env", "HOME": "/root", "URL": "redis://:redispw@x:6379"}
    )
    text = (
        "plain-secret-value pw-from-env redispw postgresql://u:dsnpw@h/db "
        "Authorization: Bearer abc.def.ghi host=h password=kvpw "
        "POSTGRES_PASSWORD=compose1 API_TOKEN: tok123 HOME=/root"
    )
    out = r.redact(text)
    for secret in (
        "plain-secret-value",
        "pw-from-env",
        "redispw",
        "dsnpw",
        "abc.def.ghi",
        "kvpw",
        "compose1",
        "tok123",
    ):
        assert secret not in out, secret
    assert "HOME=/root" in out
    assert "postgresql://u:***@h/db" in out


def test_short_values_are_not_learned() -> None:
    r = Redactor()
    r.add("1")
    assert r.redact("version 1.2") == "version 1.2"


def test_redact_obj_walks_structures() -> None:
    r = Redactor()
    r.add("s3cret-xyz")
    assert r.redact_obj({"a": ["s3cret-xyz", 1], "b": ("s3cret-xyz",)}) == {
        "a": ["***", 1],
        "b": ["***"],
    }
