"""The session browser on `o`: every snapshot under the run's sessions folder; Enter
resumes the chosen one (the app stops the current run first, saving it)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from engine.sessions import SessionInfo


def _mse(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


class SessionBrowser(ModalScreen[SessionInfo | None]):
    BINDINGS = [
        Binding("escape", "close", "close"),
        Binding("o", "close", "close", show=False),
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

    def __init__(self, sessions: list[SessionInfo], root: str, current: str) -> None:
        super().__init__()
        self.sessions = sessions
        self.root = root
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"sessions in {self.root}: Enter resumes one, escape closes")
            yield DataTable(cursor_type="row", zebra_stripes=True, id="sessions")

    def on_mount(self) -> None:
        self.query_one(Vertical).border_title = "sessions"
        table = self.query_one(DataTable)
        table.add_columns("id", "method", "epoch/row", "frozen MSE test", "saved at")
        for i, s in enumerate(self.sessions):
            if s.error:
                cells = (s.id, "-", "-", "-", f"unreadable: {s.error}")
            else:
                mark = " (this run)" if s.id == self.current else ""
                cells = (
                    s.id + mark,
                    s.method,
                    f"{s.epoch}/{s.epochs} r{s.row:,}/{s.rows_per_epoch:,}",
                    _mse(s.frozen_mse_test),
                    s.saved_at.replace("T", " ")[:19],
                )
            table.add_row(*cells, key=str(i))
        if not self.sessions:
            self.query_one(Label).update(f"no sessions in {self.root} yet: s saves one")
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        info = self.sessions[int(event.row_key.value)]
        if info.error:
            self.notify(info.error, title="cannot resume", severity="error")
            return
        self.dismiss(info)

    def action_close(self) -> None:
        self.dismiss(None)
