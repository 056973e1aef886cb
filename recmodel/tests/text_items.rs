//! Item texts from the three dataset layouts, on the shared datasets and on
//! small files written here.

use std::path::Path;

use recmodel::shared::require_shared;
use recmodel::text::{load_item_texts, word_drop_texts, TextError};

fn write(dir: &Path, name: &str, content: &str) {
    std::fs::write(dir.join(name), content).unwrap();
}

#[test]
fn scientific_text_file() {
    let Some(index) = require_shared("data/scientific/Scientific.item2index") else { return };
    let items = load_item_texts(index.parent().unwrap()).unwrap();
    assert_eq!(items.texts.len(), 4385);
    assert_eq!(items.missing, 0);
    assert!(items.source.ends_with("Scientific.text"));
    // Line 1 of Scientific.item2index is "B00TNNWMXI<TAB>0".
    assert_eq!(items.item_ids[0], "B00TNNWMXI");
    let first = std::fs::read_to_string(index.with_extension("text")).unwrap();
    let row = first.lines().find(|line| line.starts_with("B00TNNWMXI\t")).unwrap();
    assert_eq!(items.texts[0], row.split_once('\t').unwrap().1);
}

#[test]
fn movielens_recbole_item_file() {
    let Some(path) = require_shared("data/ml-100k/ml-100k.item") else { return };
    let items = load_item_texts(path.parent().unwrap()).unwrap();
    assert_eq!(items.texts.len(), 1682);
    assert_eq!(items.item_ids[0], "1");
    // Row "1<TAB>Toy Story<TAB>1995<TAB>Animation Children's Comedy".
    assert_eq!(items.texts[0], "Toy Story. 1995. Animation Children's Comedy. ");
}

#[test]
fn office_lcrec_item_json() {
    let Some(path) = require_shared("data/office2014/Office.item.json") else { return };
    let items = load_item_texts(path.parent().unwrap()).unwrap();
    assert_eq!(items.texts.len(), 2420);
    assert_eq!(items.item_ids[2], "2");
    // Item 2's title carries "&amp;", which UniSRec's rule decodes.
    assert_eq!(items.texts[2], "AT&T 210 Corded Phone, Black, 1 Handset. Office Electronics, Telephones & Accessories, Corded Telephones. AT&T. ");
}

#[test]
fn unisrec_text_with_missing_item() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Toy.item2index", "A1\t1\nA0\t0\nA2\t2\n");
    write(dir.path(), "Toy.text", "item_id:token\ttext:token_seq\nA0\tFirst. \nA2\tThird. \nZZ\tNot in the index. \n");
    let items = load_item_texts(dir.path()).unwrap();
    assert_eq!(items.item_ids, ["A0", "A1", "A2"]);
    assert_eq!(items.texts, ["First. ", "", "Third. "]);
    assert_eq!(items.missing, 1);
}

#[test]
fn amazon_metadata_by_unisrec_rule() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Toy.item2index", "A0\t0\nA1\t1\nA2\t2\n");
    let records = [
        r#"{"asin": "A1", "title": "Glue &amp; \"Tape\"...", "category": ["Tools", "Adhesives"], "brand": "Acme\n"}"#,
        r#"{"asin": "A0", "title": "Saw", "category": [], "brand": ""}"#,
        r#"{"asin": "A1", "title": "A later duplicate is ignored"}"#,
        r#"{"asin": "B9", "title": "Not in the index"}"#,
    ];
    write(dir.path(), "meta_Toy.json", &records.join("\n"));
    let items = load_item_texts(dir.path()).unwrap();
    assert_eq!(items.texts[0], "Saw. . . ");
    assert_eq!(items.texts[1], "Glue & Tape. Tools Adhesives. Acme. ");
    assert_eq!(items.texts[2], "");
    assert_eq!(items.missing, 1);
}

#[test]
fn lcrec_empty_fields() {
    let dir = tempfile::tempdir().unwrap();
    let json = r#"{
        "1": {"title": "", "description": "ignored", "brand": "", "categories": ""},
        "0": {"title": "Pen.", "description": "ignored", "brand": "Bic", "categories": "Office, Pens"}
    }"#;
    write(dir.path(), "Toy.item.json", json);
    let items = load_item_texts(dir.path()).unwrap();
    assert_eq!(items.texts, ["Pen. Office, Pens. Bic. ", ""]);
    assert_eq!(items.missing, 1);
}

#[test]
fn lcrec_index_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Toy.item.json", r#"{"0": {"title": "a"}, "5": {"title": "b"}}"#);
    let message = load_item_texts(dir.path()).err().unwrap().to_string();
    assert!(message.contains("Toy.item.json"), "{message}");
    assert!(message.contains("\"5\""), "{message}");
}

#[test]
fn recbole_wrong_field_count() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "toy.item", "item_id:token\tmovie_title:token_seq\n1\tHeat\n2\n");
    let error = load_item_texts(dir.path()).err().unwrap();
    assert!(matches!(error, TextError::InvalidLine { line: 3, .. }), "{error}");
}

#[test]
fn item2index_duplicate_index() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Toy.item2index", "A0\t0\nA1\t0\n");
    write(dir.path(), "Toy.text", "item_id:token\ttext:token_seq\n");
    let message = load_item_texts(dir.path()).err().unwrap().to_string();
    assert!(message.contains("Toy.item2index line 2, field index"), "{message}");
    assert!(message.contains("already taken by \"A0\" on line 1"), "{message}");
}

#[test]
fn item2index_duplicate_asin() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Toy.item2index", "A0\t0\nA0\t1\n");
    write(dir.path(), "Toy.text", "item_id:token\ttext:token_seq\n");
    let message = load_item_texts(dir.path()).err().unwrap().to_string();
    assert!(message.contains("Toy.item2index line 2, field item_id"), "{message}");
    assert!(message.contains("A0"), "{message}");
}

