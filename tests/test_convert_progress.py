"""Progress: a bar on a terminal, plain lines without one (ssh without -t, nohup, CI)."""

import io
import os
import select

from converters.progress import Progress


def test_plain_lines_without_a_tty():
    out = io.StringIO()
    p = Progress(out, interval=0.0)
    p.step("converting int8")
    p.step("reference", total=3)
    for i in range(1, 4):
        p.update(i)
    p.done("wrote bundle")
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0].endswith("converting int8") and lines[-1].endswith("wrote bundle")
    assert any(line.endswith("reference: 3/3") for line in lines)


def test_bar_on_a_real_terminal():
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as tty:
            p = Progress(tty)
            assert p.tty
            p.step("reference", total=4)
            p.update(2)
            p.done("ok")
        # A pty hands its output over in chunks: read until the last line has arrived.
        data = ""
        while "ok\n" not in data.replace("\r\n", "\n"):
            ready, _, _ = select.select([master], [], [], 10.0)
            assert ready, f"the terminal got no more output after {data!r}"
            data += os.read(master, 4096).decode()
    finally:
        os.close(master)
        os.close(slave)
    assert "\r" in data and "2/4" in data and "#" in data


def test_a_vanished_stream_does_not_stop_the_work():
    out = io.StringIO()
    p = Progress(out)
    out.close()  # as when the ssh session that started the conversion is gone
    p.step("converting int8")
    p.done("wrote bundle")
    assert not p.enabled
