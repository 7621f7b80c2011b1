"""What reading attached documents' text costs: preparing a message (anonymise, inspect, the policy's rules,
serialise: relay/workers/tasks.prepare_message, as a worker runs it, here in-process) with a PDF or a DOCX
attached, with the text read (the PDF page check and the rules' reading, relay/anonymize/document_text.py)
against the same message with the reading switched off in this process (text_of answering "": what the
relay did before).

The PDF pages are drawn as word processors draw them: Helvetica, one TJ array per line with kerning between
words, 45 lines of about 80 characters a page. The DOCX has the same text, one paragraph a line. Printed: the
median CPU seconds (time.process_time) of --rounds runs of each, the ratio with reading against without, and
the cost of reading alone (with - without). The remembered texts are forgotten before every run, so each run
reads its document (once in cleaning; inspection then finds it remembered).

Usage: .venv/bin/python bench/document_text.py [--pages 1,50,150] [--rounds 5] [--policy supervised]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import zipfile
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.rules_cost import DOMAIN, job  # noqa: E402
from relay.anonymize import document_text  # noqa: E402
from relay.moderation.policy import PolicyBook  # noqa: E402
from relay.workers import tasks  # noqa: E402
from tests.documentkit import kerned_page, text_pdf  # noqa: E402

TEXT = "the bridge carries its load to the ground through arches and piers that push outwards at the base"
WORDS = TEXT.split()
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def lines(pages: int) -> list[str]:
    out = []
    for number in range(pages * 45):
        start = number % len(WORDS)
        out.append(" ".join((WORDS * 2)[start:start + 14]) + f" {number}")
    return out


def pdf(pages: int) -> bytes:
    text = lines(pages)
    return text_pdf(*(kerned_page(text[page * 45:(page + 1) * 45]) for page in range(pages)), compress=True)


def docx(pages: int) -> bytes:
    namespace = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    body = "".join(f"<w:p><w:r><w:t>{line}</w:t></w:r></w:p>" for line in lines(pages))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                         'content-types"><Default Extension="xml" ContentType="application/xml"/></Types>')
        archive.writestr("word/document.xml", f'<w:document xmlns:w="{namespace}"><w:body>{body}</w:body>'
                         "</w:document>")
    return out.getvalue()


def message(data: bytes, content_type: str, filename: str) -> bytes:
    m = EmailMessage()
    m["From"] = "Jane Doe <jane.doe@example.org>"
    m["To"] = f"oak.m1@{DOMAIN}"
    m["Subject"] = "homework"
    m["Message-ID"] = "<doc@example.org>"
    m.set_content("Here is my homework.\n")
    maintype, subtype = content_type.split("/")
    m.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return m.as_bytes()


def cpu(environment: tasks.Environment, raw: bytes, work: tasks.PrepareJob, rounds: int) -> tuple[float, str]:
    costs = []
    for _ in range(rounds):
        document_text._recent.clear()
        started = time.process_time()
        prepared = tasks.in_process(environment, tasks.prepare_message, raw, work)
        costs.append(time.process_time() - started)
    return statistics.median(costs), prepared.decision.action


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", default="1,50,150", help="pages of each document, comma-separated")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--policy", default="supervised")
    args = parser.parse_args()
    environment = tasks.Environment(PolicyBook(REPO / "policies"), None)
    work = job(args.policy)
    reading = document_text.text_of
    for pages in (int(p) for p in args.pages.split(",")):
        for kind, data, content_type in (("PDF", pdf(pages), "application/pdf"), ("DOCX", docx(pages), DOCX)):
            raw = message(data, content_type, f"homework.{kind.lower()}")
            tasks.in_process(environment, tasks.prepare_message, raw, work)  # warm-up
            document_text.text_of = lambda data, kind: ""  # type: ignore[assignment]  # the relay before
            without, _ = cpu(environment, raw, work, args.rounds)
            document_text.text_of = reading  # type: ignore[assignment]
            with_text, action = cpu(environment, raw, work, args.rounds)
            print(f"{kind:4} {pages:3} pages ({len(data) / 1024:7.1f} KB): without reading {without * 1000:8.1f} ms, "
                  f"with {with_text * 1000:8.1f} ms CPU ({action}); reading {1000 * (with_text - without):7.1f} ms; "
                  f"ratio with/without {with_text / without:.2f}")


if __name__ == "__main__":
    main()
