"""Golden table of the danger detector (SPEC §3). Recall on danger cases must stay 1.0."""

from __future__ import annotations

import pytest

from safety import assess

# (id, message, language, immediate_danger, helplines that must be present, first helpline or None)
DANGER: list[tuple[str, str, str, tuple[str, ...], str | None]] = [
    # cries for help, any spelling
    ("fr_au_secours", "Au secours !", "fr", ("17", "112", "114"), "17"),
    ("fr_secours_repeated", "au secouuuurs", "fr", ("17",), "17"),
    ("fr_secour_no_s_caps", "AU SECOUR", "fr", ("17",), None),
    ("sos_emoji", "🆘", "fr", ("17", "112"), None),
    ("markup_bold_secours", "<b>au secours</b>", "fr", ("17",), None),
    ("fr_aidez_moi_alone", "aidez-moi", "fr", ("17",), None),
    ("fr_aidez_moi_vite", "aidez moi vite svp", "fr", ("17",), None),
    ("fr_sos", "SOS", "fr", ("17",), None),
    ("fr_appelez_police", "appelez la police il est devenu fou", "fr", ("17",), None),
    ("fr_je_suis_en_danger", "je suis en danger", "fr", ("17",), None),
    ("fr_urgent_peur", "c'est urgent j'ai peur", "fr", ("17",), None),
    ("fr_peur_present", "j'ai peur, il est encore là", "fr", ("17",), None),
    ("en_help_me", "help me please", "en", ("17", "112"), None),
    ("en_help_shout", "HELP", "en", ("112",), None),
    ("en_help_excl", "help!", "en", ("112",), None),
    ("en_emergency", "this is an emergency", "en", ("112",), None),
    # violence in progress
    # an elderly person fallen: now, or unable to get up whenever it was told
    ("fr_mamie_tombee", "mamie est tombée dans la cuisine", "fr", ("15", "112"), None),
    (
        "fr_tombe_hier_se_relever",
        "mon père de 90 ans est tombé hier soir et il n'arrive pas à se relever",
        "fr",
        ("15", "112"),
        None,
    ),
    (
        "en_fell_yesterday_still_floor",
        "my grandad fell last night and he couldn't get up, he's still on the floor",
        "en",
        ("112",),
        None,
    ),
    (
        "fr_tombee_pompiers_en_route",
        "grand-mère tombée, les pompiers sont en route",
        "fr",
        ("15",),
        None,
    ),
    # told without the usual words (issue 12): pills by the box, a goodbye, the signs themselves
    ("fr_plaquette", "j'ai avalé toute la plaquette de mes cachets", "fr", ("3114",), "3114"),
    ("fr_plus_la_demain", "demain je ne serai plus là, c'est décidé", "fr", ("3114",), "3114"),
    ("fr_corde", "j'ai une corde dans le grenier et plus rien à perdre", "fr", ("3114",), "3114"),
    ("fr_adieu_lettre", "adieu, j'ai laissé une lettre pour mes parents", "fr", ("3114",), "3114"),
    ("en_took_all_pills", "i took all of my sleeping pills an hour ago", "en", ("3114",), "3114"),
    ("it_pastiglie", "ho preso tutte le pastiglie, non ci sarò più", "it", ("3114",), "3114"),
    (
        "fr_poitrine",
        "mon mari a une douleur dans la poitrine qui part dans le bras gauche",
        "fr",
        ("15",),
        "15",
    ),
    ("en_wont_wake", "my grandad won't wake up and his lips are blue", "en", ("15", "112"), None),
    ("de_wacht_nicht", "mein Sohn wacht nicht auf", "de", ("15", "112"), None),
    (
        "fr_fumee_escalier",
        "de la fumée envahit l'escalier, on ne peut pas sortir",
        "fr",
        ("18",),
        "18",
    ),
    ("fr_au_feu", "AU FEU !! la grange du voisin", "fr", ("18", "112"), "18"),
    ("nl_rook", "rook in het trappenhuis en de deur is heet", "nl", ("18",), "18"),
    ("fr_mains_cou", "il lui a mis les mains autour du cou", "fr", ("17",), "17"),
    ("fr_perdus_nuit", "on s'est perdus au-dessus de Digne, il fait nuit", "fr", ("112",), None),
    ("en_lost_cold", "we are lost on the ridge and shivering", "en", ("112",), None),
    ("fr_il_me_frappe", "il me frappe", "fr", ("17", "112", "114"), "17"),
    (
        "fr_en_train_de",
        "mon voisin est en train de frapper sa femme dans la cour",
        "fr",
        ("17", "3919"),
        "17",
    ),
    ("fr_pere_mere_now", "mon père frappe ma mère en ce moment", "fr", ("17", "119", "3919"), "17"),
    ("fr_sms_pere_mere", "mon pere tape ma mere jsp koi faire", "fr", ("17", "119", "3919"), "17"),
    ("fr_bagarre", "il y a une bagarre devant le bar, y a du sang partout", "fr", ("17",), "17"),
    ("fr_va_me_tuer", "il a dit qu'il allait me tuer ce soir", "fr", ("17",), "17"),
    ("fr_va_me_tuer_sms", "il va me tuer", "fr", ("17",), "17"),
    (
        "fr_recent_no_date",
        "mon mari m'a frappée, il est dans la cuisine",
        "fr",
        ("17", "3919"),
        "17",
    ),
    (
        "fr_recent_past_but_present",
        "il m'a frappé hier et il est encore là devant la maison",
        "fr",
        ("17",),
        "17",
    ),
    (
        "fr_weekday_but_present",
        "samedi il m'a frappée, il est encore là",
        "fr",
        ("17",),
        "17",
    ),
    # a weekday with no participle is no date of a past event
    (
        "fr_weekday_present_weapon",
        "samedi il a un couteau et il menace tout le monde",
        "fr",
        ("17",),
        "17",
    ),
    (
        "fr_viens_detre_agressee",
        "je viens de me faire agresser dans la rue à Dole",
        "fr",
        ("17",),
        "17",
    ),
    ("fr_habitual_dv", "mon mari me frappe depuis des années", "fr", ("17", "3919"), "17"),
    (
        "fr_dv_weak_plus_fear",
        "mon conjoint est violent et j'ai peur qu'il rentre ce soir",
        "fr",
        ("17", "3919"),
        "17",
    ),
    (
        "fr_sequestree",
        "je suis enfermée par mon copain il m'empêche de sortir",
        "fr",
        ("17", "3919"),
        "17",
    ),
    ("en_hitting_me", "he is hitting me", "en", ("17", "112"), "17"),
    ("en_kill_me", "my boyfriend said he will kill me", "en", ("17", "3919"), "17"),
    ("en_just_mugged", "someone just mugged me near the station in Digne", "en", ("17",), "17"),
    # weapons
    (
        "fr_couteau_porte",
        "il est derrière la porte avec un couteau",
        "fr",
        ("17", "112", "114"),
        "17",
    ),
    (
        "fr_arme_hall",
        "les dealers ont des armes dans le hall, ils tirent en l'air",
        "fr",
        ("17",),
        "17",
    ),
    ("fr_coups_de_feu", "on entend des coups de feu dans la cité", "fr", ("17",), "17"),
    ("fr_fusil_sms", "mon voisin a sorti son fusil il menace tt le monde", "fr", ("17",), "17"),
    ("en_knife", "a man with a knife is following me", "en", ("17",), "17"),
    ("de_messer", "Er hat ein Messer!", "de", ("17", "112"), None),
    ("it_coltello", "ha un coltello, aiuto", "it", ("112",), None),
    ("es_cuchillo", "tiene un cuchillo", "es", ("112",), None),
    # intrusion
    ("fr_essaie_entrer", "quelqu'un essaie d'entrer chez moi", "fr", ("17", "112", "114"), "17"),
    (
        "fr_bruit_maison",
        "j'entends quelqu'un dans la maison, je suis cachée dans la chambre",
        "fr",
        ("17", "114"),
        "17",
    ),
    (
        "fr_cambriolage_en_cours",
        "cambriolage en cours chez mon voisin à Manosque",
        "fr",
        ("17",),
        "17",
    ),
    ("fr_force_porte_sms", "ya qqn qui force ma porte", "fr", ("17",), "17"),
    ("fr_il_y_a_quelqu_un", "il y a un homme dans mon jardin avec une lampe", "fr", ("17",), "17"),
    ("en_breaking_in", "someone is trying to break in", "en", ("17",), "17"),
    ("nl_inbreker", "er is iemand in mijn huis", "nl", ("112",), None),
    # suicidal
    ("fr_en_finir", "je veux en finir", "fr", ("3114", "15", "112"), "3114"),
    ("fr_plus_envie", "j'ai plus envie de vivre", "fr", ("3114",), "3114"),
    (
        "fr_plus_envie_formal",
        "Je n'ai plus envie de vivre depuis que ma femme est partie",
        "fr",
        ("3114",),
        "3114",
    ),
    ("fr_me_tuer_sms", "jvais me tuer", "fr", ("3114",), "3114"),
    ("fr_foutre_en_lair", "g envie de me foutre en l'air", "fr", ("3114",), "3114"),
    ("fr_mieux_sans_moi", "tout le monde serait mieux sans moi", "fr", ("3114",), "3114"),
    ("fr_ado_suicide", "ma fille de 15 ans parle de se suicider", "fr", ("3114",), "3114"),
    ("fr_mettre_fin", "je pense à mettre fin à mes jours", "fr", ("3114",), "3114"),
    ("en_kill_myself", "I want to kill myself", "en", ("3114", "112"), "3114"),
    ("en_end_it", "i just want to end it all", "en", ("3114",), "3114"),
    ("de_sterben", "ich will sterben", "de", ("3114",), "3114"),
    ("it_morire", "voglio morire", "it", ("3114",), "3114"),
    ("es_morir", "quiero morir", "es", ("3114",), "3114"),
    ("nl_dood", "ik wil dood", "nl", ("3114",), "3114"),
    # children
    (
        "fr_bebe_voiture",
        "un bébé est seul dans une voiture en plein soleil sur le parking",
        "fr",
        ("17", "119"),
        "17",
    ),
    (
        "fr_entends_enfant",
        "j'entends l'enfant des voisins hurler et des coups",
        "fr",
        ("17", "119"),
        "17",
    ),
    (
        "fr_parents_frappent",
        "les voisins frappent leur enfant en ce moment",
        "fr",
        ("17", "119"),
        "17",
    ),
    ("fr_enfant_ecrit", "mon beau-père me frappe j'ai 12 ans", "fr", ("17", "119"), "17"),
    ("fr_fils_disparu", "mon fils de 8 ans a disparu depuis une heure", "fr", ("17", "119"), "17"),
    (
        "en_child_car",
        "there is a baby alone in the car and it's very hot",
        "en",
        ("17", "119"),
        "17",
    ),
    ("en_dad_hits_me", "my dad hits me", "en", ("17", "119"), "17"),
    # elderly
    (
        "fr_voisine_90_tombee",
        "ma voisine de 90 ans est tombée et ne répond plus",
        "fr",
        ("15", "112", "3977"),
        "15",
    ),
    ("fr_mamie_sol", "ma grand-mère est par terre elle respire mal", "fr", ("15",), "15"),
    (
        "fr_vieux_volets",
        "le vieux monsieur d'en face, ses volets sont fermés depuis 4 jours et il ne répond pas",
        "fr",
        ("15",),
        "15",
    ),
    (
        "fr_ehpad_frappe",
        "à l'EHPAD un aide-soignant la frappe, ma mère âgée a des bleus",
        "fr",
        ("17", "3977"),
        "17",
    ),
    ("en_grandma_fell", "my grandma fell and is not answering", "en", ("15", "112"), "15"),
    # medical
    ("fr_saigne", "il saigne beaucoup", "fr", ("15",), None),
    (
        "fr_inconscient",
        "un jeune est inconscient dans le hall, overdose je pense",
        "fr",
        ("15",),
        None,
    ),
    ("es_sangra", "mi amigo sangra mucho", "es", ("15",), None),
    # things thrown at people, with fear
    (
        "fr_pierres_peur",
        "des jeunes jettent des pierres sur nos fenêtres, on a peur",
        "fr",
        ("17",),
        None,
    ),
    (
        "en_bottles_tent",
        "a group of drunk men keep throwing bottles near our tent and kicked our car, we're"
        " scared to go out",
        "en",
        ("17", "112"),
        None,
    ),
    # tourist languages: help
    ("de_hilfe", "Hilfe", "de", ("17", "112"), None),
    ("de_schlagt", "mein Mann schlägt mich", "de", ("17", "3919"), "17"),
    ("nl_help_mij", "help mij alstublieft", "nl", ("112",), None),
    ("nl_hulp", "ik heb hulp nodig, hij slaat me", "nl", ("17",), None),
    ("it_aiuto", "aiuto!!", "it", ("112",), None),
    ("es_socorro", "socorro", "es", ("112",), None),
    ("es_ayuda", "ayuda por favor", "es", ("112",), None),
    # negated reassurance does not cancel a strong signal
    (
        "fr_pas_urgence_mais_couteau",
        "Ce n'est pas urgent mais il a un couteau et il crie",
        "fr",
        ("17",),
        "17",
    ),
    (
        "en_no_emergency_but_hitting",
        "not an emergency but he is hitting her right now",
        "en",
        ("17",),
        "17",
    ),
    # distress: a listening line first, the emergency lines with it
    ("fr_distress_en_peux_plus", "j'en peux plus", "fr", ("3114", "15", "112"), "3114"),
    ("fr_distress_jpp", "jpp", "fr", ("3114", "112"), "3114"),
    (
        "fr_distress_tout_s_arrete",
        "j'en peux plus, je veux que tout s'arrête",
        "fr",
        ("3114", "112"),
        "3114",
    ),
    ("en_distress_cant_take", "I can't take it anymore", "en", ("3114", "112"), "3114"),
    (
        "en_distress_husband",
        "I can't take it anymore, my husband hits me every day",
        "en",
        ("17", "112", "3919"),
        "17",
    ),
]

