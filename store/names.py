"""Naming rules shared by the Service Spec, the API and the drivers.

Names end up in hostnames (``api.prod.shop.localhost``), Kubernetes objects and process
names, so they follow DNS label rules everywhere.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

DNS_LABEL: Final = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
FIXED_ENVIRONMENTS: Final = ("dev", "stage", "prod")
PREVIEW_PREFIX: Final = "preview-"
HOSTNAME: Final = re.compile(
    r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
ENV_VAR: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def label_problem(value: str, what: str) -> str | None:
    """Why ``value`` is not a DNS label, or None when it is one."""
    if not value:
        return f"{what} must not be empty"
    if len(value) > 63:
        return f"{what} {value!r} is {len(value)} characters long; the limit is 63"
    if not DNS_LABEL.fullmatch(value):
        return (
            f"{what} {value!r} must be lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return None


def environment_problem(name: str) -> str | None:
    """Why ``name`` is not an environment name (dev, stage, prod, preview-*), or None."""
    if name in FIXED_ENVIRONMENTS:
        return None
    if name.startswith(PREVIEW_PREFIX) and len(name) > len(PREVIEW_PREFIX):
        return label_problem(name, "environment name")
    return f"environment {name!r} is not one of dev, stage, prod or preview-<name>"


def is_preview(name: str) -> bool:
    return name.startswith(PREVIEW_PREFIX)


def host_problem(host: str) -> str | None:
    if len(host) > 253:
        return f"host {host!r} is longer than 253 characters"
    if not HOSTNAME.fullmatch(host):
        return (
            f"host {host!r} is not a lowercase DNS name (like api.example.com or "
            "*.preview.example.com)"
        )
    return None


def path_problem(path: str) -> str | None:
    if not path.startswith("/"):
        return f"path {path!r} must start with '/'"
    if any(c.isspace() for c in path) or "?" in path or "#" in path:
        return f"path {path!r} must be a plain path prefix, without spaces, '?' or '#'"
    if "//" in path or "/../" in path or path.endswith("/.."):
        return f"path {path!r} must not contain '//' or '..' segments"
    return None


def normalise_path(path: str) -> str:
    """Route paths are prefixes; '/api/' and '/api' mean the same prefix."""
    return path if path == "/" else path.rstrip("/")


def slugify(name: str) -> str:
    """A DNS-label slug from a display name: ``Solarpunk SaaS`` → ``solarpunk-saas``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:63].rstrip("-")
