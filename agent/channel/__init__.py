"""SAM's own channel into a workspace: a listener per workspace on that workspace's network.

    channels = Channels({"/model": model_proxy_app}, state_dir)
    channel = await channels.open("w1", host="172.18.0.1", subnet="172.18.0.0/16")
    channel.url("/whoami")   # "http://172.18.0.1:41234/whoami", needs channel.token

Only that workspace's subnet AND its token get through (listener.py); a mounted service
reads the caller from `request[WORKSPACE_ID]`.
"""

from agent.channel.listener import WORKSPACE_ID, Channels, WorkspaceChannel

__all__ = ["WORKSPACE_ID", "Channels", "WorkspaceChannel"]
