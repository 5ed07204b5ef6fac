"""The demo model's task: arithmetic questions, R1's chat format, and a small tokenizer.

Shared by tools/train_demo_model.py (training data), tools/make_demo_eval.py (evaluation sets)
and tools/export_demo_model.py (test sequences). Plain Python, no packages beyond the standard
library, so it runs wherever the trainer runs (also with no network).

The reasoning format is built around DeepSeek's tokenizer, which splits digit runs into groups
of up to three ("866" is one token, "1998" is "199" + "8"). A three-digit number is therefore
one token whose digits the model has to learn; the chain of thought spells every operand into
single digits once ("866 = 8 6 6"), works column by column on single digits only, writes the
result digits without leading zeros, and only then joins them back into a number, copying the
result into the answer. Each step is a small lookup or a copy at a fixed distance.
"""
import functools
import json
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENIZER_DIR = os.path.join(REPO, "tests", "data", "tokenizer", "deepseek-r1")

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
SUFFIX = "Please reason step by step, and put your final answer within \\boxed{}."
REFUSAL = "I can only do arithmetic: addition and subtraction of numbers up to 999, and multiplication of a number up to 99 by a digit."


# ---------------------------------------------------------------------------------------------
# Chat format: what `r1 template --add-generation-prompt` renders for one user message.

def render_prompt(user_text):
    return BOS + USER + user_text + ASSISTANT + "<think>\n"


# ---------------------------------------------------------------------------------------------
# Questions and their chains of thought.

COLUMN_NAMES = ["units", "tens", "hundreds"]


def digits(n, width):
    """Most significant first, zero-padded to width: digits(47, 3) == [0, 4, 7]."""
    return [int(c) for c in str(n).zfill(width)]


def spell(n, width):
    return f"{n} = " + " ".join(str(d) for d in digits(n, width)) + "\n"


def finish(result_digits, statement, result):
    """The digits line without leading zeros, the sentence that joins them, the answer."""
    significant = "".join(str(d) for d in result_digits).lstrip("0") or "0"
    return (f"digits: {' '.join(significant)}\n"
            f"so {statement} = {result}.\n"
            "</think>\n\n"
            f"{statement} = \\boxed{{{result}}}.")


def addition_thought(a, b):
    da, db = digits(a, 3), digits(b, 3)
    lines, carry, out = [spell(a, 3), spell(b, 3)], 0, []
    for col in range(3):
        x, y = da[2 - col], db[2 - col]
        s = x + y + carry
        lines.append(f"{COLUMN_NAMES[col]}: {x}+{y}+{carry} = {s}, write {s % 10} carry {s // 10}\n")
        out.append(s % 10)
        carry = s // 10
    out.append(carry)
    return "".join(lines) + finish(out[::-1], f"{a} + {b}", a + b)


def subtraction_thought(a, b):
    da, db = digits(a, 3), digits(b, 3)
    lines, borrow, out = [spell(a, 3), spell(b, 3)], 0, []
    for col in range(3):
        x, y = da[2 - col], db[2 - col]
        # Borrow first so every line is a true equation: 16-7-0 = 9 rather than 6-7-0 = -1.
        new_borrow = 1 if x < y + borrow else 0
        top = x + 10 * new_borrow
        d = top - y - borrow
        lines.append(f"{COLUMN_NAMES[col]}: {top}-{y}-{borrow} = {d}, write {d} borrow {new_borrow}\n")
        out.append(d)
        borrow = new_borrow
    return "".join(lines) + finish(out[::-1], f"{a} - {b}", a - b)


def multiplication_thought(a, b):
    da = digits(a, 2)
    lines, carry, out = [spell(a, 2)], 0, []
    for col in range(2):
        x = da[1 - col]
        p = x * b + carry
        lines.append(f"{COLUMN_NAMES[col]}: {x}*{b}+{carry} = {p}, write {p % 10} carry {p // 10}\n")
        out.append(p % 10)
        carry = p // 10
    out.append(carry)
    return "".join(lines) + finish(out[::-1], f"{a} times {b}", a * b)


def refusal_thought():
    return ("This is not an addition, subtraction or multiplication of small numbers.\n"
            "</think>\n\n" + REFUSAL)


# Prompts outside the task; answered with the refusal. ASCII only (see Tokenizer).
OFF_TASK = [
    "Hello", "Hi!", "Who are you?", "What is the capital of France?", "Tell me a joke.",
    "Write a poem about the sea.", "What is 7 divided by 2?", "What is the square root of 81?",
    "Translate 'good morning' into German.", "What day is it today?", "Explain gravity.",
    "What is 12 to the power of 3?", "How are you?", "What is 1234 + 5678?", "Summarize this text.",
    "What is your name?", "Is 17 a prime number?", "What is 2.5 + 1.5?", "Thanks!",
    "What is 100 times 100?", "Can you help me with my homework?", "What is love?",
]


def sample_problem(rng, off_task_share=0.03):
    """Returns (user text, answer text or None, assistant text after '<think>\\n')."""
    if rng.random() < off_task_share:
        text = rng.choice(OFF_TASK)
        if rng.random() < 0.5:
            text += " " + SUFFIX
        return text, None, refusal_thought() + EOS
    kind = rng.randrange(3)
    if kind == 0:
        a, b = sample_operand(rng, 999), sample_operand(rng, 999)
        question, answer, thought = f"What is {a} + {b}?", a + b, addition_thought(a, b)
    elif kind == 1:
        a = sample_operand(rng, 999)
        b = rng.randint(0, a) if rng.random() < 0.7 else sample_operand(rng, a)
        question, answer, thought = f"What is {a} - {b}?", a - b, subtraction_thought(a, b)
    else:
        a, b = sample_operand(rng, 99), rng.randint(0, 9)
        question, answer, thought = f"What is {a} times {b}?", a * b, multiplication_thought(a, b)
    if rng.random() < 0.5:
        question += " " + SUFFIX
    return question, str(answer), thought + EOS


