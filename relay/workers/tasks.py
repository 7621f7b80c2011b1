"""The functions a worker process runs: each takes the raw bytes and a small picklable context, and returns
bytes and findings. They call the pure line (relay/pipeline.py, relay/anonymize, relay/moderation,
relay/dkim/signer.py, relay/inbound/header.py) and nothing from the store or the network.

A worker is set up once (`initialise`, as `serve`, its loop of tasks read from the pool's pipe, begins) with
the relay's settings: its policies are then read by name from policies_dir (the same PolicyBook, reloaded
when a file changes), and the DKIM key from its file, rather than pickled with every task. When the pool
runs in-process (`workers: 0`), the parent's PolicyBook and signer are used instead (`in_process`).
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import logging
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any, TypeVar, cast

from relay import memory
from relay.anonymize.parts import Unprocessable
from relay.anonymize.scrub import Identity
from relay.config import Settings
from relay.dkim import signer_from_settings
from relay.dkim.signer import Signer
from relay.inbound.header import Header, HeaderTooLarge, read_header
from relay.moderation import Decision, decide
from relay.moderation.findings import Finding
from relay.moderation.inspection import Inspection, PairStats, inspect_message
from relay.moderation.policy import PolicyBook
from relay.pipeline import GroupCopy, GroupFace, Prepared, PreparedGroup, prepare, prepare_group, release
from relay.senderauth.dkim_check import DkimResult, verify_prefetched

log = logging.getLogger("relay.workers")

T = TypeVar("T")


@dataclass
class Environment:
    policies: PolicyBook
    signer: Signer | None


_process_environment: Environment | None = None
_local: contextvars.ContextVar[Environment | None] = contextvars.ContextVar("relay_worker_env", default=None)


def initialise(settings: Settings) -> None:
    """Once per worker process, as it starts (`serve`)."""
    global _process_environment
    # Ctrl-C in a terminal reaches every process of its group, the workers too: `serve` alone decides the
    # stop (it finishes the messages in flight, then ends its pool), and a worker told to stop by SIGINT would
    # print a KeyboardInterrupt traceback and fail the task under way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    memory.return_large_blocks()
    _process_environment = Environment(PolicyBook(settings.policies_dir), signer_from_settings(settings))
    warm_up(_process_environment)
    gc.collect()
    gc.freeze()  # the policies and the trie live as long as the worker: no full collection walks them again


_WARM_UP_SENDER = Identity(email="sam.sender@warm-up.example.org", name="Sam Sender",
                           alias_address="oak@warm-up.invalid", handle="Oak")
_WARM_UP_RECIPIENT = Identity(email="robin.reader@warm-up.example.net", name="Robin Reader",
                              alias_address="maple@warm-up.invalid", handle="Maple")
_WARM_UP_MESSAGE = (
    b"From: Sam Sender <sam.sender@warm-up.example.org>\r\nTo: maple@warm-up.invalid\r\nSubject: Warm-up\r\n"
    b"Date: Thu, 1 Jan 2026 09:00:00 +0000\r\nMessage-ID: <warm-up@warm-up.example.org>\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/alternative; boundary=w\r\n\r\n--w\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Hi Robin, see you on Tuesday at the library. Sam\r\n--w\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b"<p>Hi Robin, see you on Tuesday at the <b>library</b>. Sam</p>\r\n--w--\r\n")


def warm_up(environment: Environment) -> None:
    """Run a small made-up message through every policy (and the DKIM signer) once, at the worker's start.

    The first message through a fresh process builds what the rules and the parser keep (compiled patterns, the
    contact rule's public suffix trie, lazily imported codecs): about 0.1 s of CPU, ten times that while large
    messages take the other core. Paid here, before the worker is handed any task, it is never paid by the
    first small message of a session (nor after a worker was replaced)."""
    from relay.anonymize.message import parse
    from relay.moderation.rules import contact_info

    contact_info._suffixes()("warm-up.example.org")  # the rule's public suffix trie, whatever the policies
    policies = environment.policies
    errors = policies.load_all()
    for problem in errors:
        log.warning("worker warm-up: %s", problem)
    for name in policies.names():
        try:
            read_header(_WARM_UP_MESSAGE, whole=False)
            prepare(parse(_WARM_UP_MESSAGE), sender=_WARM_UP_SENDER, recipient=_WARM_UP_RECIPIENT, thread_map={},
                    new_message_id="<warm-up@warm-up.invalid>", now=datetime(2026, 1, 1, 9, tzinfo=UTC),
                    domain="warm-up.invalid", policy=policies.get(name), context=_warm_up_context())
        except Exception:  # an optimisation only: the message that meets the problem gets the clear answer
            log.warning("worker warm-up with policy %s failed", name, exc_info=True)
    if environment.signer is not None:
        try:
            environment.signer.field(_WARM_UP_MESSAGE)
        except Exception:
            log.warning("worker warm-up of DKIM signing failed", exc_info=True)


def _warm_up_context() -> dict[str, Any]:
    sender, recipient = _WARM_UP_SENDER, _WARM_UP_RECIPIENT
    return {"sender_role": "mentee", "sender_email": sender.email, "sender_name": sender.name,
            "recipient_email": recipient.email, "recipient_name": recipient.name, "sender_nicknames": (),
            "recipient_nicknames": (), "sender_other_emails": (), "recipient_other_emails": (), "region": "US",
            "domain": "warm-up.invalid", "aliases": (sender.alias_address, recipient.alias_address),
            "stats": PairStats()}


def serve(connection: Connection, settings: Settings) -> None:
    """A worker process's life (relay/workers/pool.py starts it): set up once, then answer the tasks that come
    over `connection` one at a time, each a pickled (function, *arguments), with a pickled (True, result) or
    (False, exception), until the pool closes its end."""
    initialise(settings)
    while True:
        try:
            fn, *args = pickle.loads(connection.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            outcome: tuple[bool, Any] = (True, fn(*args))
        except Exception as exc:  # the caller's to handle, as if fn had run there
            outcome = (False, exc)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt: raised again in the relay, they would end it
            outcome = (False, RuntimeError(f"the task raised {exc!r}"))
        try:
            answer = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # a result or an exception that cannot travel: said so, not lost
            answer = pickle.dumps((False, RuntimeError(f"the worker's answer could not be sent back: {exc!r}")))
        try:
            connection.send_bytes(answer)
        except OSError:  # the pool went away
            return


def ready() -> float:
    """Makes the pool start its processes (and run `initialise`) before the first message; returns the
    process's CPU seconds so far (the pool measures each task's CPU from there, see `measured`)."""
    return time.process_time()


def measured(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    """`fn(*args)` and this process's CPU seconds once it returned (every thread's, so a task run
    `at_low_priority` counts too). The pool takes a task's CPU as the difference from the worker's figure
    after its previous task, without reading the worker's CPU from outside."""
    return fn(*args), time.process_time()


