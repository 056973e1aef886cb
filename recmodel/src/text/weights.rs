//! BERT weights from a `safetensors` file, checked against `config.json`.

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use autograd::Tensor;
use safetensors::{Dtype, SafeTensorError, SafeTensors};

use super::config::BertConfig;
use super::error::{Result, TextError};

/// The weights of one Transformer layer. Linear weights are `[out, in]`.
#[derive(Clone, Debug)]
pub struct LayerWeights {
    /// Query, key and value projections stacked along the output axis:
    /// `[3 * hidden, hidden]`, so that one product computes all three.
    pub qkv_weight: Tensor,
    /// Biases of the stacked projections, `[3 * hidden]`.
    pub qkv_bias: Tensor,
    /// Attention output projection, `[hidden, hidden]`.
    pub attention_output_weight: Tensor,
    /// Its bias, `[hidden]`.
    pub attention_output_bias: Tensor,
    /// LayerNorm after the attention block: scale `[hidden]`.
    pub attention_norm_weight: Tensor,
    /// LayerNorm after the attention block: shift `[hidden]`.
    pub attention_norm_bias: Tensor,
    /// Feed-forward expansion, `[intermediate, hidden]`.
    pub intermediate_weight: Tensor,
    /// Its bias, `[intermediate]`.
    pub intermediate_bias: Tensor,
    /// Feed-forward projection back, `[hidden, intermediate]`.
    pub output_weight: Tensor,
    /// Its bias, `[hidden]`.
    pub output_bias: Tensor,
    /// LayerNorm after the feed-forward block: scale `[hidden]`.
    pub output_norm_weight: Tensor,
    /// LayerNorm after the feed-forward block: shift `[hidden]`.
    pub output_norm_bias: Tensor,
}

/// All weights of a BERT encoder (the pooler excluded).
#[derive(Clone, Debug)]
pub struct BertWeights {
    /// Word embeddings, `[vocab_size, hidden]`.
    pub word_embeddings: Tensor,
    /// Absolute position embeddings, `[max_position_embeddings, hidden]`.
    pub position_embeddings: Tensor,
    /// Token-type (segment) embeddings, `[type_vocab_size, hidden]`.
    pub token_type_embeddings: Tensor,
    /// LayerNorm after the embedding sum: scale `[hidden]`.
    pub embedding_norm_weight: Tensor,
    /// LayerNorm after the embedding sum: shift `[hidden]`.
    pub embedding_norm_bias: Tensor,
    /// One entry per Transformer layer, bottom first.
    pub layers: Vec<LayerWeights>,
    /// The file the weights came from, for error messages.
    pub path: PathBuf,
}

