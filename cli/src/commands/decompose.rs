//! `mporec decompose`: factorize a weight matrix into an MPO and report its
//! factor lists, bonds, parameter counts and truncation error.

use anyhow::{bail, Context};
use clap::{ArgGroup, Args};
use std::path::PathBuf;
use tensornet::{auto_factor_pair, auto_factors, Mpo, Truncation, TruncationReport};

/// Maximum number of MPO cores. A dimension up to 2^32 has at most 32 prime
/// factors, so more cores would only add factors of 1 on both sides.
const MAX_CORES: usize = 32;

/// Options of `mporec decompose`.
///
/// The value options accept a leading hyphen, so that a negative number
/// reaches its parser and gets a message about its range instead of being
/// taken for an unknown flag.
#[derive(Args)]
#[command(group(ArgGroup::new("source").required(true).args(["shape", "checkpoint"])))]
pub struct DecomposeArgs {
    /// Decompose a random matrix with N(0, 1) entries of this shape, written
    /// OUTxIN (rows x columns), for example 300x768.
    #[arg(long, value_name = "OUTxIN", value_parser = parse_shape, allow_hyphen_values = true)]
    shape: Option<(usize, usize)>,
    /// Decompose a parameter of this checkpoint; needs --param.
    #[arg(long, value_name = "FILE", requires = "param")]
    checkpoint: Option<PathBuf>,
    /// Name of the 2-D parameter to decompose, such as
    /// moe_adaptor.experts.0.lin.weight.
    #[arg(long, value_name = "NAME", requires = "checkpoint")]
    param: Option<String>,
    /// Row factors, comma-separated, whose product is OUT [default: automatic].
    /// When --rows and --cols have different lengths, the shorter list is
    /// padded with 1s at its ends.
    #[arg(long, value_name = "A,B,C", value_delimiter = ',', value_parser = parse_factor, allow_hyphen_values = true)]
    rows: Option<Vec<usize>>,
    /// Column factors, comma-separated, whose product is IN [default: automatic].
    /// When --rows and --cols have different lengths, the shorter list is
    /// padded with 1s at its ends.
    #[arg(long, value_name = "A,B,C", value_delimiter = ',', value_parser = parse_factor, allow_hyphen_values = true)]
    cols: Option<Vec<usize>>,
    /// Number of cores, from 1 to 32, of the automatic factor lists
    /// [default: 5, or the length of --rows / --cols]. The automatic lists
    /// split each dimension into its prime factors, so a prime dimension
    /// lands whole in one core and the others get factors of 1.
    #[arg(long, value_name = "N", value_parser = parse_cores, allow_hyphen_values = true)]
    cores: Option<usize>,
    /// Maximum bond dimension, at least 1. A bond whose full dimension is
    /// smaller keeps its full dimension.
    #[arg(long, value_name = "N", value_parser = parse_max_bond, allow_hyphen_values = true)]
    max_bond: Option<usize>,
    /// Relative singular-value cutoff in [0, 1]: each bond drops the
    /// singular values below X times its largest.
    #[arg(long, value_name = "X", value_parser = parse_cutoff, allow_hyphen_values = true)]
    cutoff: Option<f64>,
    /// Seed of the random matrix of --shape, an integer from 0 to 2^64 - 1.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = parse_seed, allow_hyphen_values = true)]
    seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_shape(text: &str) -> Result<(usize, usize), String> {
    let invalid = || format!("invalid shape {text:?}: expected OUTxIN with positive integers, such as 300x768");
    let (out_dim, in_dim) = text.split_once(['x', 'X']).ok_or_else(invalid)?;
    let out_dim: usize = out_dim.trim().parse().map_err(|_| invalid())?;
    let in_dim: usize = in_dim.trim().parse().map_err(|_| invalid())?;
    if out_dim == 0 || in_dim == 0 {
        return Err(invalid());
    }
    // The random matrix is materialised in f32 and decomposed in f64; 2^28
    // elements (1 GiB in f32) already takes minutes on a few cores.
    const MAX_ELEMENTS: usize = 1 << 28;
    if out_dim.checked_mul(in_dim).is_none_or(|n| n > MAX_ELEMENTS) {
        return Err(format!("shape {text:?} has more than {MAX_ELEMENTS} elements, too large for a random test matrix"));
    }
    Ok((out_dim, in_dim))
}

/// Parses one element of --rows or --cols. Zero passes here, so that
/// [`tensornet::check_factors`] can report the whole list.
fn parse_factor(text: &str) -> Result<usize, String> {
    text.trim().parse().map_err(|_| format!("invalid factor {text:?}: expected a positive integer"))
}

fn parse_cores(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(cores) if (1..=MAX_CORES).contains(&cores) => Ok(cores),
        _ => Err(format!("must be an integer from 1 to {MAX_CORES}")),
    }
}

