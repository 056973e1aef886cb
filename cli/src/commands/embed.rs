//! `mporec embed`: item texts to a feature file with a BERT-family model.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use recmodel::text::{load_item_texts, word_drop_texts, Pooling, TextEncoder};

/// Options of `mporec embed`.
#[derive(Args)]
pub struct EmbedArgs {
    /// Model folder in the Hugging Face layout (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Dataset folder: UniSRec (NAME.item2index with NAME.text), LC-Rec (NAME.item.json) or RecBole (NAME.item).
    #[arg(long)]
    data: PathBuf,
    /// Output feature file: raw little-endian f32, one row per item index
    /// [default: NAME.MODEL.f32 in the current folder, NAME.MODEL.word-drop.f32 with --word-drop].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Texts per forward pass; texts are sorted by length first, so batches carry little padding.
    /// Larger batches need more memory per thread and ran slower on a 2-core machine.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..), allow_hyphen_values = true)]
    batch_size: u64,
    /// Pooling of the token states, overriding the model folder's pooling module.
    #[arg(long)]
    pooling: Option<Pooling>,
    /// L2-normalise each feature vector (true or false), overriding modules.json.
    #[arg(long)]
    normalize: Option<bool>,
    /// Drop each space-separated word with this probability before encoding, as
    /// pre-training's word-drop augmentation does [0.15 when given without a value].
    #[arg(long, num_args = 0..=1, default_missing_value = "0.15", value_name = "P", allow_hyphen_values = true)]
    word_drop: Option<f64>,
    /// Seed of the word drop.
    #[arg(long, default_value_t = 2020, allow_hyphen_values = true)]
    seed: u64,
}

/// Runs the subcommand.
pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    if let Some(p) = args.word_drop {
        anyhow::ensure!((0.0..=1.0).contains(&p), "--word-drop {p} is outside [0, 1]");
    }
    let started = Instant::now();

    let mut encoder = TextEncoder::load(&args.model).with_context(|| format!("failed to load the text model from {}", args.model.display()))?;
    if let Some(pooling) = args.pooling {
        encoder.set_pooling(pooling);
    }
    if let Some(normalize) = args.normalize {
        encoder.set_normalize(normalize);
    }

    let items = load_item_texts(&args.data).with_context(|| format!("failed to read item texts from {}", args.data.display()))?;
    let texts = match args.word_drop {
        Some(p) => word_drop_texts(&items.texts, p, args.seed),
        None => items.texts,
    };
    let out = args.out.clone().unwrap_or_else(|| default_output(&args.data, &items.source, &args.model, args.word_drop.is_some()));
    check_output_path(&out)?;
    check_not_an_input(&out, &args.model, &args.data)?;

    let bar = ProgressBar::new(texts.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("embedding [{bar:30}] {pos}/{len} items  {per_sec}  eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let features = encoder.embed(&texts, args.batch_size as usize, |done| bar.inc(done as u64))?;
    bar.finish_and_clear();

    let dim = encoder.dim().max(1);
    if let Some(position) = features.iter().position(|v| !v.is_finite()) {
        anyhow::bail!(
            "the model produced a non-finite feature ({}) for item {} (dimension {}); check the weights in {}",
            features[position],
            position / dim,
            position % dim,
            args.model.display()
        );
    }
    write_features(&out, &features)?;
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        items = texts.len(),
        dim = encoder.dim(),
        pooling = %encoder.pooling(),
        normalize = encoder.normalize(),
        without_text = items.missing,
        seconds,
        items_per_s = texts.len() as f64 / seconds,
        out = %out.display(),
        "wrote item features"
    );
    Ok(())
}

/// `NAME.MODEL.f32` in the current folder, MODEL from the model folder's
/// name and NAME from the dataset's `NAME.item2index` when there is one
/// (the texts may come from Amazon's `meta_*.json`), else from the file the
/// texts came from.
fn default_output(data: &Path, source: &Path, model: &Path, word_drop: bool) -> PathBuf {
    let index_name = std::fs::read_dir(data).ok().and_then(|entries| {
        let names: Vec<String> = entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.strip_suffix(".item2index").map(str::to_string))
            .collect();
        (names.len() == 1).then(|| names[0].clone())
    });
    let file_name = source.file_name().and_then(|n| n.to_str()).unwrap_or("items");
    let source_name = file_name.split('.').next().unwrap_or_default().to_string();
    let dataset = index_name.filter(|name| !name.is_empty()).unwrap_or(source_name);
    let dataset = if dataset.is_empty() { "items".to_string() } else { dataset };
    let model_name = model
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "text".into());
    let suffix = if word_drop { ".word-drop" } else { "" };
    PathBuf::from(format!("{dataset}.{model_name}{suffix}.f32"))
}

