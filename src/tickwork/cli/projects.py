"""``tickwork projects`` and ``tickwork agents``: a tenant's projects, and their agents."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tickwork.cli.remote import Remote, UsageError, command, fields, table
from tickwork.wire import A2ATargetOut, AgentOut, OpenAITargetOut, WebhookTargetOut

__all__ = ["register"]

projects_app = typer.Typer(
    help="Projects: each holds agents and their scheduled triggers.", no_args_is_help=True
)
agents_app = typer.Typer(
    help="Agents: what a trigger runs (a webhook or a Python handler), per ref.",
    no_args_is_help=True,
)

ProjectArg = Annotated[
    str, typer.Argument(metavar="PROJECT", help="The project's id (1-64 letters, digits, . _ -).")
]
AgentArg = Annotated[str, typer.Argument(metavar="AGENT", help="The agent's id.")]
RefOpt = Annotated[
    str | None,
    typer.Option("--ref", metavar="REF", help="The ref (branch) of the agent (default: main)."),
]


def register(app: typer.Typer) -> None:
    app.add_typer(projects_app, name="projects")
    app.add_typer(agents_app, name="agents")


# --- projects --------------------------------------------------------------------------


@command(projects_app, "list", project=False)
def list_projects(r: Remote) -> None:
    """List the tenant's projects."""
    items = list(r.client.projects.list())
    r.emit(
        items,
        lambda: table(
            None,
            ["id", "name", "description", "created"],
            [(p.id, p.name, p.description, p.created_at) for p in items],
        ),
    )


@command(projects_app, "get", project=False)
def get_project(r: Remote, project: ProjectArg) -> None:
    """Show a project."""
    found = r.client.projects.get(project)
    r.emit(found, lambda: fields(f"project {found.id}", found))


@command(projects_app, "put", project=False)
def put_project(
    r: Remote,
    project: ProjectArg,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="A name for people (default: the id)."),
    ] = None,
    description: Annotated[
        str | None,
        typer.Option(
            "--description", metavar="TEXT", help="What the project is for (default: none)."
        ),
    ] = None,
) -> None:
    """Create a project (with its main ref), or replace its name and description."""
    body = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
    saved = r.client.projects.put(project, body)
    r.emit(saved, lambda: fields(f"project {saved.id}", saved))


@command(projects_app, "delete", project=False)
def delete_project(
    r: Remote,
    project: ProjectArg,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: the project's agents and triggers go too.")
    ] = False,
) -> None:
    """Delete a project with its agents and triggers; its runs are cancelled."""
    if not yes:
        raise UsageError(
            f"deleting project {project!r} deletes its agents and triggers and cancels their "
            "runs: pass --yes to confirm"
        )
    r.client.projects.delete(project)
    r.say(f"deleted project {project!r}")


# --- agents ----------------------------------------------------------------------------


def _target(agent: AgentOut) -> str:
    target = agent.target
    if isinstance(target, WebhookTargetOut):
        return f"webhook {target.url}" + (" (signed)" if target.has_secret else "")
    if isinstance(target, A2ATargetOut):
        return f"a2a {target.url}"
    if isinstance(target, OpenAITargetOut):
        return f"openai {target.model} at {target.base_url} ({target.api})"
    return f"python {target.handler}"


def _agents_table(items: list[AgentOut]) -> Any:
    return table(
        None,
        ["id", "name", "ref", "target", "max concurrency"],
        [(a.id, a.name, a.ref, _target(a), a.max_concurrency) for a in items],
    )


@command(agents_app, "list")
def list_agents(r: Remote, ref: RefOpt = None) -> None:
    """List a project's agents on a ref."""
    items = list(r.client.agents.list(ref=ref))
    r.emit(items, lambda: _agents_table(items))


@command(agents_app, "get")
def get_agent(r: Remote, agent: AgentArg, ref: RefOpt = None) -> None:
    """Show an agent (its secret never is)."""
    found = r.client.agents.get(agent, ref=ref)
    r.emit(found, lambda: fields(f"agent {found.id}", found))


