"""Wording helpers for the node's pages: plurals and times through Babel.

Templates use ``ngettext`` (Jinja's i18n extension backed by Babel's translations, so a
translation catalogue can be dropped in later without touching a template), the ``ago``
filter for relative times (``3 minutes ago``; the exact UTC time is in the element's
``title`` and ``datetime`` attributes) and ``when`` for an absolute time.
"""

from __future__ import annotations

import datetime as dt

import jinja2
from babel.dates import format_timedelta
from babel.support import NullTranslations
from markupsafe import Markup, escape

LOCALE = "en"


def absolute(value: object) -> str:
    """``2026-12-05 22:58 UTC``; empty for None."""
    if not isinstance(value, dt.datetime):
        return "" if value is None else str(value)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def relative(value: dt.datetime, now: dt.datetime | None = None) -> str:
    """``3 minutes ago`` / ``in 2 days``: Babel's wording, rounded the way people speak."""
    now = now or dt.datetime.now(dt.UTC)
    delta = value - now
    if abs(delta) < dt.timedelta(seconds=45):
        return "just now"
    return format_timedelta(delta, add_direction=True, locale=LOCALE)


def ago(value: object, now: dt.datetime | None = None) -> Markup | str:
    """A ``<time>`` element saying the relative time, with the absolute one as its title."""
    if not isinstance(value, dt.datetime):
        return "" if value is None else str(value)
    iso = value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        iso, absolute(value), escape(relative(value, now)))


def install(env: jinja2.Environment) -> None:
    """Plural-aware ``gettext``/``ngettext`` and the time filters, on one Jinja environment."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_translations(NullTranslations(), newstyle=True)  # type: ignore[attr-defined]
    env.filters["when"] = absolute
    env.filters["ago"] = ago
    env.globals["device"] = device
    env.globals["utcnow"] = lambda: dt.datetime.now(dt.UTC)


def device(user_agent: str | None, ip: str | None = None) -> str:
    """``Firefox Mobile on Android, from 203.0.113.x``: what a person recognises, parsed by
    ua-parser (its maintained regex set). No GeoIP database ships with the node, so the
    place is the address's network, never a guessed city."""
    from ua_parser import parse

    parts = []
    result = parse(user_agent or "") if user_agent else None
    browser = result.user_agent.family if result and result.user_agent else ""
    system = result.os.family if result and result.os else ""
    if browser and browser != "Other":
        parts.append(f"{browser} on {system}" if system and system != "Other" else browser)
    else:
        parts.append("an unknown browser")
    if ip:
        parts.append(f"from {network_hint(ip)}")
    return ", ".join(parts)


def network_hint(ip: str) -> str:
    """The address with its host part hidden: ``203.0.113.x`` / ``2001:db8:1:2::/64``."""
    import ipaddress

    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return "an unknown address"
    if addr.is_loopback:
        return "this machine"
    if isinstance(addr, ipaddress.IPv4Address):
        return ".".join(str(addr).split(".")[:3]) + ".x"
    return str(ipaddress.ip_network(f"{addr}/64", strict=False))


def plural(n: int, singular: str, plural_form: str) -> str:
    """``plural(1, "%(num)d bundle", "%(num)d bundles")`` -> ``1 bundle``: the same
    Babel-backed ngettext the templates use, for messages built in Python."""
    return NullTranslations().ngettext(singular, plural_form, n) % {"num": n}