impl BertWeights {
    /// Reads the encoder's tensors from a safetensors file.
    ///
    /// Names are BERT's (`embeddings.word_embeddings.weight`,
    /// `encoder.layer.0.attention.self.query.weight`, ...), with or without a
    /// `bert.` prefix; TensorFlow-era LayerNorm names (`gamma`, `beta`) are
    /// accepted too. Tensors the encoder does not use, such as
    /// `embeddings.position_ids` and `pooler.*`, are ignored. F16, BF16 and
    /// F64 tensors are converted to `f32`.
    ///
    /// # Errors
    /// [`TextError::MissingFile`] or [`TextError::Io`] when the file cannot
    /// be read, [`TextError::InvalidWeights`] when it is not safetensors,
    /// [`TextError::MissingTensor`] for an absent tensor,
    /// [`TextError::TensorShape`] when a shape differs from what `config`
    /// implies, and [`TextError::TensorDtype`] for a non-float tensor.
    pub fn from_file(path: &Path, config: &BertConfig) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                TextError::MissingFile {
                    path: path.to_path_buf(),
                    hint: "the model folder needs its weights as model.safetensors (convert pytorch_model.bin with the safetensors tools)".into(),
                }
            } else {
                TextError::Io { path: path.to_path_buf(), source }
            }
        })?;
        let file = WeightFile::new(path, &bytes)?;

        let (h, i) = (config.hidden_size, config.intermediate_size);
        let embeddings = "embeddings";
        let word_embeddings = file.tensor(&format!("{embeddings}.word_embeddings.weight"), &[config.vocab_size, h])?;
        let position_embeddings =
            file.tensor(&format!("{embeddings}.position_embeddings.weight"), &[config.max_position_embeddings, h])?;
        let token_type_embeddings =
            file.tensor(&format!("{embeddings}.token_type_embeddings.weight"), &[config.type_vocab_size, h])?;
        let (embedding_norm_weight, embedding_norm_bias) = file.layer_norm(&format!("{embeddings}.LayerNorm"), h)?;

        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for layer in 0..config.num_hidden_layers {
            let base = format!("encoder.layer.{layer}");
            let linear = |name: &str, out: usize, inp: usize| -> Result<(Tensor, Tensor)> {
                Ok((file.tensor(&format!("{base}.{name}.weight"), &[out, inp])?, file.tensor(&format!("{base}.{name}.bias"), &[out])?))
            };
            let (query_weight, query_bias) = linear("attention.self.query", h, h)?;
            let (key_weight, key_bias) = linear("attention.self.key", h, h)?;
            let (value_weight, value_bias) = linear("attention.self.value", h, h)?;
            let (attention_output_weight, attention_output_bias) = linear("attention.output.dense", h, h)?;
            let (attention_norm_weight, attention_norm_bias) = file.layer_norm(&format!("{base}.attention.output.LayerNorm"), h)?;
            let (intermediate_weight, intermediate_bias) = linear("intermediate.dense", i, h)?;
            let (output_weight, output_bias) = linear("output.dense", h, i)?;
            let (output_norm_weight, output_norm_bias) = file.layer_norm(&format!("{base}.output.LayerNorm"), h)?;

            layers.push(LayerWeights {
                qkv_weight: stack(&[query_weight, key_weight, value_weight], &[3 * h, h]),
                qkv_bias: stack(&[query_bias, key_bias, value_bias], &[3 * h]),
                attention_output_weight,
                attention_output_bias,
                attention_norm_weight,
                attention_norm_bias,
                intermediate_weight,
                intermediate_bias,
                output_weight,
                output_bias,
                output_norm_weight,
                output_norm_bias,
            });
        }

        file.check_unused(config)?;
        Ok(BertWeights {
            word_embeddings,
            position_embeddings,
            token_type_embeddings,
            embedding_norm_weight,
            embedding_norm_bias,
            layers,
            path: path.to_path_buf(),
        })
    }
}

fn stack(parts: &[Tensor], shape: &[usize]) -> Tensor {
    let data: Vec<f32> = parts.iter().flat_map(|t| t.data().iter().copied()).collect();
    Tensor::new(shape.to_vec(), data).expect("stacked parts fill the shape")
}

/// An open safetensors file and the name prefix its tensors carry.
struct WeightFile<'a> {
    path: &'a Path,
    tensors: SafeTensors<'a>,
    prefix: &'static str,
    /// Stored names read so far, to find the ones the encoder leaves out.
    used: RefCell<HashSet<String>>,
}

/// Explains a safetensors parsing error in terms of what to do about it.
fn describe(error: &SafeTensorError) -> String {
    let detail = match error {
        SafeTensorError::MetadataIncompleteBuffer => "the file ends before the data its header describes".to_string(),
        SafeTensorError::HeaderTooSmall => "the file is shorter than a safetensors header".to_string(),
        SafeTensorError::HeaderTooLarge | SafeTensorError::InvalidHeaderLength => "the header length is implausible".to_string(),
        SafeTensorError::InvalidOffset(name) => format!("tensor {name} has data offsets outside the file or overlapping others"),
        SafeTensorError::TensorInvalidInfo => "a tensor's byte length does not match its shape and data type".to_string(),
        other => other.to_string(),
    };
    format!("{detail}; the file is truncated, damaged or not in the safetensors format, so download it again")
}