/// Rejects an output path that cannot be written, before the slow encoding
/// pass: an existing folder or other non-regular file (a pipe or a device
/// would be replaced by the rename), or a parent folder that does not exist.
fn check_output_path(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!("output path {} is a folder; pass a file name with --out", path.display());
    }
    if let Ok(metadata) = std::fs::metadata(path) {
        if !metadata.is_file() {
            anyhow::bail!("output path {} exists and is not a regular file; pass another file name with --out", path.display());
        }
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        anyhow::bail!("the folder {} of the output file does not exist; create it first", parent.display());
    }
    Ok(())
}

/// Rejects an existing output file that `embed` reads: any file of the model
/// folder (two levels deep, which covers the pooling module's folder) or
/// a non-`.f32` file of the dataset folder, such as `NAME.text` or
/// `NAME.item2index`.
fn check_not_an_input(out: &Path, model: &Path, data: &Path) -> anyhow::Result<()> {
    let Ok(out_canonical) = out.canonicalize() else {
        // A file that does not exist yet cannot be an input.
        return Ok(());
    };
    let same = |folder: &Path, depth: usize, keep: &dyn Fn(&Path) -> bool| -> bool {
        fn walk(folder: &Path, depth: usize, target: &Path, keep: &dyn Fn(&Path) -> bool) -> bool {
            let Ok(entries) = std::fs::read_dir(folder) else { return false };
            entries.filter_map(Result::ok).any(|entry| {
                let path = entry.path();
                if path.is_dir() {
                    depth > 1 && walk(&path, depth - 1, target, keep)
                } else {
                    keep(&path) && path.canonicalize().is_ok_and(|p| p == target)
                }
            })
        }
        walk(folder, depth, &out_canonical, keep)
    };
    if same(model, 2, &|_| true) {
        anyhow::bail!("output path {} is a file of the model folder {}; pass another file name with --out", out.display(), model.display());
    }
    let is_input = |path: &Path| path.extension().is_none_or(|e| e != "f32");
    if same(data, 1, &is_input) {
        anyhow::bail!("output path {} is an input file of the dataset {}; pass another file name with --out", out.display(), data.display());
    }
    Ok(())
}

/// Writes raw little-endian f32 to a temporary file beside `path`, then
/// renames it, so an interrupted run never leaves a truncated feature file.
fn write_features(path: &Path, features: &[f32]) -> anyhow::Result<()> {
    let file_name = path.file_name().with_context(|| format!("output path {} has no file name", path.display()))?;
    // A hidden name with the process id is unlikely to be a user's file, and
    // `create_new` refuses to reuse one that happens to exist.
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(file_name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary_name);

    let write = || -> std::io::Result<()> {
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temporary)?;
        let mut writer = BufWriter::new(file);
        for value in features {
            writer.write_all(&value.to_le_bytes())?;
        }
        writer.into_inner().map_err(|e| e.into_error())?.sync_all()
    };
    if let Err(error) = write() {
        let _ = std::fs::remove_file(&temporary);
        return Err(error).with_context(|| format!("failed to write the temporary file {} for {}", temporary.display(), path.display()));
    }
    if let Err(error) = std::fs::rename(&temporary, path) {
        let _ = std::fs::remove_file(&temporary);
        return Err(error).with_context(|| format!("failed to move {} to {}", temporary.display(), path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_name_from_item2index() {
        let data = tempfile::tempdir().unwrap();
        std::fs::write(data.path().join("Toys.item2index"), "A0\t0\n").unwrap();
        let meta = data.path().join("meta_Toys_and_Games.json");
        let model = Path::new("models/all-MiniLM-L6-v2");
        assert_eq!(default_output(data.path(), &meta, model, false), PathBuf::from("Toys.text.f32"));
        assert_eq!(default_output(data.path(), &meta, model, true), PathBuf::from("Toys.text.word-drop.f32"));
    }

    #[test]
    fn default_name_from_source_file() {
        let data = tempfile::tempdir().unwrap();
        let source = data.path().join("ml-100k.item");
        let model = Path::new("models/all-MiniLM-L6-v2");
        assert_eq!(default_output(data.path(), &source, model, false), PathBuf::from("ml-100k.text.f32"));
    }
}
