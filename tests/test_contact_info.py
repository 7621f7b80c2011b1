"""The contact_info rule: contact details are found in any written form, ordinary numbers and words are not.

Positives name the kind and the exact span expected; negatives must give nothing in any of several regions. A
labelled set of realistic mentoring messages measures precision and recall at the message level.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

from relay.moderation.findings import Finding
from relay.moderation.rules import contact_info
from relay.moderation.rules.contact_info import find_contact_info

RELAY = "relay.example.org"
ALIAS = "maple.k7x2qa@relay.example.org"
LABELLED = Path(__file__).parent / "data" / "contact_info_labelled.jsonl"
NEGATIVE_REGIONS = ("US", "GB", "DE", "FR", "IN", "BR", "JP", "NG")


def scan(text: str, region: str = "US") -> list[Finding]:
    return find_contact_info(text, region=region, allowed_addresses=[ALIAS], allowed_domains=[RELAY])


POSITIVES = [
    # e-mail addresses, plain and obfuscated
    ("write to jane.doe@gmail.com please", "US", "email", "jane.doe@gmail.com"),
    ("JANE.DOE+mentor@School.EDU is my school one", "US", "email", "JANE.DOE+mentor@School.EDU"),
    ("it's jane at gmail dot com", "US", "email", "jane at gmail dot com"),
    ("jane(at)gmail.com", "US", "email", "jane(at)gmail.com"),
    ("reach me: jane [at] gmail [dot] com", "US", "email", "jane [at] gmail [dot] com"),
    ("jane {at} outlook {dot} co {dot} uk", "GB", "email", "jane {at} outlook {dot} co {dot} uk"),
    ("email me at jane@gmail", "US", "email", "jane@gmail"),
    ("j a n e @ g m a i l . c o m", "US", "email", "j a n e @ g m a i l . c o m"),
    ("mail: jane.doe at hotmail.com", "US", "email", "jane.doe at hotmail.com"),
    ("jane_doe AT gmail DOT com", "US", "email", "jane_doe AT gmail DOT com"),
    ("écris-moi : lucas.martin arobase free.fr", "FR", "email", "lucas.martin arobase free.fr"),
    ("jonas punkt weber at web punkt de", "DE", "email", "jonas punkt weber at web punkt de"),
    ("another alias on our relay is not mine: jane@example.org", "US", "email", "jane@example.org"),
    # phone numbers in the region's own format
    ("call me at (415) 555-2671", "US", "phone", "(415) 555-2671"),
    ("text me 212-555-0199 tonight", "US", "phone", "212-555-0199"),
    ("my cell is 555-123-4567", "US", "phone", "555-123-4567"),
    ("call 555 1234 after six", "US", "phone", "555 1234"),
    ("call me at 415.555.2671", "US", "phone", "415.555.2671"),
    ("ring me on 020 7946 0958", "GB", "phone", "020 7946 0958"),
    ("my mobile 07911 123456", "GB", "phone", "07911 123456"),
    ("meine Nummer: 030 12345678", "DE", "phone", "030 12345678"),
    ("Handy 0151 23456789", "DE", "phone", "0151 23456789"),
    ("mon numéro : 06 12 34 56 78", "FR", "phone", "06 12 34 56 78"),
    ("call on 98765 43210", "IN", "phone", "98765 43210"),
    ("meu celular (11) 91234-5678", "BR", "phone", "(11) 91234-5678"),
    ("mi número 55 1234 5678", "MX", "phone", "55 1234 5678"),
    ("my line is 0803 123 4567", "NG", "phone", "0803 123 4567"),
    ("my number 0712 345678", "KE", "phone", "0712 345678"),
    ("give us a ring on 0412 345 678", "AU", "phone", "0412 345 678"),
    ("携帯は090-1234-5678です", "JP", "phone", "090-1234-5678"),
    ("llámame al 612 34 56 78", "ES", "phone", "612 34 56 78"),
    ("il mio numero è 333 123 4567", "IT", "phone", "333 123 4567"),
    ("WhatsApp me on 082 123 4567", "ZA", "phone", "082 123 4567"),
    ("my number is 0412345678", "UK", "phone", "0412345678"),
    # international numbers, whatever the program's region
    ("+44 20 7946 0958", "US", "phone", "+44 20 7946 0958"),
    ("mein Handy +49 151 23456789", "US", "phone", "+49 151 23456789"),
    ("WhatsApp +33 6 12 34 56 78", "US", "phone", "+33 6 12 34 56 78"),
    ("call +91 98765 43210 after 7", "US", "phone", "+91 98765 43210"),
    ("zap +55 11 91234-5678", "US", "phone", "+55 11 91234-5678"),
    ("+52 55 1234 5678 es mi cel", "US", "phone", "+52 55 1234 5678"),
    ("+234 803 123 4567", "GB", "phone", "+234 803 123 4567"),
    ("+254 712 345678", "IN", "phone", "+254 712 345678"),
    ("+61 412 345 678", "US", "phone", "+61 412 345 678"),
    ("+81 90-1234-5678", "DE", "phone", "+81 90-1234-5678"),
    ("+34 612 34 56 78", "US", "phone", "+34 612 34 56 78"),
    ("+39 333 123 4567", "FR", "phone", "+39 333 123 4567"),
    ("+27 82 123 4567", "US", "phone", "+27 82 123 4567"),
    ("+1 (415) 555-2671", "DE", "phone", "+1 (415) 555-2671"),
    ("+1 555 010 4477", "US", "phone", "+1 555 010 4477"),  # outside the valid ranges: why the leniency is POSSIBLE
    ("+44 (0)20 7946 0958", "US", "phone", "+44 (0)20 7946 0958"),
    ("0044 20 7946 0958", "GB", "phone", "0044 20 7946 0958"),
    # phone numbers in words, or in words and digits
    ("five five five, one two three, four five six seven", "US", "phone_words", None),
    ("call 555 one two three 4567", "US", "phone_words", "555 one two three 4567"),
    ("oh seven seven double zero, nine double zero one two three", "GB", "phone_words", None),
    ("nine-one-seven five-five-five oh-one-two-three", "US", "phone_words", None),
    ("seven one eight, five five five, oh one double two", "US", "phone_words", None),
    # URLs and bare domains
    ("see example.com", "US", "domain", "example.com"),
    ("my site: www.site.org.", "US", "url", "www.site.org"),
    ("bit.ly/xyz", "US", "url", "bit.ly/xyz"),
    ("(https://example.com/a/b?c=d)", "US", "url", "https://example.com/a/b?c=d"),
    ("my blog is janedoe.co.uk now", "GB", "domain", "janedoe.co.uk"),
    ("HTTP://WWW.EXAMPLE.PY/page", "US", "url", "HTTP://WWW.EXAMPLE.PY/page"),
    # meeting links and meeting IDs
    ("join zoom.us/j/1234567890", "US", "meeting_link", "zoom.us/j/1234567890"),
    ("https://us02web.zoom.us/j/81234567890?pwd=abc", "US", "meeting_link", None),
    ("meet.google.com/abc-defg-hij", "US", "meeting_link", "meet.google.com/abc-defg-hij"),
    ("teams.microsoft.com/l/meetup-join/19%3ameeting", "US", "meeting_link", None),
    ("whereby.com/jane-room", "US", "meeting_link", "whereby.com/jane-room"),
    ("meet.jit.si/OurRoom", "US", "meeting_link", "meet.jit.si/OurRoom"),
    ("Zoom meeting ID: 812 3456 7890", "US", "meeting_link", "812 3456 7890"),
    # messaging and social handles
    ("wa.me/447911123456", "US", "handle", "wa.me/447911123456"),
    ("t.me/jane_doe", "US", "handle", "t.me/jane_doe"),
    ("my telegram is @jane_doe", "US", "handle", "@jane_doe"),
    ("Signal: jane.42", "US", "handle", "jane.42"),
    ("my insta is jane.doe_art", "US", "handle", "jane.doe_art"),
    ("my IG is sunny_day", "US", "handle", "sunny_day"),
    ("instagram.com/jane.doe", "US", "handle", "instagram.com/jane.doe"),
    ("add me on snap: janed22", "US", "handle", "janed22"),
    ("my snapchat is sunnyjane", "US", "handle", "sunnyjane"),
    ("tiktok.com/@janedoe", "US", "handle", "tiktok.com/@janedoe"),
    ("my discord is jane#1234", "US", "handle", "jane#1234"),
    ("my discord is janedoe", "US", "handle", "janedoe"),
    ("WeChat ID: jane_wx88", "US", "handle", "jane_wx88"),
    ("kik: janedoe99", "US", "handle", "janedoe99"),
    ("skype: live:jane.doe", "US", "handle", "live:jane.doe"),
    ("fb.com/jane.doe.77", "US", "handle", "fb.com/jane.doe.77"),
    ("linkedin.com/in/jane-doe", "US", "handle", "linkedin.com/in/jane-doe"),
    ("twitter.com/janedoe", "US", "handle", "twitter.com/janedoe"),
    ("x.com/janedoe", "US", "handle", "x.com/janedoe"),
    ("follow me on X @janedoe", "US", "handle", "@janedoe"),
    ("I'm @jane_doe everywhere", "US", "handle", "@jane_doe"),
    ("i'm jane.d on discord", "US", "handle", "jane.d"),
    ("my username is coolkid_2009", "US", "handle", "coolkid_2009"),
    ("add me on roblox im BuilderBoy2010", "US", "handle", "BuilderBoy2010"),
    ("find me on Facebook as Jane Doe", "US", "handle", "Jane Doe"),
    # street addresses
    ("221B Baker Street", "GB", "street_address", "221B Baker Street"),
    ("1600 Pennsylvania Avenue NW", "US", "street_address", "1600 Pennsylvania Avenue NW"),
    ("350 Fifth Ave. in New York", "US", "street_address", "350 Fifth Ave."),
    ("Apt 4B, 55 W 42nd St", "US", "street_address", "55 W 42nd St"),
    ("Hauptstraße 5", "DE", "street_address", "Hauptstraße 5"),
    ("Berliner Straße 12a", "DE", "street_address", "Berliner Straße 12a"),
    ("12 rue de la Paix", "FR", "street_address", "12 rue de la Paix"),
    ("Calle de Alcalá 120", "ES", "street_address", "Calle de Alcalá 120"),
    ("Via Garibaldi 27", "IT", "street_address", "Via Garibaldi 27"),
    ("PO Box 123", "US", "street_address", "PO Box 123"),
    ("Springfield, IL 62704", "US", "street_address", "Springfield, IL 62704"),
    ("Leeds LS6 2AB", "GB", "street_address", "Leeds LS6 2AB"),
]

NEGATIVES = [
    # dates and times
    "Let's talk on 2026-11-03.",
    "The deadline is 03/11/2026 and the next one 12.03.2026.",
    "See you on 3 Nov 2026, or November 3rd at the latest.",
    "Session at 14:30, or 2:30pm if that's easier; I work 9-5.",
    "My visa appointment is 2026-12-08 08:15.",
    # prices, scores, measurements, percentages, years
    "It cost $1,299.99, the ticket was €45 and the flat 1.500,00 EUR.",
    "We won 3-2, I got 98/100 and the app has 4.5/5 stars.",
    "I ran 5 km, lifted 12.5 kg, I'm 180 cm and the room is 3x4.",
    "Attendance went up 45% and then 12.5 %.",
    "I studied there 2019-2023 and graduated in 2024.",
    # ISBNs, order and reference numbers, course codes, page references, versions
    "The book is 978-3-16-148410-0, also ISBN 0-306-40615-2 and ISBN 9780306406157.",
    "Order #123456789 shipped, ref 2026-AB-1234, invoice 48213977.",
    "My student number is 20231234 and the case number 2026-000481.",
    "Tracking number 1Z999AA10123456784 arrives Thursday.",
    "My exam number is 1234567890.",
    "See issue#1234 on the tracker.",
    "I'm taking CS 101 and MATH 2410 this term.",
    "Read chapter 12, pp. 230-245, and page 1,204 of the reader.",
    "Upgrade to Python 3.11.7 or v2.4.1 of the library.",
    # (decimals that are not a pair of coordinates: "51.5074, -0.1278" together is London, a location below)
    "x = 3.14159265, y = 51.5074 and z = -0.1278; rounds went 12-10-8-15.",
    # the relay's own addresses and domain
    f"Write to {ALIAS} as usual.",
    "Use the help page https://relay.example.org/help or www.relay.example.org.",
    "My alias is maple.k7x2qa at relay dot example dot org.",
    "Only the @relay.example.org addresses work.",
    # ordinary "@" and "at"
    "meet @ 5 at the library",
    "See you @home, I'm at the library until noon.",
    # platforms named without a handle
    "I saw it on Instagram.",
    "My instagram is private, sorry.",
    "Discord is where we do homework.",
    "I'm on WhatsApp a lot but I know we keep it here.",
    "TikTok — yeah, I spend way too much time on it.",
    "I can't handle the stress before exams.",
    "Please add me to the list for the workshop.",
    "DM me: whenever, and follow me: left at the gym.",
    # file names, abbreviations, sentence punctuation
    "I attached report.pdf, notes.docx, main.py, README.md and data.csv.",
    "Some courses, e.g. statistics, i.e. the basics, start at 9 a.m. or 2 p.m. in the U.S.",
    "That was the end.Next time I'll be faster.",
    "I am done.It was a long day.",
    "I use Node.js and ASP.NET at work.",
    "Dr. Patel and St. Mary's school, Mt. Kenya.",
    # near misses for addresses
    "I live near Baker Street.",
    "We had 12 via Zoom last term.",
    "My PS5 2TB arrived.",
]


@pytest.mark.parametrize(("text", "region", "kind", "match"), POSITIVES)
def test_finds_contact_details(text: str, region: str, kind: str, match: str | None) -> None:
    findings = scan(text, region)
    assert any(f.kind == kind for f in findings), f"{kind} not found in {text!r}: {findings}"
    found = next(f for f in findings if f.kind == kind)
    assert found.match == (text if match is None else match)
    assert text[found.start : found.end] == found.match
    assert found.rule == "contact_info"


@pytest.mark.parametrize("text", NEGATIVES)
def test_ignores_ordinary_text(text: str) -> None:
    for region in NEGATIVE_REGIONS:
        assert scan(text, region) == [], region


def test_findings_are_sorted_exact_and_non_overlapping() -> None:
    text = (
        "Mail jane.doe@gmail.com or call +44 20 7946 0958. My insta is jane.doe_art, the zoom is "
        "zoom.us/j/1234567890 and I live at 221B Baker Street. Or five five five, one two three, 4567."
    )
    findings = scan(text)
    assert [f.kind for f in findings] == ["email", "phone", "handle", "meeting_link", "street_address", "phone_words"]
    for finding in findings:
        assert text[finding.start : finding.end] == finding.match
    for before, after in itertools.pairwise(findings):
        assert before.end <= after.start


def test_offsets_hold_when_lower_case_is_longer() -> None:
    text = "İstanbul'dan yaz: jane@gmail.com veya +90 532 123 45 67"  # "İ".lower() has two characters
    findings = scan(text, "TR")
    assert [(f.kind, f.match) for f in findings] == [("email", "jane@gmail.com"), ("phone", "+90 532 123 45 67")]
    assert all(text[f.start : f.end] == f.match for f in findings)


def test_overlapping_detections_keep_the_longer_one() -> None:
    assert [f.kind for f in scan("jane.doe@gmail.com")] == ["email"]  # not also the domain gmail.com
    assert [f.kind for f in scan("https://zoom.us/j/2125550199")] == ["meeting_link"]  # not also a phone
    assert [f.match for f in scan("jane(at)proton.me")] == ["jane(at)proton.me"]


def test_allowed_addresses_and_domains() -> None:
    text = "maple.k7x2qa@relay.example.org, oak@relay.example.org, https://mentors.relay.example.org/x"
    assert find_contact_info(text, allowed_domains=[RELAY]) == []
    only_alias = find_contact_info(text, allowed_addresses=["Maple.K7X2QA@relay.example.org"])
    assert [f.match for f in only_alias] == ["oak@relay.example.org", "https://mentors.relay.example.org/x"]
    lookalike = find_contact_info("relay.example.org.evil.com/login", allowed_domains=[RELAY])
    assert [f.kind for f in lookalike] == ["url"]


def test_finding_as_dict() -> None:
    (finding,) = scan("jane@gmail.com")
    expected = {"rule": "contact_info", "kind": "email", "match": "jane@gmail.com", "start": 0, "end": 14}
    assert finding.as_dict() == expected


def _labelled() -> list[dict[str, object]]:
    with LABELLED.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def test_labelled_set_is_realistic_and_balanced() -> None:
    rows = _labelled()
    assert len(rows) >= 200
    assert len({row["text"] for row in rows}) == len(rows)
    share = sum(bool(row["contact"]) for row in rows) / len(rows)
    assert 0.40 <= share <= 0.50
    assert len({row["region"] for row in rows}) >= 10


def test_labelled_set_precision_and_recall() -> None:
    rows = _labelled()
    missed, wrongly_flagged = [], []
    true_positives = 0
    for row in rows:
        text, region, contact = str(row["text"]), str(row["region"]), bool(row["contact"])
        findings = find_contact_info(text, region=region, allowed_domains=[RELAY])
        if findings and contact:
            true_positives += 1
        elif findings:
            wrongly_flagged.append(f"  [{region}] {text!r} -> {[(f.kind, f.match) for f in findings]}")
        elif contact:
            missed.append(f"  [{region}] {text!r}")
    precision = true_positives / (true_positives + len(wrongly_flagged))
    recall = true_positives / (true_positives + len(missed))
    print(f"contact_info precision={precision:.3f} recall={recall:.3f} on {len(rows)} messages")
    report = "\n".join(["false positives:", *wrongly_flagged, "false negatives:", *missed])
    assert precision >= 0.95 and recall >= 0.95, report


def test_phone_matcher_only_runs_near_seven_digit_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the phonenumbers matcher ran on text without a run of seven digits")

    monkeypatch.setattr(contact_info.phonenumbers, "PhoneNumberMatcher", refuse)
    assert scan("Session at 14:30 on 3 Nov, room 204, $1,299.99, CS 101, 98/100, call me maybe") == []


def test_performance_sanity_on_a_clean_message() -> None:
    """Not a timed assertion: prints what a 2 KB clean message costs, for a human to judge."""
    clean = [str(row["text"]) for row in _labelled() if not row["contact"]]
    message = " ".join(clean)[:2048]
    assert scan(message) == []
    runs = 50
    started = time.perf_counter()
    for _ in range(runs):
        scan(message)
    per_message = (time.perf_counter() - started) / runs
    print(f"contact_info on a {len(message)}-character clean message: {per_message * 1e6:.0f} µs")


# --- obfuscated addresses on any domain whose suffix is on the public suffix list (issue 11, item 5) --------
@pytest.mark.parametrize(
    "text, address",
    [
        ("theo dot vlindqvist at mentor-mail dot example", "theo dot vlindqvist at mentor-mail dot example"),
        ("mail me: x [at] y [dot] zone", "x [at] y [dot] zone"),
        ("write to amaru (at) andes-post (dot) pe", "amaru (at) andes-post (dot) pe"),
        ("jane at school dot edu dot au thanks", "jane at school dot edu dot au"),
        ("kim (at) lab (dot) museum", "kim (at) lab (dot) museum"),
        ("kim at lab dot co dot uk please", "kim at lab dot co dot uk"),
        ("ana {at} correo [dot] xn--p1ai", "ana {at} correo [dot] xn--p1ai"),
    ],
)
def test_obfuscated_address_on_any_public_suffix(text: str, address: str) -> None:
    assert [(f.kind, f.match) for f in scan(text)] == [("email", address)]


@pytest.mark.parametrize(
    "text",
    [
        "we met at lunch and drew a dot on the map",
        "Look at this dot plot in the report",
        "I arrived at 5 dot 30",
        "the dot at the end of the sentence is missing",
        "I am at home. Dot the i and cross the t",
        "bob at home dot later",
        "x [at] y [dot] notarealsuffix",
    ],
)
def test_ordinary_sentences_with_at_and_dot_are_not_addresses(text: str) -> None:
    assert scan(text) == []


@pytest.mark.parametrize("text, kind, found", [
    ("i live at 12 elm street near the park", "street_address", "12 elm street"),  # typed in lower case
    ("my address is 45 oak avenue, come by", "street_address", "45 oak avenue"),
    ("text me on 07700 900123 after school", "phone", "07700 900123"),  # a UK mobile in a US program
    ("appelle-moi au 06 12 34 56 78", "phone", "06 12 34 56 78"),  # a French one
])
def test_contact_details_as_a_young_or_foreign_participant_writes_them(text: str, kind: str, found: str) -> None:
    assert [(f.kind, f.match) for f in scan(text)] == [(kind, found)]


@pytest.mark.parametrize("text", ["it's a 2 way street, you know", "we drove 3 long roads", "order 2026112345",
                                  "ISBN 9780140449136", "see page 1234567 of the report"])
def test_lower_case_streets_and_foreign_numbers_need_their_shape(text: str) -> None:
    assert scan(text) == []


# --- street addresses in the program's other languages and scripts, app links, locations (review R7) --------
@pytest.mark.parametrize("text, kind, found", [
    # home addresses: Russian, Ukrainian, Arabic, Dutch, Polish; French, Spanish and German typed in lower case
    ("мой адрес: г. Казань, ул. Баумана, д. 7, кв. 15.", "street_address", "ул. Баумана, д. 7, кв. 15"),
    ("я живу на проспекте Мира 12, кв. 4", "street_address", "проспекте Мира 12, кв. 4"),
    ("улица Ленина, дом 5", "street_address", "улица Ленина, дом 5"),
    ("вул. Хрещатик, 22", "street_address", "вул. Хрещатик, 22"),
    ("فعنواني: شارع الملك فهد 24، حي العليا، الرياض", "street_address", "شارع الملك فهد 24"),
    ("عنواني 15 شارع التحرير، القاهرة", "street_address", "15 شارع التحرير"),
    ("طريق الملك عبدالله ١٢، جدة", "street_address", "طريق الملك عبدالله ١٢"),
    ("Mijn adres is Kerkstraat 12, 1017 GL Amsterdam.", "street_address", "Kerkstraat 12"),
    ("Mój adres: ul. Marszałkowska 10/12, 00-590 Warszawa.", "street_address", "ul. Marszałkowska 10/12"),
    ("Tu peux m'envoyer la carte, j'habite au 12 rue des lilas à Lyon.", "street_address", "12 rue des lilas"),
    ("puedes mandarme la postal, vivo en la calle mayor 5, 3º B en Madrid.", "street_address", "calle mayor 5"),
    ("schick mir die Karte, ich wohne in der hauptstraße 5 in Berlin.", "street_address", "hauptstraße 5"),
    ("ich wohne am lindenweg 3", "street_address", "lindenweg 3"),
    ("Kaiserring 5", "street_address", "Kaiserring 5"),
    # links of messaging apps, as HTML signatures and buttons write them
    ("skype:sunny.dancer11?call", "handle", "skype:sunny.dancer11?call"),
    ("tg://resolve?domain=sunnydancer11", "handle", "tg://resolve?domain=sunnydancer11"),
    ("snapchat://add/sunnydancer11", "handle", "snapchat://add/sunnydancer11"),
    ("discord://-/users/80351110224678912", "handle", "discord://-/users/80351110224678912"),
    ("msteams:/l/chat/0/0?users=sunny.dancer11", "handle", "msteams:/l/chat/0/0?users=sunny.dancer11"),
    ("callto:jane.okafor11", "handle", "callto:jane.okafor11"),
    ("whatsapp://send?phone=12175550143", "handle", "whatsapp://send?phone=12175550143"),
    ("tel:+12175550143", "phone", "tel:+12175550143"),
    ("zoommtg://zoom.us/join?confno=123456789", "meeting_link", "zoommtg://zoom.us/join?confno=123456789"),
    # locations: coordinates as map apps copy them, degrees with a hemisphere, Plus Codes, what3words, geo:
    ("I'm at 39.781721, -89.650148 right now, come by!", "location", "39.781721, -89.650148"),
    ("we are at 55.7963, 49.1088", "location", "55.7963, 49.1088"),
    ("at 51.5074, -0.1278 today", "location", "51.5074, -0.1278"),
    ("my gps: 55.796, 49.109", "location", "55.796, 49.109"),
    ("my house: 39°46'54.2\"N 89°39'00.5\"W", "location", "39°46'54.2\"N 89°39'00.5\"W"),
    ("55°47'46.7\"N 49°06'31.7\"E", "location", "55°47'46.7\"N 49°06'31.7\"E"),
    ("55.7963° N, 49.1088° E", "location", "55.7963° N, 49.1088° E"),
    ("55°47′46″ с. ш. 49°06′32″ в. д.", "location", "55°47′46″ с. ш. 49°06′32″ в. д."),
    ("we live at MV2R+8V Springfield", "location", "MV2R+8V"),
    ("the code is 9G7VQ4W2+XH", "location", "9G7VQ4W2+XH"),
    ("find me at ///filled.count.soap", "location", "///filled.count.soap"),
    ("my what3words is filled.count.soap ok", "location", "filled.count.soap"),
    ("geo:39.781721,-89.650148", "location", "geo:39.781721,-89.650148"),
    # links a tracking pixel uses: protocol-relative, an IPv6 literal
    ("//pix.trackr.io/o.gif", "url", "//pix.trackr.io/o.gif"),
    ("http://[2001:db8::77]/o.gif", "url", "http://[2001:db8::77]/o.gif"),
])
def test_addresses_app_links_and_locations(text: str, kind: str, found: str) -> None:
    assert [(f.kind, f.match) for f in scan(text)] == [(kind, found)]


@pytest.mark.parametrize("text", [
    # maths, science and sport: points, vectors, lists of decimals, times, scores, versions
    "the point (3.5, 2.1) lies on the line",
    "the answers were 55.79 and 49.10 roughly",
    "the coordinates of A are (2.5, -1.5) and of B (4.125, 3.875)",
    "the means were 12.3456, 23.4567, 34.5678 in the three groups",
    "p = 0.0312, 0.0456 for the two tests and the unit vector (0.7071, 0.7071)",
    "my times were 12.345, 12.678 seconds; the score was 21.5, 19.25",
    "Latitude of Moscow is 55.75 and longitude 37.62",
    "Pi is 3.1416, e is 2.7183",
    # degrees without a hemisphere, or a place only to the nearest minute (geography homework)
    "Lyon lies at 45°45'N 4°50'E on the map; Paris at about 48.86° N, 2.35° E",
    "it was 25°C and 30°C, the angle was 45° 30'",
    # "+" and "///" and dotted words that are no place
    "2222+22 and 3456+789; C++ and x+y; she got an A+ and a B+; blood type O+",
    "Use /// for doc comments in Rust: /// this is a comment",
    "The line:42 error is in main.py; the signal:noise ratio is 3:1",
    "tel: I have no phone yet, sms: none",
    # words of streets without an address
    "Spring 2026 term starts; During 5 weeks I read; Mentoring 5 students; Bring 5 pencils",
    "на улице было 5 градусов мороза",
    "На уроке мы прошли пр. 5 и упр. 6",
    "Мы поедем на проспект, там 3 кинотеатра",
    "هذا شارع طويل فيه 3 محلات كبيرة",
    "ذهبنا إلى شارع جميل أمس، وكان الجو 30 درجة",
    "La rue est calme, il y a 3 boulangeries",
    "la calle tiene 5 casas muy bonitas; vivo con mis padres y 2 hermanos",
    "vivo en Madrid desde hace 5 años; ich wohne seit 5 Jahren in Berlin",
    "Die Hauptstraße ist lang, sie hat 200 Häuser",
    "Smith et al. 2019 showed that; cf. ul. 5 for the list",
])
def test_numbers_and_street_words_that_are_no_address_or_place(text: str) -> None:
    assert scan(text) == []