impl<'a> WeightFile<'a> {
    fn new(path: &'a Path, bytes: &'a [u8]) -> Result<Self> {
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|e| TextError::InvalidWeights { path: path.to_path_buf(), message: describe(&e) })?;
        let probe = "embeddings.word_embeddings.weight";
        let prefix = if tensors.tensor(probe).is_ok() {
            ""
        } else if tensors.tensor(&format!("bert.{probe}")).is_ok() {
            "bert."
        } else {
            return Err(TextError::MissingTensor { path: path.to_path_buf(), name: probe.into() });
        };
        tracing::debug!(path = %path.display(), prefix, tensors = tensors.len(), "reading BERT weights");
        Ok(WeightFile { path, tensors, prefix, used: RefCell::new(HashSet::new()) })
    }

    /// Rejects tensors of layers beyond `config.num_hidden_layers`, since a
    /// config with too few layers would silently give other vectors, and
    /// warns about other tensors the encoder does not read. Position ids,
    /// the pooler and BERT's pre-training heads (`cls.*`) are expected
    /// extras.
    fn check_unused(&self, config: &BertConfig) -> Result<()> {
        let used = self.used.borrow();
        let mut unused: Vec<String> = self
            .tensors
            .names()
            .into_iter()
            .filter(|name| !used.contains(name.as_str()))
            .map(|name| name.strip_prefix(self.prefix).unwrap_or(name).to_string())
            .filter(|name| !(name.ends_with("position_ids") || name.starts_with("pooler.") || name.starts_with("cls.")))
            .collect();
        unused.sort();
        if let Some(name) = unused.iter().find(|name| name.starts_with("encoder.layer.")) {
            return Err(TextError::InvalidWeights {
                path: self.path.to_path_buf(),
                message: format!(
                    "tensor {name} belongs to a layer beyond num_hidden_layers = {} of config.json; the config and the weights disagree",
                    config.num_hidden_layers
                ),
            });
        }
        if !unused.is_empty() {
            tracing::warn!(
                path = %self.path.display(),
                unused = unused.len(),
                first = ?&unused[..unused.len().min(5)],
                "tensors not used by the BERT encoder were ignored"
            );
        }
        Ok(())
    }

    /// Reads the tensor `name` (without prefix) as `f32`, checked against
    /// `expected`.
    fn tensor(&self, name: &str, expected: &[usize]) -> Result<Tensor> {
        let stored = format!("{}{name}", self.prefix);
        self.used.borrow_mut().insert(stored.clone());
        let view = self
            .tensors
            .tensor(&stored)
            .map_err(|_| TextError::MissingTensor { path: self.path.to_path_buf(), name: name.into() })?;
        if view.shape() != expected {
            return Err(TextError::TensorShape {
                path: self.path.to_path_buf(),
                name: stored,
                expected: expected.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let data = to_f32(view.dtype(), view.data()).ok_or_else(|| TextError::TensorDtype {
            path: self.path.to_path_buf(),
            name: stored.clone(),
            dtype: format!("{:?}", view.dtype()),
        })?;
        Ok(Tensor::new(expected.to_vec(), data).expect("the shape was checked against the stored one"))
    }

    /// Reads a LayerNorm's scale and shift, stored as `weight`/`bias` or
    /// under the TensorFlow-era names `gamma`/`beta`.
    fn layer_norm(&self, base: &str, hidden_size: usize) -> Result<(Tensor, Tensor)> {
        let has = |suffix: &str| self.tensors.tensor(&format!("{}{base}.{suffix}", self.prefix)).is_ok();
        let (scale, shift) = if !has("weight") && has("gamma") { ("gamma", "beta") } else { ("weight", "bias") };
        Ok((self.tensor(&format!("{base}.{scale}"), &[hidden_size])?, self.tensor(&format!("{base}.{shift}"), &[hidden_size])?))
    }
}

/// Little-endian floats of `dtype` as `f32`; `None` for other types.
fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    let data = match dtype {
        Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)).collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect(),
        _ => return None,
    };
    Some(data)
}

/// IEEE 754 half precision to single precision, subnormals included.
fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) as u32) << 31;
    let exponent = ((bits >> 10) & 0x1f) as u32;
    let mantissa = (bits & 0x3ff) as u32;
    let magnitude = match (exponent, mantissa) {
        (0, 0) => 0,
        // Subnormal: the value is mantissa * 2^-24, exact in f32.
        (0, m) => (m as f32 * f32::powi(2.0, -24)).to_bits(),
        (0x1f, m) => 0x7f80_0000 | (m << 13),
        (e, m) => ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(sign | magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion() {
        // 0x3c00 = 1.0, 0xc000 = -2.0, 0x7bff = 65504 (largest finite),
        // 0x0001 = 2^-24 (smallest subnormal), 0x7c00 = infinity.
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), f32::powi(2.0, -24));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn bf16_conversion() {
        // bf16 is the upper half of an f32: 0x3f80 = 1.0, 0xc040 = -3.0.
        let bytes = [0x80, 0x3f, 0x40, 0xc0];
        assert_eq!(to_f32(Dtype::BF16, &bytes), Some(vec![1.0, -3.0]));
    }
}
