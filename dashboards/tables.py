"""Tables with a CSV download: the rows drawn as an HTML table, and the same rows sent as CSV by a button.

A page puts `csv_table(...)` in its layout and fills `<id>-rows` (the records, a dcc.Store) and `<id>` (the drawn
table, from `render`) from its callback; one pattern-matching callback serves the download of every table. The
CSV holds the unformatted values under the display headers.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from dash import MATCH, Dash, Input, Output, State, dcc, html, no_update

from collector.csvcells import SafeWriter

#: (id, header, kind): kind "text" or "numeric" (right-aligned, thousands separated).
Column = tuple[str, str, str]


def csv_table(table_id: str, title: str, columns: Sequence[Column], hint: str = "") -> html.Div:
    return html.Div([
        html.Div([html.H2(title), html.Button("Download CSV", id={"type": "csv-button", "table": table_id},
                                              className="csv-button", n_clicks=0)], className="table-head"),
        html.P(hint, className="hint") if hint else None,
        dcc.Store(id={"type": "csv-rows", "table": table_id}, data=[]),
        dcc.Download(id={"type": "csv-download", "table": table_id}),
        html.Div(id=table_id, className="table-wrap"),
    ], className="table-block")


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "numeric" and isinstance(value, int | float):
        return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"
    return str(value)


def render(columns: Sequence[Column], records: Sequence[Mapping[str, Any]], empty: str) -> html.Div | html.Table:
    if not records:
        return html.Div(empty, className="empty-state")
    head = html.Thead(html.Tr([html.Th(header, className=kind) for _, header, kind in columns]))
    body = html.Tbody([html.Tr([html.Td(_cell(r.get(key), kind), className=kind) for key, _, kind in columns])
                       for r in records])
    return html.Table([head, body], className="data-table")


def to_csv(columns: Sequence[Column], records: Sequence[Mapping[str, Any]]) -> str:
    """RFC 4180 CSV: the display headers, then each record's raw values ("" for none); text a spreadsheet would
    run as a formula gets a leading `'` (`collector.csvcells`)."""
    out = io.StringIO()
    writer = SafeWriter(out, lineterminator="\r\n")
    writer.writerow([header for _, header, _ in columns])
    for r in records:
        writer.writerow(["" if r.get(key) is None else r.get(key) for key, _, _ in columns])
    return out.getvalue()


def register_callbacks(app: Dash, columns_of: Mapping[str, Sequence[Column]]) -> None:
    """The download of every table; `columns_of` maps a table id to its columns."""

    @app.callback(Output({"type": "csv-download", "table": MATCH}, "data"),
                  Input({"type": "csv-button", "table": MATCH}, "n_clicks"),
                  State({"type": "csv-rows", "table": MATCH}, "data"),
                  State({"type": "csv-button", "table": MATCH}, "id"), prevent_initial_call=True)
    def download(clicks: int | None, records: list[dict[str, Any]] | None, button: dict[str, str]) -> Any:
        if not clicks:
            return no_update
        table_id = button["table"]
        # dcc.Download's data (what dcc.send_string builds, which is untyped).
        return {"content": to_csv(columns_of[table_id], records or []), "filename": f"{table_id}.csv",
                "type": "text/csv", "base64": False}
