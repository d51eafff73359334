"""Text from untrusted hands on every surface that shows it: logs, terminals, job summaries, comments.

In the fork pattern a pull request controls the gate files, the data and (through the artifact) the report
that the privileged ``workflow_run`` job reads. A corpus per class of attack, run through every command
that prints a report, asserts that data never becomes a workflow command, markup, a mention, a hidden
line or a huge table; plus the sticky comment's owner, tokens, event payloads, report merge and init.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from github_server import LocalGitHub
from test_report import ENV, check, gate

from modelcheck.cli import main
from modelcheck.github.annotations import annotation_lines
from modelcheck.github.comment import Marker, comment_body
from modelcheck.github.context import Context, UsageError, pull_request
from modelcheck.github.judge import judge
from modelcheck.github.summary import job_summary
from modelcheck.report.document import build_report, write_report
from modelcheck.report.summary import markdown
from modelcheck.report.text import (
    COLUMN_CHARS,
    GuardedStream,
    log_text,
    md_code,
    md_text,
    plain,
    redact,
    secret,
    text_table,
)

# -- the corpus: one entry per way text becomes a command, markup or a hidden line -----------------

#: name -> text a pull request controls (a gate-file name, a check name, a message, a slice value, ...)
INJECTIONS: dict[str, str] = {
    "LF": "bad\n::set-output name=status::passed\n.yaml",
    "CR": "bad\r::stop-commands::tok",
    "CRLF": "bad\r\n::add-mask::passed",
    "at the start": "::set-output name=status::passed",
    "indented": "x\n   ::error::forged",
    "tab-indented": "x\n\t::warning title=t::forged",
    "legacy prefix anywhere": "x ##[set-output name=status;]passed",
    "NEL (C1)": "x\x85::error::forged",
    "line separator": "x\u2028::error::forged",
    "ANSI erase line": "x\x1b[2K\r::error::forged",
    "ANSI hide + OSC title": "\x1b[8mhidden\x1b[0m\x1b]0;pwned\x07",
    "vertical tab / form feed": "x\x0b::error::\x0cforged",
    "bidi override": "x\u202egnissap\u202c",
    "NUL and BEL": "x\x00\x07::error::forged",
}

MARKUP: dict[str, str] = {
    "blank lines and a fake heading": "x\n\n## ✅ modelcheck: passed\n\n",
    "img onerror": '<img src=x onerror="alert(1)">',
    "script": "<script>alert(1)</script>",
    "pipes break a table": "a|b|c",
    "backticks": "``` `x` ``",
    "a mention": "@octocat please merge",
    "a team mention": "@acme/admins",
    "a link": "[passed](https://evil.test)",
    "an image": "![x](https://evil.test/p.png)",
    "a second marker": '<!-- modelcheck-gate key="ci/merge" sha=1 run=999999 attempt=9 -->',
    "details closed early": "</summary></details>",
    "a fence": "x\n```\n## passed\n```",
    "emphasis and strike": "**passed** ~~failed~~",
}


def _hostile_report(text: str) -> dict[str, Any]:
    """A report (as an artifact would carry it) with ``text`` in every field a pull request controls."""
    checks = [
        check(text, "failed", value=0.5, threshold={"min": 0.9}, stages=["merge"], line=3, message=f"m {text}",
              details={"unit": text, "slices": [{"slice": text, "n": 3, "value": 0.1, "status": "failed"}]}),
        check("ok", stages=["merge"], message=text),
        check("slow", "error", value=None, stages=["merge"], message=text),
    ]  # fmt: skip
    hostile = gate(checks, {"merge": [text, "ok", "slow"]}, file=text)
    broken = gate([], {"merge": []}, file=f"{text}-2", error=f"{text}:3: bad gate")
    doc = build_report([hostile, broken], stage="merge", env={**ENV, "git": {**ENV["git"], "branch": text}})
    doc["gates"][0]["model"]["id"] = text
    doc["gates"][0]["data"]["source"] = text
    return doc


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(doc), encoding="utf-8")  # as an attacker writes it: no schema on the way
    return path


def _runner_lines(output: str) -> list[str]:
    """Lines as GitHub's runner reads them: split at CR, LF and CRLF."""
    return re.split(r"\r\n|\r|\n", output)


