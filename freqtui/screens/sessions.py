"""The session browser on `o`: every snapshot under the run's sessions folder and in the
repository's models/; Enter resumes the chosen one (the app stops the current run first,
saving it); space marks rows and `c` compares the marked ones (screens/compare.py);
`s` sorts by date or by frozen MSE, `f` shows one method at a time, `d` deletes the
highlighted session after a question (engine/store/sessions.py checks and deletes).

The app opens it at once with a way to list the sessions: every snapshot is read
(torch.load) in a worker thread, and the browser says "loading…" until the rows are in.
Keys pressed meanwhile act on the empty table (nothing to resume, mark or delete).

The mark column comes first and the columns that matter most follow (id, frozen MSE,
saved at), so at 80 columns they all show; method and progress come last."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from engine.errors import FreqtuiError
from engine.store.sessions import LATEST, PREVIOUS, SessionInfo, check_deletable, delete_session
from freqtui.screens.compare import CompareScreen
from freqtui.screens.confirm import ConfirmScreen
from freqtui.text import fmt_mse as _mse

MARK = "●"
SORTS = ("date", "frozen MSE")
HELP = "Enter resumes · space marks · c compare · s sort · f method · d delete · esc"
SCROLLS = "← → scrolls"
LOADING = "loading…"

Listing = Callable[[], tuple[list[SessionInfo], list[SessionInfo]]]  # sessions, models/


def _saved(at: str) -> str:
    return at.replace("T", " ")[:16]  # to the minute: '2026-12-01 02:02'


class SessionBrowser(ModalScreen[SessionInfo | None]):
    BINDINGS = [
        Binding("escape", "close", "close"),
        Binding("o", "close", "close", show=False),
        Binding("space", "mark", "mark"),
        Binding("c", "compare", "compare marked"),
        Binding("s", "sort", "sort"),
        Binding("f", "filter", "method"),
        Binding("d", "delete", "delete"),
    ]
    DEFAULT_CSS = """
    SessionBrowser { align: center middle; }
    SessionBrowser > Vertical {
        width: 100%; max-width: 120; height: 85%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    SessionBrowser DataTable { height: 1fr; }
    SessionBrowser Label { width: 1fr; color: $text-muted; }
    """

    class Loaded(Message, bubble=False):
        """The listing worker's answer: the sessions, then the models/ snapshots."""

        def __init__(
            self, sessions: list[SessionInfo], models: list[SessionInfo], error: str | None = None
        ) -> None:
            super().__init__()
            self.sessions = sessions
            self.models = models
            self.error = error  # the sessions folder could not be listed

    def __init__(
        self,
        sessions: list[SessionInfo] | None,
        root: str,
        current: str,
        models: list[SessionInfo] | None = None,
        *,
        listing: Listing | None = None,
    ) -> None:
        """The rows given, or (`sessions` None) those `listing` returns in a worker thread."""
        super().__init__()
        if sessions is None and listing is None:
            raise ValueError("a session browser needs its sessions or a way to list them")
        self.n_sessions = 0
        self.sessions: list[SessionInfo] = []  # rows: sessions first, then models/
        self.loaded = False
        if sessions is not None:
            self._set_rows(sessions, models or [])
        self.listing = listing
        self.root = root
        self.current = current
        self.marked: list[int] = []  # indices into self.sessions, in the order marked
        self.deleted: set[int] = set()
        self.sort = SORTS[0]
        self.method: str | None = None  # the method shown; None: every method
        self.state = ""  # the line above the table, without "← → scrolls"

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(HELP, id="browser-help")
            yield Label("", id="browser-state")
            yield DataTable(cursor_type="row", zebra_stripes=True, id="sessions", header_height=2)

    def on_mount(self) -> None:
        self.query_one(Vertical).border_title = "sessions"
        table = self.query_one(DataTable)
        table.add_column("cmp", key="mark", width=3)  # marked for `c`: first, always seen
        table.add_column("id", key="id")
        table.add_column("frozen MSE\ntest", key="mse")
        table.add_column("saved at", key="saved")
        table.add_column("method", key="method")
        table.add_column("epoch/row", key="progress")
        self._fill()
        table.focus()
        # rows listed later widen the table once it has laid them out (on its own idle)
        self.watch(table, "virtual_size", lambda _: self._say_if_it_scrolls(), init=False)
        if not self.loaded:
            self.query_one(Vertical).border_title = f"sessions: {LOADING}"
            self._list()

    @work(thread=True, exclusive=True, group="listing")
    def _list(self) -> None:
        """Off the UI thread: every snapshot and sidecar read (engine/store)."""
        assert self.listing is not None
        try:
            sessions, models = self.listing()
        except FreqtuiError as exc:  # the folder itself cannot be listed
            self.post_message(self.Loaded([], [], str(exc)))
            return
        self.post_message(self.Loaded(sessions, models))

    def on_session_browser_loaded(self, message: Loaded) -> None:
        self._set_rows(message.sessions, message.models)
        self.query_one(Vertical).border_title = "sessions"
        self._fill()
        if message.error is not None:
            self.state = message.error
            self.query_one("#browser-state", Label).update(message.error)
            self.notify(message.error, title="cannot list the sessions", severity="error")

    def _set_rows(self, sessions: list[SessionInfo], models: list[SessionInfo]) -> None:
        self.n_sessions = len(sessions)
        self.sessions = list(sessions) + list(models)
        self.loaded = True

    # ---- the rows ------------------------------------------------------------------------
    def _label(self, i: int) -> str:
        s = self.sessions[i]
        if i >= self.n_sessions:
            return f"models/{s.path.name}"
        return s.id + (" (this run)" if s.id == self.current else "")

    def _shown(self) -> list[int]:
        """Indices of the rows on screen, in the order shown."""
        rows = [
            i
            for i in range(len(self.sessions))
            if i not in self.deleted
            and (self.method is None or self.sessions[i].method == self.method)
        ]
        if self.sort == "frozen MSE":  # least first; never evaluated or unreadable last
            mse = {i: self.sessions[i].frozen_mse_test for i in rows}
            rows.sort(key=lambda i: (mse[i] is None, mse[i] or 0.0))
        return rows  # by date: newest session first, then models/ by name (as listed)

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        keep = self._cursor_index()
        table.clear()
        for i in self._shown():
            s = self.sessions[i]
            mark = MARK if i in self.marked else ""
            if s.error:
                cells = (mark, self._label(i), "-", "-", "-", f"unreadable: {s.error}")
            else:
                cells = (
                    mark,
                    self._label(i),
                    _mse(s.frozen_mse_test),
                    _saved(s.saved_at),
                    s.method,
                    f"{s.epoch}/{s.epochs} r{s.row:,}/{s.rows_per_epoch:,}",
                )
            table.add_row(*cells, key=str(i))
        if keep is not None and str(keep) in table.rows:
            table.move_cursor(row=table.get_row_index(str(keep)))
        method = self.method or "all"
        if not self.loaded:
            state = f"{LOADING} {self.root} and models/"
        elif not self.sessions:
            state = f"no sessions in {self.root} yet: s saves one"
        elif table.row_count == 0:
            state = f"no {method} sessions here: f shows the next method"
        else:
            state = f"sorted by {self.sort} · method: {method} · in {self.root} and models/"
        self.state = state
        self.query_one("#browser-state", Label).update(state)
        self.call_after_refresh(self._say_if_it_scrolls)

    def _say_if_it_scrolls(self) -> None:
        table = self.query_one(DataTable)
        wider = table.virtual_size.width > table.scrollable_content_region.width
        self.query_one("#browser-state", Label).update(
            f"{SCROLLS} · {self.state}" if wider else self.state
        )

    def _cursor_index(self) -> int | None:
        """The highlighted row as an index into self.sessions (None on an empty table)."""
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return int(key.value)

    # ---- keys ----------------------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        info = self.sessions[int(event.row_key.value)]
        if info.error:
            self.notify(info.error, title="cannot resume", severity="error")
            return
        self.dismiss(info)

    def action_mark(self) -> None:
        table = self.query_one(DataTable)
        i = self._cursor_index()
        if i is None:
            return
        if self.sessions[i].error:
            self.notify(self.sessions[i].error, title="cannot compare", severity="error")
            return
        if i in self.marked:
            self.marked.remove(i)
        else:
            self.marked.append(i)
        table.update_cell(str(i), "mark", MARK if i in self.marked else "")
        table.move_cursor(row=min(table.cursor_row + 1, table.row_count - 1))

    def action_compare(self) -> None:
        if not self.marked:
            self.notify("mark sessions with space first", title="nothing to compare")
            return
        self.app.push_screen(CompareScreen([self.sessions[i].path for i in self.marked]))

    def action_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self._fill()

    def action_filter(self) -> None:
        methods = sorted(
            {s.method for k, s in enumerate(self.sessions) if s.method and k not in self.deleted}
        )
        cycle: list[str | None] = [None, *methods]
        at = cycle.index(self.method) if self.method in cycle else 0
        self.method = cycle[(at + 1) % len(cycle)]
        self._fill()

    def action_delete(self) -> None:
        i = self._cursor_index()
        if i is None:
            return
        info = self.sessions[i]
        if i >= self.n_sessions:
            self.notify(
                "a snapshot in models/ belongs to the repository: not deleted here",
                title="not deleted",
                severity="error",
            )
            return
        name = self._folder_name(info)
        if name == self.current:
            self.notify(
                f"session {name} is the live one (this console runs it): open another first",
                title="not deleted",
                severity="error",
            )
            return
        try:
            folder = check_deletable(name, Path(self.root))
        except FreqtuiError as exc:
            self.notify(str(exc), title="not deleted", severity="error", timeout=10)
            return
        what = "unreadable" if info.error else f"{info.method}, frozen MSE test "
        what += "" if info.error else _mse(info.frozen_mse_test)
        question = f"Delete session {name} ({what}) and all its snapshots?\n{folder}"

        def answered(yes: bool | None) -> None:
            if yes:
                self._delete(i, name)

        self.app.push_screen(ConfirmScreen(question), answered)

    def _delete(self, i: int, name: str) -> None:
        try:
            folder = delete_session(name, Path(self.root))
        except FreqtuiError as exc:
            self.notify(str(exc), title="not deleted", severity="error", timeout=10)
            return
        self.deleted.add(i)
        if i in self.marked:
            self.marked.remove(i)
        self._fill()
        self.notify(f"deleted {folder}", title="session deleted")

    @staticmethod
    def _folder_name(info: SessionInfo) -> str:
        path = info.path
        return path.parent.name if path.name in (LATEST, PREVIOUS) else path.name

    def action_close(self) -> None:
        self.dismiss(None)
