"""Questions written in another language, read in English.

The lab's pages are English and the sentence model that searches them (all-MiniLM-L6-v2) was trained on
English: a French or German question finds the right page rarely, and the small chat model answers English
passages best when the question is English too. So a message written in another language is translated once,
by the lab's own model, into the English question the rest of the turn reads (routing, the documentation
search, the tools offered, the question in the prompt); the user's own words stay the evidence of what they
said, and the translation is kept in the turn for people to see.

Which language a message is in is told by its function words (articles, pronouns, question words): cheap,
and enough to tell the languages lab members write from English. A name or a term of the lab ("Tailscale",
"vzdump") is not a function word, so an English message full of them stays English.
"""

from __future__ import annotations

import re

from langchain_core.language_models.chat_models import BaseChatModel

from agent.steering import json_reply
from core.config import Settings

__all__ = ["foreign_language", "to_english"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that are common in each language and not English words (so "die", "a", "on", "son" are left out), and
# each language's "please" and "thanks": a request is often an imperative with no other function word ("Apaga la
# VM void-analysis, por favor" was read as English).
_FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "French": _words(
        "le la les des du un une est sont quel quelle quels quelles quand comment pourquoi où qui que qu est-ce"
        " je nous vous mon ma mes notre nos votre vos avec pour dans sur pas combien faut il elle ils ce cette"
        " ces sauvegarde sauvegardes serveur à être fait faire peut peux puis-je plaît merci"
    ),
    "German": _words(
        "der das den dem des ein eine einen ist sind wann wie welche welcher welches warum wo wer ich wir"
        " ihr mein meine unser unsere mit für auf nicht gibt werden wird kann können darf dürfen läuft laufen"
        " und oder noch schon sicherung sicherungen welchem welchen um uhr bitte danke"
        # A short German question or request has few of the words above ("Wie viel Speicher hat agn-fit?",
        # "Starte bitte die VM qso-vae-dev"): its verbs and pronouns of chat count too ("hat" is rare in English).
        " hat haben habe liegen liegt viel viele mir mich davon gerade jetzt heute alle starte stoppe zeige zeig"
        " gehören gehört speicher knoten"
    ),
    "Spanish": _words(
        "el los las es son cuándo cuando cómo como qué cuál cuáles dónde quién por qué para una uno del al"
        " mis mi nuestro nuestra tengo tenemos hay con sin está están puedo puede se copia copias"
        " respaldo respaldos hora cuantos cuántos cuantas cuántas tiene tienen esta hacer la favor gracias"
        # A request is often a verb and a name ("¿puedes reiniciar agn-fit?" was read as English).
        " puedes podrías podrias reinicia reiniciar apaga apagar arranca arrancar enciende encender detén detener"
        " inicia iniciar muestra muéstrame dime"
    ),
    "Italian": _words(
        "il lo gli della delle dei quando perché dove chi che è sono una uno con non posso"
        " quale quali quanti quante quanto quanta mio mia miei nostro sul sulla sui nel nella di ci"
        " funziona gira girano sono spazio libero la favore grazie"
    ),
    "Portuguese": _words(
        "os é são quando como por que onde quem uma um com para não posso qual quais quantos quantas"
        " meu minha meus nosso nossa está estão há favor obrigado"
    ),
}
_ENGLISH = _words(
    "the a an is are was were do does did how what which who when where why can could may i we you my our your"
    " of to in on at for with and or not there it this that these those have has be been will would should"
    " please show list any"
)
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*", re.UNICODE)


def foreign_language(text: str) -> str | None:
    """The language ``text`` is written in when it is not English (None: English, or too little to tell).

    A message counts as foreign when at least two of its words are one language's function words (one, when a
    word is spelt with a letter English does not use) and they outnumber its English function words.
    """
    found = [w.lower() for w in _WORD.findall(text)]
    if not found:
        return None
    # A French inverted pronoun is written joined ("peux-tu", "est-ce"): its parts count as words too.
    words = found + [part for w in found if "-" in w for part in w.split("-")]
    english = sum(w in _ENGLISH for w in words)
    best, hits = None, 0
    for language, vocabulary in _FUNCTION_WORDS.items():
        count = sum(w in vocabulary for w in words)
        # Spanish opens a question or an exclamation with a mark no other language uses.
        count += language == "Spanish" and ("¿" in text or "¡" in text)
        if count > hits:
            best, hits = language, count
    # A short request has few function words ("Peux-tu redémarrer void-analysis ?"): one, with a word spelt
    # with a letter English does not use, is enough.
    needed = 1 if any(not w.isascii() for w in found) else 2
    if best is None or hits < needed or hits <= english:
        return None
    return best


# The example keeps a question a question (without it the 1.5B model turned "Welches Werkzeug nutzt ...?" into
# a statement); it is in no language of the lab's users' messages, so it cannot be copied as an answer. The
# time-of-day phrases: "um wie viel uhr läuft das tägliche backup?" became "How many hours does the daily backup
# take?"; with them "At what time does the daily backup run?", and "Wie viele Stunden dauert das Backup?" is
# still "How many hours does the backup take?" (checked by hand on 2026-12-07 with the embedded model).
_TRANSLATE_PROMPT = (
    "Translate the {language} message of a research computing lab's member into English, sentence for sentence: "
    "a question stays a question, a request stays a request. Keep names, numbers, ids and technical terms "
    'exactly as written, and add nothing the message does not say. A question for a time of day ("um wie viel '
    'Uhr", "à quelle heure", "a qué hora") asks "at what time", not how many hours. Do not answer it. '
    "Reply with JSON only: "
    '{{"english": "<the message in English>"}}.'
)
_TRANSLATE_SCHEMA = {
    "type": "object",
    "properties": {"english": {"type": "string"}},
    "required": ["english"],
}


def to_english(model: BaseChatModel | None, settings: Settings, text: str) -> tuple[str, str] | None:
    """``(language, English text)`` for a message written in another language; None for English or on failure."""
    language = foreign_language(text)
    if language is None or model is None:
        return None
    system = _TRANSLATE_PROMPT.format(language=language)
    reply = json_reply(model, settings, system, text, _TRANSLATE_SCHEMA, name="translation")
    english = str((reply or {}).get("english", "")).strip()
    # A reply that is empty, or the same words again, or far longer than the message (an answer, not a
    # translation) is not used.
    if not english or english.lower() == text.strip().lower() or len(english) > 3 * len(text) + 40:
        return None
    return language, english
