import unicodedata

from udfs.text import clean_text, has_lone_surrogate, safe_raw


def test_clean_text_by_hand():
    assert clean_text("a\r\nb\rc") == "a\nb\nc"
    assert clean_text("bell\x07 and nul\x00 gone\ufeff") == "bell and nul gone"
    assert clean_text("keep\ttabs\nand   inner   spaces") == "keep\ttabs\nand   inner   spaces"
    assert clean_text("trailing   \nspaces\u00a0\n") == "trailing\nspaces"
    assert clean_text("a\n\n\n\n\nb") == "a\n\nb"
    assert clean_text("  \n  lead and trail  \n ") == "lead and trail"
    assert clean_text("") == "" and clean_text(" \n\t ") == ""


def test_clean_text_nfc_and_code_indentation():
    decomposed = "Cafe\u0301"
    assert clean_text(decomposed) == "Caf\u00e9"
    assert unicodedata.is_normalized("NFC", clean_text(decomposed))
    code = "def f():\n    return 1\n"
    assert clean_text(code) == "def f():\n    return 1"


def test_clean_text_idempotent():
    text = "x\r\n\r\n\r\n\r\ny \x0b z\u2028w\u0085v  "
    assert clean_text(clean_text(text)) == clean_text(text)
    assert clean_text(text) == "x\n\ny  z\nw\nv"


def test_surrogates_and_safe_raw():
    bad = b"ok \xff\xfe bad".decode("utf-8", "surrogateescape")
    assert has_lone_surrogate(bad)
    assert safe_raw(bad) == "ok \\xff\\xfe bad"
    assert not has_lone_surrogate(safe_raw(bad))
    assert not has_lone_surrogate(safe_raw("x\ud800y"))
    assert safe_raw("abc", limit=2).startswith("ab...[truncated 1 chars]")
