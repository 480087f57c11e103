"""The small server-rendered pages of /oauth/authorize: sign in, code, consent, error.

Everything interpolated is HTML-escaped. Pages forbid framing (clickjacking), caching and
referrers, and load nothing from anywhere.
"""

from __future__ import annotations

from html import escape
from typing import Any

from litestar import Response

from backend.auth.authorize import Redirect, ShowCode, ShowConsent, ShowError, ShowSignIn, Step
from backend.policy.scopes import OAUTH_SCOPES

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem}"
    "label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;font-size:1rem}"
    "button{margin-top:1rem;padding:.6rem 1rem;font-size:1rem}.error{color:#b00020}"
    "li{margin:.3rem 0}"
)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)} - Caravan</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _error(message: str | None) -> str:
    return f"<p class=error role=alert>{escape(message)}</p>" if message else ""


def _scopes(scopes: list[str]) -> str:
    items = "".join(
        f"<li><b>{escape(s)}</b>: {escape(OAUTH_SCOPES.get(s, s))}</li>" for s in scopes
    )
    return f"<ul>{items}</ul>" if items else "<p>No access to your data.</p>"


def sign_in_page(step: ShowSignIn, query_string: str) -> str:
    action = "/oauth/authorize" + (f"?{query_string}" if query_string else "")
    return _page(
        "Sign in",
        f"<p><b>{escape(step.client_name)}</b> asks to use Caravan on your behalf.</p>"
        f"{_scopes(step.scopes)}{_error(step.error)}"
        f'<form method=post action="{escape(action)}">'
        "<input type=hidden name=step value=sign_in>"
        "<label for=email>Email</label>"
        "<input id=email name=email type=email autocomplete=username required>"
        "<label for=password>Password</label>"
        "<input id=password name=password type=password autocomplete=current-password required>"
        "<button type=submit>Sign in</button></form>",
    )


def code_page(step: ShowCode) -> str:
    return _page(
        "Two-step verification",
        f"<p>Enter the code from your authenticator app to continue to "
        f"<b>{escape(step.client_name)}</b>, or one of your recovery codes.</p>{_error(step.error)}"
        '<form method=post action="/oauth/authorize">'
        "<input type=hidden name=step value=mfa>"
        f'<input type=hidden name=handle value="{escape(step.handle)}">'
        "<label for=code>Code</label>"
        "<input id=code name=code inputmode=numeric autocomplete=one-time-code>"
        "<label for=recovery_code>Or a recovery code</label>"
        "<input id=recovery_code name=recovery_code autocomplete=off>"
        "<button type=submit>Continue</button></form>",
    )


def consent_page(step: ShowConsent) -> str:
    handle = escape(step.handle)
    return _page(
        "Allow access?",
        f"<p>Signed in as <b>{escape(step.email)}</b>.</p>"
        f"<p><b>{escape(step.client_name)}</b> will be able to:</p>{_scopes(step.scopes)}"
        '<form method=post action="/oauth/authorize">'
        "<input type=hidden name=step value=consent>"
        f'<input type=hidden name=handle value="{handle}">'
        "<button type=submit name=decision value=allow>Allow</button> "
        "<button type=submit name=decision value=deny>Deny</button></form>",
    )


def error_page(step: ShowError) -> str:
    return _page(step.title, f"<p>{escape(step.message)}</p>")


def render(step: Step, query_string: str = "", *, redirect_status: int = 302) -> Response[Any]:
    if isinstance(step, Redirect):
        return Response(
            None,
            status_code=redirect_status,
            headers={"Location": step.location, "Cache-Control": "no-store"},
        )
    headers = dict(SECURITY_HEADERS)
    if isinstance(step, ShowSignIn):
        html, status = sign_in_page(step, query_string), step.status
        headers.update(step.headers)
    elif isinstance(step, ShowCode):
        html, status = code_page(step), step.status
        headers.update(step.headers)
    elif isinstance(step, ShowConsent):
        html, status = consent_page(step), 200
    else:
        html, status = error_page(step), step.status
    return Response(html, status_code=status, media_type="text/html", headers=headers)
