"""Naming rules: DNS labels, environments, hosts, route paths, slugs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.names import (
    environment_problem,
    host_problem,
    is_preview,
    label_problem,
    normalise_path,
    path_problem,
    slugify,
)


@pytest.mark.parametrize("value", ["a", "0", "api", "a-b", "a--b", "web-2", "9lives", "a" * 63])
def test_valid_labels(value: str) -> None:
    assert label_problem(value, "name") is None


def test_empty_label() -> None:
    assert label_problem("", "service name") == "service name must not be empty"


def test_label_too_long_names_the_length() -> None:
    assert label_problem("a" * 64, "name") == (
        f"name {'a' * 64!r} is 64 characters long; the limit is 63"
    )


@pytest.mark.parametrize("value", ["-a", "a-", "-", "A", "Api", "a_b", "a.b", "a b", "é", "\na"])
def test_invalid_labels(value: str) -> None:
    assert label_problem(value, "project") == (
        f"project {value!r} must be lowercase letters, digits and '-', "
        "starting and ending with a letter or digit"
    )


@pytest.mark.parametrize("value", ["a\n", "web\n", "preview-x\n"])
def test_trailing_newline_is_not_a_label(value: str) -> None:
    """Regression (store/names.py, DNS_LABEL and label_problem): the pattern ends in ``$`` and is
    used with ``re.match``, and ``$`` also matches just before a final newline, so "web\\n"
    passes as a DNS label (and "preview-x\\n" as an environment). Expected a problem; use
    ``\\Z`` or ``re.fullmatch``."""
    assert label_problem(value, "name") is not None
    if value.startswith("preview-"):
        assert environment_problem(value) is not None


def test_trailing_newline_is_not_a_host() -> None:
    """Regression (store/names.py, HOSTNAME and host_problem): as with labels, "api.example.com\\n"
    matches the ``$``-anchored pattern and is accepted as a hostname."""
    assert host_problem("api.example.com\n") is not None


@pytest.mark.parametrize(
    "name", ["dev", "stage", "prod", "preview-x", "preview-pr-42", "preview-" + "a" * 55]
)
def test_valid_environments(name: str) -> None:
    assert environment_problem(name) is None


@pytest.mark.parametrize(
    "name", ["qa", "preview-", "Preview-x", "PROD", "", "production", "preview"]
)
def test_environments_outside_the_set(name: str) -> None:
    assert environment_problem(name) == (
        f"environment {name!r} is not one of dev, stage, prod or preview-<name>"
    )


@pytest.mark.parametrize("name", ["preview-X", "preview-x-", "preview-a_b", "preview-a.b"])
def test_preview_names_must_be_labels(name: str) -> None:
    assert environment_problem(name) == (
        f"environment name {name!r} must be lowercase letters, digits and '-', "
        "starting and ending with a letter or digit"
    )


def test_preview_name_length_limit() -> None:
    name = "preview-" + "a" * 56
    assert len(name) == 64
    assert environment_problem(name) == (
        f"environment name {name!r} is 64 characters long; the limit is 63"
    )


def test_is_preview() -> None:
    assert is_preview("preview-x")
    assert not is_preview("prod")
    assert not is_preview("Preview-x")


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "api.example.com",
        "*.preview.example.com",
        "a-b.c-d.io",
        "xn--bcher-kva.example",
        "127.0.0.1",
        "a." * 126 + "b",  # 253 characters
        ("a" * 63 + ".") * 3 + "b",
    ],
)
def test_valid_hosts(host: str) -> None:
    assert host_problem(host) is None


@pytest.mark.parametrize(
    "host",
    [
        "",
        "API.example.com",
        "-a.com",
        "a-.com",
        "a..com",
        "a.com.",
        ".a.com",
        "*",
        "*.",
        "a.*.com",
        "**.a.com",
        "a_b.com",
        "a.com:80",
        "a.com/path",
        "https://a.com",
        "a b.com",
        "a" * 64 + ".com",
    ],
)
def test_invalid_hosts(host: str) -> None:
    assert host_problem(host) == (
        f"host {host!r} is not a lowercase DNS name (like api.example.com or *.preview.example.com)"
    )


def test_host_length_limit() -> None:
    host = "a." * 126 + "bc"
    assert len(host) == 254
    assert host_problem(host) == f"host {host!r} is longer than 253 characters"


@pytest.mark.parametrize(
    "path", ["/", "/api", "/api/", "/a/b-c_d.e", "/a/..b", "/a/b..", "/%20", "/v1/users/"]
)
def test_valid_paths(path: str) -> None:
    assert path_problem(path) is None


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "path '' must start with '/'"),
        ("api", "path 'api' must start with '/'"),
        ("api/", "path 'api/' must start with '/'"),
        ("/a b", "path '/a b' must be a plain path prefix, without spaces, '?' or '#'"),
        ("/a\tb", "path '/a\\tb' must be a plain path prefix, without spaces, '?' or '#'"),
        ("/a?x=1", "path '/a?x=1' must be a plain path prefix, without spaces, '?' or '#'"),
        ("/a#top", "path '/a#top' must be a plain path prefix, without spaces, '?' or '#'"),
        ("//", "path '//' must not contain '//' or '..' segments"),
        ("/a//b", "path '/a//b' must not contain '//' or '..' segments"),
        ("/a/../b", "path '/a/../b' must not contain '//' or '..' segments"),
        ("/a/..", "path '/a/..' must not contain '//' or '..' segments"),
        ("/..", "path '/..' must not contain '//' or '..' segments"),
        ("/../a", "path '/../a' must not contain '//' or '..' segments"),
    ],
)
def test_invalid_paths(path: str, message: str) -> None:
    assert path_problem(path) == message


@pytest.mark.parametrize(
    ("path", "normal"),
    [("/", "/"), ("/api", "/api"), ("/api/", "/api"), ("/api/v1/", "/api/v1"), ("/a///", "/a")],
)
def test_normalise_path(path: str, normal: str) -> None:
    assert normalise_path(path) == normal


@settings(max_examples=200, deadline=None)
@given(st.lists(st.from_regex(r"[a-z0-9._-]{1,8}", fullmatch=True), max_size=4), st.booleans())
def test_normalised_valid_paths_stay_valid_and_are_stable(segments: list[str], slash: bool) -> None:
    path = "/" + "/".join(segments) + ("/" if slash and segments else "")
    if path_problem(path) is not None:
        return
    normal = normalise_path(path)
    assert path_problem(normal) is None
    assert normalise_path(normal) == normal
    assert normal == "/" or not normal.endswith("/")


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Solarpunk SaaS", "solarpunk-saas"),
        ("  Hello, World!!  ", "hello-world"),
        ("Café Déjà Vu", "cafe-deja-vu"),
        ("Ünïcödé", "unicode"),
        ("naïve_résumé.v2", "naive-resume-v2"),
        ("a--b", "a-b"),
        ("---", ""),
        ("", ""),
        ("日本語", ""),
        ("Shop 日本 2", "shop-2"),
        ("ﬁle", "file"),
        ("ALLCAPS", "allcaps"),
        ("already-a-slug", "already-a-slug"),
        ("a" * 62 + " b", "a" * 62),
        ("x" * 100, "x" * 63),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_slugify_gives_a_label_or_nothing(name: str) -> None:
    slug = slugify(name)
    assert slug == "" or label_problem(slug, "slug") is None
    assert slugify(slug) == slug
