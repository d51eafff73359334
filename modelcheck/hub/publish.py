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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelcheck.errors import HubUnavailable, PublishRefused
from modelcheck.hub import plan as planning
from modelcheck.hub import remote, retry
from modelcheck.hub.card import make_card
from modelcheck.hub.plan import TRAILER, Options, Plan

EXIT_PUBLISHED = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_HUB_FAILING = 4


def get_token() -> str | None:
    """``HF_TOKEN``, else huggingface_hub's stored login or Trusted Publishers exchange (``HF_OIDC_RESOURCE``)."""
    token = os.environ.get("HF_TOKEN")
    if token:
        return token
    from huggingface_hub import get_token as hub_token

    try:
        return hub_token()
    except Exception as exc:  # OIDCError: HF_OIDC_RESOURCE set but no CI id token
        raise PublishRefused(
            f"no Hub token: HF_OIDC_RESOURCE is set but the Trusted Publishers exchange failed ({type(exc).__name__}); "
            "run in CI with id-token: write, or set HF_TOKEN"
        ) from None


def scrub(text: str, token: str | None) -> str:
    """``text`` with the token replaced by ``***``."""
    return text.replace(token, "***") if token else text


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
        digest=planning.digest_of(repo_id, branch, tag, options.create_pr, uploads),
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
    from huggingface_hub.errors import EntryNotFoundError

    revision = plan.parent_commit
    try:
        path = retry.call(
            "read README.md",
            lambda: api.hf_hub_download(plan.repo_id, "README.md", revision=revision, cache_dir=_cache_dir()),
        )
    except EntryNotFoundError:
        return None
    return Path(path).read_text(encoding="utf-8")


def _cache_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="modelcheck-publish-readme-")


def carry_out(plan: Plan, api: Any, *, log: Callable[[str], None]) -> str:
    """Commit (unless this publish's commit already landed), verify, tag; the commit id. Raises on refusal/failure."""
    from huggingface_hub import CommitOperationAdd

    done: list[str] = []
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
            operations = [CommitOperationAdd(path_in_repo=u.path, path_or_fileobj=u.content()) for u in plan.uploads]
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

            commit = retry.call("commit", send, before_retry=lambda: remote.find_landed(api, plan, None, log), log=log)
            done.append(f"commit {commit}" + (" (a pull request)" if plan.create_pr else ""))
        verify(api, plan, commit, log)
        done.append(f"verified the {len(plan.uploads)} files at {commit}")
        if plan.tag and not plan.create_pr:
            make_tag(api, plan, commit, log)
            done.append(f"tag {plan.tag}")
        return commit
    except retry.Transient as exc:
        there = "; ".join(done) if done else "nothing: no commit was made"
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
        raise _refusal(exc, plan, f"after: {'; '.join(done)}" if done else "(nothing was written)") from None


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
            blob = upload.blob_id()
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


def _refusal(exc: Exception, plan: Plan, when: str) -> PublishRefused:
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
            "Nothing was overwritten and no tag was made; rerun to publish on top of the new head"
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
    token = get_token()

    def say(text: str) -> None:
        out(scrub(text, token))

    def warn(text: str) -> None:
        err(scrub(text, token))

    try:
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
    already = " (already published: no new commit)" if plan.landed_commit else ""
    tagged = f", tagged {plan.tag}" if plan.tag and not plan.create_pr else ""
    pr = " as a pull request (merge it on the Hub, then tag)" if plan.create_pr else ""
    where = f"{plan.endpoint}/{plan.repo_id}/tree/{plan.tag if tagged else commit}"
    say(f"published {plan.repo_id}@{commit}{pr}{tagged}{already}: {where}")
    return EXIT_PUBLISHED
