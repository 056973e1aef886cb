//! `mporec decompose`: factorize a weight matrix into an MPO and report its
//! factor lists, bonds, parameter counts and truncation error.

use anyhow::{bail, Context};
use clap::{ArgGroup, Args};
use std::path::PathBuf;
use tensornet::{auto_factor_pair, auto_factors, Mpo, Truncation, TruncationReport};

/// Options of `mporec decompose`.
#[derive(Args)]
#[command(group(ArgGroup::new("source").required(true).args(["shape", "checkpoint"])))]
pub struct DecomposeArgs {
    /// Decompose a random matrix with N(0, 1) entries of this shape, written
    /// OUTxIN (rows x columns), for example 300x768.
    #[arg(long, value_name = "OUTxIN", value_parser = parse_shape)]
    shape: Option<(usize, usize)>,
    /// Decompose a parameter of this checkpoint; needs --param.
    #[arg(long, value_name = "FILE", requires = "param")]
    checkpoint: Option<PathBuf>,
    /// Name of the 2-D parameter to decompose, such as
    /// moe_adaptor.experts.0.lin.weight.
    #[arg(long, value_name = "NAME", requires = "checkpoint")]
    param: Option<String>,
    /// Row factors, comma-separated, whose product is OUT [default: automatic].
    #[arg(long, value_name = "A,B,C", value_delimiter = ',')]
    rows: Option<Vec<usize>>,
    /// Column factors, comma-separated, whose product is IN [default: automatic].
    #[arg(long, value_name = "A,B,C", value_delimiter = ',')]
    cols: Option<Vec<usize>>,
    /// Number of cores of the automatic factor lists [default: 5, or the
    /// length of --rows / --cols].
    #[arg(long, value_name = "N")]
    cores: Option<usize>,
    /// Maximum bond dimension; larger values keep the full bond.
    #[arg(long, value_name = "N")]
    max_bond: Option<usize>,
    /// Relative singular-value cutoff in [0, 1]: each bond drops the
    /// singular values below X times its largest.
    #[arg(long, value_name = "X")]
    cutoff: Option<f64>,
    /// Seed of the random matrix of --shape.
    #[arg(long, value_name = "N", default_value_t = 0)]
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
    let (mpo, report) = Mpo::decompose(&source.matrix, source.out_dim, source.in_dim, &rows, &cols, &truncation)?;
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

fn print_text(outcome: &Outcome) {
    let Outcome { source, mpo, report, rel_error } = outcome;
    let shape = mpo.shape();
    let discarded: Vec<String> = report.discarded_weight.iter().map(|w| format!("{w:.3e}")).collect();
    let dense = shape.dense_params();
    println!("matrix           {} x {} ({})", source.out_dim, source.in_dim, source.label);
    println!("row factors      {}", join(shape.rows(), " x "));
    println!("column factors   {}", join(shape.cols(), " x "));
    println!("bond dims        {}", join(shape.bond_dims(), ", "));
    println!("params per core  {}", join(&shape.params_per_core(), ", "));
    println!("total params     {} ({:.3} x the dense {dense})", shape.num_params(), shape.num_params() as f64 / dense as f64);
    println!("central core     {} (cores counted from 0)", join(&shape.central_cores(), ", "));
    println!("discarded weight {} (internal bonds 1..{})", discarded.join(", "), shape.num_cores() - 1);
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
}
