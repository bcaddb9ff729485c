"""Synthetic catalog text for adapter tests and benchmarks: English-looking works, planted copies, paraphrases.

Deterministic for a seed. The vocabulary is real English, so an embedding model sees ordinary sentences.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


NOUNS = _words(
    "river stone garden harbor letter window orchard lantern meadow candle forest ocean valley mountain bridge "
    "village castle island desert station library market kitchen tower cottage engine rocket violin painter "
    "sailor farmer doctor teacher soldier merchant child mother father sister brother friend stranger king "
    "queen captain poet dancer horse falcon wolf sparrow salmon tiger raven dragon mirror compass journal "
    "blanket ladder basket hammer feather shadow thunder morning evening winter summer autumn spring"
)
VERBS = _words(
    "finds carries watches remembers paints follows builds crosses guards opens closes answers greets hides "
    "chases mends sells buys writes reads breaks lifts pulls throws catches drops counts seeks forgets"
)
ADJECTIVES = _words(
    "quiet golden broken ancient gentle bitter silver hollow distant crooked bright narrow heavy curious "
    "patient restless tired careful clever silent wild frozen burning hidden empty crowded lonely proud"
)
PLACES = _words("near beside beyond under above behind across inside")

# Word -> a different word of the same class, for paraphrases (a fixed derangement of each list).
SYNONYMS = {words[i]: words[(i + 7) % len(words)] for words in (NOUNS, VERBS, ADJECTIVES) for i in range(len(words))}
BOILERPLATE = "all rights reserved by the author and the publisher of this edition"  # 12 words


def sentence(rng: random.Random) -> str:
    return (
        f"The {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(VERBS)} the {rng.choice(ADJECTIVES)} "
        f"{rng.choice(NOUNS)} {rng.choice(PLACES)} the {rng.choice(NOUNS)}."
    )


def make_texts(n: int, *, seed: int = 0, sentences: tuple[int, int] = (6, 14), boilerplate_every: int = 0) -> list[str]:
    """``n`` distinct works of a few sentences each; every ``boilerplate_every``-th one ends with BOILERPLATE."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        body = " ".join(sentence(rng) for _ in range(rng.randint(*sentences)))
        if boilerplate_every and i % boilerplate_every == 0:
            body += " " + BOILERPLATE.capitalize() + "."
        texts.append(body)
    return texts


OPENINGS = ("Long ago, the narrator recalled:", "As the old tale goes,", "Listen closely, children:")
CLOSINGS = ("So ends this tale.", "Nobody knows what came next.", "That is all, my dears.")


def frame(copied: str, rng: random.Random) -> str:
    """``copied`` between an opening and a closing that share no word with the works (so the copy cannot grow)."""
    return f"{rng.choice(OPENINGS)} {copied} {rng.choice(CLOSINGS)}"


@dataclass(frozen=True)
class Planted:
    generation: str
    source_index: int
    copied: str  # the copied words exactly as they appear in the generation ("" for a paraphrase)


def plant_copy(texts: list[str], source_index: int, n_words: int, rng: random.Random) -> Planted:
    """A generation with ``n_words`` consecutive words of a work inside fresh sentences."""
    words = texts[source_index].split()
    start = rng.randint(0, max(0, len(words) - n_words))
    copied = " ".join(words[start : start + n_words])
    return Planted(generation=frame(copied, rng), source_index=source_index, copied=copied)


def near_copy(texts: list[str], source_index: int, n_words: int, n_edits: int, rng: random.Random) -> Planted:
    """A planted copy with ``n_edits`` single-word edits (substitution, insertion or deletion), spread out."""
    words = texts[source_index].split()
    start = rng.randint(0, max(0, len(words) - n_words))
    span = words[start : start + n_words]
    step = max(1, len(span) // (n_edits + 1))
    for e in range(n_edits, 0, -1):  # from the end, so earlier positions stay valid
        pos = min(len(span) - 1, e * step)
        op = rng.choice(("sub", "ins", "del"))
        if op == "sub":
            span[pos] = SYNONYMS.get(span[pos].lower(), "indeed")
        elif op == "ins":
            span.insert(pos, rng.choice(ADJECTIVES))
        else:
            del span[pos]
    copied = " ".join(span)
    return Planted(generation=frame(copied, rng), source_index=source_index, copied=copied)


def paraphrase(texts: list[str], source_index: int, n_words: int, rng: random.Random) -> Planted:
    """The same span reworded: about every other content word swapped for another, sentences reordered."""
    words = texts[source_index].split()
    start = rng.randint(0, max(0, len(words) - n_words))
    span = words[start : start + n_words]
    out = []
    for i, word in enumerate(span):
        key = word.lower().strip(".")
        if key in SYNONYMS and (i % 2 == 0 or rng.random() < 0.5):
            out.append(SYNONYMS[key] + ("." if word.endswith(".") else ""))
        else:
            out.append(word)
    text = " ".join(out)
    parts = [p.strip() for p in text.split(".") if p.strip()]
    rng.shuffle(parts)
    return Planted(generation=". ".join(parts) + ".", source_index=source_index, copied="")
