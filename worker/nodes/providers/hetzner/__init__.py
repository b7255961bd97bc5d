"""The Hetzner provider: a VM in the user's own Hetzner project, joined by cloud-init."""
