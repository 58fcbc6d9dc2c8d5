import os

import pytest
import tensorflow as tf

from tfseq2seq import text
from tfseq2seq.text import (
    CharTokenizer,
    Vocabulary,
    WhitespaceTokenizer,
    WordpieceTokenizer,
    decode_ids,
    lookup_ids,
    make_tokenizer,
)
from tfseq2seq.text.wordpiece import learn_wordpiece_vocab


def strings(t):
    return [s.decode("utf-8") for s in t.numpy()]


def token_lists(rt):
    return [[s.decode("utf-8") for s in row] for row in rt.to_list()]


# ---------------------------------------------------------------- vocabulary

def test_reserved_ids_come_first():
    vocab = Vocabulary.build([["b", "a"]])
    assert vocab.token_list[:4] == ("<pad>", "<start>", "<end>", "<unk>")
    assert (text.PAD_ID, text.START_ID, text.END_ID, text.UNK_ID) == (0, 1, 2, 3)
    assert vocab.ids(["<pad>", "<start>", "<end>", "<unk>"]) == [0, 1, 2, 3]


def test_build_orders_by_count_then_token_and_applies_limits():
    lists = [["c", "b", "a", "b"], ["c", "d", "<end>"], ["e"]]
    assert Vocabulary.build(lists).token_list[4:] == ("b", "c", "a", "d", "e")
    assert Vocabulary.build(lists, min_count=2).token_list[4:] == ("b", "c")
    assert Vocabulary.build(lists, max_size=6).token_list[4:] == ("b", "c")
    with pytest.raises(ValueError):
        Vocabulary.build(lists, max_size=3)


def test_unknown_tokens_map_to_unk_and_back():
    vocab = Vocabulary.build([["x", "y"]])
    assert vocab.ids(["x", "zzz"]) == [vocab.ids(["x"])[0], 3]
    assert vocab.tokens([4, 5, 99]) == ["x", "y", "<unk>"]


def test_build_rejects_whitespace_tokens():
    with pytest.raises(ValueError, match="whitespace"):
        Vocabulary.build([["a b"]])
    with pytest.raises(ValueError, match="whitespace"):
        Vocabulary.build([["a\u3000b"]])


def test_save_load_identity(tmp_path):
    vocab = Vocabulary.build([list("早上好👍🏽"), ["HH", "AH", "a'b"]])
    path = vocab.save(tmp_path / "v.txt")
    loaded = Vocabulary.load(path)
    assert loaded == vocab and len(loaded) == len(vocab) == 4 + 8
    assert loaded.path == path
    assert [p for p in os.listdir(tmp_path)] == ["v.txt"]  # no temp file left behind


@pytest.mark.parametrize("content", ["a\nb\n", "<pad>\n<start>\n<end>\n<unk>\nx y\n",
                                     "<pad>\n<start>\n<end>\n<unk>\nx\nx\n",
                                     "<pad>\n<start>\n<end>\n<unk>\n\nx\n"])
def test_load_rejects_bad_files_naming_them(tmp_path, content):
    path = tmp_path / "bad.vocab"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match="bad.vocab"):
        Vocabulary.load(path)


def test_tables_in_memory_and_file_backed_agree(tmp_path):
    vocab = Vocabulary.build([["早", "上", "好", "b"]])
    saved = Vocabulary.load(vocab.save(tmp_path / "v.txt"))
    query = tf.constant(["好", "nope", "<end>", "b"])
    for v in (Vocabulary(vocab.token_list), saved):
        ids = v.token_to_id_table().lookup(query).numpy().tolist()
        assert ids == [vocab.ids(["好"])[0], 3, 2, vocab.ids(["b"])[0]]
        back = v.id_to_token_table().lookup(tf.constant(ids + [1000], tf.int64))
        assert strings(back) == ["好", "<unk>", "<end>", "b", "<unk>"]


# ---------------------------------------------------------------- tokenizers

def test_char_round_trip_chinese_emoji_mixed():
    tok = CharTokenizer()
    texts = ["早上好", "👍🏽", "Hi 早上好, ok!", "a  b"]
    tokens = tok.tokenize(texts)
    assert token_lists(tokens)[1] == ["👍", "🏽"]  # two code points
    assert token_lists(tokens)[2][2] == text.SPACE_SYMBOL
    assert strings(tok.detokenize(tokens)) == texts


def test_char_tokenizer_replaces_invalid_utf8():
    tok = CharTokenizer()
    tokens = token_lists(tok.tokenize(tf.constant([b"a\xffb", b"\xe6\x97", b""])))
    assert tokens == [["a", "\ufffd", "b"], ["\ufffd"], []]


def test_whitespace_round_trip_and_unicode_spaces():
    tok = WhitespaceTokenizer()
    assert strings(tok.detokenize(tok.tokenize(["HH AH L OW", "早 上"]))) == ["HH AH L OW", "早 上"]
    assert token_lists(tok.tokenize(["  a\u00a0b\u3000c\t d "])) == [["a", "b", "c", "d"]]


def test_nfkc_and_lowercase():
    texts = ["ＡＢＣ ﬁ Ä"]
    assert token_lists(WhitespaceTokenizer(normalize="nfkc").tokenize(texts)) == [["ABC", "fi", "Ä"]]
    assert token_lists(WhitespaceTokenizer(lowercase=True, normalize="nfkc").tokenize(texts)) == [["abc", "fi", "ä"]]
    assert token_lists(WhitespaceTokenizer().tokenize(texts)) == [["ＡＢＣ", "ﬁ", "Ä"]]