@command(agents_app, "put")
def put_agent(
    r: Remote,
    agent: AgentArg,
    webhook: Annotated[
        str | None,
        typer.Option(
            "--webhook",
            metavar="URL",
            help="A webhook target: POST each run to this URL (no default; or --handler).",
        ),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            metavar="SECRET",
            show_default=False,
            help="The target's secret: a webhook's signing secret, an A2A agent's bearer token, "
            "a model server's API key (default: none; --secret-env keeps it out of the shell "
            "history).",
        ),
    ] = None,
    secret_env: Annotated[
        str | None,
        typer.Option(
            "--secret-env",
            metavar="NAME",
            help="Take the secret from the workers' variable NAME (TICKWORK_TARGET_SECRET_...) "
            "instead (default: none).",
        ),
    ] = None,
    handler: Annotated[
        str | None,
        typer.Option(
            "--handler",
            metavar="NAME",
            help="A python target: the @tickwork.handler registered as NAME (no default; or "
            "--webhook).",
        ),
    ] = None,
    a2a: Annotated[
        str | None,
        typer.Option(
            "--a2a",
            metavar="URL",
            help="An A2A agent target: its JSON-RPC endpoint (no default); --secret is its "
            "bearer token.",
        ),
    ] = None,
    openai: Annotated[
        str | None,
        typer.Option(
            "--openai",
            metavar="BASE_URL",
            help="An OpenAI-compatible model target: the API's base URL, with --model (no "
            "default); --secret is the API key.",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", metavar="MODEL", help="The model an --openai target calls (no default)."
        ),
    ] = None,
    api: Annotated[
        str | None,
        typer.Option(
            "--api", metavar="API", help="responses or chat, for --openai (default: responses)."
        ),
    ] = None,
    instructions: Annotated[
        str | None,
        typer.Option(
            "--instructions",
            metavar="TEXT",
            help="System instructions sent with every run of an --openai target (default: none).",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="A name for people (default: the id)."),
    ] = None,
    max_concurrency: Annotated[
        int | None,
        typer.Option(
            "--max-concurrency",
            metavar="N",
            help="The most runs of this agent at once (default: no cap).",
        ),
    ] = None,
    ref: RefOpt = None,
) -> None:
    """Create or replace an agent: a webhook (--webhook URL), a Python handler
    (--handler NAME), an A2A agent (--a2a URL) or a model (--openai BASE_URL --model M)."""
    kinds = [k for k, v in (("webhook", webhook), ("handler", handler), ("a2a", a2a),
                            ("openai", openai)) if v is not None]  # fmt: skip
    if len(kinds) != 1:
        raise UsageError(
            "give exactly one target: --webhook URL, --handler NAME, --a2a URL or --openai BASE_URL"
        )
    if openai is None and (model, api, instructions) != (None, None, None):
        raise UsageError("--model, --api and --instructions are for --openai targets")
    if secret is not None and secret_env is not None:
        raise UsageError("give --secret or --secret-env, not both")
    target: dict[str, Any]
    if webhook is not None:
        target = {"type": "webhook", "url": webhook}
    elif a2a is not None:
        target = {"type": "a2a", "url": a2a}
    elif openai is not None:
        if model is None:
            raise UsageError("an --openai target needs --model")
        target = {"type": "openai", "base_url": openai, "model": model}
        if api is not None:
            target["api"] = api
        if instructions is not None:
            target["instructions"] = instructions
    else:
        if secret is not None or secret_env is not None:
            raise UsageError("--secret and --secret-env are not for python targets")
        target = {"type": "python", "handler": handler}
    if secret is not None:
        target["secret"] = secret
    elif secret_env is not None:
        target["secret"] = {"env": secret_env}
    body: dict[str, Any] = {"target": target}
    if name is not None:
        body["name"] = name
    if max_concurrency is not None:
        body["max_concurrency"] = max_concurrency
    saved = r.client.agents.put(agent, body, ref=ref)
    r.emit(saved, lambda: fields(f"agent {saved.id}", saved))


@command(agents_app, "delete")
def delete_agent(r: Remote, agent: AgentArg, ref: RefOpt = None) -> None:
    """Delete an agent with its triggers; their runs are cancelled."""
    r.client.agents.delete(agent, ref=ref)
    r.say(f"deleted agent {agent!r}")
