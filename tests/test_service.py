"""`mentor-relay serve` as operators run it: clean SIGTERM, logs that name ids and never bodies."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

from tests.support import MENTEE, Layout, ServeProcess, Sink, acreate_pair, eventually, send, simple_message


async def test_sigterm_finishes_messages_in_flight_and_exits_cleanly(
    layout: Layout, sink: Sink, tmp_path: Path
) -> None:
    layout.overrides["workers"] = 2  # as `serve` runs by default: the message work in worker processes
    layout.write()
    pair = await acreate_pair(layout)
    alias = pair["mentor_alias"]
    log = tmp_path / "serve.log"
    server = await asyncio.to_thread(ServeProcess(layout, log).start)  # the sink shares this loop: never block it
    secret = "BODY-MARKER-do-not-log"
    try:
        bodies = [f"{secret} {i}\n" + ("filler line of a long letter\n" * 20_000 if i % 3 == 0 else "")
                  for i in range(9)]
        sends = [asyncio.create_task(send(layout.smtp_port, simple_message(
            MENTEE["email"], alias, f"message {i}", body), MENTEE["email"], alias)) for i, body in enumerate(bodies)]
        # the stop comes once the relay has accepted one of them, with the others (and the long ones) under way
        await eventually(lambda: re.search(r"queue_id=\w+ accepted", log.read_text()), timeout=30)
        assert server.process is not None
        server.process.terminate()
        results = await asyncio.wait_for(asyncio.gather(*sends), 60)
        code = await asyncio.to_thread(server.process.wait, 30)
    finally:
        if server.process is not None and server.process.poll() is None:
            server.kill()
    assert code == 0
    text = log.read_text()
    assert "stopped cleanly" in text
    accepted = [re.search(r"queued as (\w+)", reply).group(1) for status, reply in results if status == 250]  # type: ignore[union-attr]
    # Whatever got 250 before the stop is delivered: by this process before it exited, or after a restart.
    restarted = await asyncio.to_thread(ServeProcess(layout, log).start)
    try:
        await sink.wait_for(len(accepted), timeout=30)
    finally:
        assert await asyncio.to_thread(restarted.terminate) == 0
    delivered_subjects = sorted(r.message["Subject"] for r in sink.received)
    assert len(delivered_subjects) == len(set(delivered_subjects)) == len(accepted)
    # The listener is closed after the stop: nobody is left talking to a dying relay.
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", layout.smtp_port)) != 0
    # Every log line about a message names its queue id; no line carries a body.
    log_text = log.read_text()
    assert secret not in log_text
    for queue_id in accepted:
        assert re.search(rf"queue_id={queue_id} accepted", log_text)
        assert re.search(rf"queue_id={queue_id} outbound=\w+ delivered", log_text)


async def test_ctrl_c_stops_serve_and_its_worker_processes_without_a_traceback(layout: Layout, tmp_path: Path) -> None:
    layout.overrides["workers"] = 2  # as `serve` runs by default: the message work in worker processes
    layout.write()
    log = tmp_path / "serve.log"
    server = await asyncio.to_thread(ServeProcess(layout, log).start)  # listening: its workers are ready
    assert server.process is not None
    try:
        server.interrupt_group()  # the terminal's Ctrl-C reaches every process of the group, workers too
        code = await asyncio.to_thread(server.process.wait, 30)
    finally:
        if server.process.poll() is None:
            server.kill()
    text = log.read_text()
    assert "worker process(es) ready" in text and "stopped cleanly" in text
    assert code == 0
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text


async def test_first_start_enrols_a_demo_pair_and_prints_a_working_command(tmp_path: Path, sink: Sink) -> None:
    from tests.support import free_port

    layout = Layout(root=tmp_path / "relay", smtp_port=free_port(), sink_port=sink.port, overrides={"demo": True})
    layout.write()
    (layout.root / "programs" / "demo.yaml").write_text(
        "id: demo\nname: Demo\ncoordinator: c@example.org\npolicy: adult-professional\n")
    log = tmp_path / "serve.log"
    server = await asyncio.to_thread(ServeProcess(layout, log).start)
    try:
        banner = await eventually(lambda: "Send a test message" in log.read_text() and log.read_text())
        command = banner.split("Send a test message as the mentee, from another terminal:\n", 1)[1].splitlines()[0]
        process = await asyncio.create_subprocess_shell(command.strip(), stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0 and out.strip() == b"sent"
        relayed = await eventually(  # the demo pair's welcome mail comes from notices@ and is left aside
            lambda: [r for r in sink.received if "notices@" not in str(r.message["From"])], timeout=15)
        delivered = relayed[0]
        assert delivered.rcpt_tos == ["mentor@example.org"]
        assert "Sam" not in delivered.message.get_content() and "Maple" in delivered.message.get_content()
    finally:
        assert await asyncio.to_thread(server.terminate) == 0
    again = await asyncio.to_thread(ServeProcess(layout, log).start)  # the demo is enrolled once, not at every start
    try:
        # serve says it is serving once its start-up step (the demo's enrolment, if any) is done, which may be
        # after its port accepts: wait for that line of the second start rather than for a nap
        await eventually(lambda: log.read_text().count("mentor-relay serving") == 2, timeout=30)
    finally:
        await asyncio.to_thread(again.terminate)
    assert log.read_text().count("Demo pair 1 enrolled") == 1


async def test_a_smarthost_that_never_answers_cannot_hold_a_stop(layout: Layout, sink: Sink, tmp_path: Path) -> None:
    """SIGTERM while a send waits on a smarthost that accepted the connection and then says nothing: the
    relay hangs up after `delivery.stop_grace`, not after the smarthost timeout, and the next start sends
    the message (nothing lost)."""
    with socket.socket() as silent:  # listens (the kernel accepts) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        layout.overrides["delivery"] = {"port": silent.getsockname()[1], "timeout": "300s", "stop_grace": "1s"}
        layout.write()
        pair = await acreate_pair(layout)
        log = tmp_path / "serve.log"
        server = await asyncio.to_thread(ServeProcess(layout, log).start)
        try:
            alias = pair["mentor_alias"]
            message = simple_message(MENTEE["email"], alias, "Still there?", "A question for you.\n")
            code, _ = await send(layout.smtp_port, message, MENTEE["email"], alias)
            assert code == 250
            silent.settimeout(30)
            connection, _ = await asyncio.to_thread(silent.accept)  # the relay's send is under way
            with connection:
                assert server.process is not None
                server.process.terminate()
                # far below the 300 s the send would otherwise wait for a greeting
                stopped = await asyncio.to_thread(server.process.wait, 60)
        finally:
            if server.process is not None and server.process.poll() is None:
                server.kill()
    assert stopped == 0
    text = log.read_text()
    assert "hanging up" in text and "stopped cleanly" in text
    # The next start, with a smarthost that answers, sends the message once.
    layout.overrides["delivery"] = {"port": sink.port}
    layout.write()
    restarted = await asyncio.to_thread(ServeProcess(layout, log).start)
    try:
        await sink.wait_for(1, timeout=30)
    finally:
        assert await asyncio.to_thread(restarted.terminate) == 0
    assert [r.message["Subject"] for r in sink.received] == ["Still there?"]
