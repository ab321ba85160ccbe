from __future__ import annotations

from pathlib import Path

import pytest

from ailb.errors import InvalidRequestError, UnsupportedMediaTypeError
from ailb.rag.parsing import parse_file
from tests.unit.rag.pdf_writer import make_pdf

CORPUS = Path(__file__).parents[3] / "examples" / "company-policies"


def test_markdown_title_is_the_first_heading_and_links_keep_their_text() -> None:
    doc = parse_file(
        "notes.md", b"Intro line\n\n# Travel Rules\n\nBook via [the portal](https://x.example/a) ![logo](l.png)."
    )
    assert doc.title == "Travel Rules"
    assert doc.kind == "markdown"
    assert "Book via the portal logo." in doc.text
    assert "https://" not in doc.text


def test_markdown_without_heading_is_titled_after_the_file() -> None:
    assert parse_file("dir/remote_work-faq.md", b"just text").title == "Remote work faq"


def test_html_keeps_visible_text_in_paragraphs_and_drops_scripts_styles_and_navigation() -> None:
    html = b"""<html><head><title>Remote Work</title><style>p{color:red}</style></head>
    <body><nav>Home | HR</nav><h1>Working from home</h1><p>Up to <b>three</b> days.</p>
    <ul><li>Laptop</li><li>Headset</li></ul><script>track()</script><footer>(c) intranet</footer></body></html>"""
    doc = parse_file("remote.html", html)
    assert doc.title == "Remote Work"
    assert doc.text == "Working from home\n\nUp to three days.\n\nLaptop\n\nHeadset"


def test_html_without_title_uses_the_first_h1() -> None:
    assert parse_file("x.htm", b"<body><h1> Benefits  Overview </h1><p>Text</p></body>").title == "Benefits Overview"


def test_text_files_decode_utf8_with_bom_and_fall_back_to_latin1() -> None:
    assert parse_file("a.txt", "\ufeffcaf\u00e9 menu".encode()).text == "caf\u00e9 menu"
    assert parse_file("b.txt", "na\u00efve r\u00e9sum\u00e9".encode("latin-1")).text == "na\u00efve r\u00e9sum\u00e9"


def test_pdf_text_pages_and_metadata_title() -> None:
    data = make_pdf(
        ["Expense Policy\n\nReceipts are required above 25 dollars.", "Page two about hotels."], title="Expenses 2024"
    )
    doc = parse_file("expenses.PDF", data)
    assert doc.kind == "pdf"
    assert doc.title == "Expenses 2024"
    assert "Receipts are required above 25 dollars." in doc.text
    assert doc.text.index("Receipts") < doc.text.index("Page two about hotels.")


def test_pdf_lines_wrapped_mid_sentence_are_joined_again() -> None:
    sentence = "This sentence is long enough that the tiny PDF writer has to wrap it over several lines of text."
    doc = parse_file("wrapped.pdf", make_pdf([sentence], width=30))
    assert sentence in doc.text


def test_pdf_without_title_metadata_is_titled_after_the_file() -> None:
    assert parse_file("travel-guide.pdf", make_pdf(["Some text."])).title == "Travel guide"


def test_a_broken_pdf_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_file("broken.pdf", b"%PDF-1.4\nthis is not really a pdf")
    assert caught.value.status == 400
    assert caught.value.code == "unreadable_document"


def test_unsupported_file_types_are_refused() -> None:
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        parse_file("slides.pptx", b"PK...")
    assert caught.value.status == 415
    assert caught.value.param == "file"


def test_the_committed_corpus_pdf_reads_back() -> None:
    doc = parse_file("performance-reviews.pdf", (CORPUS / "performance-reviews.pdf").read_bytes())
    assert doc.title == "Performance Review Policy"
    assert "Promotions are decided only in the October review cycle." in doc.text


def test_html_source_line_breaks_are_spaces_but_br_breaks_a_line() -> None:
    doc = parse_file("p.html", b"<p>a wellness allowance\n   of 50 dollars</p><p>Line one<br>Line two</p>")
    assert doc.text == "a wellness allowance of 50 dollars\n\nLine one\nLine two"


def test_a_text_file_is_titled_by_its_first_line_when_that_reads_like_a_title() -> None:
    assert parse_file("guide.txt", b"New Hire Onboarding Guide\n\nWelcome!").title == "New Hire Onboarding Guide"
    assert parse_file("notes.txt", b"This file starts with a sentence.\nMore.").title == "Notes"
