"""What a description already says: answers taken from the citizen's own words, so that only
what is missing is asked (every channel that has a description, and `triage`)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import safety
from reports import dates
from reports.answers import IBAN_RE, URL_RE, age_choice, find_traces
from reports.model import SKIP, model
from routing.normalize import fold


def extract(report_type: str, text: str, today: dt.date) -> dict[str, Any]:
    """Answers found in ``text`` for the questions of ``report_type`` (choice ids, ISO dates,
    traces). A question whose choices' cues match several choices takes the first one in the
    model's order; a question's ``if_past`` choice is also taken when the story is dated in the
    past (the safety check's markers), after the cues of the choices before it."""
    m = model()
    form = m.forms[report_type]
    folded = fold(text or "")
    found: dict[str, Any] = {}
    if not folded:
        return found
    for qid in form.questions:
        question = m.questions[qid]
        if question.extract == "dates":
            start, end = dates.parse_period(text, today)
            if start is not None:
                found[qid] = start.isoformat()
                if end is not None:
                    found["date_retour"] = end.isoformat()
            continue
        if question.extract == "traces":
            traces = find_traces(text)
            if traces:
                found[qid] = ", ".join(traces)
            continue
        if question.extract == "age":
            bracket = age_choice(question, text)
            if bracket:
                found[qid] = bracket
                continue
        if question.extract in _TEXT_EXTRACTORS:
            value = _TEXT_EXTRACTORS[question.extract](text)
            if value:
                found[qid] = value
                continue
        for choice in question.choices:
            if any(cue.search(folded) for cue in choice.cues) or (
                choice.id == question.if_past and safety.dated_in_the_past(text)
            ):
                found[qid] = choice.id
                break
    return found


# ---------------------------------------------------------------- the citizen's own words
# These read the original text (accents kept, as shown on the summary), case-insensitively.
_DAY = r"(?:lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)"
_AT_HOUR = (
    r"(?:\s+(?:vers|à|a|around|at)\s+\d{1,2}\s?(?:h|heures?)(?:\s?\d{2})?"
    r"|\s+(?:around|at)\s+\d{1,2}(?::\d{2})?\s?(?:am|pm)?)?"
)
_WHEN_RE = re.compile(
    r"(?<!\w)(?:"
    r"cette nuit|ce matin|cet après[- ]midi|cet apres[- ]midi|ce soir"
    r"|avant[- ]hier(?: soir| matin)?"
    r"|hier(?: soir| matin| après[- ]midi| apres[- ]midi)?|la nuit dernière|la nuit derniere"
    rf"|{_DAY}(?: dernier)?(?: soir| matin)?"
    r"|last night|this morning|this afternoon|this evening|tonight"
    r"|yesterday(?: morning| afternoon| evening)?"
    r")" + _AT_HOUR + r"(?!\w)",
    re.IGNORECASE,
)
_STREET = (
    r"(?:rue|avenue|av\.|boulevard|bd|chemin|place|impasse|allée|allee|route|quai|cours|"
    r"square|passage|résidence|residence|lotissement)"
)
# a street named: its number, or a name after it ("rue des Lilas", "avenue Victor Hugo"), not
# "la rue est sale"
_NUMBER = r"\d{1,4}(?:\s?(?:bis|ter))?,?\s+"
_ADDRESS_RE = re.compile(
    r"(?<!\w)(?:" + _NUMBER + _STREET + r"|" + _STREET
    + r"(?=\s+(?:des|du|de la|de l'|de l’|d'|d’|de|(?-i:[A-ZÉÈÀÂÎÔ]))))\s+[^,.;!?\n]+",
    re.IGNORECASE,
)  # fmt: skip
_NUMBERED_ADDRESS_RE = re.compile(r"(?<!\w)" + _NUMBER + _STREET + r"\s+[^,.;!?\n]+", re.IGNORECASE)
_PLACE_RE = re.compile(
    r"(?<!\w)(?:(?:dans|sur|devant|derrière|derriere|sous|près de|pres de|à côté de|a cote de|"
    r"au pied de|en bas de|au fond de)\s+(?:le|la|l'|l’|les|mon|ma|mes|notre|nos|leur|leurs)"
    r"|au|aux|à la|a la|à l'|a l'|à l’|a l’)\s*"
    r"(?:hall|parking|cour|cage d'escalier|escalier|entrée|entree|square|parc|jardin public|"
    r"garage|cave|local|marché|marche|gare|arrêt|arret|place|résidence|residence|immeuble|"
    r"bâtiment|batiment|quartier|stade|city|supermarché|supermarche|centre commercial|"
    r"lotissement|aire de jeux|terrain|mairie|école|ecole|collège|college|lycée|lycee|église|"
    r"eglise|piscine|médiathèque|mediatheque|bibliothèque|bibliotheque|salle des fêtes|"
    r"salle des fetes|boulangerie|pharmacie|poste|tabac|boulodrome|skatepark|city stade)"
    r"(?!\w)[^,.;!?\n]*"
    # at the writer's own door: "devant chez moi", "sous mes fenêtres", "dans ma rue"
    r"|(?<!\w)(?:(?:devant|en bas de|derrière|derriere|près de|pres de|à côté de|a cote de) "
    r"chez (?:moi|nous)|sous (?:mes|nos) fen[êe]tres|dans (?:ma|notre) (?:rue|impasse|cour))"
    r"(?!\w)[^,.;!?\n]*"
    # in English: "at the market", "in the car park next to the tourist office"
    r"|(?<!\w)(?:at|in|near|outside|behind|in front of|next to) the (?:market|car park|parking"
    r"|station|bus station|train station|campsite|camping|beach|square|park|supermarket|harbour"
    r"|port|church|tourist office|town hall|lake|bakery|bus stop|playground)(?!\w)[^,.;!?\n]*",
    re.IGNORECASE,
)
# where a place's words stop: the commune ("à Lons-le-Saunier"), a time, what happens next
_PLACE_END = re.compile(
    r"\s+(?:à|a|in)\s+[A-ZÉÈ][\w'’-]+.*$"
    r"|\s+(?:tous les|toutes les|chaque|depuis|vers|cette nuit|ce soir|ce matin|hier|le soir|"
    r"la nuit|et|qui|quand|pendant|pour|on|il|ils|elle|elles|je|nous|vous|quelqu'un|est|sont"
    r"|this morning|last night|yesterday|and|while|when|with|someone|they|we)\b.*$"
    r"|\s+j[’'].*$",
)


def _when(text: str) -> str | None:
    """When it happened, as written: "cette nuit", "hier soir vers 22 h", "last night"."""
    match = _WHEN_RE.search(text)
    return match.group(0).strip() if match else None


def _trim_place(value: str) -> str:
    return _PLACE_END.sub("", value).strip(" ,;-")


# a street typed in lowercase without an article ("des tags rue pasteur"): the word after it is
# its name unless the street word is a common noun ("dans la rue", "en chemin") or the next word
# goes on with the sentence ("la rue est sale", "rue quand")
_BARE_STREET_RE = re.compile(
    r"(?<![\w'’])(rue|avenue|boulevard|bd|impasse|allée|allee|chemin|quai)\s+"
    r"([a-zà-ÿ][a-zà-ÿ'’-]{2,})(?!\w)",
    re.IGNORECASE,
)
_NOT_BEFORE_A_STREET = frozenset(
    "la le une un ma ta sa cette notre votre leur en pleine grande petite même meme quelle "
    "chaque cet ce du au de des sur".split()
)
_NOT_A_STREET_NAME = frozenset(
    "est sont était etait etaient étaient avec pour quand qui que quoi mais donc puis depuis "
    "pendant vers chez sans sous dans près pres tous toutes toute tout elle ils elles nous "
    "vous leur leurs hier aujourd demain matin soir nuit cette avant après apres juste encore "
    "aussi très tres même meme car comme alors ensuite ont avait avaient fait font parce "
    "lorsque jusqu jusque entre contre".split()
)


def _bare_street(text: str) -> str | None:
    for match in _BARE_STREET_RE.finditer(text):
        before = text[: match.start()].split()
        previous = before[-1].lower().strip(",;:") if before else ""
        if previous in _NOT_BEFORE_A_STREET or match.group(2).lower() in _NOT_A_STREET_NAME:
            continue
        # the name may go on ("avenue jean jaures"), until the sentence does ("... le soir")
        rest = re.split(r"[,.;!?\n]", text[match.end() :], maxsplit=1)[0]
        words = [match.group(0)]
        for word in _trim_place("x " + rest).split()[1:3]:
            if word.lower() in _NOT_A_STREET_NAME or not word[0].isalpha():
                break
            words.append(word)
        return " ".join(words)
    return None


# where the writer was while it happened, not where it happened: "pendant qu'on était à la
# plage", "while we were at the beach" (the place phrase right after is skipped)
_WHERE_WE_WERE = re.compile(
    r"(?:(?:pendant|alors|tandis|lorsque|quand) (?:que |qu['’] ?)?|quand )"
    r"(?:nous|on|j['’] ?|je |ils |elles? )\s*(?:étions|etions|était|etait|étais|etais|"
    r"étaient|etaient|suis|sommes|sont)(?:\s+(?:partis?|parties?|tous|toutes|encore))?\s*$"
    r"|(?:while|whilst|when|as) (?:we|i|they|he|she) (?:were|was)"
    r"(?:\s+(?:all|out|away|down|still|having \w+))?\s*$",
    re.IGNORECASE,
)


def _place(text: str) -> str | None:
    """Where it happens, as written: a place ("dans le hall de mon immeuble au 4 rue Victor
    Hugo", "sur le parking de la gare") or a street ("rue des Arènes", "rue pasteur"); not where
    the writer was meanwhile ("while we were at the beach")."""
    match = _PLACE_RE.search(text)
    while match and _WHERE_WE_WERE.search(text[: match.start()]):
        match = _PLACE_RE.search(text, match.start() + 1)
    street = _ADDRESS_RE.search(text)
    if match and street:
        # a street and a place told apart ("Avenue de la Libération à Pertuis, ... devant
        # l'école"): both, in the order told, unless one holds the other
        place, address = _trim_place(match.group(0)), _trim_place(street.group(0))
        if address in place or place in address:
            return max(place, address, key=len)
        first, second = (address, place) if street.start() < match.start() else (place, address)
        return f"{first}, {second}"
    match = match or street
    if not match:
        return _bare_street(text)
    value = _trim_place(match.group(0))
    return value if len(value.split()) >= 2 else None


def _address(text: str) -> str | None:
    """A street address: "8 chemin des Vignes" (without the commune that follows)."""
    match = _NUMBERED_ADDRESS_RE.search(text)
    return _trim_place(match.group(0)) if match else None


_SINCE_RE = re.compile(
    r"(?<!\w)(?:depuis (?:\d+|un|une|deux|trois|quatre|cinq|six|quelques|plusieurs|des) "
    r"(?:jours?|semaines?|mois|ans|années|annees)|depuis la rentrée|depuis la rentree"
    r"|depuis (?:longtemps|toujours)"
    # "ça fait 3 mois que...", "voilà deux semaines que...", "it's been two weeks"
    r"|(?:ça|ca|cela|voilà|voila) fait (?:\d+|un|une|deux|trois|quatre|cinq|six|quelques"
    r"|plusieurs|des) (?:jours?|semaines?|mois|ans|années|annees)"
    r"|(?:voilà|voila) (?:\d+|un|une|deux|trois|quelques|plusieurs) (?:jours?|semaines?|mois|ans"
    r"|années|annees)(?= qu)"
    r"|(?:it s|it has|it's) been (?:\d+|a|one|two|three|a few|several)"
    r" (?:days?|weeks?|months?|years?)"
    r"|for (?:\d+|a|one|two|three|four|a few|several) (?:days?|weeks?|months?|years?))(?!\w)",
    re.IGNORECASE,
)


def _since(text: str) -> str | None:
    """Since when, as written: "depuis 3 semaines", "for two weeks"."""
    match = _SINCE_RE.search(text)
    return match.group(0) if match else None


_REPEATED_RE = re.compile(
    r"(?<!\w)(?:(?:presque |quasiment )?tous les jours|plusieurs fois|à plusieurs reprises|"
    r"a plusieurs reprises|souvent|régulièrement|regulierement|sans arrêt|sans arret|"
    r"encore une fois|de nouveau|every day|several times|again and again)(?!\w)",
    re.IGNORECASE,
)


def _repeated(text: str) -> str | None:
    """Targeted several times ("presque tous les jours des appels"): yes."""
    return "oui" if _REPEATED_RE.search(text) else None


_TEXT_EXTRACTORS: dict[str, Callable[[str], str | None]] = {
    "when": _when,
    "place": _place,
    "address": _address,
    "since": _since,
    "repeated": _repeated,
}


# ---------------------------------------------------------------- a change of mind
# "non en fait c'était pas la banque, c'était un faux policier": the citizen corrects an answer
# already given while another question is asked. Only a message that says it corrects something
# is read so; an ordinary answer never changes earlier ones.
_CORRECTION_RE = re.compile(
    r"\b(en fait|finalement|je me suis trompee?|je me trompe|c etait pas|ce n etait pas|"
    r"c est pas|ce n est pas|pas (la|le|un|une) \w+ (mais|c etait|c est)|plutot|"
    r"actually|i meant|it was not|it wasn t|not the \w+ (but|it was))\b"
)


def _late_traces(
    report_type: str, text: str, answers: dict[str, Any], asking: str | None
) -> dict[str, Any]:
    found = [
        m.group(0).strip(".,;)") for pattern in (URL_RE, IBAN_RE) for m in pattern.finditer(text)
    ]
    if not found:
        return {}
    m = model()
    late: dict[str, Any] = {}
    for qid in m.forms[report_type].questions:
        current = answers.get(qid)
        if m.questions[qid].extract != "traces" or qid == asking:
            continue  # (the question asked reads its own answer)
        # not asked yet: noted now, the question is not asked ("Répondez par oui ou non" to
        # "le lien c'était ameli-remboursement.fr" lost it)
        known = [] if current in (None, "", SKIP) else [str(current)]
        new = [t for t in found if not any(t in k for k in known)]
        if new:
            late[qid] = ", ".join([*known, *new])
    return late


_NEGATED_BEFORE = re.compile(r"\b(pas|plus|jamais|not|no|non|ni)( \w+){0,2} $")


def corrections(
    report_type: str,
    text: str,
    answers: dict[str, Any],
    today: dt.date,
    asking: str | None = None,
) -> dict[str, Any]:
    """Earlier answers that ``text`` corrects in passing: {question id: new value}.

    A scammer's web address or IBAN told at another question than its own (``asking``: the
    question asked) is added to it, whether its question was passed ("le lien c'est
    laposte-suivi.info" typed at "Souhaitez-vous être recontacté ?") or is still to come (then
    it is not asked); not a phone number: at the contact questions it is the citizen's own.
    Choice answers only when the text says it is a correction (:data:`_CORRECTION_RE`), only
    for questions already answered, and only where exactly one other choice is named without a
    negation before it ("pas la banque" names no choice)."""
    changed: dict[str, Any] = _late_traces(report_type, text or "", answers, asking)
    folded = fold(text or "")
    if not folded or not _CORRECTION_RE.search(folded):
        return changed
    m = model()
    for qid in m.forms[report_type].questions:
        question = m.questions[qid]
        current = answers.get(qid)
        if not current or not question.choices or question.choice(current) is None:
            continue
        named = set()
        for choice in question.choices:
            for cue in choice.cues:
                for match in cue.finditer(folded):
                    if not _NEGATED_BEFORE.search(folded[: match.start()]):
                        named.add(choice.id)
        if len(named) == 1 and current not in named:
            changed[qid] = named.pop()
    return changed