#[test]
fn text_file_duplicate_item() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Toy.item2index", "A0\t0\nA1\t1\n");
    write(dir.path(), "Toy.text", "item_id:token\ttext:token_seq\nA0\tfirst\nA1\tsecond\nA0\tthird\n");
    let error = load_item_texts(dir.path()).err().unwrap();
    assert!(matches!(error, TextError::InvalidLine { line: 4, .. }), "{error}");
    assert!(error.to_string().contains("\"A0\" appears twice (first on line 2)"), "{error}");
}

#[test]
fn text_file_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Toy.item2index", "A0\t0\nA1\t1\n");
    std::fs::write(dir.path().join("Toy.text"), b"item_id:token\ttext:token_seq\nA0\tok\nA1\tbad \xff byte\n").unwrap();
    let message = load_item_texts(dir.path()).err().unwrap().to_string();
    assert!(message.contains("Toy.text"), "{message}");
    assert!(message.contains("line 3"), "{message}");
}

#[test]
fn item2index_bad_number() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Toy.item2index", "A0\t0\nA1\tone\n");
    let message = load_item_texts(dir.path()).err().unwrap().to_string();
    assert!(message.contains("Toy.item2index line 2"), "{message}");
    assert!(message.contains("\"one\""), "{message}");
}

#[test]
fn unisrec_without_text_source() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Toy.item2index", "A0\t0\n");
    let message = load_item_texts(dir.path()).err().unwrap().to_string();
    assert!(message.contains("Toy.text not found"), "{message}");
}

#[test]
fn folder_without_items() {
    let dir = tempfile::tempdir().unwrap();
    let error = load_item_texts(dir.path()).err().unwrap();
    assert!(matches!(error, TextError::UnknownDataset { .. }), "{error}");
}

#[test]
fn folder_with_two_datasets() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "A.item2index", "x\t0\n");
    write(dir.path(), "B.item2index", "y\t0\n");
    let message = load_item_texts(dir.path()).err().unwrap().to_string();
    assert!(message.contains("A.item2index, B.item2index"), "{message}");
}

#[test]
fn word_drop_is_seeded() {
    let texts = vec!["a b c d e f g h".to_string(); 20];
    let first = word_drop_texts(&texts, 0.5, 9);
    assert_eq!(first, word_drop_texts(&texts, 0.5, 9));
    assert_ne!(first, word_drop_texts(&texts, 0.5, 10));
    // Rows draw from one stream, so equal texts lose different words.
    assert!(first.iter().any(|t| t != &first[0]));
}

#[test]
fn lcrec_repeated_key() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Toy.item.json", r#"{"0": {"title": "Glue"}, "0": {"title": "Tape"}, "1": {"title": "Saw"}}"#);
    let message = load_item_texts(dir.path()).err().unwrap().to_string();
    assert!(message.contains("key \"0\""), "{message}");
    assert!(message.contains("appears twice"), "{message}");
}

#[test]
fn lcrec_non_canonical_key() {
    for key in ["00", "+0"] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "Toy.item.json", &format!(r#"{{"1": {{"title": "Glue"}}, "{key}": {{"title": "Tape"}}}}"#));
        let message = load_item_texts(dir.path()).err().unwrap().to_string();
        assert!(message.contains(&format!("key {key:?}")), "{message}");
    }
}

#[test]
fn lcrec_record_not_object() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Toy.item.json", r#"{"0": "Glue", "1": {"title": "Saw"}}"#);
    let message = load_item_texts(dir.path()).err().unwrap().to_string();
    assert!(message.contains("expected an object"), "{message}");
}

#[test]
fn no_item_has_text() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Toy.item2index", "A0\t0\nA1\t1\n");
    write(dir.path(), "Toy.text", "item_id:token\ttext:token_seq\nB0\tother dataset\n");
    let message = load_item_texts(dir.path()).err().unwrap().to_string();
    assert!(message.contains("none of the 2 items has text"), "{message}");
}

#[test]
fn empty_item_list() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Toy.item.json", "{}");
    let message = load_item_texts(dir.path()).err().unwrap().to_string();
    assert!(message.contains("lists no items"), "{message}");
}

#[test]
fn recbole_repeated_and_empty_ids() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "toy.item", "item_id:token\tmovie_title:token_seq\n1\tHeat\n1\tGoldenEye\n");
    let error = load_item_texts(dir.path()).err().unwrap();
    assert!(matches!(error, TextError::InvalidLine { line: 3, .. }), "{error}");
    assert!(error.to_string().contains("appears twice (first on line 2)"), "{error}");

    write(dir.path(), "toy.item", "item_id:token\tmovie_title:token_seq\n\tHeat\n");
    let message = load_item_texts(dir.path()).err().unwrap().to_string();
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("empty"), "{message}");
}

#[test]
fn recbole_header_without_text_columns() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "toy.item", "item_id\tmovie_title\n1\tHeat\n");
    let message = load_item_texts(dir.path()).err().unwrap().to_string();
    assert!(message.contains("no text column"), "{message}");
}

#[test]
fn several_amazon_metadata_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Toy.item2index", "A0\t0\n");
    write(dir.path(), "meta_A.json", r#"{"asin": "A0", "title": "Glue"}"#);
    write(dir.path(), "meta_B.json", r#"{"asin": "A0", "title": "Tape"}"#);
    let message = load_item_texts(dir.path()).err().unwrap().to_string();
    assert!(message.contains("meta_A.json, meta_B.json"), "{message}");
}