fn parse_max_bond(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(max_bond) if max_bond >= 1 => Ok(max_bond),
        _ => Err("must be an integer of at least 1".to_string()),
    }
}

fn parse_cutoff(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(cutoff) if (0.0..=1.0).contains(&cutoff) => Ok(cutoff),
        _ => Err("must be a number in [0, 1]".to_string()),
    }
}

fn parse_seed(text: &str) -> Result<u64, String> {
    text.trim().parse().map_err(|_| format!("must be an integer from 0 to {}", u64::MAX))
}

/// The matrix to decompose and a label naming its origin.
struct Source {
    matrix: Vec<f32>,
    out_dim: usize,
    in_dim: usize,
    label: String,
}

fn load_source(args: &DecomposeArgs) -> anyhow::Result<Source> {
    if let Some((out_dim, in_dim)) = args.shape {
        let matrix = tensornet::gaussian_matrix(out_dim, in_dim, args.seed);
        return Ok(Source { matrix, out_dim, in_dim, label: format!("random N(0, 1), seed {}", args.seed) });
    }
    let (Some(path), Some(name)) = (&args.checkpoint, &args.param) else {
        bail!("pass --shape OUTxIN, or --checkpoint FILE with --param NAME");
    };
    let checkpoint = recmodel::checkpoint::read_checkpoint(path)
        .with_context(|| format!("failed to read checkpoint {}", path.display()))?;
    let Some(id) = checkpoint.params.find(name) else {
        let matrices: Vec<&str> =
            checkpoint.params.iter().filter(|(_, p)| p.value.shape().len() == 2).map(|(_, p)| p.name.as_str()).collect();
        bail!("parameter {name:?} not found in {}; its 2-D parameters are: {}", path.display(), matrices.join(", "));
    };
    let value = checkpoint.params.value(id);
    let &[out_dim, in_dim] = value.shape() else {
        bail!("parameter {name:?} has shape {:?}; only 2-D [out, in] weights can be decomposed", value.shape());
    };
    Ok(Source { matrix: value.data().to_vec(), out_dim, in_dim, label: format!("{name} from {}", path.display()) })
}

/// Resolves the factor lists: explicit lists as given, the rest automatic.
fn factor_lists(args: &DecomposeArgs, out_dim: usize, in_dim: usize) -> anyhow::Result<(Vec<usize>, Vec<usize>)> {
    let explicit_len = args.rows.as_ref().map(Vec::len).max(args.cols.as_ref().map(Vec::len));
    if let Some(len) = explicit_len.filter(|&len| len > MAX_CORES) {
        bail!("a factor list of length {len} needs {len} cores, but at most {MAX_CORES} are supported");
    }
    let cores = match (args.cores, explicit_len) {
        (Some(cores), Some(len)) if cores != len => {
            bail!("--cores {cores} conflicts with a factor list of length {len}; drop --cores or make them agree")
        }
        (Some(cores), _) => cores,
        (None, Some(len)) => len,
        (None, None) => 5,
    };
    let lists = match (&args.rows, &args.cols) {
        (Some(rows), Some(cols)) => (rows.clone(), cols.clone()),
        (Some(rows), None) => (rows.clone(), auto_factors(in_dim, cores)?),
        (None, Some(cols)) => (auto_factors(out_dim, cores)?, cols.clone()),
        (None, None) => auto_factor_pair(out_dim, in_dim, cores)?,
    };
    Ok(lists)
}

