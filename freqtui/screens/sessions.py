"""The session browser on `o`: every snapshot under the run's sessions folder and in the
repository's models/; Enter resumes the chosen one (the app stops the current run first,
saving it); space marks rows and `c` compares the marked ones (screens/compare.py)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from engine.sessions import SessionInfo
from freqtui.screens.compare import CompareScreen

MARK = "●"


def _mse(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


class SessionBrowser(ModalScreen[SessionInfo | None]):
    BINDINGS = [
        Binding("escape", "close", "close"),
        Binding("o", "close", "close", show=False),
        Binding("space", "mark", "mark"),
        Binding("c", "compare", "compare marked"),
    ]
    DEFAULT_CSS = """
    SessionBrowser { align: center middle; }
    SessionBrowser > Vertical {
        width: 95%; max-width: 120; height: 85%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    SessionBrowser DataTable { height: 1fr; }
    SessionBrowser Label { width: 1fr; color: $text-muted; }
    """

    def __init__(
        self,
        sessions: list[SessionInfo],
        root: str,
        current: str,
        models: list[SessionInfo] | None = None,
    ) -> None:
        super().__init__()
        self.n_sessions = len(sessions)
        self.sessions = sessions + list(models or [])  # rows: sessions first, then models/
        self.root = root
        self.current = current
        self.marked: list[int] = []  # row indices, in the order they were marked

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                f"sessions in {self.root} and models/: Enter resumes one, space marks, "
                "c compares the marked, escape closes"
            )
            yield DataTable(cursor_type="row", zebra_stripes=True, id="sessions")

    def on_mount(self) -> None:
        self.query_one(Vertical).border_title = "sessions"
        table = self.query_one(DataTable)
        table.add_columns("id", "method", "epoch/row", "frozen MSE test", "saved at")
        table.add_column("cmp", key="mark", width=3)  # marked for `c`
        for i, s in enumerate(self.sessions):
            name = s.id if i < self.n_sessions else f"models/{s.path.name}"
            if s.error:
                cells = (name, "-", "-", "-", f"unreadable: {s.error}")
            else:
                mark = " (this run)" if s.id == self.current and i < self.n_sessions else ""
                cells = (
                    name + mark,
                    s.method,
                    f"{s.epoch}/{s.epochs} r{s.row:,}/{s.rows_per_epoch:,}",
                    _mse(s.frozen_mse_test),
                    s.saved_at.replace("T", " ")[:19],
                )
            table.add_row(*cells, "", key=str(i))
        if not self.sessions:
            self.query_one(Label).update(f"no sessions in {self.root} yet: s saves one")
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        info = self.sessions[int(event.row_key.value)]
        if info.error:
            self.notify(info.error, title="cannot resume", severity="error")
            return
        self.dismiss(info)

    def action_mark(self) -> None:
        table = self.query_one(DataTable)
        if not self.sessions:
            return
        i = table.cursor_row
        if self.sessions[i].error:
            self.notify(self.sessions[i].error, title="cannot compare", severity="error")
            return
        if i in self.marked:
            self.marked.remove(i)
        else:
            self.marked.append(i)
        table.update_cell(str(i), "mark", MARK if i in self.marked else "")
        table.move_cursor(row=min(i + 1, table.row_count - 1))

    def action_compare(self) -> None:
        if not self.marked:
            self.notify("mark sessions with space first", title="nothing to compare")
            return
        self.app.push_screen(CompareScreen([self.sessions[i].path for i in self.marked]))

    def action_close(self) -> None:
        self.dismiss(None)
