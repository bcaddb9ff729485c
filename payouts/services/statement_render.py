"""Rendering a statement's lines as CSV and as PDF (ReportLab), byte for byte reproducible.

Both files show the same lines and the same arithmetic: ``opening + accruals + other movements - closing =
transfer``, in micro-units (six decimals), so the reader can add the column up and land on the transfer.
The PDF is built with ReportLab's ``invariant`` mode (no timestamp, no random document id): the same
statement always gives the same bytes, and so the same SHA-256.
"""

from __future__ import annotations

import csv
import io
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from payouts.money import format_micros, format_minor, plain_micros

CSV_COLUMNS = ["line_type", "description", "work_id", "generations", "first_day", "last_day", "baseline_micros",
               "attributed_micros", "amount_micros", "amount"]


def _days(line: dict[str, Any]) -> str:
    first, last = line.get("first_day"), line.get("last_day")
    if first and last:
        return first if first == last else f"{first} to {last}"
    return line.get("day", "")


def check_equation(meta: dict[str, Any]) -> str:
    cur = meta["currency"]
    return (f"{format_micros(meta['opening'], cur)} + {format_micros(meta['accruals'], cur)} + "
            f"{format_micros(meta['other'], cur)} - {format_micros(meta['closing'], cur)} = "
            f"{format_micros(meta['transfer'], cur)}")


def render_csv(*, meta: dict[str, Any], lines: list[dict[str, Any]]) -> bytes:
    """A key/value header, a blank row, then one row per line (amounts in micro-units and as decimals)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = [
        ("statement", meta["number"]), ("kind", meta["kind"]), ("contributor", meta["contributor"]),
        ("contributor_id", meta["contributor_id"]), ("currency", meta["currency"]),
        ("period_start", meta["period_start"].isoformat()), ("period_end", meta["period_end"].isoformat()),
        ("opening_balance_micros", meta["opening"]), ("accruals_micros", meta["accruals"]),
        ("other_movements_micros", meta["other"]), ("transfer_micros", meta["transfer"]),
        ("closing_balance_micros", meta["closing"]),
    ]
    if meta.get("payout"):
        payout = meta["payout"]
        header += [("payout_id", payout["id"]), ("payout_run_id", payout["run_id"]),
                   ("transfer_minor", payout["amount_minor"]), ("stripe_transfer_id", payout["stripe_transfer_id"])]
    header.append(("check", "opening + accruals + other movements - closing = transfer"))
    for key, value in header:
        writer.writerow([key, value])
    writer.writerow([])
    writer.writerow(CSV_COLUMNS)
    for line in lines:
        writer.writerow([
            line["type"], line["label"], line.get("work_id", ""), line.get("generations", ""),
            line.get("first_day", line.get("day", "")), line.get("last_day", ""),
            line.get("baseline_micros", ""), line.get("attributed_micros", ""), line["amount_micros"],
            plain_micros(line["amount_micros"]),
        ])
    return out.getvalue().encode("utf-8")


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    return {
        "title": ParagraphStyle("title", parent=base["Title"], fontSize=16, alignment=0, spaceAfter=4),
        "body": ParagraphStyle("body", parent=base["BodyText"], fontSize=9, leading=12),
        "cell": ParagraphStyle("cell", parent=base["BodyText"], fontSize=8, leading=10),
        "small": ParagraphStyle("small", parent=base["BodyText"], fontSize=7.5, leading=9.5,
                                textColor=colors.HexColor("#5b6475")),
        "h2": ParagraphStyle("h2", parent=base["Heading2"], fontSize=11, spaceBefore=8, spaceAfter=4),
    }


_GRID = [
    ("FONTSIZE", (0, 0), (-1, -1), 8),
    ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor("#1d2433")),
    ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.HexColor("#dfe3ea")),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("TOPPADDING", (0, 0), (-1, -1), 2),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
]


def render_pdf(*, meta: dict[str, Any], lines: list[dict[str, Any]]) -> bytes:
    """An A4 statement: who, which period, the summary and its check, then every line."""
    cur = meta["currency"]
    st = _styles()
    buffer = io.BytesIO()
    number = meta["number"]

    def footer(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(colors.HexColor("#5b6475"))
        canvas.drawString(18 * mm, 10 * mm, f"Statement {number} - Contributor Royalties")
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, f"Page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=18 * mm, title=f"Royalty statement {number}",
                            author="Contributor Royalties", invariant=1)
    kind = "Payout statement" if meta["kind"] == "payout" else "Monthly statement"
    who = meta["contributor"] + (f" ({meta['legal_name']})" if meta.get("legal_name") else "")
    story: list[Any] = [
        Paragraph(escape(f"{kind} {number}"), st["title"]),
        Paragraph(escape(f"{who}, contributor #{meta['contributor_id']}"), st["body"]),
        Paragraph(escape(f"Period {meta['period_start']:%Y-%m-%d} to {meta['period_end']:%Y-%m-%d}, amounts in "
                         f"{cur} to the micro-unit (0.000001)"), st["body"]),
        Spacer(1, 4 * mm),
    ]
    summary = [["", "Amount"],
               ["Opening balance", format_micros(meta["opening"], cur)],
               ["Royalties accrued (by work, below)", format_micros(meta["accruals"], cur)],
               ["Other movements (holds, returns, adjustments)", format_micros(meta["other"], cur)]]
    if meta.get("payout"):
        payout = meta["payout"]
        summary.append([f"Transfer to your Stripe account ({format_minor(payout['amount_minor'], cur)})",
                        format_micros(-meta["transfer"], cur)])
    summary.append(["Closing balance, carried forward", format_micros(meta["closing"], cur)])
    table = Table(summary, colWidths=[118 * mm, 56 * mm], hAlign="LEFT")
    table.setStyle(TableStyle([*_GRID, ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                               ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold")]))
    story += [table, Spacer(1, 2 * mm),
              Paragraph(escape("Check: opening + accruals + other movements - closing = transfer"), st["small"]),
              Paragraph(escape(check_equation(meta)), st["small"])]
    if meta.get("payout") and meta["closing"] and meta["payout"].get("remainder_micros"):
        story.append(Paragraph(escape(
            f"Transfers move whole {cur} minor units; the remainder below one minor unit stays on your balance "
            "and is paid with a later payout."), st["small"]))

    story.append(Paragraph("Lines", st["h2"]))
    rows: list[list[Any]] = [["Line", "Generations", "Days", "Amount"]]
    for line in lines:
        rows.append([
            Paragraph(escape(line["label"]), st["cell"]),
            f"{line['generations']:,}" if "generations" in line else "",
            _days(line),
            format_micros(line["amount_micros"], cur),
        ])
    lines_table = LongTable(rows, colWidths=[78 * mm, 22 * mm, 38 * mm, 36 * mm], repeatRows=1, hAlign="LEFT")
    lines_table.setStyle(TableStyle([*_GRID, ("ALIGN", (1, 0), (1, -1), "RIGHT"), ("ALIGN", (3, 0), (3, -1), "RIGHT"),
                                     ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold")]))
    story.append(lines_table)
    story += [Spacer(1, 4 * mm), Paragraph(escape(
        "Each accrual line is what your share of the work earned from the generations that drew on it (baseline "
        "share of the training manifest plus attribution), net of corrections. This statement is issued once "
        "and never changed; its SHA-256 fingerprint is recorded when it is issued."), st["small"])]
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
