"""State cues of the real sentences: which words say what state a mentioned object is in.

A *state* is what an object looks like beyond its class: cut (chopped onion), heated (melted butter),
mixed (mashed potato), coated (floured chicken), a colour or variety (green onion, black pepper) or a
compound head (lemon *juice*, sesame *seeds*, tomato *paste*). The lexicon below was written by reading
the YouCook2 sentences; ``workbench.sim.stats`` measures how often each cue occurs.

The parse rules tie a cue to the mention it applies to (tokens as in ``text.objects.tokenize``):

* ``prenominal``: state words directly before the mention (``chopped green onions``), skipping a few
  modifiers (``finely``, ``fresh``, ...);
* ``patient``: the mention follows a state verb in the same verb phrase (``fry the onion``,
  ``peel cut and boil the potatoes``, ``mix corn starch water soy sauce``): from the verb up to the next
  verb, preposition (``in``, ``with``, ``to`` ...) or the end of the sentence;
* ``compound``: the mention is the modifier of a compound head right after it (``lemon juice``,
  ``sesame oil``, ``bread crumbs``); shape heads (``onion rings``, ``potato chunks``) count as cut;
* ``carried``: no cue in the sentence, but one on the same class earlier in the same video
  (``carry_over``).

A mention after ``without`` (``serve without onion``) is *negated*: no cue applies to it. Mentions of
pronoun classes (it / them / that / they) are parsed like any other mention (``fry it``: patient).
A patient of an entry verb (add, pour, put, ...) is marked ``enters``: it may enter the scene
mid-segment.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..text.objects import find_objects, tokenize

PRONOUN_NAMES = ("it", "them", "that", "they")
CONTAINER_NAMES = ("bowl", "pot", "cup", "pan", "lid", "plate", "wok")
KINDS = ("cut", "heat", "mix", "coat", "colour", "compound")
# class groups whose appearances are correlated in world v2 (a class in no group stands alone)
GROUPS = {
    "vessels": "bowl pot cup pan lid plate wok",
    "tools": "oven processor whisk blender paper",
    "meats": "chicken beef bacon pork meat",
    "seafood": "shrimp squid mussel",
    "vegetables": "cabbage carrot lettuce celery cucumber leaves seaweed mushroom",
    "legumes": "bean chickpea corn tofu",
    "alliums": "onion garlic ginger",
    "fruits": "tomato lemon",
    "dairy": "butter milk cream cheese egg",
    "liquids": "oil water wine vinegar sauce soup mustard",
    "powders": "flour salt pepper sugar powder sesame",
    "starches": "potato rice dough noodle pasta bread",
    "mixes": "salad mixture",
}

# pre-nominal state words (participles / adjectives) -> kind
PRENOMINAL: dict[str, str] = {}
for _kind, _words in {
    "cut": "chopped diced sliced minced cut grated shredded crushed halved peeled cubed julienned quartered ground "
           "torn slivered shaved trimmed smashed",
    "heat": "fried boiled cooked melted roasted toasted baked grilled sauteed browned steamed caramelized hot warm "
            "smoked poached blanched seared charred heated simmered",
    "mix": "mixed whisked beaten blended mashed pureed combined whipped creamed kneaded",
    "coat": "coated breaded battered marinated seasoned buttered greased oiled floured glazed dusted",
    "colour": "green red black white yellow purple orange bell spring brown sweet cherry baby dried",
}.items():
    for _w in _words.split():
        PRENOMINAL[_w] = _kind

# state verbs (imperative forms) -> kind
STATE_VERBS: dict[str, str] = {}
for _kind, _words in {
    "cut": "chop dice slice mince cut grate shred crush halve peel cube julienne quarter tear slit trim smash",
    "heat": "fry boil cook melt roast toast bake grill saute sautee brown steam simmer heat sear poach blanch "
            "caramelize microwave char warm deep-fry stir-fry",
    "mix": "mix stir whisk beat blend combine mash knead toss puree whip fold",
    "coat": "coat dip dredge brush spread sprinkle season marinate drizzle rub bread batter grease glaze dust "
            "flour",
}.items():
    for _w in _words.split():
        STATE_VERBS[_w] = _kind

# verbs whose patients are put into the scene (they may enter mid-segment)
ENTRY_VERBS = frozenset("add pour put place drop transfer insert fill top layer arrange".split())
# other verbs: they end a verb phrase, no state
OTHER_VERBS = frozenset("""take remove serve drain set let wash rinse shape stuff wrap flip turn keep use make form
    garnish cool open close break crack wait leave allow repeat prepare squeeze roll press cover fill lay spoon
    scoop move pick bring get cut-off discard scrape pull hold check""".split())
# compound heads right after a mention -> kind (substances: compound; shapes: cut)
COMPOUND_HEADS = {**{w: "compound" for w in "juice paste seeds seed powder crumbs crumb oil sauce puree stock "
                     "broth flakes zest starch leaves water milk cream".split()},
                  **{w: "cut" for w in "slices slice chunks chunk pieces piece strips strip cubes cube wedges "
                     "wedge rings ring halves florets".split()}}
# Compound nouns whose head is itself an object class, which the substance heads above (oil, powder, sauce, ...)
# do not cover: read from the adjacent class pairs of the training sentences (only spaces or a hyphen between).
# Most adjacent pairs are comma-less lists (`salt pepper`, `onion garlic`) and are not here. World v3 gives the
# modifier the head's look (``compound_heads``); the parse of world v2 does not use them.
CLASS_COMPOUNDS = frozenset({("rice", "noodle"), ("rice", "wine"), ("rice", "vinegar"), ("rice", "paper"),
                             ("rice", "flour"), ("corn", "flour"), ("wine", "vinegar"), ("cream", "cheese")})
ANY_MODIFIER_HEADS = frozenset({"mixture"})       # `the egg mixture`, `the flour mixture`: a mixture
# words that end a verb phrase (prepositions, conjunctions of clauses)
BOUNDARIES = frozenset("""in into on onto to with from over under until till for at by inside through across
    around onto while when before after then so as without""".split())
NEGATIONS = frozenset({"without"})
PREPOSITIONS = frozenset("in into on onto to with from over under for at inside through across around onto of "
                         "onto within".split())
# modifiers skipped when looking left of a mention for pre-nominal words / a preposition
MODIFIERS = frozenset("""finely thinly roughly freshly some the a an more remaining little few large small big
    medium fresh whole extra half of same another other this that these those its their your cold thick thin
    long""".split())


@dataclass(frozen=True)
class Cue:
    kind: str        # one of KINDS
    word: str        # the cue word (chopped, fry, juice, ...)
    source: str      # prenominal | patient | compound | carried

    @property
    def state(self) -> str:
        """The state this cue names: the kind, with the word for varieties and compound heads
        (green onion and red onion differ; lemon juice and lemon zest differ)."""
        return f"{self.kind}:{self.word}" if self.kind in ("colour", "compound") else self.kind


@dataclass
class Mention:
    """One object mention of a sentence and the cues that apply to it."""

    class_id: int
    name: str
    tok_span: tuple[int, int]            # [start, end) token indices
    char_span: tuple[int, int]
    cues: list[Cue] = field(default_factory=list)
    negated: bool = False                # follows "without"
    after_preposition: bool = False      # a preposition precedes it (skipping modifiers)
    verb: str = ""                       # governing verb of its verb phrase ("" when none)
    enters: bool = False                 # patient of an entry verb (add, pour, ...)

    @property
    def is_pronoun(self) -> bool:
        return self.name in PRONOUN_NAMES

    @property
    def sentence_cues(self) -> list[Cue]:
        return [c for c in self.cues if c.source != "carried"]

    def start_state(self, carried: bool = True) -> str:
        """The state the sentence says the object has when the segment starts ("" = plain / unknown):
        a compound head, else a pre-nominal word (variety before participle), else a carried cue
        (``carried=False``: what this sentence alone says)."""
        for source in ("compound", "prenominal", "carried") if carried else ("compound", "prenominal"):
            cs = [c for c in self.cues if c.source == source]
            if cs:
                colour = [c for c in cs if c.kind == "colour"]
                return (colour or cs)[0].state
        return ""

    def end_state(self, carried: bool = True) -> str:
        """The state the object reaches in the segment: the state verb's kind when it is a patient
        (a compound head keeps its identity: boiling lemon juice keeps it juice)."""
        patient = [c for c in self.cues if c.source == "patient"]
        if patient and not any(c.source == "compound" for c in self.cues):
            return patient[0].state
        return self.start_state(carried)


def parse_mentions(sentence: str, vocab) -> list[Mention]:
    """Every class mention of ``sentence`` (as ``find_objects`` finds them) with its sentence cues."""
    toks = tokenize(sentence)
    words = [w for w, _, _ in toks]
    start_of = {s: i for i, (_, s, _) in enumerate(toks)}
    end_of = {e: i for i, (_, _, e) in enumerate(toks)}
    mentions: list[Mention] = []
    for o in find_objects(sentence, vocab):
        i, j = start_of[o.char_span[0]], end_of[o.char_span[1]] + 1
        mentions.append(Mention(o.class_id, o.name, (i, j), o.char_span))
    in_mention = {t for m in mentions for t in range(*m.tok_span)}

    # Verb phrases: the governing verb of each token ("" outside a verb phrase) and negation. A word
    # that is both a verb and a pre-nominal word (cut, brown) is a verb only where a verb phrase can
    # start: first in the sentence or after and / then / or / a boundary (``brown the meat`` but
    # ``add brown sugar``).
    verb_of: list[str] = [""] * len(words)
    negated = [False] * len(words)
    is_verb = [False] * len(words)
    current, neg = "", False
    for t, w in enumerate(words):
        verb = t not in in_mention and (w in STATE_VERBS or w in ENTRY_VERBS or w in OTHER_VERBS)
        if verb and w in PRENOMINAL and t > 0 and words[t - 1] not in BOUNDARIES | {"and", "then", "or"}:
            verb = False
        if verb:
            current, neg, is_verb[t] = w, False, True
            continue
        if t not in in_mention and w in BOUNDARIES:
            current, neg = "", w in NEGATIONS
            continue
        verb_of[t], negated[t] = current, neg

    for m in mentions:
        i, j = m.tok_span
        m.negated = negated[i]
        if m.negated:
            continue
        # pre-nominal: walk left over state words and modifiers
        t = i - 1
        while t >= 0 and t not in in_mention and not is_verb[t] and (words[t] in PRENOMINAL or words[t] in MODIFIERS):
            if words[t] in PRENOMINAL:
                m.cues.append(Cue(PRENOMINAL[words[t]], words[t], "prenominal"))
            t -= 1
        m.after_preposition = t >= 0 and words[t] in PREPOSITIONS
        # compound head right after
        if j < len(words) and words[j] in COMPOUND_HEADS:
            m.cues.append(Cue(COMPOUND_HEADS[words[j]], words[j], "compound"))
        # patient of a verb
        m.verb = verb_of[i]
        if m.verb in STATE_VERBS:
            m.cues.append(Cue(STATE_VERBS[m.verb], m.verb, "patient"))
        m.enters = m.verb in ENTRY_VERBS
    return mentions


def carry_over(video_mentions: list[list[Mention]]) -> None:
    """Add ``carried`` cues in place: ``video_mentions`` are the mentions of a video's sentences in
    segment order; a mention without a sentence cue carries the latest state its class reached earlier."""
    last: dict[int, Cue] = {}
    for mentions in video_mentions:
        reached: dict[int, Cue] = {}
        for m in mentions:
            if m.is_pronoun or m.negated:
                continue
            own = m.sentence_cues
            if not own and m.class_id in last:
                c = last[m.class_id]
                m.cues.append(Cue(c.kind, c.word, "carried"))
            if own:
                end = [c for c in own if c.source == "patient"] or own
                reached[m.class_id] = end[0]
        last.update(reached)


def head_word(word: str, vocab) -> str:
    """The name of a compound head: the class's name for any form of a class (``noodles`` -> ``noodle``), else the
    word, the plural of another head made singular (``seeds`` -> ``seed``, ``crumbs`` -> ``crumb``)."""
    if word in vocab.forms:
        return vocab.names[vocab.forms[word]]
    if word.endswith("s") and word[:-1] in COMPOUND_HEADS:
        return word[:-1]
    return word


def compound_heads(mentions: list[Mention], sentence: str, vocab) -> list[str]:
    """Per mention of ``sentence`` (``parse_mentions``), the substance its words name when it modifies a compound
    head ("" none), ``head_word``'s name: a ``compound`` cue of kind compound (``sesame oil``, ``lemon juice``), or
    a class right after it that ``CLASS_COMPOUNDS`` / ``ANY_MODIFIER_HEADS`` names (``rice noodles``, ``egg
    mixture``). A head that is the next mention's class passes on to that mention's own head (``rice wine
    vinegar``: both rice and wine name vinegar). Shape heads (``potato chunks``) are cut states, not substances."""
    heads = [""] * len(mentions)
    for i in range(len(mentions) - 1, -1, -1):
        m = mentions[i]
        nxt = mentions[i + 1] if i + 1 < len(mentions) else None
        touching = nxt is not None and nxt.tok_span[0] == m.tok_span[1]
        cue = next((c for c in m.cues if c.source == "compound" and c.kind == "compound"), None)
        if cue is not None:
            head = head_word(cue.word, vocab)
        elif (touching and not m.negated and not m.is_pronoun and nxt.class_id != m.class_id
              and sentence[m.char_span[1]:nxt.char_span[0]].strip(" -") == ""
              and ((m.name, nxt.name) in CLASS_COMPOUNDS or nxt.name in ANY_MODIFIER_HEADS)):
            head = nxt.name
        else:
            continue
        heads[i] = heads[i + 1] if touching and nxt.name == head and heads[i + 1] else head
    return heads
