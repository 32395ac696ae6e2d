"""Reading dates and periods written by people, in French (and simple English).

Pure Python, no Rasa import: used by the form validation actions and testable alone.

    >>> import datetime as dt
    >>> today = dt.date(2026, 7, 1)
    >>> parse_period("du 3 au 17 août", today)
    (datetime.date(2026, 8, 3), datetime.date(2026, 8, 17))
    >>> parse_date("demain", today)
    datetime.date(2026, 7, 2)
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

MONTHS = {
    "janvier": 1, "janv": 1, "jan": 1, "january": 1,
    "fevrier": 2, "fevr": 2, "fev": 2, "feb": 2, "february": 2,
    "mars": 3, "mar": 3, "march": 3,
    "avril": 4, "avr": 4, "apr": 4, "april": 4,
    "mai": 5, "may": 5,
    "juin": 6, "june": 6, "jun": 6,
    "juillet": 7, "juil": 7, "july": 7, "jul": 7,
    "aout": 8, "august": 8, "aug": 8,
    "septembre": 9, "sept": 9, "sep": 9, "september": 9,
    "octobre": 10, "oct": 10, "october": 10,
    "novembre": 11, "nov": 11, "november": 11,
    "decembre": 12, "dec": 12, "december": 12,
}  # fmt: skip
WEEKDAYS = {
    "lundi": 0, "monday": 0, "mardi": 1, "tuesday": 1, "mercredi": 2, "wednesday": 2,
    "jeudi": 3, "thursday": 3, "vendredi": 4, "friday": 4, "samedi": 5, "saturday": 5,
    "dimanche": 6, "sunday": 6,
}  # fmt: skip
NUMBER_WORDS = {
    "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7,
    "huit": 8, "neuf": 9, "dix": 10, "quinze": 15, "vingt": 20, "trente": 30,
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "ten": 10,
}  # fmt: skip
_MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))
_DAY_MONTH = re.compile(
    rf"\b(?:le\s+|the\s+)?(1er|\d{{1,2}})(?:er|st|nd|rd|th)?\s+({_MONTH_RE})\.?(?:\s+(\d{{4}}))?\b"
)
_MONTH_DAY = re.compile(rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?\b")
_NUMERIC = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{2,4}))?\b")
_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_RANGE_SAME_MONTH = re.compile(
    rf"\b(?:du|from|entre le|between)?\s*(1er|\d{{1,2}})\s*(?:au|a|jusqu'au|-|to|et le|and)\s*"
    rf"(\d{{1,2}})\s+({_MONTH_RE})\b"
)
_IN_N = re.compile(r"\b(?:dans|in)\s+(\d+|\w+)\s+(jours?|semaines?|mois|days?|weeks?|months?)\b")
_FOR_N = re.compile(
    r"\b(?:pour|pendant|durant|for)\s+(\d+|\w+)\s+(jours?|semaines?|mois|days?|weeks?|months?)\b"
)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", text.replace("’", "'")).strip()


def _number(token: str) -> int | None:
    if token.isdigit():
        return int(token)
    return NUMBER_WORDS.get(token)


def _days(count: int, unit: str) -> int:
    if unit.startswith(("semaine", "week")):
        return 7 * count
    if unit.startswith(("mois", "month")):
        return 30 * count
    return count


# a day and month without a year passed by at most this many days is that past day ("le 2
# novembre" typed on 3 December is a date gone, said as such, not next November), earlier ones
# are next year's ("le 4 janvier" typed in December)
RECENT_PAST_DAYS = 60


def _build(day: int, month: int, year: int | None, today: dt.date) -> dt.date | None:
    """A day and month without a year is the next such day (today included), unless it passed
    less than :data:`RECENT_PAST_DAYS` ago."""
    try:
        if year is not None:
            if year < 100:
                year += 2000
            return dt.date(year, month, day)
        candidate = dt.date(today.year, month, day)
        if candidate > today:
            previous = dt.date(today.year - 1, month, day)  # "le 20 décembre" typed on 5 Jan.
            if (today - previous).days <= RECENT_PAST_DAYS:
                return previous
        if candidate < today and (today - candidate).days > RECENT_PAST_DAYS:
            candidate = dt.date(today.year + 1, month, day)
        return candidate
    except ValueError:
        return None


def _relative(text: str, today: dt.date) -> dt.date | None:
    if re.search(r"\bapres[- ]demain\b|\bday after tomorrow\b", text):
        return today + dt.timedelta(days=2)
    if re.search(r"\bdemain\b|\btomorrow\b", text):
        return today + dt.timedelta(days=1)
    if re.search(r"\baujourd'?hui\b|\btoday\b|\bce (?:matin|soir)\b|\btonight\b", text):
        return today
    if re.search(r"\bavant[- ]hier\b", text):
        return today - dt.timedelta(days=2)
    if re.search(r"\bhier\b|\byesterday\b", text):
        return today - dt.timedelta(days=1)
    if re.search(r"\b(?:la )?semaine prochaine\b|\bnext week\b", text):
        return today + dt.timedelta(days=7 - today.weekday())  # next Monday
    if re.search(r"\b(?:le )?mois prochain\b|\bnext month\b", text):
        year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
        return dt.date(year, month, 1)
    match = _IN_N.search(text)
    if match and (count := _number(match.group(1))) is not None:
        return today + dt.timedelta(days=_days(count, match.group(2)))
    for name, weekday in WEEKDAYS.items():
        if re.search(rf"\b{name}\b", text):
            ahead = (weekday - today.weekday()) % 7 or 7
            return today + dt.timedelta(days=ahead)
    return None


def find_dates(text: str, today: dt.date) -> list[dt.date]:
    """Every date written in ``text``, in reading order."""
    norm = normalise(text)
    found: list[tuple[int, dt.date]] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, value: dt.date | None) -> None:
        if value is None or any(s < end and start < e for s, e in taken):
            return
        taken.append((start, end))
        found.append((start, value))

    for m in _RANGE_SAME_MONTH.finditer(norm):
        month = MONTHS[m.group(3)]
        first = 1 if m.group(1) == "1er" else int(m.group(1))
        start = _build(first, month, None, today)
        end = _build(int(m.group(2)), month, start.year if start else None, today)
        add(m.start(1), m.start(1) + len(m.group(1)), start)
        add(m.start(2), m.end(), end)
    for m in _ISO.finditer(norm):
        add(m.start(), m.end(), _safe_date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
    for m in _DAY_MONTH.finditer(norm):
        day = 1 if m.group(1) == "1er" else int(m.group(1))
        year = int(m.group(3)) if m.group(3) else None
        add(m.start(), m.end(), _build(day, MONTHS[m.group(2)], year, today))
    for m in _MONTH_DAY.finditer(norm):
        year = int(m.group(3)) if m.group(3) else None
        add(m.start(), m.end(), _build(int(m.group(2)), MONTHS[m.group(1)], year, today))
    for m in _NUMERIC.finditer(norm):
        year = int(m.group(3)) if m.group(3) else None
        add(m.start(), m.end(), _build(int(m.group(1)), int(m.group(2)), year, today))
    found.sort(key=lambda item: item[0])
    dates = [value for _, value in found]
    if not dates:
        relative = _relative(norm, today)
        if relative is not None:
            dates.append(relative)
    return dates


def _safe_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def parse_date(text: str, today: dt.date) -> dt.date | None:
    """The first date written in ``text`` (None if there is none)."""
    dates = find_dates(text, today)
    return dates[0] if dates else None


def parse_period(text: str, today: dt.date) -> tuple[dt.date | None, dt.date | None]:
    """Departure and return: "du 3 au 17 août", "demain pour 2 semaines", "le 3/8 jusqu'au 20/8"."""
    dates = find_dates(text, today)
    start = dates[0] if dates else None
    end = dates[1] if len(dates) > 1 else None
    if start is not None and end is None:
        match = _FOR_N.search(normalise(text))
        if match and (count := _number(match.group(1))) is not None:
            end = start + dt.timedelta(days=_days(count, match.group(2)))
    return start, end


def format_date(value: dt.date, language: str = "fr") -> str:
    if language == "en":
        return value.strftime("%d/%m/%Y")
    months = [
        "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
        "octobre", "novembre", "décembre",
    ]  # fmt: skip
    day = "1er" if value.day == 1 else str(value.day)
    return f"{day} {months[value.month - 1]} {value.year}"
