"""``modelcheck github summary|annotate|comment|issue|outputs REPORT --stage S``: what GitHub Actions shows of a report.

Exit statuses::

    0  done (also: a comment skipped by its mode, by a newer run, or because the token cannot write — a fork)
    2  usage: no report / not a report, unknown stage, bad option, a comment without a token in Actions, a token
       with white space or a control character inside, an event payload that is not a regular file holding
       a GitHub event (a FIFO, too deep, a field of the wrong type), an output file that is not a regular file
    4  the GitHub API failed (unreachable, or an error other than 403 on the comment; any error on the issue)

Outside GitHub Actions (the ``GITHUB_*`` variables absent) each command prints to stdout and says so on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from modelcheck.errors import GitHubError, ReportError
from modelcheck.github.comment import ACTIONS_BOT
from modelcheck.report.text import emit_command, redact, secret, write_text_file

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_GITHUB = 4


def add_commands(commands: Any) -> None:
    """Register ``modelcheck github ...`` on the top-level subparsers."""
    github = commands.add_parser(
        "github",
        help="job summary, annotations and PR comment for GitHub Actions",
        description="What GitHub Actions shows of a results report. Exit: 0 done, 2 usage, 4 the GitHub API failed.",
    )
    actions = github.add_subparsers(dest="github_command", metavar="ACTION", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("report", metavar="REPORT", help="a report written by pytest --modelcheck-report")
        parser.add_argument("--stage", required=True, help="the stage to judge, e.g. merge")
        parser.add_argument(
            "--skipped",
            choices=("inconclusive", "fail"),
            default="inconclusive",
            help="a skipped check of the stage makes it inconclusive (default) or failed, as modelcheck gate --skipped",
        )

    summary = actions.add_parser(
        "summary", help="append the job summary to $GITHUB_STEP_SUMMARY (stdout outside Actions)"
    )
    common(summary)
    summary.add_argument("--save", metavar="FILE", help="also write the summary to FILE")
    summary.set_defaults(handler=_guard(_summary))

    annotate = actions.add_parser("annotate", help="print ::error/::warning/::notice lines on the gate files' lines")
    common(annotate)
    annotate.set_defaults(handler=_guard(_annotate))

    comment = actions.add_parser(
        "comment",
        help="create or update the pull request's sticky comment (token in $GITHUB_TOKEN)",
        description=(
            "Create or update one comment per --key on the pull request the event names (or --pr). The token is "
            "read from $GITHUB_TOKEN, the API from $GITHUB_API_URL."
        ),
    )
    common(comment)
    comment.add_argument("--mode", default="always", choices=["always", "on-change", "on-failure", "off"])
    comment.add_argument("--key", default="", help="names the comment (default: <workflow>/<stage>)")
    comment.add_argument("--pr", type=int, help="the pull request number (default: from the event)")
    comment.add_argument("--event", metavar="PATH", help="the event payload (default: $GITHUB_EVENT_PATH)")
    comment.add_argument(
        "--author",
        metavar="LOGIN",
        help="whose comments are ours when the token cannot say (an app token: <app-slug>[bot]; "
        f"default: the token's GET /user login, else {ACTIONS_BOT})",
    )
    comment.set_defaults(handler=_guard(_comment))

    issue = actions.add_parser(
        "issue",
        help="keep one monitoring issue up to date: create it on failure, update it, close it on recovery",
        description=(
            "For scheduled monitoring: when the stage does not pass, create one issue per --key (or update the open "
            "one and comment on it); when it passes, comment and close the open one. The token is read from "
            "$GITHUB_TOKEN (needs issues: write), the API from $GITHUB_API_URL, the repository from "
            "$GITHUB_REPOSITORY."
        ),
    )
    common(issue)
    issue.add_argument("--key", default="", help="names the issue (default: <workflow>/<stage>)")
    issue.add_argument("--title", default="", help="the title of a new issue (default names the key and stage)")
    issue.add_argument(
        "--label", action="append", default=[], help="a label of the issue (repeat); only issues with it are looked at"
    )
    issue.add_argument(
        "--author",
        metavar="LOGIN",
        help=f"whose issues are ours when the token cannot say (default: GET /user's login, else {ACTIONS_BOT})",
    )
    issue.set_defaults(handler=_guard(_issue))

    outputs = actions.add_parser("outputs", help="write status, report, failed and summary to $GITHUB_OUTPUT")
    common(outputs)
    outputs.add_argument("--summary-file", default="", help="the saved job summary to name in the summary output")
    outputs.set_defaults(handler=_guard(_outputs))


def _load(args: argparse.Namespace) -> Any:
    from modelcheck.github.judge import check_stage, judge
    from modelcheck.report.document import read_report

    report = read_report(args.report)
    check_stage(report, args.stage, source=args.report)
    return report, judge(report, args.stage, skipped=args.skipped)


def _outside(what: str) -> None:
    print(f"modelcheck: {what}", file=sys.stderr)


def _summary(args: argparse.Namespace) -> int:
    from modelcheck.github.context import Context
    from modelcheck.github.summary import job_summary

    report, _ = _load(args)
    text = job_summary(report, args.stage, skipped=args.skipped)
    context = Context.from_env()
    if args.save:
        _write_file(args.save, text, append=False)
    if not context.step_summary:
        _outside("GITHUB_STEP_SUMMARY is not set (not in GitHub Actions): printing the job summary here")
        sys.stdout.write(text)
        return EXIT_OK
    _write_file(context.step_summary, text, append=True)
    print(f"job summary of {args.report} ({len(text.encode('utf-8')):,} bytes) written for stage {args.stage}")
    return EXIT_OK


def _annotate(args: argparse.Namespace) -> int:
    from modelcheck.github.annotations import annotation_lines
    from modelcheck.github.context import Context

    _, result = _load(args)
    if not Context.from_env().actions:
        _outside("GITHUB_ACTIONS is not set: these workflow commands become annotations only inside GitHub Actions")
    for line in annotation_lines(result):
        emit_command(line)
    return EXIT_OK


def _comment(args: argparse.Namespace) -> int:
    from modelcheck.github.annotations import command
    from modelcheck.github.comment import Marker, comment_body, find_pull_request, upsert_comment
    from modelcheck.github.context import Context, UsageError, pull_request

    _, result = _load(args)
    context = Context.from_env()
    pr = pull_request(context.event(args.event), context.sha)
    key = args.key or f"{context.workflow or 'modelcheck'}/{args.stage}"
    marker = Marker(key, pr.head_sha, int(context.run_id or 0), int(context.run_attempt or 0))
    body = comment_body(result, marker, run_url=context.run_url)
    if args.mode == "off":
        print("comment: off — no comment posted")
        return EXIT_OK
    if not context.repository:
        _outside("GITHUB_REPOSITORY is not set (not in GitHub Actions): printing the comment instead of posting it")
        sys.stdout.write(body)
        return EXIT_OK
    if args.pr is None and pr.number is None and not (pr.head_owner and pr.head_branch):
        print(f"comment skipped: the {context.event_name or 'current'} event names no pull request")
        return EXIT_OK
    try:
        token = secret(os.environ.get("GITHUB_TOKEN", ""), "GITHUB_TOKEN")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not token:
        raise UsageError(
            "a comment needs a token: set GITHUB_TOKEN (the gate action passes its github-token input, default "
            "${{ github.token }}, with permissions: pull-requests: write), or use comment: off / --mode off"
        )
    number = args.pr or pr.number
    try:
        if number is None and pr.head_owner and pr.head_branch and pr.head_sha:
            number = find_pull_request(
                api_url=context.api_url,
                token=token,
                repository=context.repository,
                owner=pr.head_owner,
                branch=pr.head_branch,
                sha=pr.head_sha,
            )
        if number is None:
            print(f"comment skipped: the {context.event_name or 'current'} event names no pull request")
            return EXIT_OK
        outcome = upsert_comment(
            api_url=context.api_url,
            token=token,
            repository=context.repository,
            number=number,
            body=body,
            marker=marker,
            mode=args.mode,
            passed=result.status == "passed",
            author=args.author,
        )
    except GitHubError as exc:
        raise GitHubError(redact(str(exc), token, os.environ.get("GITHUB_TOKEN", ""))) from None
    except Exception as exc:  # whatever the HTTP library raised: its text may quote the token
        text = redact(f"{type(exc).__name__}: {exc}", token, os.environ.get("GITHUB_TOKEN", ""))
        raise GitHubError(f"the GitHub API call failed ({text})") from None
    if outcome.action == "forbidden" and context.actions:
        emit_command(command("warning", outcome.message, title="modelcheck comment"))
    print(outcome.message)
    return EXIT_OK


def _issue(args: argparse.Namespace) -> int:
    from modelcheck.github.context import Context, UsageError
    from modelcheck.github.issue import IssueMarker, issue_body, issue_title, upsert_issue

    report, result = _load(args)
    context = Context.from_env()
    key = args.key or f"{context.workflow or 'modelcheck'}/{args.stage}"
    marker = IssueMarker(key, int(context.run_id or 0), int(context.run_attempt or 0))
    body = issue_body(result, report, marker, run_url=context.run_url)
    if not context.repository:
        _outside("GITHUB_REPOSITORY is not set (not in GitHub Actions): printing the issue instead of writing it")
        sys.stdout.write(body)
        return EXIT_OK
    try:
        token = secret(os.environ.get("GITHUB_TOKEN", ""), "GITHUB_TOKEN")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not token:
        raise UsageError(
            "an issue needs a token: set GITHUB_TOKEN (e.g. ${{ github.token }} with permissions: issues: write)"
        )
    try:
        outcome = upsert_issue(
            api_url=context.api_url,
            token=token,
            repository=context.repository,
            key=key,
            stage=args.stage,
            title=args.title or issue_title(key, args.stage),
            body=body,
            marker=marker,
            passed=result.status == "passed",
            status=result.status,
            run_url=context.run_url,
            labels=tuple(args.label),
            author=args.author,
        )
    except GitHubError as exc:
        raise GitHubError(redact(str(exc), token, os.environ.get("GITHUB_TOKEN", ""))) from None
    except Exception as exc:  # whatever the HTTP library raised: its text may quote the token
        text = redact(f"{type(exc).__name__}: {exc}", token, os.environ.get("GITHUB_TOKEN", ""))
        raise GitHubError(f"the GitHub API call failed ({text})") from None
    print(outcome.message)
    if context.step_summary:  # the run's page says where the incident is kept
        line = outcome.message.replace("issue ", "Monitoring issue ", 1) if outcome.url else outcome.message
        _write_file(context.step_summary, f"\n🔔 {line}\n", append=True)
    if context.output:
        _write_file(context.output, f"issue={outcome.number or ''}\nissue-action={outcome.action}\n", append=True)
    return EXIT_OK


def _outputs(args: argparse.Namespace) -> int:
    from modelcheck.github.context import Context

    context = Context.from_env()
    try:
        _, result = _load(args)
    except ReportError:
        _set_outputs(context, {"status": "error", "report": args.report, "failed": "0", "summary": ""})
        raise
    values = {
        "status": result.status,
        "report": args.report,
        "failed": str(sum(1 for c in result.checks if c.judged and c.word == "failed")),
        "summary": args.summary_file,
    }
    _set_outputs(context, values)
    return EXIT_OK


def _set_outputs(context: Any, values: dict[str, str]) -> None:
    text = "".join(f"{k}={' '.join(v.split())}\n" for k, v in values.items())
    if not context.output:
        _outside("GITHUB_OUTPUT is not set (not in GitHub Actions): printing the outputs here")
        sys.stdout.write(text)
        return
    _write_file(context.output, text, append=True)
    sys.stdout.write(text)


def _write_file(path: str, text: str, *, append: bool) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_text_file(path, text, append=append)
    except OSError as exc:
        raise ReportError(f"cannot write {path} ({exc.strerror or exc}); give the path of a regular file") from None


def _guard(handler: Any) -> Any:
    """``handler`` with GitHubError as exit 4 (modelcheck's other errors propagate: the CLI exits 2)."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            status: int = handler(args)
        except GitHubError as exc:
            print(f"modelcheck: error: {exc}", file=sys.stderr)
            return EXIT_GITHUB
        return status

    return guarded
