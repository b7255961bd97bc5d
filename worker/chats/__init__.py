"""The project chat flow: a chat is a TaskRunner run in conversation mode.

    run.py               what a run is: its spec, steps, controls and the Run it reports
    steps.py             the steps' side effects (workspace, agent session, link) and the
                         delivery of controls, each idempotent by an id chosen beforehand
    agent_sessions.py    the worker's client for the node agent's agent-session routes
    crash_report.py      why a session could not start, from its crash report in the chat
    runner.py            the TaskRunner object's RPC, with domain errors
    progress.py          a run's progress posted to its chat as `run` messages
    context.py           the bounded transcript a fresh run of an old chat starts with
    flow.py              new chat, follow-up, stop, permission answer, run status
    workspace_events.py  a workspace ready or failed wakes its chats' runs; stopped or
                         deleted, its chats and runs end

The TaskRunner Durable Object (durable_objects/task_runner.py) persists and drives them.
"""
