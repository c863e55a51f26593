"""Which mirrored files an emulated Glue run read, and which mirrored folders it listed: Linux inotify.

Why: in an emulated run, Spark's reads of `s3://` are reads of local files in the run's mirror (`glue_mirror`),
done by the job's Spark JVM and by its Python process alike. inotify reports file-system events from every
process on the machine, whatever the language or the I/O library, so watching the mirror tells which objects
the job read (s3:GetObject) and which prefixes it listed (s3:ListBucket), to be checked against the job
role's policy as its writes are. (The job's boto3 calls reach the emulator's S3 API, not the mirror.)

How: one inotify instance (`inotify_init1` through ctypes on libc, no other dependency) with a watch on
every folder under the root. A watch on a folder reports events on the folder itself and on its direct
entries:
- IN_CLOSE_NOWRITE on an entry that is not a folder: a file opened without write access, then closed. That
  is a read (the open, not the bytes: a file opened read-only and closed unread counts too).
- IN_CLOSE_NOWRITE with IN_ISDIR, on the watched folder itself (no name) or on a sub-folder (its name): a
  folder opened and closed, which is how a folder is listed (`ls`, `os.listdir`, Java's `File.list`).
- IN_CREATE and IN_MOVED_TO with IN_ISDIR: a folder made or moved in during the run gets a watch, and so
  does everything below it (`mkdir -p` makes the lower levels before the watch on the upper one lands).
- IN_MOVED_FROM / IN_MOVED_TO with IN_ISDIR and the same cookie: a folder renamed under the root keeps its
  watches (a watch follows the inode), reported from then on under the new path. A folder moved out of the
  root is no longer reported.
- IN_IGNORED: the folder is gone (deleted, or its file system unmounted); its watch descriptor is forgotten.
- IN_Q_OVERFLOW: the kernel dropped events (more than fs.inotify.max_queued_events waiting); the result is
  marked incomplete.
The watcher lists folders itself (when adding watches below a new folder), which the kernel reports like any
other listing: it counts the close events its own listings will cause and does not report those.

The kernel queues a close event when the file's last reference goes, including when a process is killed and
the kernel closes its files, before the parent's wait returns. So `stop()`, called once every process of the
run has exited, sees every close of the run.

Limits (reads that are not seen, or results that differ from S3's view):
- Metadata calls open nothing and cause no event: `stat`, `exists`, `isdir` (S3 HEAD requests, Hadoop's
  `getFileStatus`) are not seen.
- A file or folder read in a folder made (or moved in) during the run, before the watcher has added its
  watch (usually within milliseconds), is not seen.
- A close is what is seen: a file opened before `start()` and closed during the watch counts; a file still
  open at `stop()` (held by a process that outlived the run, e.g. through an inherited descriptor) does not.
- A file opened for both reading and writing closes as IN_CLOSE_WRITE: it counts as neither.
- Opening a folder counts as listing it, even when it is opened only as a base for `openat` or to `fsync`.
- Reading through another path to the same inode: a hard link in an unwatched folder is not seen (the event
  goes to the folder of the path used); a bind mount of a watched folder is seen, reported under the root's
  path. Files behind a symbolic link that points out of the root are not seen.
- Every process is seen, not only the job's: stop the watch before the emulator reads the mirror itself, and
  do not walk the folder from outside while a watch lasts (a `find` over it during a run reports every folder
  listed: seen in a rehearsal, reproduced in a test).
- When the watch limit (fs.inotify.max_user_watches) is reached, folders are left unwatched; the result is
  marked incomplete and says where.
- If a process lists a folder made during the run at the same moment as the watcher lists it, the kernel
  may merge the two identical close events into one, which the watcher then takes for its own.
- Linux only; `available()` says why inotify cannot be used here, and the caller decides what to do.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import select
import struct
import sys
import threading
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

# <sys/inotify.h>; IN_NONBLOCK and IN_CLOEXEC are O_NONBLOCK and O_CLOEXEC by definition.
IN_CLOSE_NOWRITE = 0x00000010
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_ISDIR = 0x40000000

# Watches are only ever put on folders (IN_ONLYDIR), never through a symbolic link (IN_DONT_FOLLOW): a
# link would make the watch report another folder's events under this one's path.
WATCH_MASK = IN_CLOSE_NOWRITE | IN_CREATE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR | IN_DONT_FOLLOW

# struct inotify_event: int wd; uint32_t mask, cookie, len; char name[len] (NUL-padded).
_EVENT_HEADER = struct.Struct("iIII")
# Large enough for many events per read; the kernel never splits one (the largest is 16 + NAME_MAX + 1).
_READ_SIZE = 64 * 1024
# stop() wakes the reader thread through a pipe; the timeout only bounds a missed wake-up.
_POLL_TIMEOUT_MS = 500
# A folder that vanished before its watch or listing is no gap: nothing can be read in it any more, and a
# folder renamed meanwhile is reported again by its IN_MOVED_TO.
_GONE = frozenset({errno.ENOENT, errno.ENOTDIR})


@dataclass(frozen=True)
class Reads:
    """What the watched processes read under the root, as absolute paths under it."""

    files: frozenset[Path]  # non-folders opened without write access, then closed
    folders: frozenset[Path]  # folders opened (listed) and closed
    complete: bool  # False when events may be missing: see `gaps`
    gaps: tuple[str, ...]  # why events may be missing, empty when complete


@dataclass(frozen=True)
class Event:
    """One `struct inotify_event`; `name` is empty for an event on the watched folder itself."""

    wd: int
    mask: int
    cookie: int
    name: str


class WatchUnavailable(RuntimeError):
    """inotify cannot be used here; the message says why."""


def parse_events(buffer: bytes) -> list[Event]:
    """The events in one read from an inotify file descriptor (which only ever returns whole events)."""
    events: list[Event] = []
    offset = 0
    while offset < len(buffer):
        if offset + _EVENT_HEADER.size > len(buffer):
            raise ValueError(f"truncated inotify event header at byte {offset} of {len(buffer)}")
        wd, mask, cookie, length = _EVENT_HEADER.unpack_from(buffer, offset)
        start = offset + _EVENT_HEADER.size
        end = start + length
        if end > len(buffer):
            raise ValueError(f"truncated inotify event name at byte {start} of {len(buffer)}")
        name = buffer[start:end].split(b"\0", 1)[0]
        events.append(Event(wd=wd, mask=mask, cookie=cookie, name=os.fsdecode(name)))
        offset = end
    return events


def _load_libc() -> ctypes.CDLL:
    # The running interpreter is linked to libc, so its own symbols include the inotify calls.
    return ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class _Inotify:
    """The two libc calls, typed."""

    libc: ctypes.CDLL

    @classmethod
    def load(cls) -> _Inotify:
        if not sys.platform.startswith("linux"):
            raise WatchUnavailable(f"not Linux ({sys.platform})")
        try:
            libc = _load_libc()
            init1 = libc.inotify_init1
            add_watch = libc.inotify_add_watch
        except (OSError, AttributeError) as exc:
            raise WatchUnavailable(f"libc has no inotify: {exc}") from exc
        init1.argtypes = [ctypes.c_int]
        init1.restype = ctypes.c_int
        add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        add_watch.restype = ctypes.c_int
        return cls(libc)

    def init(self) -> int:
        fd = int(self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
        if fd < 0:
            code = ctypes.get_errno()
            raise WatchUnavailable(f"inotify_init1 failed: {os.strerror(code)} (errno {code})")
        return fd

    def add_watch(self, fd: int, path: Path) -> int:
        """The watch descriptor, or -errno."""
        wd = int(self.libc.inotify_add_watch(fd, os.fsencode(path), WATCH_MASK))
        return wd if wd >= 0 else -ctypes.get_errno()


def available() -> str | None:
    """None when inotify can be used here; otherwise why not."""
    try:
        fd = _Inotify.load().init()
    except WatchUnavailable as exc:
        return str(exc)
    os.close(fd)
    return None


class ReadWatch:
    """Reads of files and listings of folders under `root`, by any process, between `start()` and `stop()`.

    Call `start()` before the processes to watch start, and `stop()` after every one of them has exited.
    """

    def __init__(self, root: Path) -> None:
        # absolute() and not resolve(): the paths reported are the ones the caller knows the root by.
        self.root = Path(root).absolute()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._inotify: _Inotify | None = None
        self._fd = -1
        self._wake: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None
        self._result: Reads | None = None
        # guarded by _lock from here on
        self._dirs: dict[int, Path] = {}
        self._pending: deque[Event] = deque()
        self._own_listings: Counter[tuple[int, str]] = Counter()
        self._moved_out: dict[int, dict[int, Path]] = {}  # cookie → the moved folders' watches, relative
        self._files: set[Path] = set()
        self._folders: set[Path] = set()
        self._gaps: dict[str, list[Path]] = {}

    def __enter__(self) -> ReadWatch:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Watch the root and every folder below it; raises WatchUnavailable, or OSError for the root."""
        if self._inotify is not None:
            raise RuntimeError("ReadWatch.start() called twice")
        inotify = _Inotify.load()
        fd = inotify.init()
        self._inotify, self._fd = inotify, fd
        try:
            self._wake = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            with self._lock:
                self._watch_tree(self.root, None, "", required=True)
        except BaseException:
            self._close()
            self._inotify = None
            self._dirs.clear()
            self._pending.clear()
            self._own_listings.clear()
            self._gaps.clear()
            raise
        self._thread = threading.Thread(target=self._run, name=f"read-watch {self.root}", daemon=True)
        self._thread.start()

    def stop(self) -> Reads:
        """Everything seen since `start()`; the same result when called again."""
        if self._inotify is None:
            raise RuntimeError("ReadWatch.stop() before start()")
        self._stopping.set()
        if self._wake is not None:
            with contextlib.suppress(OSError):  # a full pipe already wakes the thread
                os.write(self._wake[1], b"\0")
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self._result is None:
                try:
                    # The thread has ended; what the kernel queued since its last read is still to be taken.
                    self._read_queued()
                    self._process_pending()
                except OSError as exc:
                    self._gap(f"reading the last inotify events failed: {exc}")
                self._close()
                gaps = tuple(self._render_gaps())
                self._result = Reads(
                    files=frozenset(self._files), folders=frozenset(self._folders), complete=not gaps, gaps=gaps
                )
            return self._result

    def _run(self) -> None:
        assert self._wake is not None
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._wake[0], select.POLLIN)
        try:
            while True:
                poller.poll(_POLL_TIMEOUT_MS)
                with self._lock:
                    if self._stopping.is_set():
                        return  # stop() takes what is left, in one place
                    self._read_queued()
                    self._process_pending()
        except Exception as exc:
            # Reported rather than lost: stop() still drains the queue, but the result must say it may be short.
            with self._lock:
                self._gap(f"the inotify reader thread failed: {exc!r}")

    def _close(self) -> None:
        for fd in (self._fd, *(self._wake or ())):
            if fd >= 0:
                os.close(fd)
        self._fd, self._wake = -1, None

    def _read_queued(self) -> None:
        """Move every event the kernel has queued to `_pending`, without handling any (caller holds the lock)."""
        while True:
            try:
                buffer = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                return
            self._pending.extend(parse_events(buffer))

    def _process_pending(self) -> None:
        while self._pending:
            self._handle(self._pending.popleft())

    def _handle(self, event: Event) -> None:
        mask = event.mask
        if mask & IN_Q_OVERFLOW:
            self._gap("the kernel's inotify queue overflowed (fs.inotify.max_queued_events): events were dropped")
            return
        if mask & IN_IGNORED:
            self._dirs.pop(event.wd, None)
            return
        folder = self._dirs.get(event.wd)
        if folder is None:
            return  # a folder moved out of the root, or forgotten: its events are no longer the root's
        path = folder / event.name if event.name else folder
        if mask & IN_CLOSE_NOWRITE:
            if not mask & IN_ISDIR:
                self._files.add(path)
            elif (event.wd, event.name) in self._own_listings:
                self._own_listings[event.wd, event.name] -= 1
                if not self._own_listings[event.wd, event.name]:
                    del self._own_listings[event.wd, event.name]
            else:
                self._folders.add(path)
        elif mask & IN_ISDIR and mask & IN_MOVED_FROM:
            self._moved_out[event.cookie] = self._unmap_tree(path)
        elif mask & IN_ISDIR and mask & IN_MOVED_TO and event.cookie in self._moved_out:
            for wd, relative in self._moved_out.pop(event.cookie).items():
                self._dirs[wd] = path / relative
        elif mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO) and not self._stopping.is_set():
            # Once stopping, the run's processes have exited: nothing more can be read in a new folder.
            self._watch_tree(path, event.wd, event.name, required=False)

    def _unmap_tree(self, top: Path) -> dict[int, Path]:
        """Forget the watches at and below `top`, returned relative to it (the kernel keeps them)."""
        moved = {wd: path.relative_to(top) for wd, path in self._dirs.items() if path.is_relative_to(top)}
        for wd in moved:
            del self._dirs[wd]
        return moved

    def _watch_tree(self, top: Path, parent_wd: int | None, name: str, *, required: bool) -> None:
        """Add a watch on `top` and every folder below it; `parent_wd` watches `top`'s parent under `name`."""
        assert self._inotify is not None
        todo = [(top, parent_wd, name)]
        while todo:
            folder, parent, entry = todo.pop()
            wd = self._inotify.add_watch(self._fd, folder)
            if wd < 0:
                if required:
                    raise OSError(-wd, f"cannot watch {folder}: {os.strerror(-wd)}", str(folder))
                if -wd == errno.ENOSPC:
                    self._gap("not watched, fs.inotify.max_user_watches reached", folder)
                elif -wd not in _GONE:
                    self._gap(f"not watched, {os.strerror(-wd)}", folder)
                continue
            required = False
            self._dirs[wd] = folder
            # The listing below causes close events; what the kernel queued before it is taken out first, so
            # that only events caused after this point (ours, and any concurrent listing) can merge with ours.
            self._read_queued()
            try:
                listing = os.scandir(folder)
            except OSError as exc:
                if exc.errno not in _GONE:
                    self._gap(f"not listed, {exc.strerror}: sub-folders not watched", folder)
                continue
            # Opened: the close is reported to this folder's watch, and to its parent's under its name.
            self._own_listings[wd, ""] += 1
            if parent is not None:
                self._own_listings[parent, entry] += 1
            try:
                with listing:
                    subfolders = [item.name for item in listing if item.is_dir(follow_symlinks=False)]
            except OSError as exc:
                self._gap(f"not listed, {exc.strerror}: sub-folders not watched", folder)
                continue
            todo.extend((folder / sub, wd, sub) for sub in subfolders)

    def _gap(self, reason: str, where: Path | None = None) -> None:
        places = self._gaps.setdefault(reason, [])
        if where is not None:
            places.append(where)

    def _render_gaps(self) -> list[str]:
        rendered = []
        for reason, places in self._gaps.items():
            if not places:
                rendered.append(reason)
            elif len(places) == 1:
                rendered.append(f"{places[0]}: {reason}")
            else:
                rendered.append(f"{places[0]} and {len(places) - 1} more folders: {reason}")
        return rendered
