"""The console's languages: gettext catalogues and locale-aware formatting with Babel.

Messages are English in the templates and code (``_("Acknowledge")``); each language has a
catalogue ``locale/<lang>/LC_MESSAGES/messages.po``, committed as text and compiled in
memory when central starts (``Catalogues.load``): there is no separate compile step. An
entry missing from a catalogue shows in English. Dates, times and numbers are formatted
per locale by Babel, in the configured time zone.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

from central.accounts.prefs import LOCALES
from shared.plates import parse, registry_form

LOCALE_DIR: Final = Path(__file__).parent / "locale"
LANGUAGE_NAMES: Final = {"uk": "Українська", "en": "English"}


def compile_catalogue(locale: str, directory: Path = LOCALE_DIR) -> Translations:
    """Read ``<directory>/<locale>/LC_MESSAGES/messages.po`` and compile it in memory.

    Raises:
        FileNotFoundError: The catalogue is missing (named in the message).
    """
    path = directory / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf, domain="messages")


@dataclass(frozen=True)
class Translator:
    """Everything a page needs to speak one language.

    Attributes:
        locale: The language code (``uk``, ``en``).
        translations: Its compiled catalogue.
        tz: The time zone times are shown in.
    """

    locale: str
    translations: Translations
    tz: ZoneInfo

    def gettext(self, message: str, **values: object) -> str:
        """``message`` translated; ``%(name)s`` placeholders filled from ``values``."""
        text = self.translations.gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        """The form for ``n``; ``%(n)s`` and other placeholders are filled."""
        text = self.translations.ngettext(singular, plural, n)
        return text % {"n": self.number(n), **values}

    def datetime(self, epoch: float | None, fmt: str = "medium") -> str:
        """UNIX seconds as a local date and time (empty for None)."""
        if epoch is None:
            return ""
        moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
        return format_datetime(moment, format=fmt, tzinfo=self.tz, locale=self.locale)

    def iso(self, epoch: float) -> str:
        """UNIX seconds as RFC 3339 in the console's zone (for ``<time datetime>``)."""
        return dt.datetime.fromtimestamp(epoch, self.tz).isoformat(timespec="seconds")

    def number(self, value: float) -> str:
        """A number with the locale's separators."""
        return format_decimal(value, locale=self.locale)

    def duration(self, seconds: float) -> str:
        """An elapsed time in the unit a reader takes in at a glance: ``42 s``, ``13.5 min``,
        ``5 h 7 min``, ``31 d`` (a journey's gap between two sightings can be a month)."""
        if seconds < 60:
            return self.gettext("%(n)s s", n=self.number(round(seconds, 1)))
        if seconds < 3600:
            return self.gettext("%(n)s min", n=self.number(round(seconds / 60, 1)))
        if seconds < 2 * 86400:
            hours, minutes = divmod(round(seconds / 60), 60)
            return self.gettext("%(h)s h %(m)s min", h=self.number(hours), m=self.number(minutes))
        return self.gettext("%(n)s d", n=self.number(round(seconds / 86400, 1)))

    def percent(self, value: float) -> str:
        """A 0..1 fraction as a percentage, e.g. ``87,5 %`` in Ukrainian."""
        return format_percent(value, format="#,##0.0%", locale=self.locale)

    def plate(self, text: str) -> str:
        """A plate as its registry writes it: Cyrillic letters for Ukrainian formats."""
        if not text:
            return ""
        return registry_form(text) if parse(text).format.startswith("ua_") else text


class Catalogues:
    """Every language's translator, compiled once at start.

    Args:
        timezone: IANA zone name times are shown in.
        directory: Where the catalogues are (the package's ``locale`` by default).
    """

    def __init__(self, timezone: str, directory: Path = LOCALE_DIR) -> None:
        tz = ZoneInfo(timezone)
        self._by_locale = {
            loc: Translator(loc, compile_catalogue(loc, directory), tz) for loc in LOCALES
        }

    def get(self, locale: str) -> Translator:
        """The translator of ``locale`` (the default language for an unknown one)."""
        return self._by_locale.get(locale) or self._by_locale[LOCALES[0]]
