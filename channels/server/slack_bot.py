"""The Slack command bot (slack-bolt in HTTP mode) at ``POST /slack/events``.

- ``/lab vms|nodes|backups|jobs|approvals|approve ID|deny ID reason|help`` answer from the tools through the
  guard, without the model; anything else is a question for the agent. Every command is acknowledged at
  once and answered later through its ``response_url``, so Slack's three seconds never run out.
- Approval requests of any channel's turns are posted to ``slack.approvals_channel`` with Approve/Deny
  buttons; a click acts as the LabOps user ``slack.users`` maps the clicking Slack account to, policy decides
  whether that user may approve, and the message is replaced by the outcome.
- slack-bolt verifies every request's signature (``v0`` HMAC over timestamp and body, five-minute window)
  before anything else; a request whose signature was already seen is refused too (401).
- Slack accounts not in ``slack.users`` may do nothing: the bot says who can link them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.starlette.handler import to_starlette_response
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError
from slack_sdk.signature import SignatureVerifier
from starlette.concurrency import run_in_threadpool

from agent.commands import ApprovalCommand, Decided, decide
from channels.server.admission import Busy
from channels.server.conversation import turn_pieces
from channels.server.ops import request_id_var
from channels.server.slack_render import approval_blocks, escape, outcome_blocks, result_text, truncate
from channels.server.slack_replay import SlackReplays
from channels.server.state import ServerState
from channels.server.turns import Turn
from core.errors import ConfigError
from policies.guard import Caller

__all__ = ["SlackBot", "router"]

log = logging.getLogger(__name__)
router = APIRouter()

# Sub-commands answered by one read tool each (no model).
TOOL_COMMANDS = {"vms": ("vm.list", "VMs"), "nodes": ("vm.nodes", "Nodes"), "backups": ("backup.check", "Backups"),
                 "jobs": ("ray.list", "Ray jobs")}  # fmt: skip

HELP = """*LabOps* — `/lab` followed by:
• `vms`, `nodes`, `backups`, `jobs` — the lab's state, straight from the tools
• `approvals` — approval requests waiting for a decision
• `approve apr_…` / `deny apr_… reason` — decide one (policy says who may)
• anything else — a question or an instruction for the agent, e.g. `/lab which VMs have failed backups?`"""


def _static_authorize(token: str | None) -> Any:
    """One workspace with a static bot token: no ``auth.test`` round trip per request.

    A plain function, not a method: slack-bolt passes arguments by the names it finds in the signature.
    """

    def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=token)

    return authorize


class SlackBot:
    """The bolt app and what it needs from the service."""

    def __init__(self, state: ServerState) -> None:
        slack = state.settings.slack
        if slack.signing_secret is None:
            raise ConfigError("the Slack bot needs slack.signing_secret (env LABOPS_SLACK__SIGNING_SECRET)",
                              setting="slack.signing_secret")  # fmt: skip
        self.state = state
        self.users = dict(slack.users)
        self._slack_ids = {v: k for k, v in self.users.items()}
        self._token = slack.bot_token.get_secret_value() if slack.bot_token else None
        self.client = WebClient(token=self._token, base_url=slack.api_base_url, timeout=10)
        self.replays = SlackReplays(state.services.store)
        self.verifier = SignatureVerifier(slack.signing_secret.get_secret_value())
        self.app = App(
            signing_secret=slack.signing_secret.get_secret_value(),
            client=self.client,
            authorize=_static_authorize(self._token),
            process_before_response=False,
            logger=logging.getLogger("slack_bolt"),
            listener_executor=ThreadPoolExecutor(max_workers=8, thread_name_prefix="labops-slack"),
        )
        self.app.use(self._refuse_replays)
        self.app.command(slack.command)(self._command)
        self.app.action("labops_approve")(self._approve_click)
        self.app.action("labops_deny")(self._deny_click)
        self.app.action(re.compile(r"^labops_incident_fix_\d+$"))(self._incident_fix_click)
        self.app.action("labops_incident_ack")(self._incident_ack_click)
        state.approval_listeners.append(self.post_approval)

    # --- plumbing ------------------------------------------------------------------------------------------
    def malformed(self, raw: bytes, headers: dict[str, str]) -> tuple[int, str] | None:
        """Why a request cannot go to slack-bolt (401 unsigned, 400 malformed), or None.

        slack-bolt parses the body before it checks the signature, and a ``payload`` that is not a JSON object
        of Slack's shape raised inside it (a 500). The signature is checked here first (slack_sdk's verifier,
        the same five-minute window), then the shape of what the listeners read.
        """
        body = raw.decode("utf-8", errors="replace")
        timestamp, signature = headers.get("x-slack-request-timestamp", ""), headers.get("x-slack-signature", "")
        if not (timestamp.strip().isdigit() and signature):
            return 401, "missing Slack signature headers (X-Slack-Request-Timestamp, X-Slack-Signature)"
        if not self.verifier.is_valid(body=body, timestamp=timestamp.strip(), signature=signature):
            return 401, "invalid or expired Slack signature"
        form = parse_qs(body, keep_blank_values=True)
        if "payload" not in form:
            return None
        try:
            payload = json.loads(form["payload"][0])
        except (ValueError, RecursionError):
            return 400, "malformed Slack request: payload is not JSON"
        if not isinstance(payload, dict):
            return 400, "malformed Slack request: payload is not a JSON object"
        for name in ("user", "team", "channel", "container", "message", "enterprise"):
            if payload.get(name) is not None and not isinstance(payload[name], dict):
                return 400, f"malformed Slack request: payload.{name} is not an object"
        actions = payload.get("actions", [])
        if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
            return 400, "malformed Slack request: payload.actions is not a list of objects"
        if not isinstance(payload.get("type", ""), str):
            return 400, "malformed Slack request: payload.type is not a string"
        return None

    def _refuse_replays(self, req: BoltRequest, resp: BoltResponse, next: Any) -> BoltResponse | None:
        # Runs after bolt's signature check: only authentic requests are recorded.
        signature = (req.headers.get("x-slack-signature") or [""])[0]
        timestamp = (req.headers.get("x-slack-request-timestamp") or [""])[0]
        if not self.replays.first_time(hashlib.sha256(f"{timestamp}:{signature}".encode()).hexdigest()):
            log.warning("refused a replayed Slack request (timestamp %s)", timestamp)
            return BoltResponse(status=401, body='{"error": "replayed request"}')
        next()
        return None

    def _caller(self, slack_user: str, text: str, context: Any, origin: dict[str, Any]) -> Caller | None:
        """The mapped lab user as a caller; None (and an audited refusal) for an account nobody linked."""
        request_id = context.get("request_id") if context is not None else None
        if request_id:
            request_id_var.set(request_id)
        # Slack's word on who asked, as received (the signature vouches for it): kept in every audit entry.
        facts = {"slack_user": slack_user, **{k: str(v)[:100] for k, v in origin.items() if v}}
        user = self.users.get(slack_user)
        if user is None:
            anonymous = Caller(user="slack-unlinked", channel="slack", request_text=text[:2000],
                               request_id=request_id, origin=facts)  # fmt: skip
            self.state.agent.guard.refuse_identity(
                caller=anonymous, reason=f"Slack account {slack_user} is not linked to a lab user (slack.users)"
            )
            return None
        return Caller(user=user, channel="slack", request_text=text[:2000], request_id=request_id, origin=facts)

    def mention(self, user: str) -> str:
        """A lab user as Slack shows them: a mention when their Slack account is linked."""
        return self._mention(user)

    def _mention(self, user: str) -> str:
        slack_id = self._slack_ids.get(user)
        return f"<@{slack_id}>" if slack_id else escape(user)

    @staticmethod
    def _not_linked(slack_user: str) -> str:
        return (f"Your Slack account ({slack_user}) is not linked to a LabOps user. An operator adds "
                f'`{slack_user} = "<lab user>"` under `[slack.users]` in labops.toml.')  # fmt: skip

    # --- /lab ------------------------------------------------------------------------------------------
    def _command(self, ack: Any, command: dict[str, Any], respond: Any, context: Any) -> None:
        text = str(command.get("text") or "").strip()
        origin = {"slack_team": command.get("team_id"), "slack_user_name": command.get("user_name"),
                  "slack_channel": command.get("channel_id"), "enterprise": command.get("enterprise_id")}  # fmt: skip
        caller = self._caller(str(command.get("user_id")), f"{command.get('command')} {text}", context, origin)
        if caller is None:
            ack(text=self._not_linked(str(command.get("user_id"))))
            return
        word, _, rest = text.partition(" ")
        word = word.lower()
        if word in ("", "help"):
            ack(text=HELP)
        elif word in TOOL_COMMANDS:
            ack()
            tool, title = TOOL_COMMANDS[word]
            result = self.state.agent.guard.call(tool, {}, caller=caller)
            self.state.metrics.tool_call(tool, result.status)
            respond(text=result_text(title, result))
        elif word == "approvals":
            ack()
            respond(text=self._approvals_text())
        elif word in ("approve", "deny") and re.match(r"^apr_[0-9a-f]{4,12}\b", rest.strip()):
            ack()
            approval_id, _, reason = rest.strip().partition(" ")
            command_ = ApprovalCommand(verb=word, approval_id=approval_id, reason=reason.strip(" :"))
            decided = decide(self.state.agent, caller, command_,
                             on_decided=lambda d: respond(text=escape(d.message)))  # fmt: skip
            if not decided.ok:
                respond(text=escape(decided.text))
            elif decided.resumed is not None:
                requester = (decided.approval or {}).get("requester")
                respond(text=truncate(escape(f"{requester}'s request went on: {decided.resumed.answer}")))
        elif word in ("approve", "deny"):
            ack(text=f"Write `/lab {word} apr_…{' reason' if word == 'deny' else ''}` with the approval id "
                     "(`/lab approvals` lists them).")  # fmt: skip
        else:
            self._ask(ack, respond, caller, text, command)

    def _approvals_text(self) -> str:
        approvals = self.state.agent.guard.approvals
        assert approvals is not None
        pending = approvals.list(state="pending")
        if not pending:
            return ":white_check_mark: No approval request is waiting."
        lines = [f":hourglass: *{len(pending)} waiting*"]
        for a in pending[:20]:
            lines.append(f"• `{a.id}` {escape(a.summary)} — by {self._mention(a.requester)}, role {a.role}"
                         f"{' (someone else)' if a.four_eyes else ''}")  # fmt: skip
        return truncate("\n".join(lines))

    def _ask(self, ack: Any, respond: Any, caller: Caller, text: str, command: dict[str, Any]) -> None:
        gate = self.state.gate
        try:
            gate.admit()
        except Busy as exc:
            self.state.metrics.rejected.inc()
            ack(text=f"LabOps is busy with other questions; ask again in {exc.retry_after} s.")
            return
        ack(text=f"> {escape(text[:300])}\n_working on it…_")
        team = str(command.get("team_id") or "")
        key = hashlib.sha256(f"{team}/{command.get('channel_id')}/{command.get('user_id')}".encode()).hexdigest()
        thread = f"slack-{key[:24]}"

        def produce() -> Any:
            return turn_pieces(self.state.agent, text, caller=caller, thread=thread, show_tools=True,
                               on_approval=self.state.approval_requested,
                               on_result=lambda r: self.state.metrics.observe_turn(r, channel="slack"))  # fmt: skip

        def done(reply: str, _failed: bool) -> None:
            try:
                respond(text=truncate(escape(reply) or "(no answer)", 3900))
            except SlackClientError:
                log.warning("could not post the answer to Slack's response_url", exc_info=True)

        Turn(produce, gate=gate, on_done=done, request_id=caller.request_id)

    # --- buttons -----------------------------------------------------------------------------------------
    def _approve_click(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any, context: Any
    ) -> None:
        self._click("approve", ack, body, action, respond, context)

    def _deny_click(self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any, context: Any) -> None:
        self._click("deny", ack, body, action, respond, context)

    def _click(self, verb: str, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any,
               context: Any) -> None:  # fmt: skip
        ack()
        slack_user = str((body.get("user") or {}).get("id"))
        approval_id = str(action.get("value") or "")
        clicker = body.get("user") or {}
        origin = {
            "slack_team": clicker.get("team_id") or (body.get("team") or {}).get("id"),
            "slack_user_name": clicker.get("username"),
            "slack_channel": (body.get("channel") or {}).get("id"),
        }
        caller = self._caller(slack_user, f"Slack button {verb} {approval_id}", context, origin)
        if caller is None:
            respond(text=self._not_linked(slack_user), replace_original=False, response_type="ephemeral")
            return

        def decided_now(d: Decided) -> None:
            note = "running the request…" if d.approval and d.approval.get("state") == "approved" else ""
            text = f"{d.message} (clicked by <@{slack_user}>)" + (f" — {note}" if note else "")
            respond(text=text, blocks=outcome_blocks(text), replace_original=True)

        decided = decide(self.state.agent, caller, ApprovalCommand(verb=verb, approval_id=approval_id, reason=""),
                         on_decided=decided_now)  # fmt: skip
        if not decided.ok:
            # The buttons stay for someone who may decide; only the clicker sees why not.
            respond(text=escape(decided.text), replace_original=False, response_type="ephemeral")
        elif decided.resumed is not None:
            text = f"{decided.text} (clicked by <@{slack_user}>)"
            respond(text=truncate(text), blocks=outcome_blocks(text), replace_original=True)

    # --- incident buttons ----------------------------------------------------------------------------------
    def _clicker(self, body: dict[str, Any], text: str, context: Any) -> tuple[str, Caller | None]:
        clicker = body.get("user") or {}
        slack_user = str(clicker.get("id"))
        origin = {
            "slack_team": clicker.get("team_id") or (body.get("team") or {}).get("id"),
            "slack_user_name": clicker.get("username"),
            "slack_channel": (body.get("channel") or {}).get("id"),
        }
        return slack_user, self._caller(slack_user, text, context, origin)

    def _incident_fix_click(self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any,
                            context: Any) -> None:  # fmt: skip
        ack()
        incident_id, _, fix_id = str(action.get("value") or "").partition("/")
        slack_user, caller = self._clicker(body, f"Slack button: fix {fix_id} of {incident_id}", context)
        if caller is None:
            respond(text=self._not_linked(slack_user), replace_original=False, response_type="ephemeral")
            return
        result = self.state.services.incidents.fix(incident_id, fix_id, caller=caller)
        approval = (result.data or {}).get("approval") if isinstance(result.data, dict) else None
        self.state.result_needs_approval(caller, str((approval or {}).get("tool") or fix_id), result)
        if result.status in ("denied", "error", "needs_approval"):
            # Only the clicker sees a refusal; the thread shows what ran.
            respond(text=truncate(escape(result.message)), replace_original=False, response_type="ephemeral")

    def _incident_ack_click(self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any,
                            context: Any) -> None:  # fmt: skip
        ack()
        incident_id = str(action.get("value") or "")
        slack_user, caller = self._clicker(body, f"Slack button: acknowledge {incident_id}", context)
        if caller is None:
            respond(text=self._not_linked(slack_user), replace_original=False, response_type="ephemeral")
            return
        result = self.state.services.incidents.decide(incident_id, "acknowledge", caller=caller)
        if result.status != "ok":
            respond(text=truncate(escape(result.message)), replace_original=False, response_type="ephemeral")

    # --- approval requests -------------------------------------------------------------------------------
    def post_approval(self, event: dict[str, Any]) -> None:
        """Post an approval request with buttons to ``slack.approvals_channel`` (when a bot token is set)."""
        channel = self.state.settings.slack.approvals_channel
        if not (self._token and channel):
            return
        approvers = ", ".join(self._mention(u) for u in event.get("approvers") or []) or f"role {event.get('role')}"
        blocks = approval_blocks(event, requester_mention=self._mention(str(event.get("requester"))),
                                 approvers=approvers)  # fmt: skip
        fallback = f"Approval needed: {event.get('summary')} ({event.get('approval_id')})"
        try:
            self.client.chat_postMessage(channel=channel, text=fallback, blocks=blocks)
        except SlackClientError:
            log.warning("could not post approval %s to Slack channel %s", event.get("approval_id"), channel,
                        exc_info=True)  # fmt: skip


@router.post("/slack/events")
async def slack_events(request: Request) -> Response:
    """Slash commands and interactivity (one Request URL for both)."""
    bot: SlackBot | None = getattr(request.app.state, "slack", None)
    if bot is None:
        return JSONResponse({"error": "the Slack bot is off: set slack.signing_secret"}, status_code=404)
    raw = await request.body()
    problem = bot.malformed(raw, {k.lower(): v for k, v in request.headers.items()})
    if problem is not None:
        status, message = problem
        log.warning("refused a Slack request: %s", message)
        return JSONResponse({"error": message}, status_code=status)
    bolt_request = BoltRequest(
        body=raw.decode("utf-8", errors="replace"),  # bad bytes then fail the signature check: 401
        query=dict(request.query_params),
        headers={k: v for k, v in request.headers.items()},
        context={"request_id": getattr(request.state, "request_id", None)},
    )
    response = await run_in_threadpool(bot.app.dispatch, bolt_request)
    return to_starlette_response(response)
