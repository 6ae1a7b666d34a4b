"""Every sentence of the CLI exists in English and Spanish, with the same placeholders, and
the language follows the locale variables."""

from __future__ import annotations

import string

import pytest

from client.cli.i18n import MESSAGES, t


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(MESSAGES))
def test_both_languages_take_the_same_values(key: str) -> None:
    english, spanish = MESSAGES[key]
    assert english and spanish
    assert fields(english) == fields(spanish), key


def test_the_product_phrases_are_kept_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    assert (t("clear"), t("holding")) == ("Clear to deploy", "Holding at Junction")
    monkeypatch.setenv("LANG", "es_MX.UTF-8")
    assert (t("clear"), t("holding")) == ("Despliegue autorizado", "En espera en Enlace")
    monkeypatch.setenv("LC_ALL", "en_US.UTF-8")  # LC_ALL wins over LANG
    assert t("clear") == "Clear to deploy"


def test_every_capability_has_words() -> None:
    """whoami lists what the caller may do by the fields of CapabilitiesView: each needs
    its words in both languages."""
    from client.api.fragments import CapabilitiesView

    assert {f"can.{name}" for name in CapabilitiesView.model_fields} <= set(MESSAGES)