/// A finished decomposition and what it is of.
struct Outcome {
    source: Source,
    mpo: Mpo,
    report: TruncationReport,
    rel_error: f64,
}

fn decompose(args: &DecomposeArgs) -> anyhow::Result<Outcome> {
    let source = load_source(args)?;
    let (rows, cols) = factor_lists(args, source.out_dim, source.in_dim)?;
    let truncation = Truncation { max_bond: args.max_bond, cutoff: args.cutoff, ..Truncation::none() };
    let decomposed = Mpo::decompose(&source.matrix, source.out_dim, source.in_dim, &rows, &cols, &truncation)
        .map_err(|e| e.with_matrix_columns(source.in_dim));
    // Errors about a checkpoint's values name the parameter and the file. A
    // random matrix is always finite, and its errors concern the flags.
    let (mpo, report) = match (&args.checkpoint, &args.param) {
        (Some(path), Some(name)) => decomposed
            .with_context(|| format!("failed to decompose parameter {name:?} of checkpoint {}", path.display()))?,
        _ => decomposed?,
    };
    let rel_error = relative_error(&mpo.to_dense(), &source.matrix);
    Ok(Outcome { source, mpo, report, rel_error })
}

/// Runs the subcommand.
pub fn run(args: DecomposeArgs) -> anyhow::Result<()> {
    let outcome = decompose(&args)?;
    if args.json {
        if !outcome.report.max_bond_above_full.is_empty() {
            tracing::warn!(
                max_bond = args.max_bond,
                bonds = ?outcome.report.max_bond_above_full,
                "--max-bond exceeds the full dimension of some bonds, which keep their full dimension"
            );
        }
        println!("{}", serde_json::to_string(&json_report(&outcome))?);
    } else {
        print_text(&outcome);
    }
    Ok(())
}

fn relative_error(approx: &[f32], exact: &[f32]) -> f64 {
    let diff: f64 = approx.iter().zip(exact).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
    let norm: f64 = exact.iter().map(|&b| (b as f64).powi(2)).sum();
    if norm > 0.0 {
        (diff / norm).sqrt()
    } else {
        diff.sqrt()
    }
}

fn json_report(outcome: &Outcome) -> serde_json::Value {
    let shape = outcome.mpo.shape();
    serde_json::json!({
        "rows": shape.rows(),
        "cols": shape.cols(),
        "bond_dims": shape.bond_dims(),
        "params_per_core": shape.params_per_core(),
        "total_params": shape.num_params(),
        "central": shape.central_cores(),
        "discarded_weight": outcome.report.discarded_weight,
        "rel_error": outcome.rel_error,
    })
}

fn join<T: ToString>(values: &[T], separator: &str) -> String {
    values.iter().map(T::to_string).collect::<Vec<_>>().join(separator)
}

/// Formats `fraction` as a percentage with at least three significant
/// digits, so that a tiny ratio such as 66 / 230400 does not print as 0.
fn format_percent(fraction: f64) -> String {
    let percent = fraction * 100.0;
    if percent == 0.0 || !percent.is_finite() {
        return format!("{percent}%");
    }
    let decimals = (2 - percent.abs().log10().floor() as i64).clamp(1, 15) as usize;
    format!("{percent:.decimals$}%")
}