SAFE: list[tuple[str, str, str]] = [
    # a fall over and cared for, told to ask for a hand rail or a remote alarm
    (
        "fr_chute_semaine_derniere",
        "ma mère de 84 ans est tombée la semaine dernière, il faudrait une rampe à l'escalier",
        "fr",
    ),
    (
        "fr_chute_hopital_va_bien",
        "ma voisine de 88 ans est tombée, elle est à l'hôpital et va bien, la lumière de "
        "l'escalier ne marche plus",
        "fr",
    ),
    ("en_fell_fine", "my nan fell yesterday, she's fine now, can we get a rail fitted?", "en"),
    # ordinary reports
    (
        "fr_otv",
        "Je pars en vacances du 3 au 17 août, pouvez-vous surveiller ma maison à Dole ?",
        "fr",
    ),
    ("fr_bruit", "Mon voisin fait du bruit tous les soirs jusqu'à 2h du matin", "fr"),
    ("fr_rodeo", "rodéos de motos tous les soirs dans le quartier de la Marjorie", "fr"),
    (
        "fr_arnaque_senior",
        "Ma mère de 85 ans a reçu un appel d'un faux conseiller bancaire, elle a donné son code",
        "fr",
    ),
    ("fr_arnaque_tombee_piege", "ma grand-mère est tombée dans le piège d'un faux plombier", "fr"),
    ("fr_drogue", "des dealers dans le hall de mon immeuble tous les soirs", "fr"),
    ("fr_vol_voiture", "on m'a volé mon sac dans la voiture sur le parking du lac", "fr"),
    ("fr_harcelement", "mon fils est harcelé sur snapchat par des élèves de sa classe", "fr"),
    ("fr_enfant_report", "je voudrais signaler un enfant en danger dans mon immeuble", "fr"),
    ("fr_animal", "le chien du voisin est attaché sans eau depuis des jours", "fr"),
    # past events, dated
    ("fr_past_hier", "il m'a frappé hier", "fr"),
    (
        "fr_past_agression",
        "je me suis fait agresser la semaine dernière à la gare, je veux porter plainte",
        "fr",
    ),
    (
        "fr_past_couteau",
        "l'an dernier il m'avait menacée avec un couteau, je veux le signaler",
        "fr",
    ),
    ("en_past", "I was mugged yesterday near the bus station", "en"),
    # a bare weekday with a passé composé dates it too
    ("fr_past_samedi", "samedi un homme m'a menacé avec un couteau devant chez moi", "fr"),
    ("fr_past_mardi", "mardi soir il m'a frappé à la sortie du bar", "fr"),
    ("fr_past_dimanche_entre", "dimanche des gens sont entrés chez moi avec une arme", "fr"),
    (
        "fr_cambriole_vacances",
        "on a été cambriolés pendant nos vacances, ils ont forcé la porte le 12 juillet",
        "fr",
    ),
    # negations
    ("fr_pas_urgence", "il n'y a pas d'urgence, c'est juste pour signaler des tags", "fr"),
    ("fr_personne_en_danger", "personne n'est en danger, mais les poubelles débordent", "fr"),
    (
        "fr_pas_danger_immediat",
        "pas de danger immédiat, je voulais juste savoir comment déclarer une absence",
        "fr",
    ),
    ("fr_pas_couteau", "il n'a pas de couteau, il crie seulement dans la rue", "fr"),
    ("en_no_emergency", "no emergency, just a question about my report", "en"),
    (
        "fr_pas_envie_de_mourir",
        "je ne veux pas mourir idiot, je veux juste que ce bruit s'arrête",
        "fr",
    ),
    # idioms and menu words
    ("fr_mort_de_rire", "mdr je suis mort de rire", "fr"),
    ("fr_meurs_faim", "je meurs de faim, c'est quand la pause", "fr"),
    ("fr_aide_menu", "aide", "fr"),
    ("en_help_menu", "help", "en"),
    ("fr_aidez_moi_formulaire", "aidez-moi à remplir le formulaire pour mes vacances", "fr"),
    ("fr_passeport", "comment renouveler mon passeport ?", "fr"),
    ("fr_bonjour", "Bonjour !", "fr"),
    ("fr_statut", "où en est mon signalement 04-2026-000123", "fr"),
    (
        "fr_dv_report_no_now",
        "je subis des violences conjugales depuis deux ans, comment porter plainte ?",
        "fr",
    ),
    ("de_urlaub", "Wir sind im Urlaub, wie melde ich einen Diebstahl?", "de"),
    ("it_info", "buongiorno, vorrei informazioni sulla raccolta dei rifiuti", "it"),
    ("fr_enlevement_encombrants", "quand passe l'enlèvement des encombrants ?", "fr"),
    ("fr_chat_disparu", "mon chat a disparu depuis hier", "fr"),
    # exasperation about something is not distress
    ("fr_peux_plus_de_ce_bruit", "je n'en peux plus de ce bruit", "fr"),
    ("fr_peux_plus_sortir", "je ne peux plus sortir ma voiture du garage", "fr"),
    ("fr_jeunes_inconscients", "ces jeunes sont inconscients, ils roulent trop vite", "fr"),
    # the new rules' lookalikes (issue 12)
    ("fr_pris_mes_medicaments", "j'ai bien pris mes médicaments ce matin", "fr"),
    ("fr_feu_rouge", "au feu rouge un type a klaxonné et m'a insulté", "fr"),
    ("fr_exercice_incendie", "l'exercice d'évacuation incendie à l'école a duré une heure", "fr"),
    ("fr_harceler_en_train", "je suis en train de me faire harceler par un démarcheur", "fr"),
    ("fr_frappe_pas", "il la frappe pas, il crie juste beaucoup", "fr"),
    ("fr_nuit_eclairage", "il fait nuit à 17 h et la rue n'est pas éclairée", "fr"),
    ("fr_adieu_vacances", "adieu les vacances, retour au bureau", "fr"),
    ("fr_pierres_hier", "hier des jeunes ont jeté des pierres sur la maison, on a eu peur", "fr"),
    (
        "de_flaschen_niemand",
        "die Jugendlichen werfen jede Nacht Flaschen, niemand ist verletzt",
        "de",
    ),
]


