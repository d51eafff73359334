"""``modelcheck publish``: the plan, one commit, verification, then the tag.

    make_plan   local checks, then Hub reads (see ``plan``); nothing is written
    carry_out   create the repo if missing; one ``create_commit`` with explicit ``CommitOperationAdd``s and
                ``parent_commit`` = the head read while planning (a branch that moved is refused, never
                overwritten); read back every file with ``get_paths_info`` (sha256 for LFS/Xet files, git blob id
                for the others); only then the tag. 429/5xx/network failures are retried; before retrying the
                commit, the branch is searched for a commit carrying this publish's digest, so one publish never
                makes two commits.

The token (``HF_TOKEN``, huggingface_hub's stored login, or a Trusted Publishers token when ``HF_OIDC_RESOURCE``
is set) is never printed: every message passes through :func:`scrub`.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelcheck.errors import HubUnavailable, PublishRefused
from modelcheck.hub import plan as planning
from modelcheck.hub import remote, retry
from modelcheck.hub.card import make_card
from modelcheck.hub.plan import TRAILER, Options, Plan
from modelcheck.report.text import redact, secret

EXIT_PUBLISHED = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_HUB_FAILING = 4


def get_token() -> str | None:
    """``HF_TOKEN`` (surrounding whitespace stripped), else huggingface_hub's stored login or Trusted Publishers
    exchange (``HF_OIDC_RESOURCE``). A token with whitespace or a control character inside is refused."""
    raw = os.environ.get("HF_TOKEN")
    if raw and raw.strip():
        return _clean(raw, "HF_TOKEN")
    from huggingface_hub import get_token as hub_token

    try:
        stored = hub_token()
    except Exception as exc:  # OIDCError: HF_OIDC_RESOURCE set but no CI id token
        raise PublishRefused(
            f"no Hub token: HF_OIDC_RESOURCE is set but the Trusted Publishers exchange failed ({type(exc).__name__}); "
            "run in CI with id-token: write, or set HF_TOKEN"
        ) from None
    return _clean(stored, "the stored Hub token (hf auth login)") if stored else None


def _clean(raw: str, source: str) -> str:
    try:
        return secret(raw, source)
    except ValueError as exc:
        raise PublishRefused(f"{exc}; nothing was sent") from None


def scrub(text: str, token: str | None) -> str:
    """``text`` with every spelling of the token (raw, stripped, escaped; see ``report.text.redact``) as ``***``."""
    return redact(text, token)


def make_plan(
    report_path: Path, gate_path: Path, options: Options, *, token: str | None, log: Callable[[str], None]
) -> tuple[Plan, Any]:
    """Check everything (see ``plan``) and return the plan and the HfApi it was made with; nothing is written."""
    from huggingface_hub import HfApi

    report, gate_spec = planning.read_inputs(report_path, gate_path)
    repo_id, tag, branch, private = planning.resolve(options, gate_spec.publish, gate_path)
    shown = os.fspath(report_path)
    gate = planning.find_gate(report, gate_path, shown)
    planning.check_gate_record(gate, gate_path, shown, options.stage)
    uploads = planning.local_files(gate_spec, gate, shown) + planning.generated_files(report_path, report, gate)
    endpoint = remote.environ_endpoint()
    plan = Plan(
        repo_id=repo_id, branch=branch, tag=tag, create_pr=options.create_pr, private=private, stage=options.stage,
        endpoint=endpoint, uploads=uploads, model_id=gate["model"]["id"],
        digest=planning.digest_of(repo_id, branch, tag, gate, options.stage, uploads),
    )  # fmt: skip
    if token is None:
        if not options.dry_run:
            raise PublishRefused(
                "no Hub token: set HF_TOKEN to a token with write access to "
                f"{repo_id} (in CI: a secret), or log in with `hf auth login`; nothing was sent"
            )
        plan.notes.append("no Hub token: this dry run reads the Hub anonymously; a real publish would be refused")
    api = HfApi(endpoint=endpoint, token=token if token else False)
    try:
        remote.remote_state(api, plan, log)
        existing = _existing_readme(api, plan) if plan.repo_exists else None
        card = make_card(
            report, gate, stage=options.stage, repo_id=repo_id, tag=tag, gate_path=os.fspath(gate_path),
            options=(gate_spec.publish or {}).get("card"), existing=existing,
            report_url=f"{endpoint}/{repo_id}/blob/{tag or branch}/modelcheck/report.json",
        )  # fmt: skip
        plan.uploads.insert(0, planning.card_upload(card))
        if existing is not None:
            plan.notes.append(
                "README.md exists: its prose and metadata are kept, only the modelcheck section is replaced"
            )
        remote.validate_card(api, card, token, log)
    except retry.Transient as exc:
        raise HubUnavailable(f"the Hub kept failing while planning: {exc}. Nothing was written; rerun later") from None
    except PublishRefused:
        raise
    except Exception as exc:
        raise _refusal(exc, plan, "while planning (nothing was written)") from None
    if plan.landed_commit:
        plan.notes.append(
            f"commit {plan.landed_commit} of this publish already landed: it is verified (and tagged), not repeated"
        )
    return plan, api


def _existing_readme(api: Any, plan: Plan) -> str | None:
    import tempfile

    from huggingface_hub.errors import EntryNotFoundError

    revision = plan.parent_commit
    with tempfile.TemporaryDirectory(prefix="modelcheck-publish-readme-") as folder:
        try:
            path = retry.call(
                "read README.md",
                lambda: api.hf_hub_download(plan.repo_id, "README.md", revision=revision, cache_dir=folder),
            )
        except EntryNotFoundError:
            return None
        return Path(path).read_text(encoding="utf-8")


def carry_out(plan: Plan, api: Any, *, log: Callable[[str], None]) -> str:
    """Commit (unless this publish's commit already landed), verify, tag; the commit id. Raises on refusal/failure."""
    import tempfile

    done: list[str] = []
    operations: list[Any] = []
    try:
        if not plan.repo_exists:
            retry.call(
                "create the repo", lambda: api.create_repo(plan.repo_id, private=plan.private, exist_ok=True), log=log
            )
            done.append(f"created repo {plan.repo_id}")
            refs = retry.call("read the new repo's branches", lambda: api.list_repo_refs(plan.repo_id), log=log)
            plan.parent_commit = next((r.target_commit for r in refs.branches if r.name == plan.branch), None)
            plan.landed_commit = remote.find_landed(api, plan, None, log)
        commit = plan.landed_commit
        if commit is None:
            with tempfile.TemporaryDirectory(prefix="modelcheck-publish-") as folder:
                commit = _commit(plan, api, Path(folder), operations, log)
            done.append(f"commit {commit}" + (" (a pull request)" if plan.create_pr else ""))
        verify(api, plan, commit, log)
        done.append(f"verified the {len(plan.uploads)} files at {commit}")
        if plan.tag and not plan.create_pr:
            make_tag(api, plan, commit, log)
            done.append(f"tag {plan.tag}")
        return commit
    except retry.Transient as exc:
        there = "; ".join(done) if done else f"{_stored(operations) or 'nothing'}: no commit was made"
        missing = "the verified commit" if not any(d.startswith("verified") for d in done) else ""
        if plan.tag and not plan.create_pr:
            missing = f"{missing} and the tag {plan.tag}" if missing else f"the tag {plan.tag}"
        raise HubUnavailable(
            f"the Hub kept failing: {exc}. On the Hub now: {there}. Not there: {missing or 'nothing'}. "
            "Rerun the same command: it finds this publish's commit by its digest and finishes without a second commit"
        ) from None
    except (PublishRefused, HubUnavailable):
        raise
    except Exception as exc:
        stored = _stored(operations)
        if done:
            when = f"after: {'; '.join(done)}"
        elif stored:
            when = f"({stored}; no commit references them: no commit was made)"
        else:
            when = "(nothing was written)"
        raise _refusal(exc, plan, when, written=bool(done or stored)) from None


def _commit(plan: Plan, api: Any, folder: Path, operations: list[Any], log: Callable[[str], None]) -> str:
    """One ``create_commit`` of the plan's files as frozen in ``folder`` (see ``Upload.frozen``); the commit id."""
    from huggingface_hub import CommitOperationAdd

    for index, upload in enumerate(plan.uploads):
        try:
            frozen, plan.sent_blobs[upload.path] = upload.frozen(folder, index)
        except OSError as exc:
            raise PublishRefused(
                f"cannot copy {upload.source or upload.path} into the temp folder {folder} to send it "
                f"({exc.strerror or exc}); nothing was sent. Point TMPDIR at a folder with room for the model"
            ) from None
        operations.append(CommitOperationAdd(path_in_repo=upload.path, path_or_fileobj=frozen))
    title = f"modelcheck publish{' ' + plan.tag if plan.tag else ''}: {plan.model_id} passed stage {plan.stage}"
    description = (
        f"Files that passed every check of stage {plan.stage}, with the report and the baseline.\n\n"
        f"{TRAILER}: {plan.digest}"
    )

    def send() -> str:
        info = api.create_commit(
            plan.repo_id, operations, commit_message=title, commit_description=description,
            revision=plan.branch, create_pr=plan.create_pr or None, parent_commit=plan.parent_commit,
        )  # fmt: skip
        return str(info.oid)

    return retry.call("commit", send, before_retry=lambda: remote.find_landed(api, plan, None, log), log=log)


def _stored(operations: list[Any]) -> str:
    """What an unfinished commit left in the Hub's LFS storage: objects that no commit references."""
    sent = [op.path_in_repo for op in operations if getattr(op, "_is_uploaded", False)]
    if not sent:
        return ""
    shown = ", ".join(sent[:5]) + (f" and {len(sent) - 5} more" if len(sent) > 5 else "")
    return f"{len(sent)} file(s) were uploaded to the Hub's LFS storage ({shown})"


def verify(api: Any, plan: Plan, commit: str, log: Callable[[str], None]) -> None:
    """Read back every file at ``commit``: the sha256 (LFS/Xet) or git blob id (regular) must match what was sent."""
    paths = [u.path for u in plan.uploads]
    infos = retry.call(
        "read back the committed files", lambda: api.get_paths_info(plan.repo_id, paths, revision=commit), log=log
    )
    found = {info.path: info for info in infos}
    for upload in plan.uploads:
        info = found.get(upload.path)
        if info is None:
            raise PublishRefused(
                f"commit {commit} of {plan.repo_id} lacks {upload.path} (a .gitignore on the Hub?); no tag was made"
            )
        if not upload.pinned and plan.landed_commit:
            continue  # the README of an earlier run of this publish: it exists, its prose may differ now
        lfs = getattr(info, "lfs", None)
        if lfs is not None:
            ok, held, want = lfs.sha256 == upload.sha256, f"sha256 {lfs.sha256}", f"sha256 {upload.sha256}"
        else:
            blob = plan.sent_blobs.get(upload.path) or upload.blob_id()
            ok, held, want = info.blob_id == blob, f"git blob {info.blob_id}", f"git blob {blob}"
        if not ok:
            raise PublishRefused(
                f"the Hub holds other bytes for {upload.path} at commit {commit} ({held}, expected {want}); "
                "no tag was made; inspect the commit on the Hub"
            )


def make_tag(api: Any, plan: Plan, commit: str, log: Callable[[str], None]) -> None:
    """Tag ``commit``; an existing tag at ``commit`` is fine, at another commit refused."""
    from huggingface_hub.errors import HfHubHTTPError

    tag = plan.tag
    assert tag is not None
    try:
        retry.call("create the tag", lambda: api.create_tag(plan.repo_id, tag=tag, revision=commit), log=log)
    except HfHubHTTPError as exc:
        if retry.status_of(exc) != 409:
            raise
        refs = retry.call("read the tags", lambda: api.list_repo_refs(plan.repo_id), log=log)
        target = next((r.target_commit for r in refs.tags if r.name == tag), None)
        if target != commit:
            raise PublishRefused(
                f"tag {tag!r} of {plan.repo_id} points at {target}, not at the verified commit {commit}; the commit is "
                "published but not tagged: delete the other tag or publish under a new one"
            ) from None


def _refusal(exc: Exception, plan: Plan, when: str, *, written: bool = False) -> PublishRefused:
    """A Hub error as a refusal that says what to do."""
    status = retry.status_of(exc)
    where = f"{plan.endpoint}/{plan.repo_id}"
    if status == 401:
        reason = "the Hub rejected the token (401): set HF_TOKEN to a valid token with write access"
    elif status == 403:
        reason = f"the token may not write to {plan.repo_id} (403): use a write token of its owner, or --create-pr"
    elif status == 412:
        reason = (
            f"branch {plan.branch} moved since planning (it was at {plan.parent_commit}): someone else committed. "
            + ("Nothing in the repo was overwritten" if written else "Nothing was overwritten")
            + " and no tag was made; rerun to publish on top of the new head"
        )
    elif status == 409:
        reason = "the Hub answered 409 Conflict (the repo is busy or the ref exists); rerun shortly"
    else:
        reason = retry.describe(exc)
    return PublishRefused(f"{where}: {reason} {when}")


def publish(
    report: Path, gate: Path, options: Options, *, out: Callable[[str], None], err: Callable[[str], None]
) -> int:
    """The command: plan, then (unless dry run) carry out; the exit status. Output never holds the token."""
    secrets = [os.environ.get("HF_TOKEN")]

    def hide(text: str) -> str:
        for token in secrets:
            text = scrub(text, token)
        return log_safe(text)

    def say(text: str) -> None:
        out(hide(text))

    def warn(text: str) -> None:
        err(hide(text))

    try:
        quiet_hub()
        token = get_token()
        secrets.append(token)
        plan, api = make_plan(report, gate, options, token=token, log=warn)
        say(plan.describe())
        if options.dry_run:
            say("dry run: nothing was written")
            return EXIT_PUBLISHED
        commit = carry_out(plan, api, log=warn)
    except PublishRefused as exc:
        warn(f"modelcheck: refused: {exc}")
        return EXIT_REFUSED
    except HubUnavailable as exc:
        warn(f"modelcheck: error: {exc}")
        return EXIT_HUB_FAILING
    except (ValueError, FileNotFoundError) as exc:
        warn(f"modelcheck: error: {exc}")
        return EXIT_USAGE
    except Exception as exc:  # an internal error: its text may quote a request header, token included
        raise RuntimeError(hide(f"{type(exc).__name__}: {exc}")) from None
    already = " (already published: no new commit)" if plan.landed_commit else ""
    tagged = f", tagged {plan.tag}" if plan.tag and not plan.create_pr else ""
    where = f"{plan.endpoint}/{plan.repo_id}/tree/{plan.tag if tagged else commit}"
    if plan.create_pr:
        command = shlex.join(["hf", "repos", "tag", "create", plan.repo_id, plan.tag or "TAG", "--revision", commit])
        say(
            f"published {plan.repo_id}@{commit} as a pull request{already}: {where}\n"
            f"Review and merge it on the Hub, then tag the verified commit with: {command}"
        )
    else:
        say(f"published {plan.repo_id}@{commit}{tagged}{already}: {where}")
    return EXIT_PUBLISHED


def log_safe(text: str) -> str:
    """``text`` whose lines cannot start a GitHub Actions workflow command (``::``): such a line gets ``> `` first."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join("> " + line if line.lstrip().startswith("::") else line for line in lines)


def quiet_hub() -> None:
    """No progress bars from huggingface_hub: CI logs get modelcheck's lines only."""
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