@pytest.fixture(scope="module")
def wordpiece():
    corpus = ["Good morning!", "good evening, my friend.", "the morning star", "evening star (literary)",
              "don't stop", "e-mail me", "早上好"] * 5
    return WordpieceTokenizer(learn_wordpiece_vocab(corpus, 120))


def test_learn_wordpiece_vocab():
    corpus = ["low lower lowest", "newer newest", "wider widest", "low low low"]
    vocab = learn_wordpiece_vocab(corpus, 30)
    assert len(vocab) == 30 and vocab == learn_wordpiece_vocab(corpus, 30)  # exact size, deterministic
    assert vocab[:4] == list(text.RESERVED_TOKENS)
    chars = set("".join(corpus).replace(" ", ""))
    assert all(c in vocab and "##" + c in vocab for c in chars)
    assert "low" in vocab and "##est" in vocab  # the most frequent merges
    assert len(learn_wordpiece_vocab(corpus, 10)) == 4 + 2 * len(chars)  # never drops the alphabet
    whole_words = learn_wordpiece_vocab(corpus, 1000)  # stops once every word is one piece
    assert {"lowest", "newer", "widest"} <= set(whole_words) and len(whole_words) < 1000


def test_wordpiece_round_trip_and_unknowns(wordpiece):
    assert wordpiece.vocab[:4] == list(text.RESERVED_TOKENS)
    texts = ["Good morning!", "evening star (literary)", "don't e-mail me", "早上好"]
    assert strings(wordpiece.detokenize(wordpiece.tokenize(texts))) == texts
    tokens = token_lists(wordpiece.tokenize(["mornings 👍"]))[0]
    assert tokens[-1] == "<unk>" and any(t.startswith("##") for t in tokens)
    assert strings(wordpiece.detokenize(wordpiece.tokenize(["mornings"]))) == ["mornings"]


@pytest.mark.parametrize("kind", ["char", "whitespace", "wordpiece"])
def test_join_of_padded_rows_equals_detokenize(kind, wordpiece):
    """``join`` takes the serving graph's ``""``-padded token matrix: padding adds nothing,
    an all-padding row is "", and no columns at all give "" per row."""
    tok = wordpiece if kind == "wordpiece" else make_tokenizer(kind)
    rows = {"char": [["a", text.SPACE_SYMBOL, "b"], ["c"], []],
            "whitespace": [["HH", "AH"], ["OW"], []],
            "wordpiece": [["good", "##s", "!"], ["star"], []]}[kind]
    expected = {"char": ["a b", "c", ""], "whitespace": ["HH AH", "OW", ""],
                "wordpiece": ["goods!", "star", ""]}[kind]
    ragged = tf.ragged.constant(rows, dtype=tf.string)
    assert strings(tok.detokenize(ragged)) == expected
    padded = tf.concat([ragged.to_tensor(""), tf.fill([3, 2], "")], axis=1)  # extra padding
    assert strings(tok.join(padded)) == expected
    assert strings(tok.join(tf.zeros([2, 0], tf.string))) == ["", ""]
    assert strings(tok.join(padded[:, :1])) == strings(tok.detokenize(ragged[:, :1]))


def test_configs_recreate_tokenizers(wordpiece):
    for tok in (CharTokenizer(lowercase=True), WhitespaceTokenizer(normalize="nfkc"), wordpiece):
        again = make_tokenizer(**tok.get_config())
        assert type(again) is type(tok) and again.get_config() == tok.get_config()
        sample = ["Good EVENING, ＡＢＣ friend!"]
        assert token_lists(again.tokenize(sample)) == token_lists(tok.tokenize(sample))


def test_make_tokenizer_rejects_bad_options():
    with pytest.raises(ValueError, match="bpe"):
        make_tokenizer("bpe")
    with pytest.raises(ValueError, match="nfd"):
        make_tokenizer("char", normalize="nfd")


# ---------------------------------------------------------------- encode / decode

def test_lookup_and_decode_ids():
    tok = CharTokenizer()
    vocab = Vocabulary.build([list("早上好ab")])
    ids = lookup_ids(tok.tokenize(["早上好", "ab", "x"]), vocab.token_to_id_table())
    assert ids.dtype == tf.int32
    assert ids.to_list() == [vocab.ids("早上好"), vocab.ids("ab"), [3]]  # unknown: <unk>
    assert strings(decode_ids(ids, tok, vocab.id_to_token_table())) == ["早上好", "ab", "<unk>"]
    a, b = vocab.ids("ab")
    dense = tf.constant([[1, a, 2, b, 0], [a, 0, b, 0, 0]])  # everything after <end> is cut
    assert strings(decode_ids(dense, tok, vocab.id_to_token_table())) == ["a", "ab"]


def test_savedmodel_carries_vocab_as_asset(tmp_path, wordpiece):
    vocab = Vocabulary(wordpiece.vocab)
    vocab.save(tmp_path / "target.vocab")

    class Export(tf.Module):
        def __init__(self):
            super().__init__()
            self.tokenizer, self.to_id, self.to_token = wordpiece, vocab.token_to_id_table(), vocab.id_to_token_table()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def round_trip(self, texts):
            ids = lookup_ids(self.tokenizer.tokenize(texts), self.to_id)
            return decode_ids(ids, self.tokenizer, self.to_token)

    tf.saved_model.save(Export(), str(tmp_path / "model"))
    os.remove(tmp_path / "target.vocab")
    assert os.listdir(tmp_path / "model" / "assets") == ["target.vocab"]
    loaded = tf.saved_model.load(str(tmp_path / "model"))
    assert strings(loaded.round_trip(tf.constant(["Good morning!"]))) == ["Good morning!"]