LOW_PRIORITY = 10  # the nice value large tasks run at (the loop and small tasks are at 0)


def at_low_priority(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on a thread of this worker that has lowered its own CPU priority (nice LOW_PRIORITY).

    The pool runs a large message's work this way. On a machine whose cores are all busy, the kernel then gives
    the CPU first to the event loop and to the workers doing small messages, so a large message's parsing or
    signing does not slow down the small ones' replies; when the cores are free it runs at full speed. Linux
    keeps a nice value per thread, so only this thread is lowered and the priority dies with it (raising it
    back would need privileges). Elsewhere `fn` runs at the worker's priority. CPU time counts for the
    process as before, so the pool's CPU budget applies unchanged."""
    if not sys.platform.startswith("linux"):
        return fn(*args)
    outcome: list[Any] = []

    def run() -> None:
        try:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, 0, LOW_PRIORITY)  # 0: this thread (Linux)
            outcome.append((True, fn(*args)))
        except BaseException as exc:  # handed to the caller, as if fn had run here
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name="low-priority-task")
    thread.start()
    thread.join()
    succeeded, value = outcome[0]
    if not succeeded:
        raise value
    return cast(T, value)


def in_process(environment: Environment, fn: Callable[..., T], *args: Any) -> T:
    """Run a task on the caller's thread with the caller's policies and signer (`workers: 0`)."""
    token = _local.set(environment)
    try:
        return fn(*args)
    finally:
        _local.reset(token)