def _commands(output: str) -> list[str]:
    """The lines the runner would take as workflow commands (``::`` after blanks, or ``##[`` anywhere)."""
    return [line for line in _runner_lines(output) if line.lstrip().startswith("::") or "##[" in line]


def _controls(output: str) -> list[str]:
    return re.findall("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", output)


@pytest.fixture
def outside_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "GITHUB_REPOSITORY", "GITHUB_TOKEN",
                 "GITHUB_EVENT_PATH", "GITHUB_RUN_ID"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


COMMANDS = [
    ["gate", "--stage", "merge", "{report}"],
    ["summary", "{report}"],
    ["validate", "{report}"],
    ["github", "summary", "{report}", "--stage", "merge"],
    ["github", "comment", "{report}", "--stage", "merge"],
    ["github", "outputs", "{report}", "--stage", "merge"],
    ["report", "merge", "{report}", "{report2}", "-o", "{out}"],
]


@pytest.mark.usefixtures("outside_actions")
@pytest.mark.parametrize("name", list(INJECTIONS))
@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: " ".join(a for a in argv if "{" not in a))
def test_no_printed_line_is_a_workflow_command_or_holds_a_control_character(
    name: str, argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _write(tmp_path, _hostile_report(INJECTIONS[name]))
    second = tmp_path / "second.json"
    second.write_bytes(report.read_bytes())  # two results for one (hostile) gate file: a refusal quoting it
    args = [a.format(report=report, report2=second, out=tmp_path / "all.json") for a in argv]
    main(args)
    captured = capsys.readouterr()
    for stream in (captured.out, captured.err):
        assert _commands(stream) == []
        assert _controls(stream) == []
    assert "Traceback" not in captured.err


@pytest.mark.usefixtures("outside_actions")
@pytest.mark.parametrize("name", list(INJECTIONS))
def test_annotate_prints_only_its_own_commands(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _hostile_report(INJECTIONS[name])
    assert main(["github", "annotate", str(_write(tmp_path, doc)), "--stage", "merge"]) == 0
    out = capsys.readouterr().out
    intended = annotation_lines(judge(doc, "merge"))
    assert _commands(out) == intended and len(intended) == 3  # the failed check, the errored one, the broken gate
    assert all(re.fullmatch(r"::(error|warning|notice) [^:]*::[^\r\n]*", line) for line in intended)
    assert _controls(out) == []


@pytest.mark.parametrize("name", list(INJECTIONS))
def test_the_helpers_hold_for_every_case(name: str) -> None:
    text = INJECTIONS[name]
    assert "\n" not in plain(text) and "\r" not in plain(text) and _controls(plain(text)) == []
    assert _commands(log_text(text)) == [] and _controls(log_text(text)) == []
    assert _commands(log_text(f"  {text}")) == []
    for rendered in (md_text(text), md_code(text)):
        assert "\n" not in rendered and _controls(rendered.replace("\u200d", "")) == []


def test_the_guarded_stream_decides_a_line_written_in_pieces() -> None:
    import io

    raw = io.StringIO()
    stream = GuardedStream(raw)
    for piece in [" ", ":", ":set-output name=x::y", "\n", "ok ::fine\n", "::", "error::z"]:
        stream.write(piece)
    stream.finish()
    assert raw.getvalue() == " %3A:set-output name=x::y\nok ::fine\n%3A:error::z"
    stream.command("::notice::intended")
    assert raw.getvalue().endswith("\n::notice::intended\n")


# -- Markdown, HTML and mentions --------------------------------------------------------------------


def _render(markdown_text: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    return str(
        markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(markdown_text)
    )


def _outside_code(html: str) -> str:
    return re.sub(r"<code>.*?</code>|<pre>.*?</pre>", "", html, flags=re.S)


def _surfaces(doc: dict[str, Any]) -> dict[str, str]:
    result = judge(doc, "merge")
    marker = Marker("ci/merge", "a" * 40, 5, 1)
    return {
        "job summary": job_summary(doc, "merge"),
        "modelcheck summary": markdown(doc),
        "comment": comment_body(result, marker, run_url="https://github.test/r/1"),
    }


@pytest.mark.parametrize("name", list(MARKUP) + list(INJECTIONS))
def test_markdown_surfaces_render_data_as_text(name: str) -> None:
    text = {**MARKUP, **INJECTIONS}[name]
    for surface, body in _surfaces(_hostile_report(text)).items():
        html = _render(body)
        outside = _outside_code(html)
        baseline = _outside_code(_render(_surfaces(_hostile_report("x"))[surface]))
        where = f"{surface} of {name!r}"
        assert "<img" not in html and "<script" not in html, where
        assert 'href="https://evil.test' not in html and 'src="https://evil.test' not in html, where
        assert re.findall(r"<h[1-6]>", html) == re.findall(
            r"<h[1-6]>", _render(_surfaces(_hostile_report("x"))[surface])
        ), where
        assert not re.search(r"(?<![\w\u200d])@[A-Za-z0-9]", outside), where  # no live @-mention
        assert "<strong>passed</strong>" not in html and "<del>" not in html, where
        assert body.count("<!-- modelcheck-gate") == (1 if surface == "comment" else 0), where
        assert outside.count("<details>") == outside.count("</details>") == baseline.count("<details>"), where
        assert _controls(body.replace("\u200d", "")) == [], where
        # every table keeps its shape: as many cells in each row as in its header
        for table in re.findall(r"<table>.*?</table>", html, flags=re.S):
            header = len(re.findall(r"<th[ >]", table.split("</thead>")[0]))
            rows = re.findall(r"<tr>(.*?)</tr>", table.split("</thead>")[1], flags=re.S)
            assert all(len(re.findall(r"<td[ >]", row)) == header for row in rows), where


def test_a_mention_in_a_check_name_notifies_no_one() -> None:
    body = _surfaces(_hostile_report("@octocat"))["comment"]
    assert "@octocat" not in _outside_code(_render(body)) and "| @\u200doctocat::@\u200doctocat |" in body


def test_inline_code_survives_backticks_and_pipes() -> None:
    assert md_code("a ``b`` c") == "```a ``b`` c```"
    assert md_code("`x`") == "`` `x` ``"
    assert md_code("a|b", in_table=True) == "`a\\|b`"
    assert md_code("x\n\ny") == "`x y`"


# -- output amplification ---------------------------------------------------------------------------


@pytest.mark.usefixtures("outside_actions")
def test_a_two_million_character_name_does_not_widen_every_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = "n" * 2_000_000
    checks = [check(huge, "failed", value=0.5, stages=["merge"], message="m" * 2_000_000)]
    checks += [check(f"c{i}", stages=["merge"]) for i in range(200)]
    names = [huge] + [f"c{i}" for i in range(200)]
    doc = build_report([gate(checks, {"merge": names}, file="g" * 100_000)], stage="merge", env=ENV)
    path = _write(tmp_path, doc)
    for argv in (["gate", "--stage", "merge", str(path)], ["summary", str(path)],
                 ["github", "summary", str(path), "--stage", "merge"]):  # fmt: skip
        main(argv)
        out = capsys.readouterr().out
        assert len(out) < 500_000, argv  # the report is 4 MB; its 200 rows are not each padded to 2 MB
        assert max(len(line) for line in out.splitlines()) < 5_000, argv
    lines = text_table([("a" * 1_000_000, "b"), ("c", "d")])
    assert all(len(line) <= 2 * COLUMN_CHARS + 2 for line in lines) and lines[0].startswith("a" * 79 + "…")


# -- the sticky comment belongs to the token's own identity ----------------------------------------

REPO_NAME = "acme/app"
HEAD = "2" * 40


@pytest.fixture
def comment_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    with LocalGitHub(token="secret-token") as gh:
        gh.add_pull(REPO_NAME, 7, head_sha=HEAD, branch="fix")
        monkeypatch.setenv("GITHUB_API_URL", gh.api_url)
        monkeypatch.setenv("GITHUB_REPOSITORY", REPO_NAME)
        monkeypatch.setenv("GITHUB_TOKEN", "secret-token")
        monkeypatch.setenv("GITHUB_WORKFLOW", "ci")
        monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "1")
        monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": HEAD, "ref": "fix"}}}))
        report = tmp_path / "r.json"
        write_report(report, build_report([gate([check("accuracy", stages=["merge"])], {"merge": ["accuracy"]})],
                                          stage="merge", env=ENV))  # fmt: skip

        def run(run_id: int, *extra: str) -> int:
            monkeypatch.setenv("GITHUB_RUN_ID", str(run_id))
            return main(["github", "comment", str(report), "--stage", "merge", "--event", str(event), *extra])

        yield gh, run


@pytest.mark.parametrize("integration", [True, False], ids=["GITHUB_TOKEN (app)", "user token"])
def test_a_copied_marker_in_another_users_comment_is_ignored(
    comment_env: Any, integration: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    gh, run = comment_env
    gh.integration = integration
    if not integration:
        gh.user = "model-bot"
    assert run(100) == 0
    ours = gh.comments(REPO_NAME, 7)[0]
    forged = f'<!-- modelcheck-gate key="ci/merge" sha={HEAD} run={"9" * 19} attempt=9 -->\nall passed'
    gh.add_comment(REPO_NAME, 7, forged, user="mallory")
    gh.add_comment(REPO_NAME, 7, forged.replace("9" * 19, "9" * 5000), user="mallory")  # past int()'s limit
    assert run(101) == 0
    out = capsys.readouterr().out
    assert "comment updated" in out and "newer run" not in out
    comments = gh.comments(REPO_NAME, 7)
    assert [c.user for c in comments] == [gh.user, "mallory", "mallory"]  # nothing deleted
    assert comments[0].id == ours.id and "run=101" in comments[0].body and comments[1].body == forged
    assert ("DELETE", f"/repos/{REPO_NAME}/issues/comments/{comments[1].id}") not in gh.requests


def test_an_app_token_names_its_bot_with_author(comment_env: Any) -> None:
    gh, run = comment_env
    gh.user = "acme-gate[bot]"
    assert run(200, "--author", "acme-gate[bot]") == 0
    assert run(201, "--author", "acme-gate[bot]") == 0
    assert len(gh.comments(REPO_NAME, 7)) == 1 and "run=201" in gh.comments(REPO_NAME, 7)[0].body


# -- tokens -----------------------------------------------------------------------------------------

TOKEN = "ghs_S3cretTokenValue1234567890"


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "  ", "\t\n"])
def test_a_token_with_a_trailing_newline_is_stripped_and_works(
    comment_env: Any, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gh, run = comment_env
    monkeypatch.setenv("GITHUB_TOKEN", "secret-token" + suffix)
    assert run(300) == 0 and len(gh.comments(REPO_NAME, 7)) == 1


@pytest.mark.parametrize("token", [TOKEN[:10] + "\n" + TOKEN[10:], TOKEN + "\x07x", TOKEN[:5] + " " + TOKEN[5:],
                                   TOKEN + "\n" + TOKEN])  # fmt: skip
def test_a_token_with_an_inner_control_character_is_refused_unprinted(
    comment_env: Any, token: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gh, run = comment_env
    monkeypatch.setenv("GITHUB_TOKEN", token)
    assert run(400) == 2
    captured = capsys.readouterr()
    assert "GITHUB_TOKEN holds" in captured.err
    for form in (TOKEN, TOKEN[:10], TOKEN[10:], repr(token)[1:-1], json.dumps(token)):
        assert form not in captured.out + captured.err
    assert gh.requests == []


def test_a_token_never_reaches_an_error_message(
    comment_env: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _gh, run = comment_env
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN + "\n")  # stripped: sent, and refused by the server (401)
    assert run(500) == 4
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err

    def leaky(*args: Any, **kwargs: Any) -> Any:
        raise ValueError(f"Invalid header value b'token {TOKEN}\\n' and {TOKEN!r} and {json.dumps(TOKEN)}")

    monkeypatch.setattr("modelcheck.github.comment.upsert_comment", leaky)
    assert run(501) == 4
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err and "***" in captured.err


def test_secret_and_redact() -> None:
    assert secret(f"  {TOKEN}\r\n", "T") == TOKEN
    with pytest.raises(ValueError, match="T holds a control character") as info:
        secret(f"{TOKEN}\x07", "T")
    assert TOKEN not in str(info.value)
    text = f"a {TOKEN} b {TOKEN!r} c {json.dumps(TOKEN + chr(10))} d {(TOKEN + chr(10)).encode()!r}"
    assert TOKEN not in redact(text, TOKEN + "\n")


# -- hostile event payloads -------------------------------------------------------------------------

EVENTS: dict[str, tuple[Any, str]] = {
    "100k-deep nesting": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "a list": ("[1, 2]", "is a JSON list, not an object"),
    "not JSON": ("{nope", "cannot read the event payload"),
    "not UTF-8": (b"\xff\xfe{}", "cannot read the event payload"),
    "pull_request a string": ({"pull_request": "7"}, "pull_request is a string, not an object"),
    "head a list": ({"pull_request": {"number": 7, "head": []}}, "pull_request.head is a list, not an object"),
    "number a list": ({"pull_request": {"number": [7], "head": {}}}, "pull_request.number is a list"),
    "number a string": ({"pull_request": {"number": "7", "head": {}}}, "pull_request.number is a string"),
    "sha an object": ({"pull_request": {"number": 7, "head": {"sha": {"x": 1}}}}, "head.sha is an object"),
    "sha with a newline": ({"pull_request": {"number": 7, "head": {"sha": "ab\ncd"}}}, "not a commit SHA"),
    "owner a number": ({"pull_request": {"number": 7, "head": {"repo": {"owner": 5}}}}, "repo.owner is a number"),
    "run pull_requests a dict": ({"workflow_run": {"pull_requests": {}}}, "pull_requests is an object, not a list"),
    "run pull_requests[0] a string": ({"workflow_run": {"pull_requests": ["7"]}}, "pull_requests.0 is a string"),
    "branch with a newline": ({"workflow_run": {"head_branch": "a\n::x"}}, "head_branch is a string, not a name"),
}


@pytest.mark.parametrize("name", list(EVENTS))
def test_hostile_event_payloads_are_one_clear_error(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    payload, says = EVENTS[name]
    event = tmp_path / "event.json"
    if isinstance(payload, bytes):
        event.write_bytes(payload)
    else:
        event.write_text(payload if isinstance(payload, str) else json.dumps(payload), encoding="utf-8")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/app")
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    report = tmp_path / "r.json"
    write_report(report, build_report([gate([check("a")])], stage="merge", env=ENV))
    assert main(["github", "comment", str(report), "--stage", "merge", "--event", str(event)]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and "internal error" not in err
    with pytest.raises(UsageError):
        pull_request(Context.from_env().event(str(event)))


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_an_event_path_that_is_a_fifo_is_refused_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.json"
    write_report(report, build_report([gate([check("a")])], stage="merge", env=ENV))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(_fifo(tmp_path / "event")))
    started = time.monotonic()
    assert main(["github", "comment", str(report), "--stage", "merge"]) == 2
    assert time.monotonic() - started < 5
    assert "is not a regular file" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
@pytest.mark.parametrize("reader", [False, True], ids=["no reader", "a reader waiting"])
def test_summary_output_to_a_fifo_is_refused_without_blocking(
    tmp_path: Path, reader: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "r.json"
    write_report(report, build_report([gate([check("a")])], stage="merge", env=ENV))
    fifo = _fifo(tmp_path / "out")
    # a reader holding the FIFO open: opening it for writing would succeed, and is still refused
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK) if reader else None
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    started = time.monotonic()
    try:
        assert main(["summary", str(report), "-o", str(fifo)]) == 2
        assert main(["github", "summary", str(report), "--stage", "merge", "--save", str(fifo)]) == 2
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(fifo))
        assert main(["github", "summary", str(report), "--stage", "merge"]) == 2
    finally:
        if fd is not None:
            os.close(fd)
    assert time.monotonic() - started < 5
    assert capsys.readouterr().err.count("not a regular file") == 3


# -- report merge -----------------------------------------------------------------------------------


def _leg(path: Path, file: str, shard: tuple[int, int] | None) -> Path:
    write_report(path, build_report([gate([check("a")], file=file)], stage="merge", env=ENV, shard=shard))
    return path


@pytest.mark.parametrize("spelling", ["same", "relative", "symlink", "dot-dot", "hard link"])
def test_merge_output_equal_to_an_input_is_refused_before_writing(
    spelling: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "legs").mkdir()
    a = _leg(tmp_path / "legs" / "a.json", "gates/a.yaml", (1, 2))
    b = _leg(tmp_path / "legs" / "b.json", "gates/b.yaml", (2, 2))
    before = a.read_bytes()
    output = {
        "same": str(a),
        "relative": "legs/a.json",
        "symlink": str(tmp_path / "link.json"),
        "dot-dot": "legs/../legs/a.json",
        "hard link": str(tmp_path / "hard.json"),
    }[spelling]
    if spelling == "symlink":
        (tmp_path / "link.json").symlink_to(a)
    if spelling == "hard link":
        os.link(a, tmp_path / "hard.json")
    assert main(["report", "merge", str(a), str(b), "-o", output]) == 2
    assert "is the report" in capsys.readouterr().err and a.read_bytes() == before


@pytest.mark.parametrize("count", [10**12, 10**6, 10_001])
def test_an_absurd_shard_count_is_refused_without_allocating(
    count: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _leg(tmp_path / "a.json", "gates/a.yaml", (1, 2))
    doc = json.loads(a.read_text())
    doc["shard"] = {"index": 1, "count": count}
    a.write_text(json.dumps(doc))
    b = tmp_path / "b.json"
    doc["shard"] = {"index": 2, "count": count}
    doc["gates"][0]["file"] = "gates/b.yaml"
    b.write_text(json.dumps(doc))
    started = time.monotonic()
    assert main(["report", "merge", str(a), str(b), "-o", str(tmp_path / "all.json")]) == 2
    assert time.monotonic() - started < 5
    assert "merges at most 10,000 shards" in capsys.readouterr().err
    assert not (tmp_path / "all.json").exists()


def test_many_missing_shards_are_counted_not_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _leg(tmp_path / "a.json", "gates/a.yaml", (1, 5000))
    assert main(["report", "merge", str(a), "-o", str(tmp_path / "all.json")]) == 2
    err = capsys.readouterr().err
    assert "hold 1 of 5000 shards; missing: 2/5000, 3/5000" in err and "and 4989 more" in err and len(err) < 600


# -- init -------------------------------------------------------------------------------------------

YAML_NAMES = ["@message", "null", "true", "1", ": x", "#c", "- a", "yes", "~", "a: b", "[x]", "{x}", "*ref", "&a",
              "!tag", "%x", "`x`", "'q", '"q', "x #c", "0x1F", "1e3", ".inf", "2026-12-03", "=", "?"]  # fmt: skip


@pytest.fixture
def init_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"not loaded by init")
    return tmp_path


@pytest.mark.parametrize("name", YAML_NAMES)
@pytest.mark.parametrize("role", ["input", "label"])
def test_init_quotes_column_names_that_are_yaml_syntax(
    name: str, role: str, init_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd

    from modelcheck.gatefile import load_gate

    columns = {name: [1.0, 2.0, 3.0], "f2": [0.5, 0.1, 0.2], "target": [0, 1, 0]}
    if role == "label":
        columns = {"f1": [1.0, 2.0, 3.0], "f2": [0.5, 0.1, 0.2], name: [0, 1, 0]}
    pd.DataFrame(columns).to_csv(init_dir / "data.csv", index=False)
    label = name if role == "label" else "target"
    gate_file = init_dir / "gates" / "g.yaml"
    assert main(["init", str(gate_file), "--model", "model.onnx", "--data", "data.csv", "--label", label]) == 0, (
        capsys.readouterr().err
    )
    assert main(["validate", str(gate_file)]) == 0
    spec = load_gate(gate_file)
    assert spec.data.label == label
    if role == "input":
        assert name in (spec.data.input if isinstance(spec.data.input, (list, tuple)) else [spec.data.input])
    assert yaml.safe_load(gate_file.read_text())["data"]["label"] == label


def test_init_refuses_an_all_empty_label_column(init_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (init_dir / "data.csv").write_text("f1,label\n1.0,\n2.0,\n3.5,\n")
    assert main(["init", "g.yaml", "--model", "model.onnx", "--data", "data.csv"]) == 2
    assert "label column 'label' of data.csv is empty" in capsys.readouterr().err
    assert not (init_dir / "g.yaml").exists()


@pytest.mark.parametrize(
    "config",
    [
        "[1, 2]",
        '"a string"',
        "3",
        '{"architectures": "BertForSequenceClassification"}',
        '{"architectures": [1, 2]}',
        '{"architectures": [{"x": 1}]}',
    ],
)
def test_init_says_a_config_of_the_wrong_shape_is_not_a_config(
    config: str, init_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (init_dir / "model").mkdir()
    (init_dir / "model" / "config.json").write_text(config)
    (init_dir / "data.csv").write_text("text,label\nhi,1\n")
    assert main(["init", "g.yaml", "--model", "model", "--data", "data.csv"]) == 2
    err = capsys.readouterr().err
    assert "config.json: " in err and "not a transformers config" in err and "internal error" not in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_init_refuses_data_that_is_a_fifo(init_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fifo(init_dir / "data.csv")
    started = time.monotonic()
    assert main(["init", "g.yaml", "--model", "model.onnx", "--data", "data.csv"]) == 2
    assert time.monotonic() - started < 5
    assert "is not a regular file" in capsys.readouterr().err


def test_init_probe_never_follows_a_planted_symlink(init_dir: Path) -> None:
    (init_dir / "data.csv").write_text("f1,label\n1.0,0\n2.0,1\n")
    victim = init_dir / "victim.txt"
    victim.write_text("precious")
    (init_dir / "gates").mkdir()
    for name in (".g.yaml.modelcheck-tmp", ".g.yaml.tmp", "g.yaml.modelcheck-tmp"):
        (init_dir / "gates" / name).symlink_to(victim)
    assert main(["init", "gates/g.yaml", "--model", "model.onnx", "--data", "data.csv"]) == 0
    assert victim.read_text() == "precious"
    leftovers = sorted(p.name for p in (init_dir / "gates").iterdir())
    assert leftovers == sorted([".g.yaml.modelcheck-tmp", ".g.yaml.tmp", "g.yaml.modelcheck-tmp", "g.yaml"])


# -- the pytest plugin: failure texts and the terminal summary carry values from the data -------------


@pytest.mark.e2e
@pytest.mark.usefixtures("frameworks_imported_once")
def test_slice_values_from_the_data_reach_no_command_through_pytest(
    pytester: pytest.Pytester, untrained_model: Path
) -> None:
    import shutil

    import pandas as pd

    shutil.copytree(untrained_model, pytester.path / "models" / "untrained")
    data = pd.read_csv(Path(__file__).resolve().parents[1] / "examples" / "sentiment" / "test.csv")
    hostile = {"en": "en\n::set-output name=status::passed", "de": "de ##[error]forged\x1b[2K"}
    data["language"] = data["language"].map(lambda value: hostile.get(value, value))
    (pytester.path / "data").mkdir()
    data.to_csv(pytester.path / "data" / "test.csv", index=False)
    (pytester.path / "gates").mkdir()
    (pytester.path / "gates" / "g.yaml").write_text(
        "version: 1\nmodel:\n  id: g\n  source: ../models/untrained\ndata:\n  source: ../data/test.csv\n"
        "  input: text\n  label: label\nchecks:\n  - name: by_language\n    metric: accuracy\n"
        "    slice_by: language\n    min: 0.99\n    min_samples: 5\n",
        encoding="utf-8",
    )
    result = pytester.runpytest("--modelcheck", "-rA", "gates")
    output = "\n".join(result.outlines + result.errlines)
    assert "by_language" in output and "set-output" in output  # the values are shown, as text
    assert _commands(output) == [] and _controls(output) == []
