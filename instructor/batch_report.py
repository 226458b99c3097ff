"""Write the results of batch grading: the gradebook and one feedback page per student."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from instructor.batch_grade import Suite


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def format_points(value: float) -> str:
    return f"{value:g}"


def markdown_block(text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}text\n{text}\n{fence}"


def feedback_markdown(result: dict) -> str:
    lines = [
        f"# Feedback for {result['student']}",
        "",
        f"Status: {result['status']}. Points: {format_points(result['total'])} of "
        f"{format_points(result['possible'])}.",
        "",
        "| task | points | possible |",
        "| --- | ---: | ---: |",
    ]
    for task, points in result["tasks"].items():
        lines.append(
            f"| {task} | {format_points(points['earned'])} | "
            f"{format_points(points['possible'])} |"
        )
    lines.append(
        f"| **Total** | **{format_points(result['total'])}** | "
        f"**{format_points(result['possible'])}** |"
    )
    if result["notes"]:
        lines += ["", "## Notes", ""]
        lines += [f"- {note}" for note in result["notes"]]
    lost_tests = [test for test in result["tests"] if test["earned"] < test["points"]]
    if lost_tests:
        lines += ["", "## Lost points"]
        for task in result["tasks"]:
            in_task = [test for test in lost_tests if test["task"] == task]
            if not in_task:
                continue
            lines += ["", f"### {task}", ""]
            for test in in_task:
                kind = " (hidden test)" if test["hidden"] else ""
                lines.append(
                    f"**{test['test']}**{kind}: -{format_points(test['points'])} points"
                )
                lines += ["", markdown_block(test["reason"].strip() or "failed"), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_gradebook(output: Path, suite: Suite, results: list[dict]) -> None:
    results = sorted(results, key=lambda result: result["student"])
    header = ["student", *suite.tasks, "total", "possible", "status"]
    rows = []
    for result in results:
        row = {
            "student": result["student"],
            **{
                task: result["tasks"].get(task, {}).get("earned", 0.0)
                for task in suite.tasks
            },
            "total": result["total"],
            "possible": result["possible"],
            "status": result["status"],
        }
        rows.append(row)
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as buffer:
        writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(
                [
                    format_points(row[column])
                    if isinstance(row[column], float)
                    else row[column]
                    for column in header
                ]
            )
        buffer.seek(0)
        write_atomically(output / "gradebook.csv", buffer.read())
    gradebook = {"tasks": suite.tasks, "possible": suite.possible, "students": rows}
    write_atomically(
        output / "gradebook.json", json.dumps(gradebook, indent=2, ensure_ascii=False)
    )
