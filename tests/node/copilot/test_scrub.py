from __future__ import annotations

from node.copilot.service import find_emails, find_phones, scrub, scrub_value


def test_scrub_removes_emails_phones_and_tokens():
    text = ("Mail ann.lee+aid@example.org or call +1 (555) 123-4567, 030 1234567 works too. "
            "Bearer abcdefghijklmnopqrstuvwx123 and sk-live12345678 and "
            "http://node.test/register/Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdo here")
    out = scrub(text)
    assert "example.org" not in out and "[email]" in out
    assert "555" not in out and "1234567" not in out and out.count("[phone]") == 2
    assert "abcdefghijklmnop" not in out and "sk-live" not in out
    assert "/register/[token]" in out and "Zm9v" not in out
    assert out.startswith("Mail [email] or call [phone]")


def test_scrub_keeps_ordinary_text_dates_and_ids():
    text = "Ladder needed 2024-05-01, 3 people, request 01HZX3K4Q9W8E7R6T5Y4U3I2O1 key to garden"
    assert scrub(text) == text
    assert scrub(None) == "" and scrub("") == ""


def test_finders_and_nested_values():
    assert find_emails("a@b.co and x@y.org") == ["a@b.co", "x@y.org"]
    assert find_phones("call 555-123-4567 at 10:30 on 2024-01-02") == ["555-123-4567"]
    assert find_phones("we need 12 chairs for 40 people") == []
    value = scrub_value({"a": ["mail me at z@z.io", 3], "b": {"c": "+44 20 7946 0958"}})
    assert value == {"a": ["mail me at [email]", 3], "b": {"c": "[phone]"}}


def test_scrub_removes_street_addresses_but_not_ordinary_numbers():
    for text in ("drop it at 415 Elm Street, Apt 4 please", "12b Old Mill Rd. tomorrow",
                 "7 elm street", "Hauptstraße 5, Berlin", "PO Box 123"):
        out = scrub(text)
        assert "[address]" in out, text
        assert not any(w in out for w in ("Elm", "elm", "Mill", "Haupt", "123")), out
    for text in ("3 of us can drive", "I need 2 people on the road", "12 ways to help"):
        assert scrub(text) == text
