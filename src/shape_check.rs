//! The `validate` option: every record has the first record's dtype and shape. A leaf
//! module: the producers and the transport's body decoder (`crate::http`) both use it.

use crate::error::{Error, Result};
use crate::tensor::{describe, DType, TensorRef};

/// Checks records against the first one's dtype and shape (the `validate` option).
#[derive(Debug, Default, Clone)]
pub struct ShapeCheck {
    first: Option<(DType, Vec<usize>)>,
}

impl ShapeCheck {
    /// Checks record `index`; the first record checked sets the expectation.
    pub fn check(&mut self, index: u64, t: TensorRef<'_>) -> Result<()> {
        match &self.first {
            None => {
                self.first = Some((t.dtype, t.shape.to_vec()));
                Ok(())
            }
            Some((dtype, shape)) if *dtype == t.dtype && shape.as_slice() == t.shape => Ok(()),
            Some((dtype, shape)) => Err(Error::ShapeMismatch {
                index,
                expected: describe(*dtype, shape),
                found: t.describe(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    #[test]
    fn shape_check_names_index_and_both_shapes() {
        let mut c = ShapeCheck::default();
        c.check(0, Tensor::from_f32(&[1.0, 2.0]).as_ref()).unwrap();
        let err = c
            .check(7, Tensor::from_f32(&[1.0]).as_ref())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "record 7: shape float32[1] differs from the first record's float32[2]"
        );
    }
}
