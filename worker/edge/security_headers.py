"""The headers the web app's pages and files carry: what the SPA may load, and from where.

    content-security-policy     scripts, styles, fonts and images from the app's own origin;
                                fetch to itself, fetch and WebSockets to `ws-{id}.{domain}`
                                (a workspace's agent sessions, terminals); no
                                plugins, no <base>, forms only to itself, never framed
    x-content-type-options      nosniff: a file is only ever what its content-type says
    referrer-policy             same-origin: no page URL leaves for another site
    x-frame-options             DENY, for browsers that predate frame-ancestors

A CSP host wildcard covers whole labels only, so `ws-*` is written `*.{domain}` with the
WebSocket scheme. xterm.js writes its theme and sizes into <style> elements it creates,
hence 'unsafe-inline' for styles (never for scripts). GitHub serves users' avatars.
"""

AVATARS_ORIGIN = "https://avatars.githubusercontent.com"


def content_security_policy(scheme: str, domain: str) -> str:
    sockets = "wss" if scheme == "https" else "ws"
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' {AVATARS_ORIGIN}",
            "font-src 'self'",
            f"connect-src 'self' {scheme}://*.{domain} {sockets}://*.{domain}",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def app_headers(scheme: str, domain: str) -> dict[str, str]:
    """What every response of the SPA's files carries, e.g. app_headers("https", "sam.dev")."""
    return {
        "content-security-policy": content_security_policy(scheme, domain),
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "x-frame-options": "DENY",
    }