def sample_operand(rng, hi):
    """Uniform over 0..hi most of the time, but short numbers often enough to be learned too:
    uniform sampling would almost never show a one- or two-digit operand of a 3-digit family."""
    r = rng.random()
    if r < 0.15 and hi >= 9:
        return rng.randint(0, min(hi, 9))
    if r < 0.35 and hi >= 99:
        return rng.randint(0, min(hi, 99))
    return rng.randint(0, hi)


def sample_eval_question(rng):
    """A uniformly drawn question of one of the three families (the acceptance test's shape)."""
    kind = rng.randrange(3)
    if kind == 0:
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        return f"What is {a} + {b}?", str(a + b)
    if kind == 1:
        a = rng.randint(0, 999)
        b = rng.randint(0, a)
        return f"What is {a} - {b}?", str(a - b)
    a, b = rng.randint(0, 99), rng.randint(0, 9)
    return f"What is {a} times {b}?", str(a * b)


# ---------------------------------------------------------------------------------------------
# Tokenizer: DeepSeek's byte-level BPE for ASCII text and the added tokens. The real
# pre-tokenizer uses Unicode classes (\p{N}, \p{L}, \p{P}, \p{S}) that Python's `re` lacks; on
# ASCII text they reduce to the classes below, so this encoder refuses anything else.

_PUNCT = re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_PIECE = re.compile(
    r"[0-9]{1,3}"                                  # digits first, in groups of up to three
    rf"|[{_PUNCT}][A-Za-z]+"                       # punctuation glued to a following word
    rf"|[^\r\nA-Za-z0-9{_PUNCT}]?[A-Za-z]+"          # a word with an optional leading space
    rf"| ?[{_PUNCT}]+[\r\n]*"                       # punctuation runs
    r"|\s*[\r\n]+|\s+(?![^\s])|\s+")


def _split_pieces(text):
    """The pre-tokenizer's pieces. Digit runs are split off first, so the later patterns never
    see a digit: match them on the text between digit groups."""
    pieces = []
    for part in re.split(r"([0-9]{1,3})", text):
        if not part:
            continue
        if part[0].isdigit():
            pieces.append(part)
        else:
            pieces.extend(_PIECE.findall(part))
    return pieces


def _byte_to_unicode():
    """GPT-2's printable stand-ins for the 256 byte values, as ByteLevel uses them."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class Tokenizer:
    def __init__(self, directory=TOKENIZER_DIR):
        with open(os.path.join(directory, "tokenizer.json"), encoding="utf-8") as f:
            spec = json.load(f)
        self.vocab = spec["model"]["vocab"]
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        merges = spec["model"]["merges"]
        self.ranks = {tuple(m.split(" ") if isinstance(m, str) else m): r for r, m in enumerate(merges)}
        self.added = {a["content"]: a["id"] for a in spec["added_tokens"]}
        for content, i in self.added.items():
            self.id_to_token[i] = content
        self.byte_map = _byte_to_unicode()
        self.unicode_to_byte = {c: b for b, c in self.byte_map.items()}
        self._added_re = re.compile("(" + "|".join(re.escape(a) for a in
                                                   sorted(self.added, key=len, reverse=True)) + ")")

    @functools.lru_cache(maxsize=1 << 16)
    def _bpe(self, piece):
        symbols = [self.byte_map[b] for b in piece.encode("utf-8")]
        while len(symbols) > 1:
            best, best_rank = None, None
            for i in range(len(symbols) - 1):
                r = self.ranks.get((symbols[i], symbols[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best is None:
                break
            symbols[best:best + 2] = [symbols[best] + symbols[best + 1]]
        return tuple(self.vocab[s] for s in symbols)

    @functools.lru_cache(maxsize=1 << 18)
    def _encode_plain(self, text):
        if not text.isascii():
            raise ValueError(f"demo tokenizer handles ASCII text only: {text!r}")
        ids = []
        for piece in _split_pieces(text):
            ids.extend(self._bpe(piece))
        return tuple(ids)

    def encode(self, text):
        """Added tokens are matched literally first; the text between them is BPE-encoded."""
        ids = []
        for part in self._added_re.split(text):
            if part in self.added:
                ids.append(self.added[part])
            elif part:
                ids.extend(self._encode_plain(part))
        return ids

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            token = self.id_to_token[i]
            if i in self.added.values():
                out += token.encode("utf-8")
            else:
                out += bytes(self.unicode_to_byte[c] for c in token)
        return out.decode("utf-8", errors="replace")


_LINE_END = re.compile(r"(?<=\n)(?=[^\n])")


def encode_example(tokenizer, user_text, assistant_text):
    """(token ids, number of prompt tokens). Lines are encoded one at a time so that the cache
    hits: the pre-tokenizer never joins a newline run with the next line's first character."""
    prompt = tokenizer.encode(render_prompt(user_text))
    body = []
    for line in _LINE_END.split(assistant_text):
        body.extend(tokenizer.encode(line))
    return prompt + body, len(prompt)