/// Prints the discarded weight of each internal bond and, beside it, the
/// squared Frobenius norm of the matrix that it is a part of.
fn print_discarded_weight(report: &TruncationReport) {
    let weights = &report.discarded_weight;
    if weights.is_empty() {
        println!("discarded weight none (one core, no internal bond)");
        return;
    }
    let bonds = match weights.len() {
        1 => "internal bond 1".to_string(),
        n => format!("internal bonds 1 to {n}"),
    };
    let listed: Vec<String> = weights.iter().map(|w| format!("{w:.3e}")).collect();
    println!("discarded weight {} (sum of squared discarded singular values, {bonds})", listed.join(", "));

    let squared_norm = report.norm * report.norm;
    let total = weights.iter().fold(0.0, |acc, w| acc + w);
    if squared_norm > 0.0 {
        println!(
            "||W||_F^2        {squared_norm:.3e} (the discarded weights sum to {total:.3e}, {} of it)",
            format_percent(total / squared_norm)
        );
    } else {
        println!("||W||_F^2        0 (a zero matrix)");
    }
}

fn print_text(outcome: &Outcome) {
    let Outcome { source, mpo, report, rel_error } = outcome;
    let shape = mpo.shape();
    let dense = shape.dense_params();
    let ratio = format_percent(shape.num_params() as f64 / dense as f64);
    println!("matrix           {} x {} ({})", source.out_dim, source.in_dim, source.label);
    println!("row factors      {}", join(shape.rows(), " x "));
    println!("column factors   {}", join(shape.cols(), " x "));
    println!("bond dims        {}", join(shape.bond_dims(), ", "));
    println!("params per core  {}", join(&shape.params_per_core(), ", "));
    println!("total params     {} ({ratio} of the dense {dense})", shape.num_params());
    println!("central core     {} (cores counted from 0)", join(&shape.central_cores(), ", "));
    print_discarded_weight(report);
    println!("rel error        {rel_error:.3e} (||W - W'||_F / ||W||_F)");
    if !report.max_bond_above_full.is_empty() {
        println!(
            "note             bonds {} keep their full dimension, which is below --max-bond",
            join(&report.max_bond_above_full, ", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::{ParamStore, Tensor};
    use clap::Parser;
    use recmodel::checkpoint::{write_checkpoint, Checkpoint};
    use recmodel::model::{Setting, UniSRecConfig};

    #[derive(Parser)]
    struct TestCli {
        #[command(flatten)]
        args: DecomposeArgs,
    }

    fn parse(words: &[&str]) -> Result<DecomposeArgs, clap::Error> {
        let argv = std::iter::once("decompose").chain(words.iter().copied());
        TestCli::try_parse_from(argv).map(|cli| cli.args)
    }

    #[test]
    fn parse_shape_forms() {
        assert_eq!(parse_shape("300x768"), Ok((300, 768)));
        assert_eq!(parse_shape("8X384"), Ok((8, 384)));
        assert!(parse_shape("300").is_err());
        assert!(parse_shape("0x5").is_err());
        assert!(parse_shape("3x-5").is_err());
        assert!(parse_shape("200000x200000").is_err());
    }

    #[test]
    fn json_keys_and_integers() {
        let outcome = decompose(&parse(&["--shape", "768x768", "--json"]).unwrap()).unwrap();
        let json = json_report(&outcome);
        assert_eq!(json["rows"], serde_json::json!([3, 4, 4, 4, 4]));
        assert_eq!(json["cols"], serde_json::json!([4, 4, 4, 4, 3]));
        assert_eq!(json["bond_dims"], serde_json::json!([1, 12, 192, 192, 12, 1]));
        assert_eq!(json["total_params"], serde_json::json!(663_840));
        assert!(json["total_params"].is_u64());
        assert_eq!(json["params_per_core"][2], serde_json::json!(589_824));
        assert_eq!(json["central"], serde_json::json!([2]));
        assert_eq!(json["discarded_weight"].as_array().unwrap().len(), 4);
        assert!(json["rel_error"].as_f64().unwrap() <= 1e-5);
        assert_eq!(json.as_object().unwrap().len(), 8);
    }

    #[test]
    fn truncation_options_apply() {
        let args = parse(&["--shape", "300x768", "--max-bond", "100", "--cutoff", "0"]).unwrap();
        let outcome = decompose(&args).unwrap();
        assert_eq!(outcome.mpo.shape().bond_dims(), &[1, 6, 72, 100, 8, 1]);
        assert_eq!(outcome.report.max_bond_above_full, vec![1, 2, 4]);
        // The sweep's error equals sqrt(sum eps_k^2); the measured one is in f32.
        assert!((outcome.rel_error - outcome.report.relative_error()).abs() < 1e-4);
    }

    #[test]
    fn explicit_lists_set_core_count() {
        let args = parse(&["--shape", "300x768", "--rows", "4,75"]).unwrap();
        let outcome = decompose(&args).unwrap();
        assert_eq!(outcome.mpo.shape().rows(), &[4, 75]);
        assert_eq!(outcome.mpo.shape().cols(), &[24, 32]);
    }

    #[test]
    fn conflicting_core_count_rejected() {
        let args = parse(&["--shape", "300x768", "--rows", "2,3,5,5,2", "--cores", "3"]).unwrap();
        let message = decompose(&args).err().unwrap().to_string();
        assert_eq!(message, "--cores 3 conflicts with a factor list of length 5; drop --cores or make them agree");
    }

    #[test]
    fn wrong_factor_product_rejected() {
        let args = parse(&["--shape", "300x768", "--rows", "2,3,5,5"]).unwrap();
        let message = decompose(&args).err().unwrap().to_string();
        assert_eq!(message, "row factors [2, 3, 5, 5] multiply to 150, but the dimension is 300");
    }

    #[test]
    fn cores_above_limit_rejected() {
        for cores in ["18446744073709551615", "100000000", "1000000", "33", "0", "-1"] {
            let message = parse(&["--shape", "300x768", "--cores", cores]).err().unwrap().to_string();
            assert!(message.contains("--cores"), "{message}");
            assert!(message.contains("must be an integer from 1 to 32"), "{message}");
        }
    }

    #[test]
    fn cores_at_limit_accepted() {
        let outcome = decompose(&parse(&["--shape", "30x40", "--cores", "32"]).unwrap()).unwrap();
        assert_eq!(outcome.mpo.shape().num_cores(), 32);
        assert!(outcome.rel_error <= 1e-5);
    }

    #[test]
    fn long_factor_list_rejected() {
        let ones = vec!["1"; 40].join(",");
        let rows = format!("{ones},300");
        let args = parse(&["--shape", "300x768", "--rows", &rows]).unwrap();
        let message = decompose(&args).err().unwrap().to_string();
        assert_eq!(message, "a factor list of length 41 needs 41 cores, but at most 32 are supported");
    }

    #[test]
    fn overflowing_factor_product_rejected() {
        let args = parse(&["--shape", "300x768", "--rows", "18446744073709551615,2"]).unwrap();
        let message = decompose(&args).err().unwrap().to_string();
        assert!(message.contains("overflows"), "{message}");
        assert!(message.contains("cannot split the dimension 300"), "{message}");
        assert!(!message.contains("multiply to"), "{message}");
    }

    #[test]
    fn negative_values_reach_parsers() {
        let cases = [
            (["--cutoff", "-0.5"], "must be a number in [0, 1]"),
            (["--rows", "-2,150"], "invalid factor \"-2\": expected a positive integer"),
            (["--shape", "-3x4"], "invalid shape \"-3x4\""),
            (["--seed", "-1"], "must be an integer from 0 to 18446744073709551615"),
            (["--max-bond", "-3"], "must be an integer of at least 1"),
        ];
        for (words, expected) in cases {
            let mut argv = vec!["--shape", "300x768"];
            if words[0] == "--shape" {
                argv.clear();
            }
            argv.extend(words);
            let message = parse(&argv).err().unwrap().to_string();
            assert!(message.contains(words[0]), "{message}");
            assert!(message.contains(expected), "{message}");
            assert!(!message.contains("unexpected argument"), "{message}");
        }
    }

    #[test]
    fn truncation_flags_named() {
        let message = parse(&["--shape", "300x768", "--max-bond", "0"]).err().unwrap().to_string();
        assert!(message.contains("'--max-bond <N>'"), "{message}");
        assert!(message.contains("must be an integer of at least 1"), "{message}");
        let message = parse(&["--shape", "300x768", "--cutoff", "1.5"]).err().unwrap().to_string();
        assert!(message.contains("'--cutoff <X>'"), "{message}");
        let message = parse(&["--shape", "300x768", "--cutoff", "NaN"]).err().unwrap().to_string();
        assert!(message.contains("must be a number in [0, 1]"), "{message}");
    }

    #[test]
    fn one_core_has_no_discarded_weight() {
        let outcome = decompose(&parse(&["--shape", "30x40", "--cores", "1"]).unwrap()).unwrap();
        assert!(outcome.report.discarded_weight.is_empty());
        assert_eq!(outcome.mpo.shape().bond_dims(), &[1, 1]);
    }

    #[test]
    fn percent_keeps_small_ratios() {
        assert_eq!(format_percent(66.0 / 230_400.0), "0.0286%");
        assert_eq!(format_percent(0.5), "50.0%");
        assert_eq!(format_percent(663_840.0 / 589_824.0), "112.5%");
        assert_eq!(format_percent(0.0), "0%");
        assert_eq!(format_percent(1e-12), "0.000000000100%");
    }

    #[test]
    fn source_required() {
        assert!(parse(&["--rows", "2,3"]).is_err());
        assert!(parse(&["--shape", "4x4", "--checkpoint", "a.ckpt"]).is_err());
    }

    #[test]
    fn checkpoint_parameter() {
        let path = std::env::temp_dir().join(format!("mporec-decompose-test-{}.ckpt", std::process::id()));
        let mut params = ParamStore::new();
        let name = "moe_adaptor.experts.0.lin.weight";
        params.add(name, Tensor::new(vec![300, 384], tensornet::gaussian_matrix(300, 384, 1)).unwrap());
        params.add("moe_adaptor.experts.0.bias", Tensor::zeros(&[384]));
        let checkpoint = Checkpoint {
            config: UniSRecConfig::new(10, 384, Setting::Inductive),
            params,
            epoch: 1,
            valid_ndcg_10: 0.0,
            optimizer: None,
        };
        write_checkpoint(&path, &checkpoint).unwrap();
        let file = path.to_str().unwrap();

        let outcome = decompose(&parse(&["--checkpoint", file, "--param", name]).unwrap()).unwrap();
        assert_eq!(outcome.mpo.shape().out_dim(), 300);
        assert_eq!(outcome.mpo.shape().in_dim(), 384);
        assert!(outcome.rel_error <= 1e-5);

        let missing = decompose(&parse(&["--checkpoint", file, "--param", "nope"]).unwrap()).err().unwrap();
        assert!(missing.to_string().contains(&format!("its 2-D parameters are: {name}")), "{missing}");
        let vector = decompose(&parse(&["--checkpoint", file, "--param", "moe_adaptor.experts.0.bias"]).unwrap());
        assert!(vector.err().unwrap().to_string().contains("has shape [384]"));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn checkpoint_nan_located() {
        let path = std::env::temp_dir().join(format!("mporec-decompose-nan-{}.ckpt", std::process::id()));
        let mut params = ParamStore::new();
        let name = "item_embedding.weight";
        let mut values = tensornet::gaussian_matrix(100, 300, 1);
        values[83 * 300 + 74] = f32::NAN;
        params.add(name, Tensor::new(vec![100, 300], values).unwrap());
        let checkpoint = Checkpoint {
            config: UniSRecConfig::new(10, 300, Setting::Inductive),
            params,
            epoch: 1,
            valid_ndcg_10: 0.0,
            optimizer: None,
        };
        write_checkpoint(&path, &checkpoint).unwrap();

        let args = parse(&["--checkpoint", path.to_str().unwrap(), "--param", name]).unwrap();
        let message = format!("{:#}", decompose(&args).err().unwrap());
        std::fs::remove_file(&path).unwrap();
        assert!(message.contains(&format!("parameter {name:?} of checkpoint {}", path.display())), "{message}");
        assert!(message.contains("row 83, column 74 is NaN"), "{message}");
    }
}