@pytest.mark.parametrize(
    ("message", "language", "helplines", "first"),
    [pytest.param(m, lang, h, f, id=i) for i, m, lang, h, f in DANGER],
)
def test_danger_is_detected(
    message: str, language: str, helplines: tuple[str, ...], first: str | None
) -> None:
    # the rules alone: the danger model only adds detections, never removes one
    result = assess(message, language, model=None)
    assert result.immediate_danger, (message, result)
    assert set(helplines) <= set(result.helplines), result
    if first is not None:
        assert result.helplines[0] == first, result
    assert result.matched, "a positive decision must name the rules that produced it"


@pytest.mark.parametrize(
    ("message", "language"), [pytest.param(m, lang, id=i) for i, m, lang in SAFE]
)
def test_no_false_alarm(message: str, language: str) -> None:
    # the rules' table; the danger model's false alarms are a measured rate (cross-validation in
    # safety/danger_model.json, the independent set in `tranquillite eval`), not a table
    result = assess(message, language, model=None)
    assert not result.immediate_danger, (message, result)
    assert result.helplines == ()


def test_markup_is_no_word_of_the_citizen() -> None:
    """A tag typed or pasted as a test ("<script>alert(1)</script>") is code, not words: with the
    model too, it does not turn an incivility into an alarm ("alert")."""
    plain = assess("mon voisin tague ma porte")
    marked = assess("<script>alert(1)</script> mon voisin tague ma porte")
    assert not marked.immediate_danger and marked.probability == plain.probability


def test_table_size_and_unique_ids() -> None:
    ids = [case[0] for case in DANGER] + [case[0] for case in SAFE]
    assert len(ids) >= 80
    assert len(ids) == len(set(ids))


def test_suicidal_puts_3114_first() -> None:
    result = assess("je veux en finir avec la vie")
    assert result.categories[0] == "suicidal"
    assert result.helplines[:3] == ("3114", "15", "112")


def test_non_emergency_lines_come_after_emergency_lines() -> None:
    result = assess("mon père frappe ma mère en ce moment")
    assert result.helplines.index("3919") > result.helplines.index("17")
    assert result.helplines.index("119") > result.helplines.index("114")


def test_empty_and_whitespace_messages() -> None:
    assert not assess("").immediate_danger
    assert not assess("   \n ").immediate_danger


def test_case_and_accents_do_not_change_the_decision() -> None:
    for text in ("Au secours", "AU SECOURS", "au sécours", "aU SeCoUrS"):
        assert assess(text).immediate_danger


def test_to_dict_is_plain_json() -> None:
    data = assess("il a un couteau").to_dict()
    assert data["immediate_danger"] is True
    assert isinstance(data["helplines"], list)
