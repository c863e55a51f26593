"""The inotify read watch: reads and listings under a root, by this process and by child processes."""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lakeops.emulator import read_watch
from lakeops.emulator.read_watch import (
    IN_CLOSE_NOWRITE,
    IN_ISDIR,
    IN_Q_OVERFLOW,
    Event,
    Reads,
    ReadWatch,
    WatchUnavailable,
    available,
    parse_events,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A small mirror: one bucket with a partitioned table, and an empty folder."""
    mirror = tmp_path / "mirror"
    (mirror / "data" / "year=2024").mkdir(parents=True)
    (mirror / "empty").mkdir()
    (mirror / "data" / "part-0000").write_text("a")
    (mirror / "data" / "year=2024" / "part-0001").write_text("b")
    return mirror


def cat(path: Path) -> None:
    subprocess.run(["cat", str(path)], check=True, stdout=subprocess.DEVNULL)


def test_available_on_linux() -> None:
    assert available() is None


def test_reads_by_this_process_count_stat_and_writes_do_not(root: Path) -> None:
    read, probed, written = root / "data" / "part-0000", root / "data" / "year=2024" / "part-0001", root / "new"
    watch = ReadWatch(root)
    watch.start()
    assert read.read_text() == "a"
    assert probed.stat().st_size == 1
    assert probed.exists()
    written.write_text("c")
    with (root / "data" / "part-0000").open("r+") as both:  # opened for writing too: a write, not a read
        both.read()
    reads = watch.stop()
    assert reads.files == {read}
    # The watcher's own listing of the tree at start() is not reported.
    assert reads.folders == frozenset()
    assert reads.complete
    assert reads.gaps == ()


def test_reads_and_listings_by_child_processes(root: Path) -> None:
    watch = ReadWatch(root)
    watch.start()
    cat(root / "data" / "year=2024" / "part-0001")
    subprocess.run(["ls", str(root / "data")], check=True, stdout=subprocess.DEVNULL)
    assert sorted(os.listdir(root)) == ["data", "empty"]
    reads = watch.stop()
    assert reads.files == {root / "data" / "year=2024" / "part-0001"}
    # The root has no watched parent: its listing is only reported by its own watch, with no name.
    assert reads.folders == {root, root / "data"}
    assert reads.complete


def test_folders_made_after_start_are_watched_to_the_bottom(root: Path) -> None:
    watch = ReadWatch(root)
    watch.start()
    deep = root / "out" / "table" / "part=1"
    os.makedirs(deep)  # one IN_CREATE for "out": the levels below exist before the watch on it can
    written = deep / "part-0000"
    written.write_text("x")
    # The watch on a new folder lands a little after mkdir; a read after it is seen, whichever read that is.
    for _ in range(10):
        cat(written)
        time.sleep(0.02)
    subprocess.run(["ls", str(deep)], check=True, stdout=subprocess.DEVNULL)
    reads = watch.stop()
    assert reads.files == {written}
    # "out" and "table" were listed by the watcher only, to add watches below them.
    assert reads.folders == {deep}
    assert reads.complete


def test_reads_of_a_killed_process_are_seen(root: Path) -> None:
    held = root / "data" / "part-0000"
    watch = ReadWatch(root)
    watch.start()
    hold_open = "import sys, time; f = open(sys.argv[1]); f.read(); print('read', flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", hold_open, str(held)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    try:
        assert child.stdout.readline() == "read\n"
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -9
    # The file was never closed by the child: the kernel closed it when the child was killed.
    assert watch.stop().files == {held}


def test_stop_takes_the_events_the_reader_thread_has_not(root: Path) -> None:
    watch = ReadWatch(root)
    watch.start()
    stopped: list[Reads] = []
    stopper = threading.Thread(target=lambda: stopped.append(watch.stop()))
    # The reader thread takes events only while holding the watch's lock, and ends at its next turn once
    # stop() has begun: this read is left for stop()'s last drain.
    with watch._lock:
        (root / "data" / "part-0000").read_text()
        stopper.start()
        assert watch._stopping.wait(timeout=5)
    stopper.join(timeout=5)
    assert stopped == [
        Reads(files=frozenset({root / "data" / "part-0000"}), folders=frozenset(), complete=True, gaps=())
    ]


def test_a_file_opened_before_start_counts_when_closed_during_the_watch(root: Path) -> None:
    early = (root / "data" / "part-0000").open()
    watch = ReadWatch(root)
    watch.start()
    early.close()
    assert watch.stop().files == {root / "data" / "part-0000"}


def test_a_renamed_folder_is_reported_under_its_new_path(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    watch = ReadWatch(root)
    watch.start()
    os.rename(root / "data", root / "renamed")
    os.rename(root / "empty", outside / "empty")
    (outside / "empty" / "f").write_text("x")
    cat(root / "renamed" / "year=2024" / "part-0001")
    subprocess.run(["ls", str(root / "renamed" / "year=2024")], check=True, stdout=subprocess.DEVNULL)
    cat(outside / "empty" / "f")
    subprocess.run(["ls", str(outside / "empty")], check=True, stdout=subprocess.DEVNULL)
    reads = watch.stop()
    # Watches follow the folder; one moved out of the root is not reported (neither here nor under its old path).
    assert reads.files == {root / "renamed" / "year=2024" / "part-0001"}
    assert reads.folders == {root / "renamed" / "year=2024"}
    assert reads.complete


def test_stop_and_start_misuse(root: Path, tmp_path: Path) -> None:
    watch = ReadWatch(root)
    with pytest.raises(RuntimeError, match="before start"):
        watch.stop()
    with watch:
        with pytest.raises(RuntimeError, match="twice"):
            watch.start()
        (root / "data" / "part-0000").read_text()
    first = watch.stop()
    assert first.files == {root / "data" / "part-0000"}
    assert watch.stop() is first
    with pytest.raises(FileNotFoundError, match="cannot watch"):
        ReadWatch(tmp_path / "missing").start()


def test_parse_events() -> None:
    overflow = struct.pack("iIII", -1, IN_Q_OVERFLOW, 0, 0)
    listed = struct.pack("iIII", 3, IN_CLOSE_NOWRITE | IN_ISDIR, 0, 16) + b"year=2024".ljust(16, b"\0")
    assert parse_events(overflow + listed) == [
        Event(wd=-1, mask=IN_Q_OVERFLOW, cookie=0, name=""),
        Event(wd=3, mask=IN_CLOSE_NOWRITE | IN_ISDIR, cookie=0, name="year=2024"),
    ]
    assert parse_events(b"") == []
    with pytest.raises(ValueError, match="name"):
        parse_events(listed[:-1])
    with pytest.raises(ValueError, match="header"):
        parse_events(overflow + overflow[:8])


def test_queue_overflow_makes_the_result_incomplete(root: Path) -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if limit > 100_000:
        pytest.skip(f"fs.inotify.max_queued_events is {limit}: too many events to cause quickly")
    files = [root / "data" / "part-0000", root / "data" / "year=2024" / "part-0001"]
    watch = ReadWatch(root)
    watch.start()
    # The reader thread takes events only while holding the watch's lock: holding it lets the queue fill.
    with watch._lock:
        for index in range(limit + 100):
            # Alternating files: the kernel merges an event identical to the one before it.
            os.close(os.open(files[index % 2], os.O_RDONLY))
    reads = watch.stop()
    assert not reads.complete
    assert len(reads.gaps) == 1
    assert "overflowed" in reads.gaps[0]
    assert reads.files == set(files)


def test_unavailable_libc(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    def no_libc() -> None:
        raise OSError("no libc here")

    monkeypatch.setattr(read_watch, "_load_libc", no_libc)
    assert available() == "libc has no inotify: no libc here"
    watch = ReadWatch(root)
    with pytest.raises(WatchUnavailable, match="libc has no inotify: no libc here"):
        watch.start()
    with pytest.raises(RuntimeError, match="before start"):
        watch.stop()


def test_not_linux(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert available() == "not Linux (darwin)"
    with pytest.raises(WatchUnavailable, match="not Linux"):
        ReadWatch(root).start()


def test_inotify_init_failure(root: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Every descriptor below the lowest free one is in use: a limit there makes the next open fail (EMFILE).
    lowest_free = os.open(os.devnull, os.O_RDONLY)
    os.close(lowest_free)
    watch = ReadWatch(root)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
        reason = available()
        with pytest.raises(WatchUnavailable) as raised:
            watch.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert reason == "inotify_init1 failed: Too many open files (errno 24)"
    assert str(raised.value) == reason