def _environment() -> Environment:
    environment = _local.get() or _process_environment
    if environment is None:
        raise RuntimeError("relay.workers.tasks used outside a worker: call initialise() first")
    return environment


@contextmanager
def _readable() -> Iterator[None]:
    """A parser edge case we have not met is a clear refusal (Unprocessable), never a crash."""
    try:
        yield
    except (Unprocessable, HeaderTooLarge):
        raise
    except RecursionError:
        raise Unprocessable("MIME structure nested too deeply") from None
    except Exception:
        log.exception("anonymisation failed")
        raise Unprocessable("its MIME structure could not be read") from None


def header(raw: bytes, whole: bool) -> Header:
    """The header intake reads first (relay/inbound/header.py). `whole`: with the parsed body too
    (program mail reads it); else the message holds the header fields only, which is what travels back."""
    return read_header(raw, whole=whole)


@dataclass(frozen=True)
class PrepareJob:
    """What relay/pipeline.prepare needs besides the raw bytes."""

    sender: Identity
    recipient: Identity
    thread_map: dict[str, str]
    new_message_id: str
    now: datetime
    domain: str
    policy: str  # its name: the worker reads it from policies_dir
    context: dict[str, Any]
    others: tuple[Identity, ...] = ()  # the sender's programs' other participants, scrubbed too


def prepare_message(raw: bytes, job: PrepareJob) -> Prepared:
    from relay.anonymize.message import parse

    with _readable():
        message = parse(raw)
        return prepare(message, sender=job.sender, recipient=job.recipient, thread_map=job.thread_map,
                       new_message_id=job.new_message_id, now=job.now, domain=job.domain,
                       policy=_environment().policies.get(job.policy), context=job.context, others=job.others)


@dataclass(frozen=True)
class GroupPrepareJob:
    """What relay/pipeline.prepare_group needs besides the raw bytes."""

    sender: Identity
    members: list[Identity]
    face: GroupFace
    copies: list[GroupCopy]
    now: datetime
    domain: str
    policy: str
    context: dict[str, Any]


def prepare_group_message(raw: bytes, job: GroupPrepareJob) -> PreparedGroup:
    from relay.anonymize.message import parse

    with _readable():
        message = parse(raw)
        return prepare_group(message, sender=job.sender, members=job.members, face=job.face, copies=job.copies,
                             now=job.now, domain=job.domain, policy=_environment().policies.get(job.policy),
                             context=job.context)


@dataclass(frozen=True)
class ReleaseJob:
    sender: Identity
    recipient: Identity
    thread_map: dict[str, str]
    new_message_id: str
    now: datetime
    domain: str
    redactions: list[Finding]
    others: tuple[Identity, ...] = ()  # as PrepareJob's


def release_message(raw: bytes, job: ReleaseJob) -> bytes:
    return release(raw, sender=job.sender, recipient=job.recipient, thread_map=job.thread_map,
                   new_message_id=job.new_message_id, now=job.now, domain=job.domain, redactions=job.redactions,
                   others=job.others)


@dataclass(frozen=True)
class StrangerJob:
    """What reading a stranger's refused message needs (relay/inbound/strangers.py): the conversation's members,
    whose real names and addresses are scrubbed from what staff read (the first as the one the stranger claims
    to be, the second as the one written to), and the policy that says what is urgent."""

    people: tuple[Identity, ...]
    now: datetime
    domain: str
    policy: str
    context: dict[str, Any]


@dataclass(frozen=True)
class StrangerReading:
    """A stranger's message as the safeguarding lead may read it: the policy's urgent findings on the scrubbed
    copy (none: nobody is told), and its subject and plain text, scrubbed, the text cut at `text_at_most`."""

    findings: list[dict[str, Any]]
    subject: str
    text: str


