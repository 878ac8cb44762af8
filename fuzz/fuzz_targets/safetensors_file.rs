//! Fuzzes the weights reader (`safetensors_from_bytes`, behind every model
//! directory, shard and checkpoint the trainer loads): a file from outside,
//! cut short or damaged on disk. Contract: nothing panics; a file that
//! loads holds exactly the tensors the `safetensors` crate reads from it,
//! each with its shape and, element for element, its bytes (whether or
//! not the data is aligned in the file); a file the crate refuses, or with
//! a dtype the reader does not take, is an error naming the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use toolgym_model::candle_core::{DType, Tensor};
use toolgym_model::checkpoint::safetensors_from_bytes;

/// The tensor's elements as little-endian bytes, in its dtype.
fn le_bytes(t: &Tensor) -> Vec<u8> {
    let flat = t.flatten_all().expect("flatten");
    match t.dtype() {
        DType::F32 => flat
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::F64 => flat
            .to_vec1::<f64>()
            .unwrap()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::F16 => flat
            .to_vec1::<half::f16>()
            .unwrap()
            .iter()
            .flat_map(|v| v.to_bits().to_le_bytes())
            .collect(),
        DType::BF16 => flat
            .to_vec1::<half::bf16>()
            .unwrap()
            .iter()
            .flat_map(|v| v.to_bits().to_le_bytes())
            .collect(),
        other => panic!("the reader returned a tensor of dtype {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    // Two alignments of the same file: the data's offset within the buffer
    // decides which copy path the reader takes.
    for shift in [0usize, 1] {
        let mut buf = vec![0u8; shift];
        buf.extend_from_slice(data);
        let bytes = &buf[shift..];
        let path = Path::new("weights.safetensors");
        let oracle = safetensors::SafeTensors::deserialize(bytes);
        match safetensors_from_bytes(bytes, path) {
            Ok(tensors) => {
                let st = oracle.expect("the reader loaded a file the crate refuses");
                assert_eq!(tensors.len(), st.len());
                for (name, view) in st.tensors() {
                    let t = &tensors[&name];
                    assert_eq!(t.dims(), view.shape(), "{name}");
                    assert_eq!(le_bytes(t), view.data(), "{name}");
                }
            }
            Err(e) => {
                let message = e.to_string();
                assert!(message.contains("weights.safetensors"), "{message}");
            }
        }
    }
});
