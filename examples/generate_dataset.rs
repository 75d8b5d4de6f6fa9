//! Writes a synthetic dataset as the old runtime's HTTP servers sent it: records
//! serialized with `write_tensor`, concatenated, no header.
//!
//! usage: generate_dataset OUTPUT RECORDS ELEMENTS
//! Record `i` is a float32[ELEMENTS] tensor whose element `j` is `i + j / ELEMENTS`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

use harmonics_dataset::write_tensor;
use harmonics_dataset::{DType, TensorRef};

fn run(args: &[String]) -> Result<(), String> {
    let [out, records, elements] = args else {
        return Err("usage: generate_dataset OUTPUT RECORDS ELEMENTS".into());
    };
    let records: usize = records.parse().map_err(|e| format!("RECORDS: {e}"))?;
    let elements: usize = elements.parse().map_err(|e| format!("ELEMENTS: {e}"))?;
    let file = File::create(out).map_err(|e| format!("{out}: {e}"))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let shape = [elements];
    let mut data = vec![0u8; elements * 4];
    for i in 0..records {
        for (j, chunk) in data.chunks_exact_mut(4).enumerate() {
            let v = i as f32 + j as f32 / elements as f32;
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        let t = TensorRef {
            dtype: DType::Float32,
            shape: &shape,
            data: &data,
        };
        write_tensor(&mut w, t).map_err(|e| e.to_string())?;
    }
    w.flush().map_err(|e| format!("{out}: {e}"))?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("generate_dataset: {e}");
            ExitCode::FAILURE
        }
    }
}