def read_stranger(raw: bytes, job: StrangerJob, text_at_most: int = 8000) -> StrangerReading:
    """Scrub a refused stranger's message as a delivered copy would be (anonymise), inspect that copy with the
    conversation's policy, and keep only the urgent findings. Nothing of it is ever delivered."""
    from relay.anonymize.headers import header_text
    from relay.anonymize.message import anonymize, parse
    from relay.inbound.header import readable_text
    from relay.moderation.inspection import inspect_message

    with _readable():
        message = parse(raw)
        people = job.people
        anonymize(message, sender=people[0], recipient=people[1] if len(people) > 1 else people[0],
                  others=people[2:], thread_map={}, new_message_id=f"<stranger@{job.domain}>", now=job.now,
                  domain=job.domain)
        decision = decide(_environment().policies.get(job.policy), inspect_message(message, **job.context))
        return _stranger_reading(decision, header_text(message, "Subject") or "", readable_text(message),
                                 text_at_most)


def read_stranger_text(raw: bytes, job: StrangerJob, text_at_most: int = 8000) -> StrangerReading:
    """`read_stranger` when the message cannot be read whole (relay/inbound/strangers.py): its subject and its
    text/plain parts only (no HTML, no attachment), each scrubbed of the members' real names and addresses, and
    that text inspected by the conversation's policy."""
    from relay.anonymize.headers import header_text
    from relay.anonymize.message import parse
    from relay.anonymize.parts import read_text
    from relay.anonymize.scrub import Scrubber

    with _readable():
        message = parse(raw)
        scrubber = Scrubber(job.people)
        subject = scrubber.text(header_text(message, "Subject") or "")
        texts = [scrubber.text(read_text(part)[0]).strip() for part in message.walk()
                 if part.get_content_type() == "text/plain" and part.get_content_disposition() != "attachment"]
        text = "\n\n".join(piece for piece in texts if piece)
        inspection = Inspection(text=f"{subject}\n\n{text}", subject=subject, **job.context)
        decision = decide(_environment().policies.get(job.policy), inspection)
    return _stranger_reading(decision, subject, text or "(The message's text could not be read.)", text_at_most)


def _stranger_reading(decision: Decision, subject: str, text: str, text_at_most: int) -> StrangerReading:
    """The urgent findings of a stranger's message, its subject and its text cut at `text_at_most`."""
    urgent = [reason for reason in decision.reason_dicts() if reason.get("severity") == "urgent"]
    return StrangerReading(urgent, subject, text[:text_at_most] + " [...]" if len(text) > text_at_most else text)


def urgent_kinds(raw: bytes, policy: str) -> list[str]:
    """The kinds of the safeguarding signs (the policy's urgent findings) in a message to a program address
    (help@, concern@), which goes to staff without a moderator's review: sorted, none when it has none. The
    message is read as partner mail is (inspect_message: every text part, HTML's text, attached messages...)."""
    from relay.anonymize.message import parse

    with _readable():
        inspection = inspect_message(parse(raw))
    return _urgent(inspection, policy)


def urgent_kinds_of_text(subject: str, text: str, policy: str) -> list[str]:
    """`urgent_kinds` of the subject and the plain text alone: what help@ and concern@ fall back on when the
    whole message cannot be read (relay/inbound/program/mail.py), so that a disclosure in the text is still
    seen."""
    return _urgent(Inspection(text=f"{subject}\n\n{text}", subject=subject), policy)


def _urgent(inspection: Inspection, policy: str) -> list[str]:
    decision = decide(_environment().policies.get(policy), inspection)
    return sorted({reason.finding.kind for reason in decision.reasons if reason.severity == "urgent"})


def verify_dkim(raw: bytes, answers: dict[str, bytes | str | None]) -> list[DkimResult]:
    """Every DKIM signature of `raw` verified with the keys the authenticator looked up (no DNS here)."""
    return verify_prefetched(raw, answers)


def sign(raw: bytes) -> bytes:
    """The message DKIM-signed with the configured key (unchanged when signing is off)."""
    signer = _environment().signer
    return signer.sign(raw) if signer is not None else raw


def signature(raw: bytes) -> bytes:
    """The DKIM-Signature field to put in front of `raw` (b"" when signing is off): only the field comes back
    from the worker, not the whole message again."""
    signer = _environment().signer
    return signer.field(raw) if signer is not None else b""
