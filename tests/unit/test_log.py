from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from dbamgr.log import (
    RedactingFilter,
    mask_url,
    redact,
    setup_logging,
    write_error_record,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "postgresql://app:s3cr%40t@db.example.com:5432/shop",
            "postgresql://app:****@db.example.com:5432/shop",
        ),
        ("postgres://:pw@host/db", "postgres://:****@host/db"),
        ("postgresql://app@host/db", "postgresql://app@host/db"),
        ("host=x password=hunter2 dbname=y", "host=x password=**** dbname=y"),
        ("host=x password='a b c' dbname=y", "host=x password=**** dbname=y"),
        (
            "postgresql://host/db?user=a&password=hunter2&sslmode=require",
            "postgresql://host/db?user=a&password=****&sslmode=require",
        ),
    ],
)
def test_passwords_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_mask_url_keeps_everything_but_the_password() -> None:
    url = "postgresql://alice:p%3Aw@[::1]:6432/app?sslmode=require"
    assert mask_url(url) == "postgresql://alice:****@[::1]:6432/app?sslmode=require"


def test_a_masked_query_password_keeps_the_text_after_it() -> None:
    message = "cannot connect to postgresql://u@h/x?password=secret: Is it running?"
    masked = redact(message)
    assert (
        masked == "cannot connect to postgresql://u@h/x?password=****: Is it running?"
    )
    assert redact(masked) == masked
    quoted = redact('at "postgresql://h/x?password=se:cr.et", then')
    assert quoted == 'at "postgresql://h/x?password=****", then'


def test_passwords_inside_messages_are_masked() -> None:
    message = "cannot connect to postgresql://u:topsecret@h/d: refused"
    assert "topsecret" not in redact(message)


def test_log_filter_masks_arguments() -> None:
    record = logging.LogRecord(
        "dbamgr", logging.INFO, __file__, 1, "url %s", ("postgresql://u:pw1@h/d",), None
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == "url postgresql://u:****@h/d"


def test_error_record_is_one_redacted_json_line(tmp_path: Path) -> None:
    for _ in range(2):
        write_error_record(
            tmp_path,
            command="dbamgr up",
            error_type="MigrationError",
            message="failed on postgresql://u:hunter2@h/d",
            migration="1_x",
            context={"url": "postgresql://u:hunter2@h/d", "line": 3},
            hint="fix it",
        )
    text = (tmp_path / "errors.jsonl").read_text()
    assert "hunter2" not in text
    lines = text.splitlines()
    assert len(lines) == 2
    record = json.loads(lines[0])
    assert record["migration"] == "1_x"
    assert record["context"]["line"] == 3
    assert {"timestamp", "command", "error_type", "message", "hint"} <= set(record)
    assert (tmp_path / "errors.jsonl").stat().st_mode & 0o777 == 0o600


def test_debug_tracebacks_mask_passwords(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("dbamgr")
    saved = (logger.level, logger.propagate, list(logger.handlers))
    setup_logging(debug=True)
    try:
        try:
            try:
                raise ValueError("bad URI: postgresql://u:hunter2@h/d")
            except ValueError as exc:
                raise RuntimeError("could not connect") from exc
        except RuntimeError:
            logging.getLogger("dbamgr.test").exception("failed")
    finally:
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        logger.handlers[:] = saved[2]
    err = capsys.readouterr().err
    assert "Traceback" in err and "postgresql://u:****@h/d" in err
    assert "hunter2" not in err
