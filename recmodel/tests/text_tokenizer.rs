//! The tokenizer of all-MiniLM-L6-v2 on hand-checked cases. Expected tokens
//! follow BERT's uncased WordPiece rules and were confirmed with the Python
//! `transformers` tokenizer of the same model.

use std::path::PathBuf;

use recmodel::shared::require_shared;
use recmodel::text::TextTokenizer;

fn model_dir() -> Option<PathBuf> {
    require_shared("models/all-MiniLM-L6-v2/tokenizer.json").map(|p| p.parent().unwrap().to_path_buf())
}

fn tokens(tokenizer: &TextTokenizer, text: &str) -> Vec<String> {
    let ids = tokenizer.encode(text).unwrap();
    ids.iter().map(|&id| tokenizer.id_to_token(id).unwrap()).collect()
}

/// Checks the tokens between `[CLS]` and `[SEP]`.
#[track_caller]
fn check(tokenizer: &TextTokenizer, text: &str, expected: &[&str]) {
    let found = tokens(tokenizer, text);
    assert_eq!(found.first().map(String::as_str), Some("[CLS]"), "{text:?}");
    assert_eq!(found.last().map(String::as_str), Some("[SEP]"), "{text:?}");
    assert_eq!(&found[1..found.len() - 1], expected, "{text:?}");
}

#[test]
fn accents_are_stripped() {
    let Some(dir) = model_dir() else { return };
    let tokenizer = TextTokenizer::from_dir(&dir, 256).unwrap();
    // Lower-casing implies accent stripping when strip_accents is null.
    check(&tokenizer, "Café Déjà Vu naïve", &["cafe", "de", "##ja", "vu", "naive"]);
    check(&tokenizer, "ÅNGSTRÖM ångström", &["ang", "##strom", "ang", "##strom"]);
}

#[test]
fn punctuation_is_split() {
    let Some(dir) = model_dir() else { return };
    let tokenizer = TextTokenizer::from_dir(&dir, 256).unwrap();
    check(
        &tokenizer,
        "Hello, world! (3M) 50/50 #1 e-mail",
        &["hello", ",", "world", "!", "(", "3", "##m", ")", "50", "/", "50", "#", "1", "e", "-", "mail"],
    );
    check(&tokenizer, "don't", &["don", "'", "t"]);
}

#[test]
fn numbers_and_units() {
    let Some(dir) = model_dir() else { return };
    let tokenizer = TextTokenizer::from_dir(&dir, 256).unwrap();
    check(
        &tokenizer,
        "PORTER-CABLE 740000801 4 1/2-Inch x 10yd",
        &["porter", "-", "cable", "740", "##00", "##0", "##80", "##1", "4", "1", "/", "2", "-", "inch", "x", "10", "##yd"],
    );
    // The en dash is punctuation; the trade mark sign is not, so it stays a word piece.
    check(&tokenizer, "3M™ 18–16AWG", &["3", "##m", "##™", "18", "–", "16", "##aw", "##g"]);
}

#[test]
fn unknown_words() {
    let Some(dir) = model_dir() else { return };
    let tokenizer = TextTokenizer::from_dir(&dir, 256).unwrap();
    // A rare word falls apart into pieces. A word with a character outside
    // the vocabulary becomes one [UNK], and so does a word over 100 characters.
    check(&tokenizer, "zxqvbnmwk", &["z", "##x", "##q", "##vb", "##n", "##m", "##wk"]);
    check(&tokenizer, "smile 🙂 ok", &["smile", "[UNK]", "ok"]);
    check(&tokenizer, "a🙂b", &["[UNK]"]);
    check(&tokenizer, &"x".repeat(101), &["[UNK]"]);
    assert_eq!(tokenizer.encode("🙂").unwrap(), vec![101, 100, 102]);
}

#[test]
fn cjk_characters_are_words() {
    let Some(dir) = model_dir() else { return };
    let tokenizer = TextTokenizer::from_dir(&dir, 256).unwrap();
    // CJK ideographs become single tokens; kana and hangul are not in the
    // CJK ranges, so they stay in their word and split into pieces.
    check(&tokenizer, "日本語のテキスト", &["日", "本", "語", "の", "##テ", "##キ", "##ス", "##ト"]);
    check(&tokenizer, "中文 mixed", &["中", "文", "mixed"]);
    check(&tokenizer, "한국어", &["ᄒ", "##ᅡ", "##ᆫ", "##ᄀ", "##ᅮ", "##ᆨ", "##ᄋ", "##ᅥ"]);
}

#[test]
fn control_characters_are_removed() {
    let Some(dir) = model_dir() else { return };
    let tokenizer = TextTokenizer::from_dir(&dir, 256).unwrap();
    // A tab is whitespace; NUL and the zero-width space are dropped, which
    // joins their neighbours into one word.
    check(&tokenizer, "tab\there\u{200b}zero\u{0}null", &["tab", "here", "##zer", "##on", "##ull"]);
}

#[test]
fn empty_text() {
    let Some(dir) = model_dir() else { return };
    let tokenizer = TextTokenizer::from_dir(&dir, 256).unwrap();
    assert_eq!(tokenizer.encode("").unwrap(), vec![101, 102]);
}

#[test]
fn truncation_at_max_length() {
    let Some(dir) = model_dir() else { return };
    let tokenizer = TextTokenizer::from_dir(&dir, 256).unwrap();
    let ids = tokenizer.encode(&vec!["word"; 300].join(" ")).unwrap();
    // 254 word pieces plus [CLS] and [SEP]; "word" is id 2773.
    assert_eq!(ids.len(), 256);
    assert_eq!(ids[0], 101);
    assert_eq!(ids[255], 102);
    assert!(ids[1..255].iter().all(|&id| id == 2773));
}

#[test]
fn short_text_is_not_padded() {
    let Some(dir) = model_dir() else { return };
    // tokenizer.json pads to 128; the loader turns padding off.
    let tokenizer = TextTokenizer::from_dir(&dir, 256).unwrap();
    assert_eq!(tokenizer.encode("hello").unwrap(), vec![101, 7592, 102]);
}

#[test]
fn vocab_txt_fallback_matches() {
    let Some(dir) = model_dir() else { return };
    let from_json = TextTokenizer::from_dir(&dir, 256).unwrap();

    // A folder with only vocab.txt and tokenizer_config.json, as older BERT
    // checkpoints ship.
    let old_layout = tempfile::tempdir().unwrap();
    for name in ["vocab.txt", "tokenizer_config.json"] {
        std::fs::copy(dir.join(name), old_layout.path().join(name)).unwrap();
    }
    let from_vocab = TextTokenizer::from_dir(old_layout.path(), 256).unwrap();
    assert!(from_vocab.path().ends_with("vocab.txt"));

    let texts = [
        "Café Déjà Vu naïve",
        "PORTER-CABLE 740000801 4 1/2-Inch x 10yd",
        "日本語のテキスト smile 🙂",
        "tab\there\u{200b}zero",
    ];
    for text in texts {
        assert_eq!(from_vocab.encode(text).unwrap(), from_json.encode(text).unwrap(), "{text:?}");
    }
}

#[test]
fn missing_tokenizer_files() {
    let empty = tempfile::tempdir().unwrap();
    let error = TextTokenizer::from_dir(empty.path(), 256).err().unwrap();
    let message = error.to_string();
    assert!(message.contains("tokenizer.json"), "{message}");
    assert!(message.contains("not found"), "{message}");
}
